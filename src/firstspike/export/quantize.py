"""Optional int8 dynamic quantisation of an exported step model (weights int8, activations per call).

Kept as an option, not the default: see docs/benchmarks.md (export) for the measured accuracy and
speed change. The contract metadata is carried over unchanged, so the result is still a step model.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import onnx


def quantize_dynamic_int8(source: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Quantise the MatMul/Gemm weights of `source` to int8 and write one self-contained file."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, output = Path(source), Path(output)
    original = onnx.load(source)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "quantized.onnx"
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser's "consider pre-processing" advice is noise here
        try:
            quantize_dynamic(source, staged, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        finally:
            root.setLevel(level)
        quantized = onnx.load(staged)
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(original.metadata_props)
    for prop in quantized.metadata_props:
        if prop.key == "firstspike.graph":
            prop.value += "+int8"
    quantized.doc_string = original.doc_string
    onnx.checker.check_model(quantized)
    output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(quantized, output, save_as_external_data=False)
    return output
