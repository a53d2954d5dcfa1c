"""Distributed training through Lightning: two CPU processes (gloo) train what one process trains,
each rank gets its own part of every batch, and the compute params reach the Trainer."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import run_cli
from tests.helpers.training import classified, module_for, tiny_backbone
from transferkit.testing import make_image_folder
from transferkit import ImageClassifier
from transferkit.models import TransferModel
from transferkit.strategies import FitData, TrainSettings
from transferkit.strategies.base import EpochShuffle, EvaluationShard
from transferkit.strategies.training import run_lightning
from transferkit.rundir import read_metrics

REPO = Path(__file__).resolve().parents[2]
# a deterministic recipe: no augmentation (each process would draw its own crops), a CNN without
# dropout, batch-norm statistics frozen (the default), fixed epochs, no from-scratch control
RECIPE = dict(backbone="mnist_cnn", strategy="fine-tune", epochs=2, augment="none", image_size=32, baseline=False,
              accelerator="cpu", precision="32", memory=0)
BATCH = 4  # per process: two processes × 4 train on the same batches as one process × 8


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("ddp") / "colours", per_class=12, size=32)


def test_two_cpu_processes_train_what_one_process_trains(colours, tmp_path):
    """`transferkit fit --devices 2 --accelerator cpu`, as a user runs it (Lightning's launcher
    starts the second process by re-running the command), against one process with the same
    effective batch. Both see the same examples in each optimiser step (`EpochShuffle` shards each
    epoch's order), start from the same weights, and average the same gradients; only the order of
    float additions differs (one sum over 8 examples vs an all-reduce of two sums over 4), about
    1e-7 relative per step, so after 6 AdamW steps weights agree to 1e-5 and the validation losses
    (each example scored once, `EvaluationShard`) to 1e-5 relative. A rank that saw the other's
    examples, or all of them, would train on different batches and miss by about 1e-2."""
    out = tmp_path / "ddp"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in RECIPE.items() if not isinstance(v, bool)]
    flags += ["--no-baseline", "--batch-size", str(BATCH), "--devices", "2", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-m", "transferkit.cli", "fit", str(colours), "--out", str(out), *flags],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run saved to") == 1, done.stdout  # only rank 0 prints
    assert not list(out.rglob("*.partial")), "a checkpoint or weights file was left half-renamed"

    one = ImageClassifier(batch_size=2 * BATCH, progress=False, **RECIPE).fit(colours)
    one.evaluate()
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["compute"] | {"pin_memory": False} == {
        "accelerator": "cpu", "devices": 2, "num_nodes": 1, "strategy": "ddp", "precision": "32", "compile": False,
        "channels_last": False, "pin_memory": False}
    ddp_weights = load_file(str(out / "model.safetensors"))
    for name, value in one.model_.state_dict().items():
        torch.testing.assert_close(ddp_weights[name], value, atol=1e-5, rtol=0, msg=name)
    history = [line.split(",") for line in (out / "history.csv").read_text().splitlines()]
    columns = history[0]
    for row, reference in zip(history[1:], one.history_, strict=True):
        got = dict(zip(columns, row))
        assert float(got["val_loss"]) == pytest.approx(reference["val_loss"], rel=1e-5)
        assert float(got["train_loss"]) == pytest.approx(reference["train_loss"], rel=1e-5)
    metrics = read_metrics(out).metrics
    assert metrics["accuracy"] == one.metrics_["accuracy"]
    assert metrics["loss"] == pytest.approx(one.metrics_["loss"], rel=1e-4)


def _shards(rank: int, world: int, port: int, queue) -> None:
    """One of `world` gloo processes: the indices its samplers give it (what a DDP rank trains on)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        train = EpochShuffle(11, seed=3)
        epochs = []
        for epoch in range(2):
            train.set_epoch(epoch)
            epochs.append(list(train))
        queue.put((rank, epochs, len(train), list(EvaluationShard(11)), list(EvaluationShard(1))))
    finally:
        dist.destroy_process_group()


def test_each_rank_trains_on_its_own_part_of_every_epoch():
    """Two real processes with a gloo process group: disjoint training shards of the same length
    that together are one process's order (item i of the epoch's order is on rank i mod 2, one item
    repeated to even them out), a new order each epoch; validation scores every example once."""
    from lightning.fabric.plugins.environments.lightning import find_free_network_port

    # forked: the children have transferkit imported already (spawned ones would import it again)
    ctx = torch.multiprocessing.get_context("fork")
    queue, port = ctx.Queue(), find_free_network_port()
    processes = [ctx.Process(target=_shards, args=(rank, 2, port, queue)) for rank in range(2)]
    for process in processes:
        process.start()
    results = dict((r[0], r[1:]) for r in (queue.get(timeout=300) for _ in processes))
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    single = EpochShuffle(11, seed=3)
    for epoch in range(2):
        single.set_epoch(epoch)
        order = list(single)
        ranks = [results[r][0][epoch] for r in (0, 1)]
        assert ranks[0] == order[0::2] and ranks[1] == order[1::2] + order[:1]
        assert len(ranks[0]) == len(ranks[1]) == results[0][1] == 6
    assert results[0][0][0] != results[0][0][1]  # epochs differ
    assert results[0][2] + results[1][2] == list(range(0, 11, 2)) + list(range(1, 11, 2))
    assert results[0][3] == results[1][3] == [0]  # fewer examples than ranks: each rank scores all


def test_precision_and_accelerator_reach_the_trainer():
    """The Trainer runs with the resolved settings: "auto" is 32-bit on CPU, bf16-mixed is CPU autocast."""
    torch.manual_seed(0)
    data = FitData(train=classified(32), train_plain=classified(32), val=classified(16, seed=1), num_classes=2)
    for precision, expected in (("auto", "32-true"), ("bf16-mixed", "bf16-mixed")):
        s = TrainSettings(batch_size=8, progress=False, accelerator="cpu", precision=precision)
        model = TransferModel(tiny_backbone(), torch.nn.Linear(6, 2))
        run = run_lightning(module_for(model, data, s, 1), *data.training_loaders(s), 1, s)
        assert run.trainer == {"accelerator": "CPUAccelerator", "devices": 1, "world_size": 1,
                               "strategy": "SingleDeviceStrategy", "precision": expected}
        assert all(torch.isfinite(torch.tensor(row["val_loss"])) for row in run.history)


def test_impossible_compute_settings_fail_in_one_line(monkeypatch, capsys, colours, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "fit", colours, "--out", tmp_path / "a", "--accelerator", "cpu",
                           "--precision", "16-mixed")
    assert code == 2 and err.strip() == "error: --precision 16-mixed needs a CUDA GPU; on CPU use 32 or bf16-mixed."
    code, _, err = run_cli(monkeypatch, capsys, "fit", colours, "--out", tmp_path / "b", "--precision", "8")
    assert code == 2 and "invalid value for --precision: must be one of auto, 32, bf16-mixed, 16-mixed" in err
    if not torch.cuda.is_available():
        code, _, err = run_cli(monkeypatch, capsys, "fit", colours, "--out", tmp_path / "c", "--accelerator", "gpu")
        assert code == 2 and len(err.strip().splitlines()) == 1 and "--accelerator gpu: no CUDA GPU" in err
