"""Run directories: every damaged file is one line naming it (exit 2, no traceback), loading never
reaches the network or unpickles anything, and `--out` is checked and locked before a fit."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from transferkit.errors import TransferkitError
from transferkit.rundir import LOCK_FILE, prepare_out

from tests.helpers import run_cli
from transferkit.testing import make_image_folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("rundir") / "colours", per_class=6, size=32)


@pytest.fixture(scope="module")
def fitted_run(data, tmp_path_factory) -> Path:
    """One tiny fitted image run (with its checkpoints), copied and damaged by each case."""
    from transferkit.tasks import ImageClassifier

    run = tmp_path_factory.mktemp("fitted") / "run"
    est = ImageClassifier(strategy="fine-tune", epochs=1, image_size=32, baseline=False, progress=False, run_dir=run)
    est.fit(data)
    est.evaluate()
    est.save(run)
    return run


def _edit_config(change):
    def apply(run: Path) -> None:
        config = json.loads((run / "config.json").read_text())
        change(config)
        (run / "config.json").write_text(json.dumps(config))
    return apply


def _truncate(name: str, keep: float = 0.5):
    def apply(run: Path) -> None:
        blob = (run / name).read_bytes()
        (run / name).write_bytes(blob[:int(len(blob) * keep)])
    return apply


def _write(name: str, content: bytes):
    return lambda run: (run / name).write_bytes(content)


def _pickled_weights(run: Path) -> None:
    import torch
    from safetensors.torch import load_file

    (run / "model.safetensors").write_bytes(b"")
    torch.save(load_file(str(run / "model.safetensors.orig")), run / "model.safetensors")


class _Planted:
    """Unpickling this creates a folder: proof that a pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


CASES = {
    "config corrupt": (_write("config.json", b'{"task": "image-classif'), "config.json", "corrupt JSON"),
    "config empty": (_write("config.json", b""), "config.json", "empty file"),
    "config a list": (_write("config.json", b"[1, 2, 3]"), "config.json", "must be a JSON object"),
    "config missing classes": (_edit_config(lambda c: c.pop("classes")), "config.json", "missing key 'classes'"),
    "config classes wrong type": (_edit_config(lambda c: c.update(classes="red")), "config.json",
                                  "'classes' must be a list of strings"),
    "config image_size wrong type": (_edit_config(lambda c: c.update(image_size="big")), "config.json",
                                     "'image_size' must be an integer"),
    "config missing backbone": (_edit_config(lambda c: c.pop("backbone")), "config.json", "missing key 'backbone'"),
    "config unknown task": (_edit_config(lambda c: c.update(task="sorting")), "config.json", "unknown task 'sorting'"),
    "config unknown family": (_edit_config(lambda c: c["backbone"].update(family="evil")), "config.json",
                              "unknown model family 'evil'"),
    "config weights edited": (_edit_config(lambda c: c.update(weights="adapter")), "config.json",
                              "strategy 'fine-tune' saves 'full' weights"),
    "config strategy unknown": (_edit_config(lambda c: (c["strategy"].update(used="mine"), c.update(weights="adapter"))),
                                "config.json", "strategy 'mine' (adapter weights), which is not registered"),
    "weights missing": (lambda run: (run / "model.safetensors").unlink(), "model.safetensors", "missing"),
    "weights empty": (_write("model.safetensors", b""), "model.safetensors", "empty file"),
    "weights truncated": (_truncate("model.safetensors"), "model.safetensors", "truncated"),
    "weights garbage": (_write("model.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!"),
                        "model.safetensors", "not a safetensors file"),
    "weights a pickle": (_pickled_weights, "model.safetensors", "not a safetensors file"),
    "head shape != classes": (_edit_config(lambda c: c.update(classes=c["classes"] + ["purple"])),
                              "model.safetensors", "heads.main.weight"),
    "metrics corrupt": (_write("metrics.json", b"{not json"), "metrics.json", "corrupt JSON"),
    "format from the future": (_edit_config(lambda c: c.update(format=3)), "config.json",
                               "run format 3 is newer than this transferkit reads"),
}


