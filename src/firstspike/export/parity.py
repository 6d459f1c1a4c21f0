"""Does the ONNX step model, streamed hop by hop, say what the PyTorch model says over the whole clip?

Both sides see the same audio: PyTorch runs `KeywordSpotter.forward` once over the clip, onnxruntime
runs the step graph call after call from an all-zero state. Compared per clip: the largest absolute
difference of any class probability at any frame, and the first-spike decision (frame and label)
under the model's θ. With `hops_per_call = N` the graph only reports every N-th frame, so those are
the frames compared and the decision is taken on them on both sides. A graph with `variable_hops`
is also run once over each whole clip, and its `frame_probs` must say the same as the hop-by-hop run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import onnxruntime as ort
import torch

from firstspike.contract import INPUT_AUDIO, INPUT_STATE, OUTPUT_FRAME_PROBS, OUTPUT_PROBS, OUTPUT_STATE, ModelInfo
from firstspike.model.classifier import KeywordSpotter
from firstspike.model.inference import decide as decide_all

PROB_TOLERANCE = 1e-4
DECISION_AGREEMENT = 0.999
INT8_ACCURACY_TOLERANCE = 0.01  # an int8 graph may lose at most this much first-spike accuracy


@dataclass(frozen=True)
class Decision:
    frame: int
    label: str
    spiked: bool


def decide(probs: np.ndarray, info: ModelInfo, threshold: float) -> Decision:
    """The evaluation's first-spike rule (`firstspike.model.inference.decide`) on probs [T, K]."""
    mask = np.zeros(len(info.labels), dtype=bool)
    mask[list(info.firing_indices)] = True
    result = decide_all([probs], mask, threshold)
    return Decision(int(result.t_star[0]), info.labels[int(result.predicted[0])], bool(result.spiked[0]))


def stream_onnx(session: ort.InferenceSession, info: ModelInfo, audio: np.ndarray) -> np.ndarray:
    """audio [B, N] → probs [B, N // samples_per_call, K], one graph call per `samples_per_call`."""
    batch = audio.shape[0]
    calls = audio.shape[1] // info.samples_per_call
    state = np.zeros((batch, info.state_size), np.float32)
    out = np.empty((batch, calls, len(info.labels)), np.float32)
    for t in range(calls):
        chunk = np.ascontiguousarray(audio[:, t * info.samples_per_call: (t + 1) * info.samples_per_call])
        out[:, t], state = session.run([OUTPUT_PROBS, OUTPUT_STATE], {INPUT_AUDIO: chunk, INPUT_STATE: state})
    return out


def onnx_in_one_call(session: ort.InferenceSession, info: ModelInfo, audio: np.ndarray) -> np.ndarray:
    """A `variable_hops` graph called once over the whole of audio [B, N]: its frame_probs [B, calls, K]."""
    calls = audio.shape[1] // info.samples_per_call
    feeds = {INPUT_AUDIO: np.ascontiguousarray(audio[:, : calls * info.samples_per_call]),
             INPUT_STATE: np.zeros((audio.shape[0], info.state_size), np.float32)}
    return session.run([OUTPUT_FRAME_PROBS], feeds)[0]


def parity_on(session: ort.InferenceSession, info: ModelInfo, model: KeywordSpotter, audio: np.ndarray) -> float:
    """The largest |p_onnx - p_torch| over audio [B, N], streamed call by call (and, for a
    `variable_hops` graph, in one call as well)."""
    reference = torch_probs(model, audio, info.hops_per_call)
    diff = float(np.abs(stream_onnx(session, info, audio) - reference).max())
    if info.variable_hops:
        diff = max(diff, float(np.abs(onnx_in_one_call(session, info, audio) - reference).max()))
    return diff


def torch_probs(model: KeywordSpotter, audio: np.ndarray, hops_per_call: int = 1) -> np.ndarray:
    """Whole-clip PyTorch forward, keeping the frames the step graph reports: [B, T // hops_per_call, K]."""
    with torch.inference_mode():
        probs = model.probabilities(model(torch.from_numpy(audio))).numpy()
    calls = probs.shape[1] // hops_per_call
    return probs[:, hops_per_call - 1: calls * hops_per_call: hops_per_call]


def label_mapper(labels: tuple[str, ...]):
    """Manifest label → model label: the task mapping (sc12/sc35) when the labels are a task's, else as is."""
    from firstspike.model.labels import TASKS, map_label, task_labels

    for task in TASKS:
        if list(labels) == task_labels(task)[0]:
            return lambda label: map_label(label, task) if label else ""
    return lambda label: label if label in labels else ""


@dataclass
class ClipResult:
    clip: str
    label: str
    frames: int
    max_abs_diff: float
    torch_decision: Decision
    onnx_decision: Decision

    @property
    def decision_agrees(self) -> bool:
        return (self.torch_decision.frame, self.torch_decision.label) == (self.onnx_decision.frame, self.onnx_decision.label)


