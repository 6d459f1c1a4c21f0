"""The stepwise ONNX model contract, shared by the exporter (writes it) and the server (reads it).

One call of the graph advances every stream of a batch by `hops_per_call` hops of audio:

    audio     float32 [B, hop_samples * hops_per_call]   samples in [-1, 1] at `sample_rate`
    state     float32 [B, state_size]                    all zeros for a new stream
    probs     float32 [B, K]                             class probabilities after the last hop
    state_out float32 [B, state_size]                    pass to the next call

A graph with `variable_hops` (`firstspike export --graph multi-hop`; its hops_per_call is 1) also
takes audio of any whole number n of hops, [B, n * hop_samples], and has a third output:

    frame_probs float32 [B, n, K]                        the probabilities after each of the n hops

Everything a runtime needs is in the file's `metadata_props` (strings; lists are JSON). This module
needs only the standard library, so the server can use it without torch or onnx.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

CONTRACT_VERSION = "1"
INPUT_AUDIO, INPUT_STATE = "audio", "state"
OUTPUT_PROBS, OUTPUT_STATE = "probs", "state_out"
OUTPUT_FRAME_PROBS = "frame_probs"  # only in graphs with variable_hops
FILLER_LABELS = ("_silence_", "_unknown_")


class ContractError(ValueError):
    """The model's metadata is missing, inconsistent, or disagrees with its graph."""


@dataclass(frozen=True)
class StateSlot:
    """One named slice of the packed state vector."""

    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class ModelInfo:
    labels: tuple[str, ...]
    firing_labels: tuple[str, ...]
    threshold: float
    sample_rate: int
    hop_samples: int
    window_samples: int
    state_layout: tuple[StateSlot, ...]
    model_name: str
    model_version: str
    training_data: str = ""
    exporter_version: str = ""
    hops_per_call: int = 1
    opset: int = 0
    variable_hops: bool = False  # audio may hold any whole number of hops; `frame_probs` gives each hop
    extra: dict[str, str] = field(default_factory=dict)

    # -- derived ---------------------------------------------------------------------------
    @property
    def state_size(self) -> int:
        return sum(slot.size for slot in self.state_layout)

    @property
    def samples_per_call(self) -> int:
        return self.hop_samples * self.hops_per_call

    @property
    def frame_ms(self) -> float:
        return 1000.0 * self.hop_samples / self.sample_rate

    @property
    def firing_indices(self) -> tuple[int, ...]:
        return tuple(self.labels.index(label) for label in self.firing_labels)

    @property
    def full_name(self) -> str:
        return f"{self.model_name}@{self.model_version}"

    # -- (de)serialisation -----------------------------------------------------------------
    def to_metadata(self) -> dict[str, str]:
        meta = {
            "firstspike.contract": CONTRACT_VERSION,
            "labels": json.dumps(list(self.labels)),
            "firing_labels": json.dumps(list(self.firing_labels)),
            "threshold": repr(float(self.threshold)),
            "sample_rate": str(self.sample_rate),
            "hop_samples": str(self.hop_samples),
            "window_samples": str(self.window_samples),
            "hops_per_call": str(self.hops_per_call),
            "state_size": str(self.state_size),
            "state_layout": json.dumps([asdict(s) for s in self.state_layout]),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "training_data": self.training_data,
            "exporter_version": self.exporter_version,
            "opset": str(self.opset),
        }
        if self.variable_hops:  # written only when set, so other graphs' metadata stays as it was
            meta["variable_hops"] = "true"
        meta.update(self.extra)
        self.validate()
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> "ModelInfo":
        if meta.get("firstspike.contract") != CONTRACT_VERSION:
            raise ContractError(
                f"not a firstspike step model (metadata 'firstspike.contract' is "
                f"{meta.get('firstspike.contract')!r}, expected {CONTRACT_VERSION!r})"
            )
        try:
            known = {
                "firstspike.contract", "labels", "firing_labels", "threshold", "sample_rate",
                "hop_samples", "window_samples", "hops_per_call", "state_size", "state_layout",
                "model_name", "model_version", "training_data", "exporter_version", "opset",
                "variable_hops",
            }
            variable_hops = meta.get("variable_hops", "false")
            if variable_hops not in ("true", "false"):
                raise ValueError(f"variable_hops must be 'true' or 'false', got {variable_hops!r}")
            info = cls(
                labels=tuple(json.loads(meta["labels"])),
                firing_labels=tuple(json.loads(meta["firing_labels"])),
                threshold=float(meta["threshold"]),
                sample_rate=int(meta["sample_rate"]),
                hop_samples=int(meta["hop_samples"]),
                window_samples=int(meta["window_samples"]),
                hops_per_call=int(meta.get("hops_per_call", "1")),
                state_layout=tuple(StateSlot(**s) for s in json.loads(meta["state_layout"])),
                model_name=meta["model_name"],
                model_version=meta["model_version"],
                training_data=meta.get("training_data", ""),
                exporter_version=meta.get("exporter_version", ""),
                opset=int(meta.get("opset", "0")),
                variable_hops=variable_hops == "true",
                extra={k: v for k, v in meta.items() if k not in known},
            )
        except KeyError as err:
            raise ContractError(f"model metadata lacks the key {err.args[0]!r}") from None
        except (ValueError, TypeError) as err:
            raise ContractError(f"model metadata is malformed: {err}") from None
        if "state_size" in meta and int(meta["state_size"]) != info.state_size:
            raise ContractError(
                f"metadata state_size={meta['state_size']} but state_layout adds up to {info.state_size}"
            )
        info.validate()
        return info

    def validate(self) -> None:
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise ContractError(f"labels must be non-empty and unique, got {list(self.labels)}")
        missing = [l for l in self.firing_labels if l not in self.labels]
        if missing or not self.firing_labels:
            raise ContractError(f"firing labels {missing or '[]'} are not among the labels {list(self.labels)}")
        if not 0.0 < self.threshold <= 1.0:
            raise ContractError(f"threshold must lie in (0, 1], got {self.threshold}")
        if self.sample_rate <= 0 or self.hop_samples <= 0 or self.hops_per_call <= 0:
            raise ContractError("sample_rate, hop_samples and hops_per_call must be positive")
        if self.variable_hops and self.hops_per_call != 1:
            raise ContractError(f"a variable_hops graph has hops_per_call 1, not {self.hops_per_call}")
        if self.window_samples < self.hop_samples:
            raise ContractError("window_samples must be at least hop_samples")
        offset = 0
        for slot in self.state_layout:
            if slot.offset != offset or slot.size <= 0:
                raise ContractError(f"state_layout is not contiguous at slot {slot.name!r}")
            offset += slot.size

    def check_graph(self, audio_shape, state_shape, probs_shape) -> None:
        """Refuse a graph whose tensor shapes disagree with the metadata (dims may be symbolic)."""

        def fixed(dim):
            return dim if isinstance(dim, int) else None

        checks = [
            ("audio", fixed(audio_shape[-1]), self.samples_per_call),
            ("state", fixed(state_shape[-1]), self.state_size),
            ("probs", fixed(probs_shape[-1]), len(self.labels)),
        ]
        for name, got, want in checks:
            if got is not None and got != want:
                raise ContractError(f"graph input/output '{name}' has last dimension {got}, metadata says {want}")