@pytest.fixture
def damaged(fitted_run, tmp_path, request) -> tuple[Path, str, str]:
    damage, file, message = CASES[request.param]
    run = tmp_path / "run"
    shutil.copytree(fitted_run, run)
    shutil.copy(run / "model.safetensors", run / "model.safetensors.orig")
    damage(run)
    return run, file, message


@pytest.mark.parametrize("damaged", list(CASES), indirect=True)
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_damaged_run_is_one_line_naming_the_file(monkeypatch, capsys, damaged, data, command):
    run, file, message = damaged
    code, out, err = run_cli(monkeypatch, capsys, command, run, data if command == "evaluate" else data / "red")
    assert code == 2, out + err
    assert file in err and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_hub_architecture_in_config_is_refused_without_network(monkeypatch, capsys, fitted_run, tmp_path, data):
    run = tmp_path / "run"
    shutil.copytree(fitted_run, run)
    _edit_config(lambda c: c["backbone"].update(architecture="hf-hub:someone/model"))(run)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    attempts = []

    def no_network(self, address):  # records (and blocks) any connection attempt
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    for command in ("predict", "evaluate"):
        code, _, err = run_cli(monkeypatch, capsys, command, run, data if command == "evaluate" else data / "red")
        assert code == 2 and "config.json" in err and "hf-hub:someone/model" in err, err
        assert "never fetched" in err and "Traceback" not in err
    code, _, err = run_cli(monkeypatch, capsys, "fit", data, "--out", tmp_path / "child", "--backbone", run,
                           "--epochs", "1", "--no-baseline", "--quiet")
    assert code == 2 and "hf-hub:someone/model" in err, err
    assert attempts == []


@pytest.mark.parametrize("content", ["truncated", "pickled"])
def test_damaged_checkpoint_with_resume_is_one_line_and_never_unpickled(monkeypatch, capsys, fitted_run, tmp_path,
                                                                        data, content):
    import torch

    run = tmp_path / "run"
    shutil.copytree(fitted_run, run)
    for name in ("config.json", "model.safetensors", "report.html", "metrics.json"):  # an interrupted run
        (run / name).unlink(missing_ok=True)
    last = run / "checkpoints" / "last.ckpt"
    marker = tmp_path / "code-ran"
    if content == "truncated":
        _truncate("checkpoints/last.ckpt", 0.3)(run)
    else:
        torch.save({"state_dict": {}, "payload": _Planted(marker)}, last)
    code, _, err = run_cli(monkeypatch, capsys, "fit", data, "--out", run, "--resume", "--strategy", "fine-tune",
                           "--epochs", "1", "--image-size", "32", "--no-baseline", "--quiet")
    assert code == 2, err
    assert "last.ckpt: unreadable checkpoint" in err and "rerun without --resume" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()
    assert not (run / LOCK_FILE).exists()


# ------------------------------------------------------------------------ --out
def test_out_that_is_a_file_or_under_one(monkeypatch, capsys, tmp_path, data):
    existing = tmp_path / "file.txt"
    existing.write_text("x")
    for out, message in ((existing, "is an existing file"), (existing / "run", "is a file, so no folder")):
        code, _, err = run_cli(monkeypatch, capsys, "fit", data, "--out", out)
        assert code == 2 and f"--out {out}" in err and message in err and "Traceback" not in err, err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("out", ["/proc/transferkit-run", "/proc/self"])
def test_out_that_cannot_be_written(monkeypatch, capsys, data, out):
    code, _, err = run_cli(monkeypatch, capsys, "fit", data, "--out", out)
    assert code == 2 and f"--out {out}" in err and "choose a writable location" in err and "Traceback" not in err, err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_under_a_read_only_folder(monkeypatch, capsys, tmp_path, data):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        code, _, err = run_cli(monkeypatch, capsys, "fit", data, "--out", parent / "run")
    finally:
        parent.chmod(0o700)
    assert code == 2 and "choose a writable location" in err, err


