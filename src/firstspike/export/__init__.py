"""Checkpoint → stepwise ONNX export, parity checks against PyTorch, step benchmarks.

Kept import-free so `firstspike export --help` does not load torch.
"""

GRAPH_VARIANTS = ("fused", "lstm-op", "multi-hop")
