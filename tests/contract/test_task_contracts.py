"""Every registered task and strategy keeps the contract of `transferkit.testing`.

Generated from the registries with `parametrize_with_checks` (as scikit-learn's own suite is), so a
new entry is tested the day it is registered: each task and strategy agrees with its registry entry
and is constructible from defaults, `clone` gives an unfitted estimator with equal params, and every
task × strategy that applies to its modality fits on tiny data, saves, and reloads predicting
exactly the same; a classifier grows to a new class or its strategy refuses in one line.
"""
from __future__ import annotations

from transferkit.strategies import STRATEGIES
from transferkit.tasks import TASKS
from transferkit.testing import parametrize_with_checks


@parametrize_with_checks([*TASKS.names(), *STRATEGIES.names()])
def test_registered_task_or_strategy(obj, check):
    check(obj)
