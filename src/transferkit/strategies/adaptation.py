"""Domain adaptation objectives: losses that use unlabelled target-domain inputs (`FitData.unlabelled`).

Each method is one `Loss` registered in `LOSSES`, trained by the one `TransferModule` on a head of
its own next to the classifier (`adaptation_head` builds it); the module draws a target batch with
every source batch and hands the loss the head's outputs on both. A fit adapts with, e.g.,
`FitData(..., unlabelled=target, objectives={"main": "cross-entropy", "domain": Objective("dann")})`
and `model.add_head("domain", adaptation_head("dann", num_features, num_classes, model.head))`.

- `dann`: adversarial features (Ganin & Lempitsky 2015), a domain discriminator behind a
  gradient-reversal layer.
- `cdan`: the discriminator conditioned on the class predictions, with entropy weighting (Long et
  al. 2018, CDAN+E).
- `coral`: source and target feature covariances aligned (Sun & Saenko 2016, Deep CORAL).
- `mmd`: multi-kernel maximum mean discrepancy between the feature distributions (Long et al.
  2015, DAN).
- `self-training`: confident, class-balanced pseudo-labels on the target (Zou et al. 2018, CBST;
  FixMatch's confidence threshold, Sohn et al. 2020).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .losses import LOSSES, Loss

#: the adaptation methods, by registered loss name
METHODS = ("dann", "cdan", "coral", "mmd", "self-training")


# ------------------------------------------------------------------------------- gradient reversal
class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.coefficient * grad, None


class GradientReversal(nn.Module):
    """Identity forward; the gradient flowing back is multiplied by `-coefficient` (Ganin &
    Lempitsky 2015), so the layers below learn to fool the discriminator above. `coefficient`
    follows `dann_coefficient` over training (set it each step; 1 by default)."""

    def __init__(self, coefficient: float = 1.0) -> None:
        super().__init__()
        self.coefficient = coefficient

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ReverseGradient.apply(x, self.coefficient)


def dann_coefficient(progress: float, gamma: float = 10.0, high: float = 1.0) -> float:
    """The warm-start schedule of the reversal coefficient: λ(p) = high · (2 / (1 + exp(-γ p)) - 1)
    for training progress p in [0, 1] (0 at the start, ≈ high at the end), so the discriminator's
    noisy early gradients do not wreck the features (DANN §5, γ = 10)."""
    p = min(max(progress, 0.0), 1.0)
    return high * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


class DomainDiscriminator(nn.Module):
    """Reversed gradient → two hidden layers → one logit ("source" > 0): DANN's discriminator."""

    def __init__(self, in_features: int, hidden: int = 256) -> None:
        super().__init__()
        self.reversal = GradientReversal()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(self.reversal(features))


def _domain_bce(source_logits: torch.Tensor, target_logits: torch.Tensor,
                source_weight: torch.Tensor | None = None, target_weight: torch.Tensor | None = None) -> torch.Tensor:
    """½ (BCE(d_s, 1) + BCE(d_t, 0)): ln 2 when the discriminator cannot tell the domains apart."""
    source = F.binary_cross_entropy_with_logits(source_logits, torch.ones_like(source_logits), weight=source_weight)
    target = F.binary_cross_entropy_with_logits(target_logits, torch.zeros_like(target_logits), weight=target_weight)
    return 0.5 * (source + target)


class DomainAdversarial(Loss):
    """DANN: the domain discriminator's loss, L_d = ½ [BCE(D(f_s), 1) + BCE(D(f_t), 0)].

    The head is a `DomainDiscriminator` on the features; its gradient-reversal layer turns the
    discriminator's minimisation of L_d into the features' maximisation of it (min over the
    classifier and features of L_y − λ L_d, max over D), which aligns the two feature distributions.
    At equilibrium L_d = ln 2 ≈ 0.693.
    """

    labelled, unlabelled = False, True

    @classmethod
    def new_head(cls, num_features: int, num_classes: int, classifier: nn.Module, **options: Any) -> nn.Module:
        return DomainDiscriminator(num_features, **options)

    def forward(self, output, target, unlabelled=None):
        return _domain_bce(output.squeeze(1), unlabelled.squeeze(1))


