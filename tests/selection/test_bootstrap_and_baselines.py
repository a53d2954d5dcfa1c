"""The weighted-τ bootstrap of the selection benchmark, the data-free baselines every score must beat,
and the evidence behind the score `backbone="auto"` uses."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from torch import nn

from transferkit.errors import DataError
from transferkit.selection import SCORES, bootstrap_weighted_tau, compute_score, weighted_kendall_tau
from transferkit.selection.baselines import imagenet_top1, parameter_count
from transferkit.selection.rank_backbones import DEFAULT_METRIC, ENSEMBLE, auto_metric, mean_rank

BENCHMARK_JSON = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "selection.json"


def simulated_task(accuracies, seeds: int = 3, examples: int = 400, seed_noise: float = 0.0, rng_seed: int = 0):
    """Per model a (seeds, examples) 0/1 array: example i is right with probability `accuracy` (shifted
    per seed by up to `seed_noise`)."""
    rng = np.random.default_rng(rng_seed)
    out = []
    for acc in accuracies:
        shift = rng.uniform(-seed_noise, seed_noise, size=(seeds, 1))
        out.append((rng.random((seeds, examples)) < np.clip(acc + shift, 0, 1)).astype(float))
    return out


# ------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_estimate_is_the_tau_of_mean_accuracies_and_deterministic():
    scores = [5.0, 3.0, 4.0, 1.0, 2.0]
    correct = simulated_task([0.74, 0.72, 0.70, 0.68, 0.66], examples=100)
    (task,), mean = bootstrap_weighted_tau([(scores, correct)], resamples=100, seed=3)
    assert task.estimate == pytest.approx(weighted_kendall_tau(scores, [c.mean() for c in correct]))
    assert mean.estimate == pytest.approx(task.estimate)  # one task: the mean is that task
    assert task.low < task.high and task.resamples == 100 and task.level == 0.95
    again = bootstrap_weighted_tau([(scores, correct)], resamples=100, seed=3)
    assert again[0][0] == task and again[1] == mean
    other = bootstrap_weighted_tau([(scores, correct)], resamples=100, seed=4)[0][0]
    assert (other.low, other.high) != (task.low, task.high)  # the seed drives the resampling
    # another score on the same models and seed sees the same resamples, so replicates pair up: an
    # order-preserving transform of the scores gives exactly the same replicates
    (paired,), _ = bootstrap_weighted_tau([([2 * v + 1 for v in scores], correct)], resamples=100, seed=3)
    assert len(task.values) == 100 and np.array_equal(paired.values, task.values)
    assert "values" not in task.to_dict()


def test_noisy_ground_truth_gives_a_wide_interval_and_clean_ground_truth_a_narrow_one():
    scores = [5.0, 4.0, 3.0, 2.0, 1.0]
    clean = simulated_task([0.90, 0.80, 0.70, 0.60, 0.50], examples=2000)
    (narrow,), _ = bootstrap_weighted_tau([(scores, clean)], resamples=150)
    # equal true accuracies, few test examples, seeds that disagree: the order is noise
    noisy = simulated_task([0.7] * 5, examples=60, seed_noise=0.15)
    (wide,), _ = bootstrap_weighted_tau([(scores, noisy)], resamples=150)
    assert narrow.estimate == pytest.approx(1.0) and narrow.low > 0.9
    assert wide.high - wide.low > 1.0 and wide.low < 0 < wide.high


def test_seed_resampling_widens_the_interval_when_seeds_disagree():
    scores = [5.0, 4.0, 3.0, 2.0, 1.0]
    accuracies = [0.80, 0.77, 0.74, 0.71, 0.68]
    steady = simulated_task(accuracies, examples=3000, seed_noise=0.0, rng_seed=1)
    shaky = simulated_task(accuracies, examples=3000, seed_noise=0.12, rng_seed=1)
    (a,), _ = bootstrap_weighted_tau([(scores, steady)], resamples=150)
    (b,), _ = bootstrap_weighted_tau([(scores, shaky)], resamples=150)
    assert b.high - b.low > a.high - a.low


def test_mean_over_tasks_and_input_checks():
    t1 = ([3.0, 2.0, 1.0], simulated_task([0.9, 0.7, 0.5], rng_seed=1))
    t2 = ([1.0, 2.0, 3.0], simulated_task([0.9, 0.7, 0.5], rng_seed=2))  # reversed: tau -1
    per_task, mean = bootstrap_weighted_tau([t1, t2], resamples=100)
    assert [t.estimate for t in per_task] == pytest.approx([1.0, -1.0])
    # well separated accuracies: every replicate keeps both orders, so the mean is 0 throughout
    assert mean.estimate == pytest.approx(0.0, abs=1e-12) and mean.low == pytest.approx(0.0, abs=1e-12)
    ragged = [np.ones((3, 10)), np.ones((2, 10)), np.zeros((1, 10))]  # seeds may differ per model
    assert bootstrap_weighted_tau([([3.0, 2.0, 1.0], ragged)], resamples=10)[0][0].resamples == 10
    with pytest.raises(DataError, match="one of each"):
        bootstrap_weighted_tau([([1.0, 2.0], ragged)])
    with pytest.raises(DataError, match="same test examples"):
        bootstrap_weighted_tau([([1.0, 2.0], [np.ones((3, 10)), np.ones((3, 9))])])
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_weighted_tau([t1], resamples=0)


# ------------------------------------------------------------------------------------- baselines


def test_parameter_count_baseline_counts_and_breaks_ties_by_input_size():
    small, large = nn.Linear(10, 2), nn.Sequential(nn.Linear(10, 20), nn.Linear(20, 2))
    assert int(parameter_count(small)) == 22 and int(parameter_count(SimpleNamespace(model=large))) == 262
    # one backbone at two input sizes: the larger input ranks higher, never above a larger model
    assert parameter_count(small, 128) > parameter_count(small, 64) > parameter_count(small)
    assert parameter_count(small, 1024) < 23  # a model with one more parameter still ranks higher
    assert compute_score("params", backbone=small, image_size=64) == parameter_count(small, 64)


def test_imagenet_top1_baseline_orders_the_registered_models_and_knows_where_it_does_not_apply():
    def image(name):
        return SimpleNamespace(name=name, modality="image")

    order = sorted(["mobilenetv2_100", "efficientnet_lite0", "efficientnet_lite2", "efficientnet_lite1"],
                   key=lambda n: imagenet_top1(image(n)))
    assert order == ["mobilenetv2_100", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert imagenet_top1(image("efficientnet_lite0")) == pytest.approx(75.1)
    assert imagenet_top1(image("efficientnet_lite0"), 96) > imagenet_top1(image("efficientnet_lite0"), 64)
    assert imagenet_top1(image("efficientnet_lite0"), 1024) < imagenet_top1(image("efficientnet_lite1"), 32)
    assert imagenet_top1(image("mnist_cnn")) == 0.0  # an image model not trained on ImageNet ranks last
    assert imagenet_top1(SimpleNamespace(name="all-minilm-l6-v2", modality="text")) is None
    assert imagenet_top1(image("resnet50")) is None  # a hub name: no registered figure
    with pytest.raises(DataError, match="backbone="):
        compute_score("imagenet_top1", labels=[0, 1])


def test_baselines_are_registered_scores_that_read_the_backbone():
    for name in ("params", "imagenet_top1"):
        info = SCORES.entry(name).info
        assert info.needs == "backbone" and info.paper.startswith("baseline")


def test_mean_rank_ensemble():
    # three scores over three candidates; ties share their average rank
    assert mean_rank([[1, 2, 3], [3, 2, 1], [0.1, 0.5, 0.2]]) == pytest.approx([5 / 3, 7 / 3, 2.0])
    assert mean_rank([[1.0, 1.0]]) == [1.5, 1.5]


# ------------------------------------------------------------------------------------- auto's evidence


def test_auto_metric_is_the_benchmarks_best_measured_score():
    auto = auto_metric()
    assert DEFAULT_METRIC == auto.metric and (auto.metric in SCORES.names() or auto.metric == ENSEMBLE)
    assert f"{auto.mean_weighted_tau:.2f}" in auto.evidence() and auto.source in auto.evidence()
    if not BENCHMARK_JSON.is_file():
        pytest.skip("benchmarks/results/selection.json not in this checkout")
    measured = json.loads(BENCHMARK_JSON.read_text()).get("auto_metric")
    if not measured:
        pytest.skip("the selection benchmark JSON predates the measured choice")
    assert auto.metric == measured["metric"]
    assert auto.mean_weighted_tau == pytest.approx(measured["mean_weighted_tau"])
    assert list(auto.ci95) == pytest.approx(measured["ci95"]) and auto.tasks == measured["tasks"]
