"""The score registry, dispatch by required input, and a scikit-learn style scorer."""
from __future__ import annotations

from typing import Any, Callable

from .._registry import Registry
from ..errors import DataError

SCORES: Registry[Callable[..., float]] = Registry("score")

# Declared: numpy/scikit-learn load with the first score computed, not with `transferkit list`.
# meta: `needs` is the model output a score reads ("features" from the backbone, or "source_probs"
# from the pretrained source classifier); `paper` is the citation shown in listings.
SCORES.declare("logme", f"{__package__}.scores:logme", "Bayesian linear-model evidence of the labels given the features",
               needs="features", regression=True,
               paper="You et al., LogME, ICML 2021")
SCORES.declare("hscore", f"{__package__}.scores:hscore", "between-class share of feature covariance (Ledoit-Wolf shrunk)",
               needs="features", regression=False,
               paper="Bao et al., ICIP 2019; shrinkage: Ibrahim et al., ECML-PKDD 2022")
SCORES.declare("knn", f"{__package__}.scores:knn_accuracy", "cross-validated k-NN accuracy (cosine, standardised features)",
               needs="features", regression=False,
               paper="k-NN evaluation, e.g. Kornblith et al., CVPR 2019")
SCORES.declare("linear", f"{__package__}.scores:linear_probe_accuracy", "cross-validated logistic-regression accuracy",
               needs="features", regression=False,
               paper="linear evaluation, e.g. Kornblith et al., CVPR 2019")
SCORES.declare("leep", f"{__package__}.scores:leep", "log-likelihood of labels under the source head's expected empirical predictor",
               needs="source_probs", regression=False,
               paper="Nguyen et al., LEEP, ICML 2020")
SCORES.declare("nce", f"{__package__}.scores:nce", "negative conditional entropy of labels given the source head's argmax",
               needs="source_probs", regression=False,
               paper="Tran et al., ICCV 2019")


def compute_score(name: str, features: Any = None, labels: Any = None, source_probs: Any = None,
                  **options: Any) -> float:
    """Score `name` on the input it needs (see its `needs` meta); `options` go to the score function."""
    entry = SCORES.entry(name)
    if labels is None:
        raise DataError(f"score {name!r} needs the target labels.")
    needs = entry.meta["needs"]
    if needs == "source_probs":
        if source_probs is None:
            raise DataError(
                f"score {name!r} needs source_probs, the pretrained source classifier's class probabilities "
                "(N, Z) on the target data; a backbone without its source head cannot be scored by LEEP or "
                "NCE. Use a feature-based score instead (logme, hscore, knn, linear)."
            )
        return float(entry.obj(source_probs, labels, **options))
    if features is None:
        raise DataError(f"score {name!r} needs features, the backbone's (N, D) outputs on the target data.")
    return float(entry.obj(features, labels, **options))


class TransferabilityScorer:
    """Scores how well a pretrained model should transfer to labelled data; nothing is learned.

    >>> TransferabilityScorer("logme").score(features, labels)  # doctest: +SKIP
    """

    def __init__(self, metric: str = "logme", **options: Any) -> None:
        self.metric = metric
        self.options = options

    @property
    def needs(self) -> str:
        """"features" or "source_probs": which model output `score` requires."""
        return SCORES.entry(self.metric).meta["needs"]

    def score(self, features: Any, labels: Any, source_probs: Any = None) -> float:
        return compute_score(self.metric, features=features, labels=labels, source_probs=source_probs,
                             **self.options)

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"TransferabilityScorer(metric={self.metric!r}{opts})"