# ------------------------------------------------------------------------------------------- CDAN
class ConditionalDiscriminator(nn.Module):
    """CDAN's head: a discriminator on the multilinear map f ⊗ g of the features f and the class
    probabilities g = softmax(classifier(f)), flattened (above `max_dim` entries, the randomised
    map (R_f f) ⊙ (R_g g) / √d of the paper instead). Outputs [logit, entropy weight] per example,
    with weight w = 1 + exp(−H(g)). The classifier is the model's own head, read, not owned (its
    parameters stay where they are registered)."""

    def __init__(self, in_features: int, num_classes: int, classifier: nn.Module, hidden: int = 256,
                 max_dim: int = 4096) -> None:
        super().__init__()
        self._classifier = (classifier,)  # a tuple: not registered as a submodule of this head
        self.reversal = GradientReversal()
        self.random = in_features * num_classes > max_dim
        dim = max_dim if self.random else in_features * num_classes
        if self.random:  # fixed random projections, saved with the head
            self.register_buffer("project_f", torch.randn(in_features, dim))
            self.register_buffer("project_g", torch.randn(num_classes, dim))
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        g = F.softmax(self._classifier[0](features), dim=1).detach()
        if self.random:
            joint = (features @ self.project_f) * (g @ self.project_g) / math.sqrt(self.project_f.shape[1])
        else:
            joint = torch.bmm(g.unsqueeze(2), features.unsqueeze(1)).flatten(1)
        entropy = -(g * torch.log(g.clamp_min(1e-12))).sum(1)
        return torch.cat([self.net(self.reversal(joint)), (1.0 + torch.exp(-entropy)).unsqueeze(1)], dim=1)


class ConditionalDomainAdversarial(Loss):
    """CDAN+E: L_d = ½ [Σ w_s BCE(D(f_s ⊗ g_s), 1) / Σ w_s + Σ w_t BCE(D(f_t ⊗ g_t), 0) / Σ w_t],
    w = 1 + exp(−H(g)): confident (low-entropy) examples weigh up to twice as much, so uncertain
    predictions condition the discriminator less. The head is a `ConditionalDiscriminator`."""

    labelled, unlabelled = False, True

    @classmethod
    def new_head(cls, num_features: int, num_classes: int, classifier: nn.Module, **options: Any) -> nn.Module:
        return ConditionalDiscriminator(num_features, num_classes, classifier, **options)

    def forward(self, output, target, unlabelled=None):
        def normalised(weight: torch.Tensor) -> torch.Tensor:
            return (weight / weight.sum() * len(weight)).detach()

        return _domain_bce(output[:, 0], unlabelled[:, 0], normalised(output[:, 1]), normalised(unlabelled[:, 1]))