def test_out_inside_the_data_folder_is_refused(monkeypatch, capsys, tmp_path):
    data = make_image_folder(tmp_path / "photos", per_class=3, size=32)
    for out in (data / "run", data, data / "red" / "run"):
        code, _, err = run_cli(monkeypatch, capsys, "fit", data, "--out", out)
        assert code == 2 and "inside the data folder" in err, err
        assert not (data / "run").exists()
    assert sorted(p.name for p in data.iterdir()) == ["blue", "green", "red"]


def test_lock_of_a_live_fit_refuses_and_a_stale_one_is_taken_over(monkeypatch, capsys, tmp_path, data):
    out = tmp_path / "run"
    out.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_FILE).write_text(f"{live.pid} {socket.gethostname()}\n")
        code, _, err = run_cli(monkeypatch, capsys, "fit", data, "--out", out)
        assert code == 2 and f"another transferkit fit (pid {live.pid})" in err, err
    finally:
        live.kill()
        live.wait()
    # the same pid is dead now: its lock is stale, taken over, and released at the end
    with prepare_out(out, data) as prepared:
        assert (out / LOCK_FILE).read_text().split()[0] == str(os.getpid())
        assert not prepared.complete
    assert not (out / LOCK_FILE).exists()


def test_overwrite_removes_the_old_run_but_not_other_files(fitted_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(fitted_run, run)
    (run / "notes.txt").write_text("mine")
    with pytest.raises(TransferkitError, match="a finished run.*--overwrite"):
        prepare_out(run)
    with prepare_out(run, overwrite=True):
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE, "notes.txt"]


def test_resume_on_a_folder_with_only_empty_checkpoints_starts_again(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with prepare_out(tmp_path / "run", resume=True) as prepared:
        assert not prepared.complete and not prepared.resuming


@pytest.mark.parametrize("name_length", [20, 72, 200])
def test_a_header_whose_length_starts_like_a_pickle_still_reads(tmp_path, name_length):
    """The header length is little-endian: a header of 0x..80 bytes begins with the byte a pickle
    begins with (a 72-letter tensor name gives a 128-byte header), and must still read as safetensors."""
    import torch
    from safetensors.torch import save_file

    from transferkit.rundir import safetensors_header

    path = tmp_path / "model.safetensors"
    save_file({"w" * name_length: torch.zeros(2)}, str(path))
    assert set(safetensors_header(path)) == {"w" * name_length}
    if name_length == 72:
        assert path.read_bytes()[:1] == b"\x80"  # the case this test is for


def test_a_run_of_the_first_format_loads_and_predicts_the_same(fitted_run, data, tmp_path):
    """Format 1 (before heads were named) stored the head as `head.*` and had no "format" key."""
    import torch
    from safetensors.torch import load_file, save_file

    from transferkit.tasks import load_run

    run = tmp_path / "run"
    shutil.copytree(fitted_run, run)
    state = load_file(str(run / "model.safetensors"))
    save_file({k.replace("heads.main.", "head.", 1): v for k, v in state.items()}, str(run / "model.safetensors"))
    _edit_config(lambda c: c.pop("format"))(run)
    images = sorted((data / "red").iterdir())[:3]
    assert torch.equal(torch.as_tensor(load_run(run).predict_proba(images)),
                       torch.as_tensor(load_run(fitted_run).predict_proba(images)))
    # the head alone (a forecast run's carried head, a ranked run's classifier) reads the same way
    from transferkit.rundir import read_head_weights

    old_head, new_head = read_head_weights(run, "main"), read_head_weights(fitted_run, "main")
    assert old_head.keys() == new_head.keys() == {"weight", "bias"}
    assert all(torch.equal(old_head[k], new_head[k]) for k in new_head)


def test_an_adapted_runs_figures_are_named_as_the_source_domains():
    from transferkit.rundir import Evaluation

    adapted = Evaluation(kind="test", n=60, metrics={"accuracy": 0.83, "target_domain": {"accuracy": 0.88}})
    assert adapted.label("accuracy") == "source test accuracy (n=60)" and adapted.short == "source test n=60"
    plain = Evaluation(kind="cross_validation", n=200, folds=5, metrics={"accuracy": 0.7})
    assert plain.label("accuracy") == "cross-validated accuracy (5-fold, n=200)" and plain.short == "5-fold CV n=200"
