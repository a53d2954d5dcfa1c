"""Transferability scores: how well a pretrained model's outputs on the target data predict the target labels.

Each score is a plain function of arrays, computed before any fine-tuning; higher means the model is
expected to transfer better. Feature-based scores take the backbone's `features` (N, D) and class
`labels` (N,); LEEP and NCE take the source classifier's predictions on the target data instead.
Scores are comparable across backbones on the same data set, not across data sets.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np

from ..errors import DataError

_TINY = 1e-300  # floor for squared norms: keeps 1/x finite when a fit is exact or a target is unexplained


# --------------------------------------------------------------------------------------------- checks


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensors, possibly on a GPU
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_matrix(x: Any, name: str) -> np.ndarray:
    # float64 throughout: float32 sums over thousands of samples lose the digits the scores compare
    arr = _to_numpy(x).astype(np.float64, copy=False)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{name} must be a non-empty 2-D (samples, dims) array, got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        raise DataError(f"{name} contain NaN or infinite values; check the backbone's outputs.")
    return arr


def _class_codes(labels: Any, n: int, what: str = "features") -> tuple[np.ndarray, int]:
    """Labels as codes 0..C-1 (any label values work), checked against the number of rows."""
    y = _to_numpy(labels)
    if y.ndim != 1:
        raise DataError(f"labels must be a 1-D array of class labels, got shape {y.shape}.")
    if len(y) != n:
        raise DataError(f"{what} have {n} rows but labels have {len(y)}; they must match one to one.")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"a transferability score needs at least 2 classes in labels, got {len(classes)}.")
    return codes.reshape(-1), len(classes)


def _as_probs(source_probs: Any) -> np.ndarray:
    p = _as_matrix(source_probs, "source_probs")
    if p.min() < -1e-6 or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise DataError(
            "source_probs must be probabilities (non-negative rows summing to 1) of the source classes; "
            "apply a softmax to the source head's logits first."
        )
    p = np.clip(p, 0.0, None)
    return p / p.sum(axis=1, keepdims=True)  # exact normalisation, so the joint below sums to 1


# --------------------------------------------------------------------------------------------- LogME


def _logme_fit(features: np.ndarray, targets: np.ndarray, tol: float = 1e-10,
               max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximised log evidence per sample for each target column, with the maximising alpha and beta.

    Model: y = F w + noise, w ~ N(0, I/alpha), noise ~ N(0, 1/beta). With the thin SVD F = U S V^T of
    rank k and sigma = S^2, every quantity depends on y only through x = U^T y and the part of y
    outside the column space of F, so one SVD serves all targets and N < D costs no more than N > D.
    """
    n, d = features.shape
    u, s, _ = np.linalg.svd(features, full_matrices=False)
    keep = s > (s[0] * max(n, d) * np.finfo(np.float64).eps if s.size else 0.0)
    u, sigma = u[:, keep], s[keep] ** 2  # the other D - k eigenvalues of F^T F are 0
    y2 = (targets ** 2).sum(axis=0)
    if (y2 == 0).any():
        raise DataError("a LogME target column is identically zero; its evidence is unbounded (drop it).")
    x2 = (u.T @ targets) ** 2  # (k, K)
    outside = np.maximum(y2 - x2.sum(axis=0), 0.0)  # no weight vector can fit this part of y

    if sigma.size == 0:  # all-zero features: the prior is irrelevant, only the noise level is fitted
        beta = n / y2
        evidence = 0.5 * n * (np.log(beta) - 1.0 - math.log(2 * math.pi))
        return evidence / n, np.full_like(beta, np.inf), beta

    sig = sigma[:, None]

    def moments(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        shrink = sig / (sig + t)  # how much of each direction the posterior mean keeps
        gamma = shrink.sum(axis=0)  # effective number of fitted parameters
        m2 = (shrink ** 2 * x2 / sig).sum(axis=0)  # |m|^2
        res2 = ((1.0 - shrink) ** 2 * x2).sum(axis=0) + outside  # |y - F m|^2
        return gamma, m2, res2

    # Iterate on t = alpha / beta only (m depends on nothing else). Bounds keep t finite when the
    # evidence peaks at the edge: features useless for y (t -> inf) or y fitted exactly (t -> 0).
    lo, hi = sigma.min() * 1e-12, sigma.max() * 1e12
    t = np.ones(targets.shape[1])  # alpha = beta = 1, as in the paper
    with np.errstate(over="ignore", divide="ignore"):
        for _ in range(max_iter):
            gamma, m2, res2 = moments(t)
            alpha = gamma / np.maximum(m2, _TINY)
            beta = (n - gamma) / np.maximum(res2, _TINY)
            t_new = np.clip(alpha / beta, lo, hi)
            converged = np.abs(np.log(t_new / t)) <= tol
            t = t_new
            if converged.all():
                break
    gamma, m2, res2 = moments(t)
    beta = (n - gamma) / np.maximum(res2, _TINY)
    alpha = t * beta
    # log evidence = D/2 log a + N/2 log b - b/2 |y-Fm|^2 - a/2 |m|^2 - 1/2 log|aI + bF^TF| - N/2 log 2pi.
    # The D - k null directions of F^T F add log a each to the log-determinant, cancelling their
    # share of D/2 log a; what is left of the alpha terms is -1/2 sum log(1 + sigma/t).
    evidence = (-0.5 * np.log1p(sig / t).sum(axis=0) + 0.5 * n * np.log(beta)
                - 0.5 * beta * (res2 + t * m2) - 0.5 * n * math.log(2 * math.pi))
    return evidence / n, alpha, beta


def logme(features: Any, labels: Any, regression: bool = False) -> float:
    """LogME: average log marginal evidence of a Bayesian linear model on the features.

    You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer Learning", ICML 2021.
    For classification each class is a one-hot regression target; for `regression=True` the labels
    are (N,) or (N, K) real targets. The prior and noise precisions are chosen per target by MacKay's
    fixed-point evidence maximisation; the score is the mean over targets of the log evidence per sample.
    """
    f = _as_matrix(features, "features")
    if regression:
        y = _to_numpy(labels).astype(np.float64, copy=False)
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        if y.ndim != 2 or len(y) != len(f):
            raise DataError(f"features have {len(f)} rows but regression targets have shape {y.shape}; "
                            "they must match one to one.")
        if not np.isfinite(y).all():
            raise DataError("regression targets contain NaN or infinite values.")
    else:
        codes, c = _class_codes(labels, len(f))
        y = np.eye(c)[codes]
    if len(f) < 2:
        raise DataError("LogME needs at least 2 samples.")
    evidence, _, _ = _logme_fit(f, y)
    return float(evidence.mean())


# --------------------------------------------------------------------------------------------- LEEP, NCE


def leep(source_probs: Any, labels: Any) -> float:
    """LEEP: mean log-likelihood of the target labels under the "expected empirical predictor".

    Nguyen et al., "LEEP: A New Measure to Evaluate Transferability of Learned Representations",
    ICML 2020. The source head's probabilities theta(x) over source classes z give the empirical joint
    P(y, z) = mean over samples of theta_z(x) [y_i = y]; the predictor is sum_z theta_z(x) P(y | z).
    """
    theta = _as_probs(source_probs)
    codes, c = _class_codes(labels, len(theta), "source_probs")
    joint = np.zeros((c, theta.shape[1]))
    np.add.at(joint, codes, theta)
    joint /= len(theta)
    p_z = joint.sum(axis=0)
    # A source class no sample puts mass on never enters a prediction; 0 instead of 0/0.
    cond = np.divide(joint, p_z, out=np.zeros_like(joint), where=p_z > 0)  # P(y | z)
    predicted = (theta * cond[codes]).sum(axis=1)  # > 0: each sample contributes to its own joint row
    return float(np.log(np.maximum(predicted, _TINY)).mean())


def nce(source_labels: Any, labels: Any) -> float:
    """NCE: negative conditional entropy -H(Y | Z) of target labels given the source model's predictions.

    Tran et al., "Transferability and Hardness of Supervised Classification Tasks", ICCV 2019.
    `source_labels` are the source classes predicted for each sample (N,), or the source head's
    probabilities (N, Z), whose argmax is taken. 0 is the best possible value.
    """
    z = _to_numpy(source_labels)
    if z.ndim == 2:
        z = _as_probs(z).argmax(axis=1)
    if z.ndim != 1:
        raise DataError(f"source_labels must be (N,) predicted source classes or (N, Z) probabilities, "
                        f"got shape {z.shape}.")
    codes, c = _class_codes(labels, len(z), "source_labels")
    z_codes = np.unique(z, return_inverse=True)[1].reshape(-1)
    joint = np.zeros((z_codes.max() + 1, c))
    np.add.at(joint, (z_codes, codes), 1.0)
    joint /= len(z)
    cond = joint / joint.sum(axis=1, keepdims=True)  # every row has a sample, so no 0/0
    cells = joint > 0
    return float((joint[cells] * np.log(cond[cells])).sum())


# --------------------------------------------------------------------------------------------- H-score


def hscore(features: Any, labels: Any, shrinkage: bool = True) -> float:
    """H-score: tr(cov(f)^-1 cov(E[f | y])), how much of the feature variance is between classes.

    Bao et al., "An Information-Theoretic Approach to Transferability in Task Transfer Learning",
    ICIP 2019. With `shrinkage` (default) cov(f) is the Ledoit-Wolf estimate and the between-class
    term is scaled by (1 - shrinkage), the regularised H-score of Ibrahim et al., "Newer is not always
    better: Rethinking transferability metrics, their peculiarities, stability and performance",
    ECML-PKDD 2022: the plain inverse is unstable when D is large relative to N.
    """
    f = _as_matrix(features, "features")
    codes, c = _class_codes(labels, len(f))
    n, d = f.shape
    f = f - f.mean(axis=0)
    counts = np.bincount(codes, minlength=c).astype(np.float64)
    means = np.zeros((c, d))
    np.add.at(means, codes, f)
    means /= counts[:, None]
    between = (means.T * counts) @ means / n  # cov of each sample's class mean (overall mean is 0)
    if shrinkage:
        from sklearn.covariance import ledoit_wolf

        cov, alpha = ledoit_wolf(f, assume_centered=True)
        between = (1.0 - alpha) * between
    else:
        cov = f.T @ f / n
    # Pseudo-inverse with a rank cut-off: constant features and N < D make cov singular, and
    # rounding-level eigenvalues must not be inverted into huge spurious terms.
    eigval, eigvec = np.linalg.eigh(cov)
    keep = eigval > max(eigval[-1], 0.0) * max(n, d) * np.finfo(np.float64).eps
    if not keep.any():  # every feature constant: nothing separates the classes
        return 0.0
    v = eigvec[:, keep]
    return float(np.sum((v * (between @ v)).sum(axis=0) / eigval[keep]))


# --------------------------------------------------------------------------------------------- probes


def _cv_accuracy(make_model: Callable[[int], Any], features: Any, labels: Any, seed: int) -> float:
    """Stratified cross-validated accuracy pooled over all samples (each is predicted exactly once)."""
    from sklearn.model_selection import StratifiedKFold

    x = _as_matrix(features, "features")
    codes, _ = _class_codes(labels, len(x))
    counts = np.bincount(codes)
    if counts.max() < 2:
        raise DataError("cross-validated accuracy needs a class with at least 2 samples; every class has 1.")
    # At least 2 folds; a class smaller than that (1 sample) is held out once and cannot be predicted.
    folds = int(max(2, min(5, counts.min())))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")  # expected, see above
        splits = list(splitter.split(x, codes))
    correct = 0
    for train, test in splits:
        train_classes = np.unique(codes[train])
        if train_classes.size < 2:  # classifiers refuse one class; predicting it is the only option
            pred = np.full(len(test), train_classes[0])
        else:
            pred = make_model(len(train)).fit(x[train], codes[train]).predict(x[test])
        correct += int((pred == codes[test]).sum())
    return correct / len(x)


def knn_accuracy(features: Any, labels: Any, k: int = 5, seed: int = 0) -> float:
    """Cross-validated k-nearest-neighbour accuracy (cosine distance on standardised features).

    A cheap, strong baseline for ranking backbones; see e.g. Kornblith et al., "Do Better ImageNet
    Models Transfer Better?", CVPR 2019. Folds: min(5, smallest class count), at least 2, seeded.
    """
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")

    def make(n_train: int):
        # scaler fitted inside each fold, so held-out samples never inform the standardisation
        return make_pipeline(StandardScaler(), KNeighborsClassifier(
            n_neighbors=min(k, n_train), metric="cosine", algorithm="brute"))

    return _cv_accuracy(make, features, labels, seed)


def linear_probe_accuracy(features: Any, labels: Any, seed: int = 0, C: float = 1.0) -> float:
    """Cross-validated logistic-regression accuracy on standardised features (a linear probe).

    The standard linear-evaluation protocol (e.g. Kornblith et al., CVPR 2019) with a fixed L2
    strength `C` instead of a search, to stay cheap. Folds: min(5, smallest class count), at least 2.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def make(n_train: int):
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))

    return _cv_accuracy(make, features, labels, seed)
