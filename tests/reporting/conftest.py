"""Runs the report tests share: fitting one costs seconds, so each is made once per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from transferkit import TextClassifier
from transferkit.reporting import write_run_report

from transferkit.testing import tiny_texts


@pytest.fixture(scope="session")
def adapted_run(tmp_path_factory) -> Path:
    """A real adapted text run (DANN, one epoch, bottleneck 8) saved with its report; the labelled
    source table doubles as the labelled target, which the strategy only evaluates on."""
    root = tmp_path_factory.mktemp("adapted")
    data = tiny_texts(root / "data")
    est = TextClassifier(strategy="adapt", strategy_options={"method": "dann", "bottleneck": 8}, epochs=1,
                         baseline=False, progress=False)
    est.fit(data.fit_on, unlabeled=data.unlabeled, target_labels=data.fit_on).evaluate()
    run = est.save(root / "run")
    write_run_report(run)
    return run
