"""The Ray Tune backend: the same study run by Ray Tune, so trials spread over a Ray cluster.

`ray.init(address=RAY_ADDRESS)` joins the cluster named by the environment variable (e.g. the
head node's `ray://host:10001` or `auto`), else starts Ray on this machine. Trials are sampled by
Ray's `OptunaSearch` (the same TPE sampler and define-by-run space as the Optuna backend) and
stopped early by the ASHA scheduler, from the per-epoch reports of the Lightning callback. Trial 0
(the defaults) runs first as a Tune run of its own, since a defaults point cannot be enqueued into a
define-by-run space. Every node needs transferkit and the data at the same path.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

from ..errors import TransferkitError
from .study import DEFAULTS, Objective, Space, create_study, summarise

#: The metric name the trials report to Tune.
SCORE = "score"


class _RayReporter:
    def report(self, value: float, step: int) -> None:
        from ray import tune

        tune.report({SCORE: value, "step": step, "final": False})


def _trainable(config: dict, objective: Objective = None, deadline: float | None = None) -> None:
    from ray import tune

    budget = max(1.0, deadline - time.time()) if deadline else None
    value, used = objective(config.get("fit_params") or {}, _RayReporter(), budget)
    tune.report({SCORE: value, "final": True, "used": json.dumps(used, default=str)})


def _searcher(base: type) -> type:
    """`OptunaSearch` whose saved state (Tune checkpoints its searcher) is written with cloudpickle:
    the define-by-run space is a closure, which plain pickle refuses."""

    class Searcher(base):
        def save(self, checkpoint_path: str) -> None:
            from ray import cloudpickle

            with open(checkpoint_path, "wb") as file:
                cloudpickle.dump(self.__dict__.copy(), file)

    return Searcher


def run_ray_search(objective: Objective, space: Space, *, n_trials: int, direction: str, seed: int,
                   timeout: float | None, progress: bool, metric: str) -> dict:
    """`run_search` on Ray Tune; returns the same summary (`study.summarise`), rebuilt as an Optuna
    study from Tune's results."""
    try:
        import optuna
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        raise TransferkitError("--search-backend ray needs Ray Tune: pip install 'transferkit[ray]'.") from None

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR", configure_logging=True)
    mode = "max" if direction == "maximize" else "min"
    start = time.perf_counter()
    deadline = time.time() + timeout if timeout else None
    trainable = tune.with_parameters(_trainable, objective=objective, deadline=deadline)
    study = create_study(direction, seed)
    try:
        with tempfile.TemporaryDirectory(prefix="transferkit-tune-") as storage:
            def tuner(param_space: dict | None, samples: int, **tune_config: Any):
                return tune.Tuner(
                    tune.with_resources(trainable, {"cpu": 1}), param_space=param_space,
                    tune_config=tune.TuneConfig(metric=SCORE, mode=mode, num_samples=samples, **tune_config),
                    run_config=tune.RunConfig(storage_path=storage, verbose=1 if progress else 0),
                ).fit()

            grids = [(tuner({"fit_params": {}}, 1), True)]
            left = None if deadline is None else deadline - time.time()
            if n_trials > 1 and (left is None or left > 0):
                searcher = _searcher(OptunaSearch)(space=lambda trial: {"fit_params": space(trial)}, metric=SCORE,
                                                   mode=mode, sampler=optuna.samplers.TPESampler(seed=seed))
                scheduler = ASHAScheduler(time_attr="training_iteration", grace_period=2, reduction_factor=2)
                grids.append((tuner(None, n_trials - 1, search_alg=searcher, scheduler=scheduler,
                                    time_budget_s=left), False))
            for grid, defaults in grids:
                sampled = {} if defaults else getattr(searcher, "_ot_trials", {})  # Tune trial id → Optuna trial
                for result in grid:
                    study.add_trial(_as_trial(result, defaults, sampled, optuna))
    finally:
        if started_here:
            ray.shutdown()
    return summarise(study, backend="ray", metric=metric, seconds=time.perf_counter() - start, seed=seed,
                     requested=n_trials, timeout=timeout)


def _as_trial(result: Any, defaults: bool, sampled: dict, optuna: Any):
    """A Tune result as a frozen Optuna trial: complete when its last report was the final score,
    pruned when the scheduler stopped it after an epoch's report, failed on an error. Parameters and
    their distributions are those the searcher's Optuna trial sampled (`sampled`: Tune trial id →
    Optuna trial)."""
    metrics = result.metrics or {}
    fit_params = dict((result.config or {}).get("fit_params") or {})
    source = sampled.get(metrics.get("trial_id"))
    params = dict(source.params) if source is not None else {}
    distributions = dict(source.distributions) if source is not None else {}
    frame = result.metrics_dataframe
    steps = {}
    if frame is not None and SCORE in frame and "final" in frame:
        steps = {i: float(v) for i, (v, final) in enumerate(zip(frame[SCORE], frame["final"]), start=1) if not final}
    attrs = {DEFAULTS: defaults, "fit_params": fit_params, "seconds": float(metrics.get("time_total_s") or 0.0),
             "used": json.loads(metrics.get("used") or "{}")}
    states = optuna.trial.TrialState
    if result.error is not None or SCORE not in metrics:
        return optuna.trial.create_trial(state=states.FAIL, params=params, distributions=distributions,
                                         user_attrs={**attrs, "fail_reason": str(result.error)[:300]})
    final = bool(metrics.get("final"))
    return optuna.trial.create_trial(state=states.COMPLETE if final else states.PRUNED,
                                     value=float(metrics[SCORE]) if final else None, params=params,
                                     distributions=distributions, user_attrs=attrs, intermediate_values=steps)