# ------------------------------------------------------------------------------- statistic alignment
def coral(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deep CORAL: ‖C_s − C_t‖²_F / (4 d²), C the d×d feature covariance of each batch
    (unbiased). 0 when the two batches have the same covariance, whatever their means."""
    d = source.shape[1]

    def covariance(x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(0, keepdim=True)
        return centred.T @ centred / max(1, len(x) - 1)

    return (covariance(source) - covariance(target)).pow(2).sum() / (4 * d * d)


def multi_kernel_mmd(source: torch.Tensor, target: torch.Tensor,
                     scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)) -> torch.Tensor:
    """MK-MMD²: mean(K_ss) + mean(K_tt) − 2 mean(K_st) (the biased estimate), K the average of
    Gaussian kernels exp(−‖x − y‖² / (s · σ²)) over `scales` s, σ² the mean pairwise squared
    distance of the pooled batch (DAN's bandwidth family). 0 for identical samples."""
    pooled = torch.cat([source, target])
    distances = torch.cdist(pooled, pooled).pow(2)
    n = len(pooled)
    sigma2 = (distances.sum() / max(1, n * n - n)).detach().clamp_min(1e-12)
    kernel = sum(torch.exp(-distances / (s * sigma2)) for s in scales) / len(scales)
    k = len(source)
    return kernel[:k, :k].mean() + kernel[k:, k:].mean() - 2 * kernel[:k, k:].mean()


class _FeatureAlignment(Loss):
    """A statistic of the source features matched to the target's; the head passes features through."""

    labelled, unlabelled = False, True

    @classmethod
    def new_head(cls, num_features: int, num_classes: int, classifier: nn.Module) -> nn.Module:
        return nn.Identity()


class Coral(_FeatureAlignment):
    """Deep CORAL on the head's outputs (the features, or a bottleneck): see `coral`."""

    def forward(self, output, target, unlabelled=None):
        return coral(output, unlabelled)


class MaximumMeanDiscrepancy(_FeatureAlignment):
    """Multi-kernel MMD between the head's outputs on source and target batches: see `multi_kernel_mmd`."""

    def forward(self, output, target, unlabelled=None):
        return multi_kernel_mmd(output, unlabelled)


# ------------------------------------------------------------------------------------ self-training
def pseudo_labels(probs: torch.Tensor, threshold: float = 0.95, portion: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels, mask) of confident, class-balanced pseudo-labels for rows of class probabilities.

    An example keeps its predicted class c when its confidence reaches min(threshold, t_c), t_c
    the confidence above which the top `portion` of the examples predicted as c lie (CBST's
    class-wise thresholds): a class the model finds hard still gets its most confident
    examples, instead of the easy classes taking every pseudo-label, and confident examples
    (≥ threshold, FixMatch's rule) are always kept; `portion` 0 keeps only those.
    """
    confidence, labels = probs.max(1)
    mask = torch.zeros_like(confidence, dtype=torch.bool)
    for c in labels.unique():
        members = labels == c
        # portion 0: the global threshold alone (FixMatch)
        class_threshold = torch.quantile(confidence[members], 1.0 - portion) if portion > 0 else \
            confidence.new_tensor(float("inf"))
        mask |= members & (confidence >= torch.minimum(class_threshold, confidence.new_tensor(threshold)))
    return labels, mask


class SharedHead(nn.Module):
    """Another name for an existing head (the classifier), so a second loss can train it on other
    inputs; the head is read, not owned (its parameters stay where they are registered)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self._head = (head,)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self._head[0](features)


class SelfTraining(Loss):
    """Cross-entropy on the target's own confident predictions: L_u = Σ_i m_i CE(p_i, ŷ_i) / B, with
    ŷ and the mask m from `pseudo_labels` on the detached predictions (a constant target, as in
    FixMatch; with images, the labels come from the weakly augmented view and the loss from the
    strongly augmented one: `views=2`, the outputs then hold the weak views' rows, then the strong
    views'). The head is `SharedHead(model.head)`. The loss is off for the first
    `warmup` share of training, then ramps linearly to full weight (`progress`, see `set_progress`)."""

    labelled, unlabelled = False, True

    def __init__(self, threshold: float = 0.95, portion: float = 0.5, warmup: float = 0.3, views: int = 1) -> None:
        super().__init__()
        self.threshold, self.portion, self.warmup = threshold, portion, warmup
        self.views = views  # 2: outputs hold weak views then strong views (FixMatch)
        self.progress = 1.0  # training progress in [0, 1]; `set_progress` updates it every step

    @classmethod
    def new_head(cls, num_features: int, num_classes: int, classifier: nn.Module) -> nn.Module:
        return SharedHead(classifier)

    def forward(self, output, target, unlabelled=None):
        # no pseudo-labels while the classifier is still learning the source: its early guesses on
        # the target would be learned as truth (confirmation bias), then a linear ramp to full weight
        ramp = 1.0 if self.warmup <= 0 else min(1.0, max(0.0, (self.progress - self.warmup) / (1.0 - self.warmup)))
        if ramp == 0.0:
            return unlabelled.sum() * 0.0
        weak, strong = unlabelled.chunk(2) if self.views == 2 else (unlabelled, unlabelled)
        labels, mask = pseudo_labels(F.softmax(weak.detach(), dim=1), self.threshold, self.portion)
        losses = F.cross_entropy(strong, labels, reduction="none")
        return ramp * (losses * mask).sum() / len(strong)


def set_progress(module: nn.Module, progress: float) -> None:
    """Tell every scheduled part of `module` how far training is (0 → 1): reversal layers take the
    DANN coefficient `dann_coefficient(progress)`, self-training its warm-up ramp."""
    for part in module.modules():
        if isinstance(part, GradientReversal):
            part.coefficient = dann_coefficient(progress)
        elif isinstance(part, SelfTraining):
            part.progress = progress


class Bottleneck(nn.Module):
    """The trainable features adaptation aligns: standardise (fixed source statistics, buffers) →
    dropout → Linear → BatchNorm → ReLU → dropout, `dim` wide (TLlib's bottleneck, with input
    dropout: on frozen MiniLM features, amazon → yelp, it lifted source-only target accuracy from
    0.82 to 0.85 by keeping the classifier off source-specific feature directions)."""

    def __init__(self, in_features: int, dim: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("scale", torch.ones(in_features))
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, dim), nn.BatchNorm1d(dim), nn.ReLU(),
                                 nn.Dropout(dropout))
        self.out_features = dim

    def standardise_with(self, features: torch.Tensor) -> None:
        """Set the standardisation to the mean and spread of `features` (rows: examples)."""
        with torch.no_grad():
            self.mean.copy_(features.mean(0))
            self.scale.copy_(features.std(0).clamp_min(1e-6))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net((features - self.mean) / self.scale)


class AdaptedHead(nn.Module):
    """An adapted model's output layers on the backbone's features: `Bottleneck` → linear classifier."""

    def __init__(self, in_features: int, num_classes: int, dim: int = 256) -> None:
        super().__init__()
        self.bottleneck = Bottleneck(in_features, dim)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.bottleneck(features))


def adaptation_head(method: str, num_features: int, num_classes: int, classifier: nn.Module, **options: Any) -> nn.Module:
    """The head a method's loss reads (the loss class's `new_head`): a discriminator (dann, cdan),
    the features themselves (coral, mmd) or the classifier under a second name (self-training)."""
    if method not in METHODS:
        raise ValueError(f"unknown adaptation method {method!r}; use one of {', '.join(METHODS)}")
    return LOSSES.get(method).new_head(num_features, num_classes, classifier, **options)


# ---------------------------------------------------------------- choosing without target labels
def prediction_entropy(probs: torch.Tensor) -> float:
    """Mean entropy of the target predictions, in nats (lower: more confident). An unsupervised
    checkpoint criterion (Morerio et al. 2018); it also falls when a model collapses onto one
    class, so it is read beside the source validation accuracy, never alone."""
    return float(-(probs * torch.log(probs.clamp_min(1e-12))).sum(1).mean())


def deep_embedded_validation(source_val_features: torch.Tensor, target_features: torch.Tensor,
                             source_val_losses: torch.Tensor, seed: int = 0, max_weight: float = 10.0) -> float:
    """The deep-embedded-validation score (`dev_score`) alone: lower is better; it needs no target labels."""
    return dev_score(source_val_features, target_features, source_val_losses, seed, max_weight)["score"]


#: Bootstrap resamples of the source validation examples behind the DEV score's band.
DEV_BOOTSTRAP = 500


def dev_score(source_val_features: torch.Tensor, target_features: torch.Tensor, source_val_losses: torch.Tensor,
              seed: int = 0, max_weight: float = 10.0) -> dict[str, float]:
    """The target risk as importance-weighted validation scores it (Sugiyama et al. 2007, with the
    density ratio of deep embedded validation, You et al. 2019): R = Σ w_i l_i / Σ w_i, w = p(target | f)
    / p(source | f) from a domain classifier on the features f, out of fold; with its 95 % bootstrap
    band over the source validation examples ("low", "high") and the weights' effective sample size
    (Kish: (Σw)² / Σw², "effective_n"). Lower is better; it needs no target labels.

    Two changes from DEV make it usable on a few dozen validation examples: the weights are clipped
    at `max_weight` times their mean and self-normalised, and DEV's control variate is left out.
    With 80 validation sentences the control variate's coefficient, itself estimated from them,
    swung DEV to risks of −14 and −60 (impossible for a loss), and a criterion that picks the
    minimum then picks the worst estimate. The self-normalised estimate stays within the range of
    the losses, so candidates with different features compare on one scale.

    It is a relative score, not an estimate of the target error: the weights concentrate on the few
    source examples that look like the target, and on Amazon → Yelp reviews it came out 2 to 4,000
    times below the real target error and ranked the methods at Spearman −0.25 against their real
    target accuracy (3 seeds; benchmarks/results/domain_adaptation.json). Hence the band.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xs, xt = source_val_features.detach().cpu().numpy(), target_features.detach().cpu().numpy()
    losses = source_val_losses.detach().cpu().numpy().astype(np.float64)
    folds = min(5, len(xs), len(xt))
    if folds < 2:  # too few to weigh: the plain source validation risk
        w = np.ones(len(losses))
    else:
        x = np.concatenate([xs, xt])
        y = np.repeat([0, 1], [len(xs), len(xt)])
        # balanced classes: the odds p/(1-p) are then the density ratio itself, without the n_s/n_t factor
        domain = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, class_weight="balanced", max_iter=1000,
                                                                    random_state=seed))
        # out-of-fold domain probabilities of the source examples, so their weights are not fitted to them
        p = cross_val_predict(domain, x, y, cv=folds, method="predict_proba")[: len(xs), 1].clip(1e-6, 1 - 1e-6)
        w = p / (1 - p)
        w = np.minimum(w, max_weight * w.mean())
    if not len(losses):
        return {"score": float("nan"), "low": float("nan"), "high": float("nan"), "effective_n": 0.0}
    score = float((w * losses).sum() / w.sum())
    picks = np.random.default_rng(seed).integers(0, len(losses), (DEV_BOOTSTRAP, len(losses)))
    resampled = (w[picks] * losses[picks]).sum(1) / w[picks].sum(1)
    low, high = np.quantile(resampled, [0.025, 0.975])
    return {"score": score, "low": float(low), "high": float(high),
            "effective_n": float(w.sum() ** 2 / max(float(np.square(w).sum()), 1e-300))}


def proxy_a_distance(source: np.ndarray, target: np.ndarray, folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """How well a linear classifier tells source features from target ones: the proxy A-distance
    d_A = 2 (1 − 2 ε), ε the cross-validated error of a logistic regression on the two sets
    (Ben-David et al. 2007; Ganin et al. 2016, §5). 0 when the domains cannot be told apart
    (ε = 0.5), 2 when they are perfectly separable; values below 0 (ε > 0.5) are noise and
    reported as 0. The two sets are subsampled to the same size, so chance is 50 %."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(source), len(target))
    if n < folds:
        raise ValueError(f"proxy A-distance needs at least {folds} examples per domain, got {n}")
    x = np.concatenate([source[rng.permutation(len(source))[:n]], target[rng.permutation(len(target))[:n]]])
    y = np.repeat([0, 1], n)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    accuracy = float(cross_val_score(model, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed)).mean())
    error = 1.0 - accuracy
    return {"a_distance": max(0.0, 2.0 * (1.0 - 2.0 * error)), "domain_accuracy": accuracy, "examples_per_domain": n}
