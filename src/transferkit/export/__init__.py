"""Export a run to ONNX (fp32 or int8), checked against PyTorch before it is written as done."""
from .._lazy import lazy_exports

_EXPORTS = {**dict.fromkeys(("EXPORTS_FILE", "ExportError", "ExportResult", "export_run"), ".onnx_export"),
            "describe_export": ".summary", **dict.fromkeys(("TwinOutcome", "write_twin"), ".twin")}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # torch and onnx load when an export runs

__all__ = sorted(_EXPORTS)
