"""Checkpoint → one self-contained stepwise ONNX file with the contract in its metadata."""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import onnx
import torch

from firstspike import __version__
from firstspike.contract import INPUT_AUDIO, INPUT_STATE, OUTPUT_PROBS, OUTPUT_STATE, ModelInfo
from firstspike.export.step_graph import build_step_module, state_layout
from firstspike.model.classifier import KeywordSpotter

DEFAULT_OPSET = 17
DEFAULT_VARIANT = "fused"  # measured faster than the ONNX LSTM op, see docs/benchmarks.md (export)
INTEGER_FRONTEND_TAG = "+int8-frontend"  # appended to `firstspike.graph`
BATCH = "batch"
MULTI_HOP = "multi-hop"  # written node by node (`export.multi_hop_graph`), not traced


def model_info(model: KeywordSpotter, checkpoint: dict, *, model_name: str, model_version: str,
               variant: str, hops_per_call: int, opset: int, threshold: float | None = None,
               integer_frontend: bool = False) -> ModelInfo:
    """The contract metadata for `model` as it will be exported."""
    config = model.config
    graph = variant + (INTEGER_FRONTEND_TAG if integer_frontend else "")
    summary = checkpoint.get("train_summary") or {}
    return ModelInfo(
        labels=tuple(config.labels),
        firing_labels=tuple(config.firing_labels),
        threshold=float(checkpoint.get("threshold", config.threshold) if threshold is None else threshold),
        sample_rate=config.sample_rate,
        hop_samples=model.frontend.hop,
        window_samples=model.frontend.window,
        state_layout=state_layout(model),
        model_name=model_name,
        model_version=model_version,
        training_data=json.dumps(summary, sort_keys=True, default=str),
        exporter_version=f"firstspike {__version__} (torch {torch.__version__.split('+')[0]}, graph {graph})",
        hops_per_call=hops_per_call,
        opset=opset,
        variable_hops=variant == MULTI_HOP,
        extra={
            "firstspike.graph": graph,
            "firstspike.head": config.head,
            "firstspike.mode": str(checkpoint.get("mode", "")),
            "firstspike.n_mels": str(config.n_mels),
            "firstspike.features": "logmel+pcen" if config.keep_logmel else "pcen" if config.pcen else "logmel",
            "firstspike.hidden": str(config.hidden),
            "firstspike.layers": str(config.layers),
        },
    )


def trace_to_onnx(model: KeywordSpotter, *, variant: str, hops_per_call: int, opset: int,
                  integer_frontend: bool = False) -> onnx.ModelProto:
    """Trace the step module with the TorchScript exporter (dynamo=False: it maps nn.LSTM to LSTM), and
    with `integer_frontend`, rewrite its DFT into integer arithmetic (`export.integer_frontend`).
    The multi-hop graph is built directly instead (`export.multi_hop_graph`)."""
    if integer_frontend and variant != "fused":
        raise ValueError(f"the integer frontend needs --graph fused, not {variant}")
    if variant == MULTI_HOP:
        if hops_per_call != 1:
            raise ValueError("--graph multi-hop takes any number of hops per call already; leave --hops-per-call at 1")
        from firstspike.export.multi_hop_graph import build_multi_hop_graph

        proto = build_multi_hop_graph(model)
        if opset != 17:
            proto = onnx.version_converter.convert_version(proto, opset)
        return proto
    step = build_step_module(model, variant, hops_per_call, factored_dft=not integer_frontend)
    audio = torch.zeros(2, model.frontend.hop * hops_per_call)
    state = torch.zeros(2, sum(slot.size for slot in state_layout(model)))
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the LSTM-with-batch_first and tracer warnings do not apply here
        torch.onnx.export(
            step, (audio, state), buffer,
            input_names=[INPUT_AUDIO, INPUT_STATE], output_names=[OUTPUT_PROBS, OUTPUT_STATE],
            dynamic_axes={name: {0: BATCH} for name in (INPUT_AUDIO, INPUT_STATE, OUTPUT_PROBS, OUTPUT_STATE)},
            opset_version=opset, do_constant_folding=True, dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    if integer_frontend:
        from firstspike.export.integer_frontend import integerise_frontend

        integerise_frontend(proto, step)
    return proto


def attach_metadata(proto: onnx.ModelProto, info: ModelInfo) -> onnx.ModelProto:
    del proto.metadata_props[:]
    for key, value in info.to_metadata().items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "firstspike"
    proto.producer_version = __version__
    hops = "any whole number of hops" if info.variable_hops else f"{info.hops_per_call} hop(s)"
    proto.doc_string = (
        f"firstspike stepwise keyword spotter {info.full_name}: one call advances every stream by "
        f"{hops} of {info.hop_samples} samples at {info.sample_rate} Hz. See docs/onnx-contract.md."
    )
    return proto


def save_self_contained(proto: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Check the model and write it as ONE file (weights inline, no external data), atomically."""
    onnx.checker.check_model(proto, full_check=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        onnx.save_model(proto, tmp, save_as_external_data=False)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a model file is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def export_model(model: KeywordSpotter, checkpoint: dict, output: str | os.PathLike, *, model_name: str,
                 model_version: str, variant: str = DEFAULT_VARIANT, hops_per_call: int = 1,
                 opset: int = DEFAULT_OPSET, threshold: float | None = None,
                 integer_frontend: bool = False) -> ModelInfo:
    """Export `model` to `output` and return the metadata written into it."""
    if opset < 17:
        raise ValueError(f"opset must be at least 17, got {opset}")
    info = model_info(model, checkpoint, model_name=model_name, model_version=model_version, variant=variant,
                      hops_per_call=hops_per_call, opset=opset, threshold=threshold, integer_frontend=integer_frontend)
    proto = trace_to_onnx(model.eval(), variant=variant, hops_per_call=hops_per_call, opset=opset,
                          integer_frontend=integer_frontend)
    proto = attach_metadata(proto, info)
    save_self_contained(proto, output)
    return info
