"""Run an exported model (ONNX) with onnxruntime alone: no torch, on an edge device or a server.

Needs onnxruntime, numpy, Pillow (images) and tokenizers (text): the `[runtime]` extra. This
package imports nothing of transferkit but its errors and output formats (`_format`); a forbidden
contract in pyproject.toml keeps torch, timm, transformers, pandas and scikit-learn out.
"""
from .._lazy import lazy_exports

_EXPORTS = dict.fromkeys(("METADATA_KEY", "ModelFileError", "OnnxPredictor", "open_session",
                          "read_metadata"), ".predictor")
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # onnxruntime loads when a model does

__all__ = sorted(_EXPORTS)
