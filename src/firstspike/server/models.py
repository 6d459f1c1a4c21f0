"""The step models a server serves: `NAME=PATH` or `PATH` specs → open onnxruntime sessions.

One InferenceSession per model, shared by every stream (onnxruntime's `run` is thread-safe), so
memory per stream is just its state vector and audio buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from firstspike.contract import ModelInfo
from firstspike.runtime import StepFunction, bind_frames, bind_step, open_step_session

# Models shipped in the package, by the word a `--model` spec may name them with. Both are exported from
# models/default/checkpoint.pt: `bundled` in float32 (exact parity with PyTorch), `bundled-int8` with the
# int8 LSTM gates of `firstspike export --quantize lstm`, so a server without torch (the Docker image)
# can serve the cheaper arithmetic on a CPU with VNNI (docs/deployment.md, *An int8 model*).
BUNDLED_MODELS = {"bundled": "models/default.onnx", "bundled-int8": "models/default-int8.onnx"}


class ModelSpecError(ValueError):
    """A `--model` spec that names no usable model."""


@dataclass
class LoadedModel:
    name: str
    path: Path
    session: ort.InferenceSession
    info: ModelInfo
    threshold: float  # the server's default θ for this model (model metadata or --threshold)
    _step: StepFunction = field(init=False, repr=False)
    _frames: StepFunction | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._step = bind_step(self.session)
        self._frames = bind_frames(self.session) if self.info.variable_hops else None

    @property
    def full_name(self) -> str:
        return f"{self.name}@{self.info.model_version}"

    def run(self, audio: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step for a batch: audio [B, samples_per_call], state [B, S] → probs [B, K], state [B, S]."""
        return self._step(audio, state)

    def run_frames(self, audio: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Several calls' worth at once (a `variable_hops` graph only): audio [B, n · samples_per_call]
        → every hop's probs [B, n, K], state [B, S]."""
        if self._frames is None:
            raise ValueError(f"model {self.name!r} takes one call's worth of audio at a time")
        return self._frames(audio, state)

    def describe(self, default: bool) -> dict:
        info = self.info
        return {
            "name": self.name,
            "model": self.full_name,
            "version": info.model_version,
            "default": default,
            "labels": list(info.labels),
            "firing_labels": list(info.firing_labels),
            "threshold": self.threshold,
            "sample_rate": info.sample_rate,
            "frame_ms": frame_ms(info),
            "hops_per_call": info.hops_per_call,
            "variable_hops": info.variable_hops,
            "state_size": info.state_size,
            "training_data": info.training_data,
            "exporter_version": info.exporter_version,
            "graph": info.extra.get("firstspike.graph", ""),  # e.g. "fused+int8": which arithmetic it runs
        }


def frame_ms(info: ModelInfo) -> float | int:
    ms = info.frame_ms
    return int(ms) if float(ms).is_integer() else round(ms, 4)


def bundled_model_path(word: str = "bundled") -> Path:
    return Path(str(resources.files("firstspike.server").joinpath(BUNDLED_MODELS[word])))


def parse_model_spec(spec: str) -> tuple[str | None, Path]:
    """`NAME=PATH` → (NAME, PATH); `PATH` → (None, PATH): the name then comes from the model's metadata.

    PATH may also be a word of BUNDLED_MODELS (`bundled`, `bundled-int8`), unless a file of that name exists."""
    name, sep, path = spec.partition("=")
    if sep and name and "/" not in name and not Path(spec).exists():
        return name.strip(), _model_path(path)
    return None, _model_path(spec)


def _model_path(path: str) -> Path:
    if path in BUNDLED_MODELS and not Path(path).exists():
        return bundled_model_path(path)
    return Path(path).expanduser()


def load_models(specs: list[str], threshold: float | None, intra_op_threads: int = 1) -> dict[str, LoadedModel]:
    """Open every model; the first is the default. An empty list serves the bundled model."""
    if not specs:
        specs = [str(bundled_model_path())]
    models: dict[str, LoadedModel] = {}
    for spec in specs:
        alias, path = parse_model_spec(spec)
        try:
            session, info = open_step_session(path, intra_op_threads=intra_op_threads)
        except (FileNotFoundError, ValueError) as err:
            raise ModelSpecError(f"--model {spec!r}: {err}") from None
        name = alias or info.model_name
        if name in models:
            raise ModelSpecError(f"two models are named {name!r}; name them with NAME=PATH")
        models[name] = LoadedModel(name, path, session, info, threshold if threshold is not None else info.threshold)
    return models


def resolve_model(models: dict[str, LoadedModel], requested: str | None) -> LoadedModel:
    """The model a client asked for, by `NAME` or `NAME@VERSION`; None means the default."""
    if requested is None:
        return next(iter(models.values()))
    name, _, version = requested.partition("@")
    model = models.get(name)
    if model is None or (version and version != model.info.model_version):
        raise KeyError(requested)
    return model
