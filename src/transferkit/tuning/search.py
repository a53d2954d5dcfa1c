"""`run_search`: the study on the chosen backend."""
from __future__ import annotations

from ..errors import TransferkitError
from .study import BACKENDS, Objective, Space, run_optuna


def run_search(objective: Objective, space: Space, *, n_trials: int, direction: str = "maximize",
               seed: int = 0, backend: str = "optuna", timeout: float | None = None, progress: bool = True,
               metric: str = "score", catch: tuple[type[BaseException], ...] = (TransferkitError,)) -> dict:
    """Run `n_trials` trials (trial 0: the defaults, params {}) and summarise the study (`summarise`).

    `timeout` (seconds) stops starting trials once spent, and each trial is told what is left of it
    (its `budget`), so the study ends near the budget instead of after a long last trial. Trials
    that raise one of `catch` are recorded as failed; when no trial completes, raises.
    """
    if backend not in BACKENDS:
        raise TransferkitError(f"--search-backend {backend!r}: use {' or '.join(BACKENDS)}.")
    if n_trials < 1:
        raise ValueError("n_trials must be at least 1")
    if backend == "ray":
        from .ray_backend import run_ray_search

        return run_ray_search(objective, space, n_trials=n_trials, direction=direction, seed=seed, timeout=timeout,
                              progress=progress, metric=metric)
    return run_optuna(objective, space, n_trials, direction, seed, timeout, progress, metric, catch)
