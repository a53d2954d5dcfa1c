"""Did transfer help? From-scratch controls, transfer gain with a verdict, and domain shift."""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("batchnorm_shift", "interpret_shift", "linear_separability"), ".domain_shift"),
    **dict.fromkeys(("image_scratch_control", "text_scratch_control", "transfer_verdict"), ".transfer_gain"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
