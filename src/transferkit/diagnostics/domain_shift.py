"""How far the target data sits from the backbone's source domain, and how separable it is.

The source-domain reference ships inside the weights: a batch-norm layer's running mean and
variance are the statistics of its inputs over the source data (ImageNet for the packaged
backbones). Comparing them with the same statistics on the target data (as AdaBN does, Li et al.
2018) measures domain shift without any source images.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..strategies.adaptation import proxy_a_distance  # noqa: F401  (re-exported: adaptation measures it too)

#: Bands of `shift` (see `batchnorm_shift`), calibrated on 256 training images: flowers5 photos
#: (close to ImageNet) measured 0.61 with EfficientNet-Lite0 at 128 px and 0.41 with MobileNetV2;
#: scikit-learn's 8×8 digits upscaled to 64 px (far from it) measured 1.35 and 1.21.
SHIFT_BANDS = ((0.8, "close to the source domain: pretrained features should transfer well"),
               (1.1, "moderately shifted: fine-tuning more layers usually pays off"),
               # no advice here: it is measured before the fit, so the verdict's run-aware advice
               # (transfer_advice) is the one place that says what to try
               (float("inf"), "far from the source domain: transfer may help little or hurt; the "
                              "from-scratch control tells which"))


def _last_batchnorm(model: nn.Module) -> tuple[str, nn.modules.batchnorm._BatchNorm] | None:
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats \
                and module.running_mean is not None:
            found = (name, module)
    return found


@torch.inference_mode()
def batchnorm_shift(model: nn.Module, loader, max_batches: int = 20) -> dict[str, Any] | None:
    """Shift of the last batch-norm layer's inputs on the target data against its running (source)
    statistics: `shift` is the root-mean-square over channels of the 2-Wasserstein distance between
    source and target Gaussians in source standard deviations; also the mean |μ_t − μ_s| / σ_s and
    the mean |log| variance ratio. None when the model has no batch-norm layer (e.g. transformers)."""
    from ..models.features import to_device

    found = _last_batchnorm(model)
    if found is None:
        return None
    name, bn = found
    sums: dict[str, torch.Tensor] = {}

    def hook(module, inputs, output):
        x = inputs[0].double()
        dims = [0] + list(range(2, x.ndim))
        sums["n"] = sums.get("n", 0) + x.numel() // x.shape[1]
        sums["s"] = sums.get("s", 0) + x.sum(dims)
        sums["ss"] = sums.get("ss", 0) + (x ** 2).sum(dims)

    was_training = model.training
    model.eval()
    handle = bn.register_forward_hook(hook)
    device = next(model.parameters()).device
    try:
        for i, (x, _) in enumerate(loader):
            if i >= max_batches:
                break
            model(to_device(x, device))
    finally:
        handle.remove()
        model.train(was_training)
    mean = (sums["s"] / sums["n"]).cpu()
    var = (sums["ss"] / sums["n"]).cpu() - mean ** 2
    source_mean, source_var = bn.running_mean.double().cpu(), bn.running_var.double().cpu() + bn.eps
    source_std, std = source_var.sqrt(), var.clamp_min(0).sqrt()
    # 2-Wasserstein distance between the per-channel Gaussians, in source standard deviations:
    # it grows with both a moved mean and a changed spread (the latter dominates for 8×8 digits)
    distance = (((mean - source_mean) ** 2 + (std - source_std) ** 2) / source_var).mean().sqrt().item()
    return {"layer": name, "channels": int(mean.numel()), "shift": distance,
            "mean_shift": ((mean - source_mean).abs() / source_std).mean().item(),
            "log_variance_ratio": (var.clamp_min(1e-12) / source_var).log().abs().mean().item(),
            "interpretation": interpret_shift(distance)}


#: Quoted beside an image run's shift (see `SHIFT_BANDS`): the only data the bands are calibrated on.
IMAGE_SHIFT_REFERENCE = "flowers photos 0.4-0.7, 8×8 digits 1.2-1.4 with ImageNet backbones"
#: What the run did that changes the diagnostics' advice: the backbone stayed frozen.
_FROZEN = "but this run kept the backbone frozen (see the strategy decision for why)"


def read_domain(domain: dict[str, Any], backbone_trained: bool) -> dict[str, Any]:
    """The domain diagnostics (measured before the fit) worded for what the run then did: no
    advice to fine-tune on a run whose strategy kept the backbone frozen, and no grading of a
    shift for data without a measured `reference` (the bands come from image backbones)."""
    domain = dict(domain)
    shift = domain.get("batchnorm_shift")
    if shift and "reference" in shift and not shift["reference"]:
        domain["batchnorm_shift"] = {**shift, "interpretation": (
            "not graded: no reference shifts were measured for this kind of data (the bands of image backbones do "
            "not apply); the transfer check says whether the transfer helped")}
    elif shift and not backbone_trained and shift.get("shift") is not None and SHIFT_BANDS[0][0] <= shift["shift"] \
            < SHIFT_BANDS[1][0]:
        domain["batchnorm_shift"] = {**shift, "interpretation": (
            f"moderately shifted: fine-tuning more layers usually pays off when there are enough examples, {_FROZEN}")}
    separability = domain.get("separability")
    if separability and not backbone_trained and separability.get("interpretation") == PARTLY_SEPARABLE:
        domain["separability"] = {**separability, "interpretation": (
            f"partly separable: a linear probe leaves room that fine-tuning could take, {_FROZEN}")}
    return domain


def interpret_shift(shift: float) -> str:
    """One sentence on what a mean standardised shift means for transfer."""
    for bound, text in SHIFT_BANDS:
        if shift < bound:
            return text
    return SHIFT_BANDS[-1][1]


PARTLY_SEPARABLE = "partly separable: fine-tuning should add clearly over a linear probe"


def linear_separability(features: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """How far the pretrained features are from linearly separable for the target classes:
    cross-validated and training accuracy of a logistic regression, against chance."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from ..selection import linear_probe_accuracy

    k = len(np.unique(labels))
    scaled = StandardScaler().fit_transform(features)
    train = float(LogisticRegression(C=1.0, max_iter=2000).fit(scaled, labels).score(scaled, labels))
    cv = float(linear_probe_accuracy(features, labels))
    lift = (cv - 1.0 / k) / (1.0 - 1.0 / k)  # 0 at chance, 1 when perfectly separable
    if lift >= 0.85:
        text = "the classes are almost linearly separable in the pretrained features: a linear probe is already strong"
    elif lift >= 0.35:
        text = PARTLY_SEPARABLE
    else:
        text = "barely separable: the pretrained features carry little of what separates these classes"
    return {"cv_accuracy": cv, "train_accuracy": train, "chance": 1.0 / k, "examples": int(len(labels)),
            "interpretation": text}
