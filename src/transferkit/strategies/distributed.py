"""Where and how a Lightning run trains: devices, nodes, the distributed strategy, precision, compilation.

Every choice here is handed to Lightning (`L.Trainer(accelerator=, devices=, num_nodes=, strategy=,
precision=)`): its launchers start the processes, its cluster environments read torchrun's and
SLURM's variables, its strategies (DDP, FSDP) own the process group. This module only resolves
transferkit's "auto" values, refuses impossible combinations in one line, and says which process
is global rank 0.

Under several processes every rank runs the same program (SPMD): data loading, diagnostics, the
strategy's non-Lightning steps (linear-probe features, the from-scratch control) are deterministic
functions of the seed and run identically on each rank; the Lightning runs share one model through
DDP; only global rank 0 prints, writes checkpoints, the run directory and the report.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import TransferkitError

#: `precision` values: "auto" resolves to bf16-mixed on a GPU that supports it, 16-mixed on older
#: CUDA GPUs and 32 on CPU (`resolve_compute`).
PRECISIONS = ("auto", "32", "bf16-mixed", "16-mixed")
#: `accelerator` values, as Lightning names them.
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
#: `dist_strategy` values: "auto" is DDP when more than one process trains, else one device.
DIST_STRATEGIES = ("auto", "ddp", "fsdp")


@dataclass(frozen=True)
class Compute:
    """The resolved training set-up (what a plan line and config.json record)."""

    accelerator: str  # "cpu", "gpu" or "mps" (resolved from "auto")
    devices: int  # per node
    num_nodes: int
    strategy: str  # "single device", "ddp" or "fsdp"
    precision: str  # "32", "bf16-mixed" or "16-mixed"
    compile: bool
    channels_last: bool  # CNN weights and image batches in NHWC memory order (GPU only)
    pin_memory: bool  # page-locked loader batches (CUDA only)

    @property
    def processes(self) -> int:
        return self.devices * self.num_nodes

    def describe(self) -> str:
        """"2 × cpu processes (ddp), precision 32, compile off" — the plan's compute line."""
        where = f"{self.processes} × {self.accelerator} processes ({self.strategy}" + (
            f", {self.num_nodes} nodes)" if self.num_nodes > 1 else ")") if self.processes > 1 else \
            f"1 {self.accelerator} device"
        extras = [f"precision {self.precision}", f"compile {'on' if self.compile else 'off'}"]
        extras += ["channels_last"] if self.channels_last else []
        return f"{where}, {', '.join(extras)}"

    def to_dict(self) -> dict[str, Any]:
        return {"accelerator": self.accelerator, "devices": self.devices, "num_nodes": self.num_nodes,
                "strategy": self.strategy, "precision": self.precision, "compile": self.compile,
                "channels_last": self.channels_last, "pin_memory": self.pin_memory}

    def trainer_kwargs(self) -> dict[str, Any]:
        """`L.Trainer` arguments for this set-up."""
        strategy: Any = "auto"
        if self.strategy == "ddp":
            from lightning.pytorch.strategies import DDPStrategy

            # gradual unfreezing flips requires_grad after DDP wrapped the model: frozen layers then
            # have no gradient in a step, which DDP must be told to expect
            strategy = DDPStrategy(find_unused_parameters=True)
        elif self.strategy == "fsdp":
            from lightning.pytorch.strategies import FSDPStrategy

            # use_orig_params: frozen and trainable parameters may share a flattened FSDP unit
            strategy = FSDPStrategy(use_orig_params=True)
        precision = "32-true" if self.precision == "32" else self.precision
        return {"accelerator": self.accelerator, "devices": self.devices, "num_nodes": self.num_nodes,
                "strategy": strategy, "precision": precision}


