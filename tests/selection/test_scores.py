"""Transferability scores: hand-computed values, the LogME evidence against its definition, expected
orderings, invariances and edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from transferkit.errors import UnknownNameError
from transferkit.selection import (
    SCORES, TransferabilityScorer, compute_score, hscore, knn_accuracy, leep, linear_probe_accuracy, logme,
    nce, top1_hit, weighted_kendall_tau,
)
from transferkit.selection.scores import _logme_fit

FEATURE_SCORES = ["logme", "hscore", "knn", "linear"]
SOURCE_SCORES = ["leep", "nce"]
BASELINE_SCORES = ["params", "imagenet_top1"]  # read the backbone only (tests/selection/test_bootstrap_and_baselines.py)


def clusters(n_per_class: int = 20, classes: int = 3, dim: int = 8, sep: float = 4.0, seed: int = 0):
    """Gaussian blobs whose class means lie `sep` apart along distinct axes."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    features = rng.normal(size=(len(labels), dim))
    features[np.arange(len(labels)), labels] += sep
    return features, labels


def source_probs_for(labels, source_classes: int = 4, seed: int = 0, strength: float = 3.0):
    """Source-head probabilities that lean towards source class (label mod source_classes)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(labels), source_classes))
    logits[np.arange(len(labels)), labels % source_classes] += strength
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def score(name, features, labels, source_probs=None):
    return compute_score(name, features=features, labels=labels, source_probs=source_probs)


# ---------------------------------------------------------------------------------- hand-computed values


def test_leep_hand_example():
    theta = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    y = np.array([0, 0, 1, 1])
    # joint P(y, z) = column sums per class / 4: y=0: [1.4, 0.6]/4, y=1: [0.4, 1.6]/4; P(z) = [0.45, 0.55]
    # P(y=0|z) = [7/9, 3/11], P(y=1|z) = [2/9, 8/11]
    # predictions for the true labels: 0.8*7/9 + 0.2*3/11 = 67/99, 0.6*7/9 + 0.4*3/11 = 57/99,
    # 0.3*2/9 + 0.7*8/11 = 57/99, 0.1*2/9 + 0.9*8/11 = 67/99  ->  LEEP = (log 67/99 + log 57/99) / 2
    expected = 0.5 * (math.log(67 / 99) + math.log(57 / 99))
    assert leep(theta, y) == pytest.approx(expected, rel=1e-12)


def test_leep_with_uninformative_source_is_mean_log_prior():
    # uniform theta: P(y|z) = P(y), so each prediction is the class frequency: 3 of class 0, 1 of class 1
    theta = np.full((4, 3), 1 / 3)
    y = np.array([5, 5, 5, 9])  # arbitrary label values
    assert leep(theta, y) == pytest.approx((3 * math.log(3 / 4) + math.log(1 / 4)) / 4, rel=1e-12)


def test_leep_ignores_a_source_class_nobody_predicts():
    theta = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    y = np.array([0, 0, 1, 1])
    padded = np.hstack([theta[:, :1], np.zeros((4, 1)), theta[:, 1:]])  # P(z) = 0 for the middle class
    assert leep(padded, y) == pytest.approx(leep(theta, y), rel=1e-12)


def test_nce_hand_example():
    z = np.array([0, 0, 0, 1, 1, 1])
    y = np.array([0, 0, 1, 1, 1, 1])
    # H(Y|Z) = P(z=0) H(2/3, 1/3) + P(z=1) * 0 = 1/2 * (-(2/3) log(2/3) - (1/3) log(1/3))
    h = 0.5 * (-(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3))
    assert nce(z, y) == pytest.approx(-h, rel=1e-12)
    assert nce(y, y) == 0.0  # source predictions that determine the label: best possible


def test_nce_takes_the_argmax_of_probabilities():
    probs = source_probs_for(np.arange(30) % 3, seed=1)
    y = np.random.default_rng(2).integers(0, 3, 30)
    assert nce(probs, y) == nce(probs.argmax(axis=1), y)


def test_hscore_hand_example_without_shrinkage():
    f = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0], [3.0, 1.0]])
    y = np.array([0, 0, 1, 1])
    # centred: (-1.5,-1), (-.5,1), (.5,0), (1.5,0) -> cov(f) = [[5/4, 1/4], [1/4, 1/2]], det 9/16,
    # inverse = 16/9 [[1/2, -1/4], [-1/4, 5/4]]. With two equal classes cov(E[f|y]) = 1/4 d d^T,
    # d = mean1 - mean0 = (2.5, 1) - (0.5, 1) = (2, 0): H = 1/4 * 16/9 * 1/2 * 4 = 8/9
    assert hscore(f, y, shrinkage=False) == pytest.approx(8 / 9, rel=1e-12)


# ---------------------------------------------------------------------------------- LogME against its definition


def brute_force_log_evidence(f, y, alpha, beta):
    """log p(y | F) per sample straight from the model: y ~ N(0, F F^T / alpha + I / beta)."""
    cov = f @ f.T / alpha + np.eye(len(f)) / beta
    return multivariate_normal(np.zeros(len(f)), cov).logpdf(y) / len(f)


@pytest.mark.parametrize("n,d", [(15, 4), (6, 9)])  # N > D and N < D (rank-deficient F^T F)
def test_logme_evidence_is_the_maximised_marginal_likelihood(n, d):
    rng = np.random.default_rng(n)
    f = rng.normal(size=(n, d))
    y = f @ rng.normal(size=d) * 0.7 + 0.4 * rng.normal(size=n)
    evidence, alpha, beta = _logme_fit(f, y[:, None])
    a, b = alpha[0], beta[0]
    assert 0 < a < 1e6 and 0 < b < 1e6  # an interior optimum for this problem
    assert evidence[0] == pytest.approx(brute_force_log_evidence(f, y, a, b), rel=1e-9)

    # MacKay's fixed-point conditions, with the posterior mean solved directly in D dimensions
    eig = np.linalg.eigvalsh(f.T @ f)
    gamma = np.sum(b * eig / (a + b * eig))
    m = np.linalg.solve(a * np.eye(d) + b * f.T @ f, b * f.T @ y)
    assert a == pytest.approx(gamma / (m @ m), rel=1e-6)
    assert b == pytest.approx((n - gamma) / np.sum((y - f @ m) ** 2), rel=1e-6)

    # and it is a maximum: moving either precision by 5% lowers the exact evidence
    for da, db in [(1.05, 1), (1 / 1.05, 1), (1, 1.05), (1, 1 / 1.05)]:
        assert brute_force_log_evidence(f, y, a * da, b * db) < evidence[0]


def test_logme_classification_is_the_mean_over_one_hot_targets():
    f, y = clusters(n_per_class=6, classes=3, dim=5, sep=2.0)
    evidence, _, _ = _logme_fit(f, np.eye(3)[y])
    assert logme(f, y) == pytest.approx(evidence.mean())
    assert logme(f, y) == pytest.approx(logme(f, np.array(["c", "a", "b"])[y]))  # label values don't matter


def test_logme_invariant_to_rotations_and_zero_features():
    f, y = clusters(n_per_class=5, classes=3, dim=6)
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 6)))
    base = logme(f, y)
    assert logme(f @ q, y) == pytest.approx(base, rel=1e-9)
    # dead (all-zero) feature dimensions carry no evidence either way
    assert logme(np.hstack([f, np.zeros((len(f), 10))]), y) == pytest.approx(base, rel=1e-9)


def test_logme_regression_signal_beats_noise():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(80, 10))
    signal = f @ rng.normal(size=(10, 2)) + 0.1 * rng.normal(size=(80, 2))
    noise = rng.normal(size=(80, 2)) * signal.std(axis=0)
    assert logme(f, signal, regression=True) > logme(f, noise, regression=True) + 1.0
    assert logme(f, signal[:, 0], regression=True) > logme(f, noise[:, 0], regression=True)  # 1-D targets


# ---------------------------------------------------------------------------------- expected orderings


@pytest.mark.parametrize("name", FEATURE_SCORES)
def test_separated_clusters_score_higher_than_shuffled_labels(name):
    f, y = clusters()
    shuffled = np.random.default_rng(5).permutation(y)
    assert score(name, f, y) > score(name, f, shuffled)


@pytest.mark.parametrize("name", SOURCE_SCORES)
def test_informative_source_predictions_score_higher_than_shuffled_labels(name):
    y = np.repeat(np.arange(3), 20)
    probs = source_probs_for(y)
    shuffled = np.random.default_rng(5).permutation(y)
    assert score(name, None, y, probs) > score(name, None, shuffled, probs) + 0.2


@pytest.mark.parametrize("name", FEATURE_SCORES)
def test_more_separated_clusters_score_higher(name):
    y = clusters()[1]
    assert score(name, clusters(sep=3.0)[0], y) > score(name, clusters(sep=0.5)[0], y)


def test_regularised_hscore_follows_ibrahim_et_al():
    # H_alpha = tr(cov_alpha(f)^-1 (1 - alpha) cov(E[f|y])), cov_alpha the Ledoit-Wolf estimate
    from sklearn.covariance import LedoitWolf

    f, y = clusters(n_per_class=4, classes=3, dim=10, sep=2.0)
    lw = LedoitWolf().fit(f)
    assert 0 < lw.shrinkage_ < 1
    class_means = np.stack([f[y == c].mean(axis=0) for c in y])  # each sample replaced by its class mean
    between = np.cov(class_means, rowvar=False, bias=True)
    expected = np.trace(np.linalg.inv(lw.covariance_) @ ((1 - lw.shrinkage_) * between))
    assert hscore(f, y) == pytest.approx(expected, rel=1e-9)


def test_plain_hscore_saturates_when_dimensions_exceed_samples_and_shrinkage_fixes_it():
    # With N - 1 <= D the plain H-score is tr(P_data P_labels) = C - 1 for ANY labels: it cannot
    # rank; the Ledoit-Wolf version still can.
    f, y = clusters(n_per_class=5, classes=3, dim=40, sep=3.0)
    shuffled = np.random.default_rng(0).permutation(y)
    assert hscore(f, y, shrinkage=False) == pytest.approx(2.0, rel=1e-6)
    assert hscore(f, shuffled, shrinkage=False) == pytest.approx(2.0, rel=1e-6)
    assert hscore(f, y) > hscore(f, shuffled)


# ---------------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("name", SOURCE_SCORES)
def test_source_scores_invariant_to_permuting_source_classes(name):
    y = np.random.default_rng(0).integers(0, 3, 40)
    probs = source_probs_for(y, source_classes=5, strength=1.0)
    perm = np.array([3, 0, 4, 1, 2])
    assert score(name, None, y, probs[:, perm]) == pytest.approx(score(name, None, y, probs), rel=1e-12)


def test_hscore_without_shrinkage_invariant_to_invertible_linear_maps():
    f, y = clusters(dim=5)
    a = np.random.default_rng(4).normal(size=(5, 5)) + 3 * np.eye(5)
    assert hscore(f @ a + 7.0, y, shrinkage=False) == pytest.approx(hscore(f, y, shrinkage=False), rel=1e-8)


@pytest.mark.parametrize("fn", [knn_accuracy, linear_probe_accuracy])
def test_probes_reach_full_accuracy_on_separable_data_and_chance_on_noise(fn):
    f, y = clusters(sep=10.0)
    assert fn(f, y) >= 0.98
    noise = np.random.default_rng(1).normal(size=f.shape)
    assert fn(noise, y) < 0.6  # 3 balanced classes: chance is 1/3
    assert fn(f, y, seed=0) == fn(f, y, seed=0)  # seeded folds


# ---------------------------------------------------------------------------------- edge cases


def edge_cases():
    f, y = clusters(n_per_class=6, classes=3, dim=5)
    wide, wide_y = clusters(n_per_class=3, classes=2, dim=30)
    singleton = y.copy()
    singleton[0] = 7  # a class with one sample
    return {
        "constant": (np.ones_like(f) * 3.0, y),
        "zeros": (np.zeros_like(f), y),
        "one_constant_column": (np.hstack([f, np.ones((len(f), 1))]), y),
        "singleton_class": (f, singleton),
        "n_below_d": (wide, wide_y),
        "float32": (f.astype(np.float32), y),
    }


@pytest.mark.parametrize("case", list(edge_cases()))
@pytest.mark.parametrize("name", FEATURE_SCORES + SOURCE_SCORES)
def test_scores_are_finite_on_awkward_inputs(name, case):
    f, y = edge_cases()[case]
    probs = source_probs_for(np.arange(len(y)), seed=3).astype(f.dtype)
    if case in ("constant", "zeros"):
        probs = np.zeros_like(probs)
        probs[:, 0] = 1.0  # a source head that predicts one class for everything
    value = score(name, f, y, probs)
    assert isinstance(value, float) and math.isfinite(value)


def test_probes_with_a_singleton_second_class():
    # 2 folds. The fold holding the singleton out trains on class 0 alone (classifiers refuse one
    # class) and predicts it; the other fold's 5-NN vote is 4 to 1 for class 0. So the singleton,
    # never seen in training, is the one miss: 8/9.
    f, _ = clusters(n_per_class=9, classes=1, dim=4)
    y = np.array([0] * 8 + [1])
    assert knn_accuracy(f, y) == pytest.approx(8 / 9)
    # logistic regression may also over-fit the singleton in the other fold; it still never gets it
    assert 0.0 <= linear_probe_accuracy(f, y) <= 8 / 9


def test_constant_inputs_give_the_no_information_values():
    f, y = edge_cases()["constant"]
    one_source_class = np.tile([1.0, 0.0], (len(y), 1))
    h_y = -np.sum(np.bincount(y) / len(y) * np.log(np.bincount(y) / len(y)))
    assert nce(one_source_class, y) == pytest.approx(-h_y)
    assert hscore(f, y) == 0.0 and hscore(f, y, shrinkage=False) == 0.0


def test_float32_matches_float64():
    f, y = clusters()
    for name in FEATURE_SCORES:
        assert score(name, f.astype(np.float32), y) == pytest.approx(score(name, f, y), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("name", FEATURE_SCORES + SOURCE_SCORES)
def test_bad_labels_raise_value_error(name):
    f, y = clusters(n_per_class=4)
    probs = source_probs_for(y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        score(name, f, np.zeros(len(y), dtype=int), probs)
    with pytest.raises(ValueError, match="must match"):
        score(name, f, y[:-1], probs)


def test_bad_inputs_raise_clear_errors():
    f, y = clusters(n_per_class=4)
    with pytest.raises(ValueError, match="softmax"):
        leep(np.random.default_rng(0).normal(size=(len(y), 3)), y)  # logits, not probabilities
    with pytest.raises(ValueError, match="NaN"):
        logme(np.full_like(f, np.nan), y)
    with pytest.raises(ValueError, match="2-D"):
        hscore(f[:, 0], y)
    with pytest.raises(ValueError, match="every class has 1"):
        knn_accuracy(f[:3], np.arange(3))
    with pytest.raises(ValueError, match="identically zero"):
        logme(f, np.zeros(len(f)), regression=True)


# ---------------------------------------------------------------------------------- registry and scorer


def test_registry_lists_every_score_with_its_needs_and_paper():
    assert SCORES.names() == sorted(FEATURE_SCORES + SOURCE_SCORES + BASELINE_SCORES)
    for entry in SCORES.entries():
        expected = ("source_probs" if entry.name in SOURCE_SCORES else
                    "backbone" if entry.name in BASELINE_SCORES else "features")
        assert entry.info.needs == expected and entry.info.paper and entry.description


def test_compute_score_explains_missing_inputs_and_unknown_names():
    f, y = clusters(n_per_class=4)
    with pytest.raises(ValueError, match="source head"):
        compute_score("leep", features=f, labels=y)
    with pytest.raises(ValueError, match="needs features"):
        compute_score("logme", labels=y, source_probs=source_probs_for(y))
    with pytest.raises(UnknownNameError, match="Did you mean logme"):
        compute_score("logm", features=f, labels=y)


def test_scorer_is_a_thin_wrapper():
    f, y = clusters(n_per_class=5)
    scorer = TransferabilityScorer("knn", k=3)
    assert scorer.needs == "features" and "k=3" in repr(scorer)
    assert scorer.score(f, y) == knn_accuracy(f, y, k=3)
    assert TransferabilityScorer().score(f, y) == logme(f, y)
    assert TransferabilityScorer("leep").needs == "source_probs"


# ---------------------------------------------------------------------------------- ranking helpers


def test_weighted_kendall_tau_and_top1_hit():
    acc = [0.9, 0.8, 0.7, 0.6, 0.5]
    assert weighted_kendall_tau([5, 4, 3, 2, 1], acc) == pytest.approx(1.0)
    assert weighted_kendall_tau([1, 2, 3, 4, 5], acc) == pytest.approx(-1.0)
    # weighted: swapping the two best models costs more than swapping the two worst
    assert weighted_kendall_tau([4, 5, 3, 2, 1], acc) < weighted_kendall_tau([5, 4, 3, 1, 2], acc)
    assert top1_hit([5, 4, 3, 2, 1], acc) and not top1_hit([4, 5, 3, 2, 1], acc)
    assert not top1_hit([5, 5, 3, 2, 1], acc)  # a tie at the top has not picked the best model
    assert top1_hit([5, 5, 3, 2, 1], [0.9, 0.9, 0.7, 0.6, 0.5])
    with pytest.raises(ValueError, match="one of each"):
        top1_hit([1, 2], [0.5])
