"""Optional int8 dynamic quantisation of an exported step model: the LSTM and head matrices only
(`firstspike export --quantize lstm`, and half of `all`).

Why not the frontend: dynamic quantisation of the windowed-DFT MatMuls turns each audio frame into
8-bit samples, which wrecks the quiet bands of the log-mels. On the bundled model's test split that
cost up to 38 points of accuracy, while int8 on the LSTM and head alone kept it within a quarter point
(docs/benchmarks.md, export section). The frontend has its own integer path, which keeps the audio
exact (`integer_frontend.py`); its MatMulIntegers are left alone here. Weights get one scale per output column: the fused gates'
doubled cell-input rows (step_graph.FusedStep) would otherwise set a coarser step for every gate,
which cost a quarter point more accuracy. Dynamic quantisation scales each call's activations by their own
range, so a stream's probabilities depend a little on which other streams share its batch; that and
the failed float parity keep it opt-in. The contract metadata is carried over, with "+int8" appended
to `firstspike.graph`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import onnx

FRONTEND_PREFIX = "dft."  # initializers of the audio frontend, which stays float32


def _matrix_nodes(model: onnx.ModelProto, frontend: bool) -> list[onnx.NodeProto]:
    """The MatMul/Gemm nodes that read a frontend weight (`frontend=True`), or all the others."""
    return [node for node in model.graph.node if node.op_type in ("MatMul", "Gemm")
            and any(name.startswith(FRONTEND_PREFIX) for name in node.input) == frontend]


def _count(model: onnx.ModelProto, op_type: str) -> int:
    return sum(node.op_type == op_type for node in model.graph.node)


def quantize_dynamic_int8(source: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Quantise the LSTM and head weights of `source` to int8 and write one self-contained file."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, output = Path(source), Path(output)
    original = onnx.load(source)
    recurrent = _matrix_nodes(original, frontend=False)
    # the quantiser rewrites a Gemm as NAME_MatMul + NAME_Add before it matches names, so exclude both
    excluded = [name for node in _matrix_nodes(original, frontend=True) for name in (node.name, f"{node.name}_MatMul")]
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "quantized.onnx"
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser's "consider pre-processing" advice is noise here
        try:
            quantize_dynamic(source, staged, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                             nodes_to_exclude=excluded, per_channel=True)
        finally:
            root.setLevel(level)
        quantized = onnx.load(staged)
    made = _count(quantized, "MatMulInteger") - _count(original, "MatMulInteger")  # the integer frontend has its own
    if not recurrent or made != len(recurrent):
        raise RuntimeError(f"int8 quantisation made {made} integer MatMuls for the {len(recurrent)} LSTM/head "
                           "matrices; this onnxruntime quantiser behaves differently from the one this was built for")
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(original.metadata_props)
    props = {prop.key: prop for prop in quantized.metadata_props}
    if "firstspike.graph" in props:
        graph = props["firstspike.graph"]
        if "exporter_version" in props:  # "… graph fused)" names the graph too
            props["exporter_version"].value = props["exporter_version"].value.replace(
                f"graph {graph.value})", f"graph {graph.value}+int8)")
        graph.value += "+int8"
    quantized.doc_string = original.doc_string
    onnx.checker.check_model(quantized)
    output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(quantized, output, save_as_external_data=False)
    return output
