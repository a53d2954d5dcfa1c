"""The line `transferkit export` prints for an int8 model says what it loses (or gains) in plain words."""
from __future__ import annotations

import pytest

from transferkit.export.summary import describe_export


@pytest.mark.parametrize("loss, said", [(0.01, "loses 1.0 accuracy points"), (-0.01, "gains 1.0 accuracy points")])
def test_int8_line_says_loses_or_gains_without_a_sign(loss, said):
    entry = {"precision": "int8", "status": "ok", "path": "model.int8.onnx", "size_mb": 1.2, "variant": "dynamic",
             "parity": None, "score": {"metric": "accuracy", "value": 0.9, "samples": 40, "split": "test"},
             "loss": loss, "max_drop": 0.02, "variants": [{"variant": "dynamic", "score": 0.9, "split": "test",
                                                           "within_max_drop": True}]}
    line = describe_export(entry)
    assert said in line and "+1.0" not in line and "-1.0" not in line