def resolve_compute(accelerator: str = "auto", devices: int = 1, num_nodes: int = 1, precision: str = "auto",
                    compile: bool = False, dist_strategy: str = "auto") -> Compute:
    """transferkit's "auto" values made concrete, impossible set-ups refused in one line
    (`TransferkitError`, naming the flag and the fix) before any slow work."""
    import torch

    if precision not in PRECISIONS:
        raise TransferkitError(f"--precision {precision}: use one of {', '.join(PRECISIONS)}.")
    if accelerator not in ACCELERATORS:
        raise TransferkitError(f"--accelerator {accelerator}: use one of {', '.join(ACCELERATORS)}.")
    if dist_strategy not in DIST_STRATEGIES:
        raise TransferkitError(f"--dist-strategy {dist_strategy}: use one of {', '.join(DIST_STRATEGIES)}.")
    if devices < 1 or num_nodes < 1:
        raise TransferkitError(f"--devices {devices} --num-nodes {num_nodes}: both must be at least 1.")
    cuda = torch.cuda.is_available()
    mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if accelerator == "auto":
        accelerator = "gpu" if cuda else "mps" if mps and devices == 1 and num_nodes == 1 else "cpu"
    elif accelerator == "cuda":
        accelerator = "gpu"
    if accelerator == "gpu" and not cuda:
        raise TransferkitError("--accelerator gpu: no CUDA GPU is visible here; use --accelerator cpu (or auto).")
    if accelerator == "mps" and not mps:
        raise TransferkitError("--accelerator mps: Apple's MPS backend is not available here; use --accelerator cpu.")
    if accelerator == "gpu" and devices > torch.cuda.device_count():
        raise TransferkitError(f"--devices {devices}: only {torch.cuda.device_count()} CUDA GPU(s) are visible on this "
                               "node; give at most that many (per node).")
    if precision == "auto":
        precision = ("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed") if accelerator == "gpu" else "32"
    elif precision == "16-mixed" and accelerator == "cpu":
        raise TransferkitError("--precision 16-mixed needs a CUDA GPU; on CPU use 32 or bf16-mixed.")
    processes = devices * num_nodes
    if dist_strategy == "auto":
        strategy = "ddp" if processes > 1 else "single device"
    elif dist_strategy == "fsdp" and accelerator != "gpu":
        raise TransferkitError("--dist-strategy fsdp shards the model over CUDA GPUs; on CPU use ddp (or auto).")
    else:
        strategy = dist_strategy
    return Compute(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
                   precision=precision, compile=bool(compile), channels_last=accelerator == "gpu",
                   pin_memory=accelerator == "gpu")


def settings_compute(settings: Any) -> Compute:
    """`resolve_compute` of a `TrainSettings`."""
    return resolve_compute(settings.accelerator, settings.devices, settings.num_nodes, settings.precision,
                           settings.compile, settings.dist_strategy)


def global_rank() -> int:
    """This process's global rank: what Lightning's strategy set once a run started, else what the
    launcher's environment says (Lightning's children and torchrun set RANK / LOCAL_RANK, SLURM
    SLURM_PROCID; a node other than the first, started with NODE_RANK, is not rank 0 either)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    rank = int(getattr(rank_zero_only, "rank", 0) or 0)
    if rank == 0 and "RANK" not in os.environ and "SLURM_PROCID" not in os.environ:
        rank = int(os.environ.get("NODE_RANK", "0") or 0)  # > 0 only matters as "not rank 0"
    return rank


def is_global_zero() -> bool:
    """Whether this process prints and writes (the only one, without distributed training)."""
    return global_rank() == 0


def launch_rank() -> int:
    """This process's rank as its launcher's environment says, before any training started (without
    importing Lightning): torchrun's RANK, SLURM's SLURM_PROCID, or, for processes Lightning's own
    launcher started, LOCAL_RANK and NODE_RANK (any rank other than 0 only needs to know that)."""
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return int(os.environ.get("LOCAL_RANK", "0") or 0) + int(os.environ.get("NODE_RANK", "0") or 0)
