"""Did transfer help? From-scratch controls, transfer gain with a verdict, and domain shift."""
from .domain_shift import batchnorm_shift, interpret_shift, linear_separability
from .transfer_gain import image_scratch_control, text_scratch_control, transfer_verdict

__all__ = ["batchnorm_shift", "interpret_shift", "image_scratch_control", "linear_separability", "text_scratch_control",
           "transfer_verdict"]
