"""The prediction server: FastAPI app, limits, micro-batching and the web page."""
from .._lazy import lazy_exports

_EXPORTS = {
    "create_app": ".app",
    **dict.fromkeys(("Backend", "OnnxBackend", "TorchBackend", "load_backend"), ".backends"),
    "MicroBatcher": ".batching",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # FastAPI (and the model's framework) load on first use

__all__ = sorted(_EXPORTS)
