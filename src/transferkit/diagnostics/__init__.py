"""Did transfer help? From-scratch controls, transfer gain with a verdict, and domain shift."""
from .domain_shift import batchnorm_shift, interpret_shift, linear_separability
from .transfer_gain import scratch_baseline, transfer_verdict

__all__ = ["batchnorm_shift", "interpret_shift", "linear_separability", "scratch_baseline", "transfer_verdict"]
