"""Interrupting and resuming a fit, with real signals in real subprocesses.

A resumed run must reproduce the uninterrupted run's history (last.ckpt every epoch, all random
generators restored, data order a function of (seed, epoch)); Ctrl-C exits 130 and kill -9
leaves only checkpoints; --resume on a finished run does not train again; two fits cannot write
one run directory at once.
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from transferkit.errors import RunDirectoryError
from transferkit.tasks import load_run

from transferkit.testing import make_image_folder

EPOCHS = 4
#: Runs the real CLI, but parks the process in the first training step of the third epoch (after
#: epoch 2's checkpoint is written) and says so in a marker file: the test then signals a process
#: known to be mid-training, however slow the machine is.
PARKING_CLI = """
import signal, sys, time
from pathlib import Path
from transferkit.strategies.lightning_module import TransferModule

# Ctrl-C as a terminal delivers it: a test run from a background shell inherits SIGINT ignored
signal.signal(signal.SIGINT, signal.default_int_handler)

marker = Path(sys.argv.pop(1))
step = TransferModule.training_step

def parked_step(self, batch, batch_idx):
    if self.current_epoch == 2:
        marker.write_text("parked")
        time.sleep(300)
    return step(self, batch, batch_idx)

TransferModule.training_step = parked_step
from transferkit.cli import main
sys.argv[0] = "transferkit"
main()
"""


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _fit_args(data: Path, out: Path) -> list[str]:
    return ["fit", str(data), "--out", str(out), "--strategy", "fine-tune", "--epochs", str(EPOCHS), "--no-baseline",
            "--image-size", "32", "--quiet"]


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transferkit.cli", *args], capture_output=True, text=True,
                          env=_env(), timeout=timeout)


def _history(run: Path) -> list[dict]:
    with (run / "history.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("resume") / "colours", per_class=8, size=32)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """The uninterrupted run every resumed run is compared with."""
    run = tmp_path_factory.mktemp("reference") / "run"
    result = _cli(*_fit_args(data, run))
    assert result.returncode == 0, result.stderr
    return run


def _start_parked(data: Path, run: Path, tmp_path: Path, quiet: bool = True) -> tuple[subprocess.Popen, Path]:
    driver, marker = tmp_path / "parking_cli.py", tmp_path / "parked"
    driver.write_text(PARKING_CLI)
    args = [a for a in _fit_args(data, run) if quiet or a != "--quiet"]
    process = subprocess.Popen([sys.executable, str(driver), str(marker), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + 300
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the fit ended before epoch 3: {process.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the fit did not reach epoch 3 in 300 s")
        time.sleep(0.05)
    return process, marker


def _assert_same_history(resumed: Path, reference: Path) -> None:
    got, want = _history(resumed), _history(reference)
    assert [r["epoch"] for r in got] == [r["epoch"] for r in want]
    for g, w in zip(got, want):
        for key in ("train_loss", "val_loss"):
            assert float(g[key]) == pytest.approx(float(w[key]), rel=1e-5), (key, g["epoch"])


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)],
                         ids=["ctrl-c", "kill-9"])
def test_interrupted_run_resumes_to_the_uninterrupted_history(data, reference, tmp_path, sig, code):
    run = tmp_path / "run"
    process, _ = _start_parked(data, run, tmp_path)
    if sig == signal.SIGINT:  # while it trains, a second fit into the same folder is refused
        second = _cli(*_fit_args(data, run), "--resume", timeout=120)
        assert second.returncode == 2 and "another transferkit fit" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    if sig == signal.SIGINT:
        assert "--resume" in stderr and "Traceback" not in stderr
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert not (run / "model.safetensors").exists() and not (run / "config.json").exists()
    assert not (run / "report.html").exists()
    with pytest.raises(RunDirectoryError, match="not a transferkit run directory"):
        load_run(run)  # nothing predict would accept

    resumed = _cli(*_fit_args(data, run), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_history(run, reference)


def test_resume_on_a_finished_run_does_not_train_again(data, reference):
    model = reference / "model.safetensors"
    before = (model.stat().st_mtime_ns, model.read_bytes())
    result = _cli(*_fit_args(data, reference), "--resume")
    assert result.returncode == 0, result.stderr
    assert "already complete" in result.stdout and "report.html" in result.stdout
    assert (model.stat().st_mtime_ns, model.read_bytes()) == before
    assert not (reference / ".transferkit.lock").exists()


def test_resume_refuses_a_folder_that_is_not_a_run(data, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    for name, text in (("config.json", '{"mine": 1}'), ("metrics.json", "{}"), ("report.html", "<p>mine</p>")):
        (out / name).write_text(text)
    result = _cli(*_fit_args(data, out), "--resume")
    assert result.returncode == 2 and "not a transferkit run" in result.stderr and "Traceback" not in result.stderr
    assert (out / "config.json").read_text() == '{"mine": 1}' and (out / "report.html").read_text() == "<p>mine</p>"


def test_epoch_shuffle_is_a_function_of_seed_and_epoch_only():
    import torch

    from transferkit.strategies.base import EpochShuffle

    sampler = EpochShuffle(50, seed=3)
    first, second = list(sampler), list(sampler)  # without a trainer, each pass is the next epoch
    assert sorted(first) == list(range(50)) and first != second
    torch.manual_seed(123)  # global random state plays no part
    resumed = EpochShuffle(50, seed=3)
    resumed.set_epoch(1)
    assert list(resumed) == second
    assert list(EpochShuffle(50, seed=4)) != first


def test_random_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np
    import torch

    from transferkit.rundir import read_checkpoint
    from transferkit.strategies.training import capture_rng, restore_rng

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    np.random.normal()  # leaves a cached Gaussian in numpy's state
    torch.save({"rng": capture_rng()}, tmp_path / "state.ckpt")
    expected = (random.random(), np.random.normal(), torch.rand(3))
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    restore_rng(read_checkpoint(tmp_path / "state.ckpt")["rng"])
    got = (random.random(), np.random.normal(), torch.rand(3))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


@pytest.mark.slow
def test_an_interrupted_fit_says_so_on_a_line_of_its_own(data, tmp_path):
    """With its progress bar drawn, Ctrl-C's `interrupted:` line starts a line instead of trailing the bar's."""
    process, _ = _start_parked(data, tmp_path / "run", tmp_path, quiet=False)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert any(line.startswith("interrupted:") for line in stderr.splitlines()), stderr[-1000:]
