"""Did transfer help? The transfer verdict on a task's from-scratch control, and domain shift."""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("batchnorm_shift", "interpret_shift", "linear_separability", "proxy_a_distance",
                      "read_domain"), ".domain_shift"),
    **dict.fromkeys(("transfer_advice", "transfer_verdict", "verdict_headline"), ".transfer_gain"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