@dataclass
class ParityReport:
    clips: int = 0
    frames: int = 0
    max_abs_diff: float = 0.0
    frames_over_tolerance: int = 0
    clips_over_tolerance: int = 0
    decisions_agree: int = 0
    labelled: int = 0
    correct_torch: int = 0
    correct_onnx: int = 0
    spikes_torch: int = 0
    spikes_onnx: int = 0
    threshold: float = 0.0
    hops_per_call: int = 1
    whole_clip_calls: bool = False  # a variable_hops graph: also compared over whole clips in one call
    tolerance: float = PROB_TOLERANCE
    required_agreement: float = DECISION_AGREEMENT
    # int8 graphs (`export --quantize`) cannot match float32 to 1e-4; they are judged by accuracy instead
    int8: bool = False
    accuracy_tolerance: float = INT8_ACCURACY_TOLERANCE
    disagreements: list[dict] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.decisions_agree / self.clips if self.clips else 0.0

    @property
    def accuracy_loss(self) -> float | None:
        """Float32 first-spike accuracy minus the graph's, over the labelled clips."""
        return (self.correct_torch - self.correct_onnx) / self.labelled if self.labelled else None

    @property
    def passed(self) -> bool:
        if self.clips == 0:
            return False
        if self.int8:
            return self.accuracy_loss is not None and self.accuracy_loss <= self.accuracy_tolerance
        return self.frames_over_tolerance == 0 and self.agreement >= self.required_agreement

    def add(self, result: ClipResult, frame_diffs: np.ndarray) -> None:
        self.clips += 1
        self.frames += result.frames
        self.max_abs_diff = max(self.max_abs_diff, result.max_abs_diff)
        over = int((frame_diffs > self.tolerance).sum())
        self.frames_over_tolerance += over
        self.clips_over_tolerance += int(over > 0)
        self.decisions_agree += int(result.decision_agrees)
        self.spikes_torch += int(result.torch_decision.spiked)
        self.spikes_onnx += int(result.onnx_decision.spiked)
        if result.label:
            self.labelled += 1
            self.correct_torch += int(result.torch_decision.label == result.label)
            self.correct_onnx += int(result.onnx_decision.label == result.label)
        if not result.decision_agrees and len(self.disagreements) < 20:
            self.disagreements.append({"clip": result.clip, "torch": asdict(result.torch_decision),
                                       "onnx": asdict(result.onnx_decision)})

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(agreement=self.agreement, accuracy_loss=self.accuracy_loss, passed=self.passed)
        return data

    def to_text(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        points = 100 * self.accuracy_tolerance
        judged = (f" (int8 graph: judged by first-spike accuracy, at most {points:g} point{'' if points == 1 else 's'} "
                  "below float32; the parity lines are for information)") if self.int8 else ""
        required = "" if self.int8 else f" (required {100 * self.required_agreement:.1f}%)"
        lines = [
            f"{verdict}: {self.clips} clips, {self.frames} compared frames (hops_per_call={self.hops_per_call}"
            f"{', and each clip in one call' if self.whole_clip_calls else ''}){judged}",
            f"  max |p_onnx - p_torch| = {self.max_abs_diff:.3g} (tolerance {self.tolerance:g}); "
            f"frames over tolerance: {self.frames_over_tolerance} in {self.clips_over_tolerance} clips",
            f"  first-spike frame and label identical: {self.decisions_agree}/{self.clips} = "
            f"{100 * self.agreement:.2f}%{required}",
            f"  clips that spiked before their end at θ={self.threshold:g}: torch {self.spikes_torch}, onnx {self.spikes_onnx}",
        ]
        if self.labelled:
            lines.append(f"  first-spike accuracy against the manifest labels ({self.labelled} clips): "
                         f"torch {100 * self.correct_torch / self.labelled:.2f}%, onnx {100 * self.correct_onnx / self.labelled:.2f}%")
        elif self.int8:
            lines.append("  no clip has a label this model knows, so the int8 graph's accuracy cannot be judged")
        return "\n".join(lines)


def compare_batch(session: ort.InferenceSession, info: ModelInfo, model: KeywordSpotter, names: list[str],
                  labels: list[str], clips: list[np.ndarray], threshold: float, report: ParityReport) -> None:
    """Compare a batch of clips (zero-padded to the longest; the models are causal, so padding after
    a clip's end cannot change its frames)."""
    width = max(len(c) for c in clips)
    audio = np.zeros((len(clips), width), np.float32)
    for row, clip in enumerate(clips):
        audio[row, : len(clip)] = clip
    onnx_p = stream_onnx(session, info, audio)
    one_call = onnx_in_one_call(session, info, audio) if info.variable_hops else None
    torch_p = torch_probs(model, audio, info.hops_per_call)
    for row, (name, label, clip) in enumerate(zip(names, labels, clips)):
        frames = len(clip) // info.samples_per_call
        if frames == 0:
            raise ValueError(f"clip {name} is shorter than one call ({info.samples_per_call} samples)")
        a, b = onnx_p[row, :frames], torch_p[row, :frames]
        frame_diffs = np.abs(a - b).max(axis=1)
        onnx_decision = decide(a, info, threshold)
        if one_call is not None:
            whole = one_call[row, :frames]
            frame_diffs = np.maximum(frame_diffs, np.abs(whole - b).max(axis=1))
            if decide(whole, info, threshold) != onnx_decision:  # the two ways of calling it must agree too
                onnx_decision = Decision(-1, "(one call and hop by hop differ)", False)
        result = ClipResult(name, label, frames, float(frame_diffs.max()), decide(b, info, threshold), onnx_decision)
        report.add(result, frame_diffs)
