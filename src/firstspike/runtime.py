"""Open a firstspike step model with onnxruntime, the way every runtime in this project should.

The exporter's benchmarks chose these session options, and the server reuses them through this
module, so a figure in docs/benchmarks.md describes what the server actually runs. Only
onnxruntime and `firstspike.contract` are imported here: the server never pulls in torch or onnx.

Why these options (measured with `bench/step_latency.py`, see docs/benchmarks.md, export section):
- one intra-op thread: a step is a few tiny matmuls; handing them to a thread pool costs more than
  it saves at batch 1 and barely helps at batch 64, and the server runs many sessions side by side;
- sequential execution: the step graph is a chain, there is nothing to run in parallel;
- all graph optimisations: fusions (MatMul+Add → Gemm, etc.) cut the per-op overhead that dominates;
- no thread spinning: idle workers must not burn the cores that other streams need.

`bind_step` is how a step is called: straight into onnxruntime's C++ session, past the Python
wrapper's per-call input checks (2–3 µs of a ~32 µs batch-1 step, measured side by side), which
`read_model_info` has already made once for good at load time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from firstspike.contract import (
    INPUT_AUDIO,
    INPUT_STATE,
    OUTPUT_FRAME_PROBS,
    OUTPUT_PROBS,
    OUTPUT_STATE,
    ContractError,
    ModelInfo,
)

__all__ = ["ContractError", "StepFunction", "bind_frames", "bind_step", "make_session_options", "open_step_session", "read_model_info"]

StepFunction = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_FLOAT = "tensor(float)"


def make_session_options(intra_op_threads: int = 1) -> ort.SessionOptions:
    """Session options tuned for per-hop streaming steps (see the module docstring for why)."""
    if intra_op_threads < 1:
        raise ValueError(f"intra_op_threads must be at least 1, got {intra_op_threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initialisers are noise to a server log
    return options


def open_step_session(
    path: str | Path,
    *,
    intra_op_threads: int = 1,
    providers: list[str] | None = None,
) -> tuple[ort.InferenceSession, ModelInfo]:
    """Load a step model, read its contract metadata and refuse it if metadata and graph disagree.

    Raises FileNotFoundError for a missing file and ContractError (a ValueError) for a file that is
    not ONNX, not a firstspike step model, or whose metadata does not match its tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"step model not found: {path}")
    try:
        session = ort.InferenceSession(
            str(path),
            sess_options=make_session_options(intra_op_threads),
            providers=providers or ["CPUExecutionProvider"],
        )
    except Exception as err:  # onnxruntime raises its own (non-exported) exception types
        raise ContractError(f"{path} is not a loadable ONNX model: {err}") from None
    try:
        info = read_model_info(session)
    except ContractError as err:
        raise ContractError(f"{path}: {err}") from None
    return session, info


def bind_step(session: ort.InferenceSession) -> StepFunction:
    """`step(audio [B, n], state [B, S]) -> (probs [B, K], state_out [B, S])` for an open step model.

    Calls the C++ session directly when this onnxruntime exposes it (it still checks every input's
    name, type and shape); otherwise, or on a future onnxruntime without it, the public `run`.
    """
    return _bind(session, [OUTPUT_PROBS, OUTPUT_STATE])


def bind_frames(session: ort.InferenceSession) -> StepFunction:
    """`frames(audio [B, n · hop_samples], state) -> (frame_probs [B, n, K], state_out)` for a graph
    with `variable_hops`: n hops in one call, every hop's probabilities back (called as `bind_step`)."""
    return _bind(session, [OUTPUT_FRAME_PROBS, OUTPUT_STATE])


def _bind(session: ort.InferenceSession, outputs: list[str]) -> StepFunction:
    run = getattr(getattr(session, "_sess", None), "run", None)
    if run is None:
        def step(audio: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            first, state_out = session.run(outputs, {INPUT_AUDIO: audio, INPUT_STATE: state})
            return first, state_out
        return step

    def native_step(audio: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        first, state_out = run(outputs, {INPUT_AUDIO: audio, INPUT_STATE: state}, None)
        return first, state_out
    return native_step


def read_model_info(session: ort.InferenceSession) -> ModelInfo:
    """The ModelInfo of an open session, validated against the graph's tensor names, types and shapes."""
    meta = dict(session.get_modelmeta().custom_metadata_map)
    info = ModelInfo.from_metadata(meta)
    inputs = {arg.name: arg for arg in session.get_inputs()}
    outputs = {arg.name: arg for arg in session.get_outputs()}
    _require(inputs, (INPUT_AUDIO, INPUT_STATE), "input")
    _require(outputs, (OUTPUT_PROBS, OUTPUT_STATE), "output")
    for arg in (inputs[INPUT_AUDIO], inputs[INPUT_STATE], outputs[OUTPUT_PROBS], outputs[OUTPUT_STATE]):
        if arg.type != _FLOAT:
            raise ContractError(f"graph tensor '{arg.name}' is {arg.type}, the contract wants float32")
        if len(arg.shape) != 2:
            raise ContractError(f"graph tensor '{arg.name}' has shape {arg.shape}, the contract wants [B, n]")
    info.check_graph(inputs[INPUT_AUDIO].shape, inputs[INPUT_STATE].shape, outputs[OUTPUT_PROBS].shape)
    if info.variable_hops:
        _check_frame_probs(inputs[INPUT_AUDIO], outputs, info)
    state_out = outputs[OUTPUT_STATE].shape[-1]
    if isinstance(state_out, int) and state_out != info.state_size:
        raise ContractError(
            f"graph output '{OUTPUT_STATE}' has last dimension {state_out}, metadata says {info.state_size}"
        )
    return info


def _check_frame_probs(audio, outputs: dict, info: ModelInfo) -> None:
    """A graph whose metadata says `variable_hops` must take audio of any length and give every hop."""
    if isinstance(audio.shape[-1], int):
        raise ContractError(f"metadata says variable_hops, but graph input '{INPUT_AUDIO}' has a fixed "
                            f"length of {audio.shape[-1]} samples")
    frame_probs = outputs.get(OUTPUT_FRAME_PROBS)
    if frame_probs is None:
        raise ContractError(f"metadata says variable_hops, but the graph has no '{OUTPUT_FRAME_PROBS}' output")
    if frame_probs.type != _FLOAT or len(frame_probs.shape) != 3:
        raise ContractError(f"graph output '{OUTPUT_FRAME_PROBS}' is {frame_probs.type} {frame_probs.shape}, "
                            "the contract wants float32 [B, hops, K]")
    labels = frame_probs.shape[-1]
    if isinstance(labels, int) and labels != len(info.labels):
        raise ContractError(f"graph output '{OUTPUT_FRAME_PROBS}' has last dimension {labels}, "
                            f"metadata has {len(info.labels)} labels")


def _require(found: dict, names: tuple[str, ...], kind: str) -> None:
    missing = [name for name in names if name not in found]
    if missing:
        raise ContractError(
            f"not a firstspike step model: graph {kind}s are {sorted(found)}, missing {missing}"
        )
