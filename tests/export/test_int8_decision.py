"""How int8 is judged: by counts of examples (not float differences), in words that do not
contradict the verdict, and on held-out examples, or saying plainly that none exist."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from transferkit.testing import make_image_folder
from transferkit.export.quantize import examples_allowed, examples_lost, within_max_drop
from transferkit.export.summary import describe_export


def test_one_example_in_a_hundred_is_within_max_drop_one_point():
    # 0.90 - 0.89 is 0.010000000000000009 in floats: a float comparison refused it
    assert 0.90 - 0.89 > 0.01
    assert examples_lost(0.90, 0.89, 100) == 1 and examples_allowed(0.01, 100) == 1
    assert within_max_drop("accuracy", 0.90, 0.89, 100, 0.01)
    assert not within_max_drop("accuracy", 0.90, 0.88, 100, 0.01)
    # the evaluation's resolution: on 345 examples one point allows 3 of them, not 3.45
    assert examples_allowed(0.01, 345) == 3 and within_max_drop("accuracy", 300 / 345, 297 / 345, 345, 0.01)
    assert not within_max_drop("accuracy", 300 / 345, 296 / 345, 345, 0.01)
    assert within_max_drop("mse", 1.0, 1.01, 50, 0.01) and not within_max_drop("mse", 1.0, 1.02, 50, 0.01)


def test_a_refused_int8_line_never_says_within():
    entry = {"precision": "int8", "status": "refused", "variants": [
        {"variant": "all layers int8", "score": 0.9, "split": "val", "within_max_drop": True,
         "examples_lost": 0, "examples": 10}]}
    line = describe_export(entry)
    assert line.startswith("int8 refused") and "within" not in line
    assert "0 of 10 examples lost" in line and "passes --max-drop on val" in line


@pytest.fixture(scope="module")
def cross_validated_run(tmp_path_factory) -> Path:
    """A linear probe on 30 images: below 400 images the run cross-validates and keeps no held-out split."""
    from transferkit import ImageClassifier
    from transferkit.backbones import offline_backbones

    if "efficientnet_lite0" not in offline_backbones():
        pytest.skip("efficientnet_lite0: weights not installed offline")
    root = make_image_folder(tmp_path_factory.mktemp("images") / "colours", per_class=10, size=48)
    est = ImageClassifier(strategy="linear-probe", image_size=64, baseline=False, progress=False, memory=0)
    est.fit(root)
    est.evaluate()
    return est.save(tmp_path_factory.mktemp("runs") / "cv")


def test_export_of_a_cross_validated_run_says_no_example_is_held_out(cross_validated_run):
    run = cross_validated_run
    done = subprocess.run([sys.executable, "-m", "transferkit.cli", "export", str(run), "--quantize", "int8",
                           "--max-drop", "0.5"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    fp32_line = done.stdout.splitlines()[0]
    assert "on 30 training examples (not held-out: the model trained on them)" in fp32_line
    assert "no held-out examples" in done.stderr and "30 training examples the model has seen" in done.stderr
    exports = json.loads((run / "exports.json").read_text())["exports"]
    assert all(e["score"]["held_out"] is False for e in exports if "score" in e)
