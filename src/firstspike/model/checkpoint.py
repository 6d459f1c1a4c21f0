"""Save and load firstspike checkpoints (a `torch.save` dict; keys listed in docs/architecture.md).

Writes are atomic (temporary file + rename) so an interrupted training never leaves a half-written
`best.pt`; loads fail with a `CheckpointError` that names the file and what is wrong with it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from firstspike.model.classifier import KeywordSpotter, ModelConfig

FORMAT = "firstspike-checkpoint"
FORMAT_VERSION = 1
MODES = ("rc", "eos")
REQUIRED_KEYS = ("config", "state_dict", "labels", "firing_labels", "threshold", "mode", "train_summary")


def _builtin(obj):
    """JSON fallback: numpy scalars and arrays become plain Python (safe for weights-only loading)."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"train_summary holds a {type(obj).__name__}, which a checkpoint cannot store")


class CheckpointError(RuntimeError):
    """The file is missing, unreadable, not a firstspike checkpoint, or incompatible with this code."""


def save_checkpoint(path: str | os.PathLike, model: KeywordSpotter, mode: str, train_summary: dict,
                    **resume_state) -> Path:
    """Write `model` with its config and training summary; extra keywords (optimizer, scheduler,
    epoch, ...) are stored alongside for `--resume`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    clash = sorted(set(resume_state) & (set(REQUIRED_KEYS) | {"format", "format_version"}))
    if clash:
        raise ValueError(f"resume state may not override checkpoint keys {clash}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = model.config
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "labels": list(config.labels),
        "firing_labels": list(config.firing_labels),
        "threshold": float(config.threshold),
        "mode": mode,
        "train_summary": json.loads(json.dumps(train_summary, default=_builtin)),
        **resume_state,
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _is_onnx(path: Path) -> bool:
    """An ONNX file (a protobuf whose first field is ir_version) handed where a checkpoint belongs."""
    with open(path, "rb") as fh:
        return path.suffix == ".onnx" or fh.read(1) == b"\x08"


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load and validate the raw checkpoint dict (no model built)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch.load raises many types (pickle, zip, index, EOF) for junk files
        if _is_onnx(path):
            raise CheckpointError(f"{path} is an ONNX model, not a firstspike checkpoint: this needs the .pt "
                                  "checkpoint it was exported from") from None
        # torch's first sentence says what failed; the rest is advice for torch users, not ours.
        reason = (str(err).strip().splitlines() or [""])[0].split(". ")[0]
        reason = reason if len(reason) > 20 else f"{type(err).__name__} {reason}".strip()
        raise CheckpointError(f"{path} is not a firstspike checkpoint (cannot be read: {reason})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a firstspike checkpoint (no '{FORMAT}' marker)")
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {data.get('format_version')!r}; this firstspike reads {FORMAT_VERSION}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise CheckpointError(f"{path} lacks the checkpoint keys {missing}")
    if data["mode"] not in MODES:
        raise CheckpointError(f"{path} has unknown training mode {data['mode']!r}")
    return data


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> tuple[KeywordSpotter, dict]:
    """Return (model in eval mode, the full checkpoint dict)."""
    data = read_checkpoint(path, map_location)
    try:
        config = ModelConfig.from_dict(data["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} has an incompatible model config: {err}") from None
    model = KeywordSpotter(config)
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise CheckpointError(f"{path} does not match its model config: {' '.join(first[:3])}") from None
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    return model.eval(), data
