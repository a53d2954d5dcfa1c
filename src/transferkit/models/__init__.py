"""The model object below strategies and tasks: a backbone with named heads, and feature extraction."""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("DEFAULT_HEAD", "TransferModel"), ".transfer_model"),
    **dict.fromkeys(("extract_features", "to_device"), ".features"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # torch loads with the first of these

__all__ = sorted(_EXPORTS)
