"""A run's ONNX twin: written and checked at the end of fit and extend, used by predict, serve and
`load_predictor` in place of PyTorch (predict without importing torch), agreeing with PyTorch on every
task, never used once stale, and never failing a run when it cannot be written."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from transferkit.testing import make_image_folder
from transferkit.export import EXPORTS_FILE, write_twin
from transferkit.runtime import OnnxPredictor
from transferkit.tasks import load_predictor, load_run
from transferkit.tasks.twin import TwinUnavailable, choose_engine

HEAVY = ("torch", "timm", "lightning", "transformers", "sklearn")
#: `transferkit ARGS...` in this process, then the heavy modules it imported, as JSON on stderr's last line.
CLI_THEN_MODULES = ("import json, sys\nsys.argv = ['transferkit', *sys.argv[1:]]\nfrom transferkit.cli import main\n"
                    "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\nelse:\n    code = 0\n"
                    f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n"
                    "sys.exit(code)")


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", CLI_THEN_MODULES, *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


def imported(done: subprocess.CompletedProcess) -> list[str]:
    return json.loads(done.stderr.strip().splitlines()[-1])


def bare_copy(run: Path, to: Path) -> Path:
    """A copy of a fitted run without any export (the session's runs are exported by other tests)."""
    shutil.copytree(run, to)
    for name in ("model.onnx", "model.int8.onnx", EXPORTS_FILE):
        (to / name).unlink(missing_ok=True)
    return to


@pytest.fixture
def image_twin(image_run: Path, tmp_path: Path) -> Path:
    run = bare_copy(image_run, tmp_path / "image")
    assert write_twin(run).path == run / "model.onnx"
    return run


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    root = make_image_folder(tmp_path_factory.mktemp("new") / "colours", per_class=2, size=40, seed=7)
    return sorted(root.rglob("*.jpg"))


@pytest.mark.parametrize("task", ["image", "text", "forecast"])
def test_twin_predicts_as_pytorch(task, request, tmp_path, images):
    """The twin written from a saved run answers like the run's PyTorch model: same top-1 and
    probabilities within 1e-4 (forecasts: within 1e-4 of the series' scale)."""
    source = request.getfixturevalue(f"{task}_run")
    source, series = source if task == "forecast" else (source, None)
    run = bare_copy(source, tmp_path / task)
    outcome = write_twin(run)
    assert outcome.path == run / "model.onnx" and outcome.parity["passed"], outcome.message
    entry = json.loads((run / EXPORTS_FILE).read_text())["exports"][0]
    assert entry["source"]["config_sha256"] and entry["parity"]["samples"] >= 1
    onnx, torch = load_predictor(run), load_predictor(run, engine="torch")
    assert isinstance(onnx, OnnxPredictor) and not isinstance(torch, OnnxPredictor)
    if task == "forecast":
        got, ref = onnx.predict(series), torch.predict(series)
        assert got.shape == ref.shape and np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
        return
    inputs = [str(p) for p in images] if task == "image" else ["a wonderful film", "a terrible film", "so so"]
    got, ref = onnx.predict_proba(inputs), torch.predict_proba(inputs)
    assert (got.argmax(1) == ref.argmax(1)).all() and np.abs(got - ref).max() <= 1e-4
    assert onnx.predict(inputs) == torch.predict(inputs)


def test_predict_answers_with_the_twin_without_importing_torch(image_twin, images):
    image = str(images[0])
    fast = cli("predict", str(image_twin), image, "--json", "--verbose")
    assert fast.returncode == 0, fast.stderr
    assert imported(fast) == []  # no torch, timm, lightning... for a run with a valid twin
    assert fast.stderr.startswith(f"engine: onnx ({image_twin / 'model.onnx'}, fp32; parity max |Δ|")
    slow = cli("predict", str(image_twin), image, "--json", "--verbose", "--engine", "torch")
    assert slow.returncode == 0, slow.stderr
    assert "torch" in imported(slow) and slow.stderr.startswith("engine: torch (--engine torch)")
    (a,), (b,) = json.loads(fast.stdout), json.loads(slow.stdout)
    assert a["label"] == b["label"] and abs(a["top_k"][0]["probability"] - b["top_k"][0]["probability"]) <= 2e-4


def test_a_stale_twin_is_never_used(image_twin, images, tmp_path):
    """Saving new weights into the run removes its exports; a twin from other weights put back is
    refused by its fingerprint: auto falls back to PyTorch, --engine onnx says why (exit 2)."""
    old = shutil.copy(image_twin / "model.onnx", tmp_path / "old.onnx")
    load_run(image_twin).save(image_twin)  # config.json rewritten, as a refit, resume or overwrite does
    assert not (image_twin / "model.onnx").exists()
    shutil.copy(old, image_twin / "model.onnx")
    choice = choose_engine(image_twin)
    assert choice.engine == "torch" and "other weights" in choice.reason
    with pytest.raises(TwinUnavailable, match="other weights"):
        choose_engine(image_twin, "onnx")
    refused = cli("predict", str(image_twin), str(images[0]), "--engine", "onnx")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines()[0].startswith("error: --engine onnx: ") and "transferkit export RUN" in refused.stderr
    fallback = cli("predict", str(image_twin), str(images[0]), "--json", "-v")
    assert fallback.returncode == 0 and "other weights" in fallback.stderr.splitlines()[0]
    assert "torch" in imported(fallback)


def test_a_twin_that_cannot_be_checked_leaves_the_run_on_pytorch(image_run, tmp_path):
    """Examples the parity check needs are gone: no twin, a note saying why, predictions from PyTorch."""
    run = bare_copy(image_run, tmp_path / "moved")
    split = json.loads((run / "split.json").read_text())
    for name in ("train", "val", "test"):
        split[name] = [[f"gone/{n}.png", label] for n, (_, label) in enumerate(split[name])]
    (run / "split.json").write_text(json.dumps(split))
    outcome = write_twin(run)
    assert outcome.path is None and not (run / "model.onnx").exists()
    assert outcome.message.startswith("no ONNX twin: none of the run's recorded examples can be read")
    assert outcome.message.endswith("predict and serve use PyTorch.")
    assert choose_engine(run).engine == "torch"


def test_serve_loads_the_twin_and_keeps_the_runs_report(image_twin):
    from transferkit.serving import load_backend

    backend = load_backend(image_twin)
    facts = backend.summary()
    assert backend.kind == "onnx" and backend.run_dir == image_twin and facts["backend"] == "onnx"
    assert facts["classes"] == ["blue", "green", "red"] and facts["run"] == "image"
    assert load_backend(image_twin, "torch").kind == "torch"


@pytest.mark.slow
def test_fit_and_extend_write_their_twins(tmp_path):
    """`fit` and `extend` end with a checked twin (which predict then uses); --no-onnx-twin (here the
    tests' TRANSFERKIT_ONNX_TWIN=0) writes none."""
    from transferkit.backbones import offline_backbones

    if "efficientnet_lite0" not in offline_backbones():
        pytest.skip("efficientnet_lite0: weights not installed offline")
    old = make_image_folder(tmp_path / "old", per_class=10, classes=("red", "green"), seed=0)
    new = make_image_folder(tmp_path / "new", per_class=8, classes=("blue",), seed=7)
    run = tmp_path / "run"
    fit = cli("fit", str(old), "--out", str(run), "--strategy", "prototypes", "--memory", "4", "--image-size", "32",
              "--no-baseline", "--no-tta", "--quiet", "--onnx-twin")
    assert fit.returncode == 0, fit.stderr
    assert choose_engine(run, "onnx").predictor.classes == ["green", "red"]
    extended = cli("extend", str(run), str(new), "--out", str(tmp_path / "grown"), "--onnx-twin")
    assert extended.returncode == 0, extended.stderr
    line = next(x for x in extended.stdout.splitlines() if x.startswith("ONNX twin"))
    assert f"{tmp_path / 'grown' / 'model.onnx'}" in line and "vs PyTorch max |Δ|" in line
    assert choose_engine(tmp_path / "grown", "onnx").predictor.classes == ["green", "red", "blue"]
    skipped = cli("extend", str(run), str(new), "--out", str(tmp_path / "plain"), "--quiet")
    assert skipped.returncode == 0 and not (tmp_path / "plain" / "model.onnx").exists()
    assert choose_engine(tmp_path / "plain").engine == "torch"
