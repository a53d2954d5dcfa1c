"""`run_search`: an Optuna study (TPE sampler, median pruning) over a caller's objective.

Trial 0 is always the caller's defaults (no parameters sampled), so the summary can state the
gain of the best trial over them, measured the same way. The other trials draw from `space`.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Protocol

from ..errors import TransferkitError

#: The search backends: Optuna in this process, or Ray Tune (across the machines of a Ray cluster).
BACKENDS = ("optuna", "ray")
#: The trial user attribute that marks the defaults trial.
DEFAULTS = "defaults"


class Reporter(Protocol):
    """What a trial tells the search while it trains."""

    def report(self, value: float, step: int) -> None:
        """Record the monitored value at `step` (1, 2, ...); raises when the trial should stop early."""


#: The search space: a define-by-run function of an `optuna.Trial` that suggests values and returns
#: the parameters to fit with (nested dicts allowed); it does no work beyond suggesting.
Space = Callable[[Any], dict]
#: The objective: (parameters, reporter, seconds left for this trial or None) → (validation score,
#: a JSON-ready description of what the fit used, shown in the trials table).
Objective = Callable[[dict, Reporter, "float | None"], "tuple[float, dict]"]


class _OptunaReporter:
    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def report(self, value: float, step: int) -> None:
        import optuna

        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} ({value:.4g})")


def create_study(direction: str, seed: int):
    """An in-memory study: TPE sampler seeded with `seed`, median pruning after the first epoch of
    each of the first 3 trials (Optuna's defaults, 5 startup trials, prune nothing in short studies)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed),
                               pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))


def run_optuna(objective: Objective, space: Space, n_trials: int, direction: str, seed: int,
                timeout: float | None, progress: bool, metric: str, catch: tuple) -> dict:
    from tqdm.auto import tqdm

    study = create_study(direction, seed)
    study.enqueue_trial({}, user_attrs={DEFAULTS: True})
    start = time.perf_counter()
    deadline = start + timeout if timeout else None

    def run(trial) -> float:
        params = {} if trial.user_attrs.get(DEFAULTS) else space(trial)
        trial.set_user_attr("fit_params", params)
        budget = max(1.0, deadline - time.perf_counter()) if deadline else None
        value, used = objective(params, _OptunaReporter(trial), budget)
        trial.set_user_attr("used", used)
        return value

    bar = tqdm(total=n_trials, desc="search", unit="trial", disable=not progress, leave=False)

    def tick(study, trial) -> None:
        bar.update(1)
        try:
            bar.set_postfix_str(f"best {metric} {study.best_value:.4g}")
        except ValueError:  # nothing completed yet
            pass

    try:
        study.optimize(run, n_trials=n_trials, timeout=timeout, catch=catch, callbacks=[tick])
    finally:
        bar.close()
    return summarise(study, backend="optuna", metric=metric, seconds=time.perf_counter() - start, seed=seed,
                     requested=n_trials, timeout=timeout)


def summarise(study: Any, backend: str, metric: str, seconds: float, seed: int, requested: int,
              timeout: float | None) -> dict:
    """The study as config.json's run["search"] records it: every trial (params, value, state,
    seconds, what the fit used), counts, the best trial and its fit params, the defaults' value and
    the gain over it (positive: better, whichever the direction), parameter importances."""
    import optuna

    states = optuna.trial.TrialState
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = []
    for t in study.trials:
        seconds_t = t.user_attrs.get("seconds")  # recorded by a backend whose trials ran elsewhere
        if seconds_t is None and t.datetime_complete and t.datetime_start:
            seconds_t = (t.datetime_complete - t.datetime_start).total_seconds()
        value = t.value if t.state == states.COMPLETE else (
            t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
        trials.append({"number": t.number, "defaults": bool(t.user_attrs.get(DEFAULTS)), "params": dict(t.params),
                       "value": _finite(value), "state": t.state.name.lower(), "seconds": seconds_t,
                       "epochs_reported": len(t.intermediate_values), "used": t.user_attrs.get("used") or {}})
    complete = [t for t in study.trials if t.state == states.COMPLETE and t.value is not None
                and math.isfinite(t.value)]
    if not complete:
        failed = [t for t in study.trials if t.state == states.FAIL]
        reason = failed[0].system_attrs.get("fail_reason", "") if failed else ""
        raise TransferkitError(f"the search completed no trial ({len(study.trials)} tried){': ' + reason if reason else ''}.")
    best = max(complete, key=lambda t: t.value) if maximize else min(complete, key=lambda t: t.value)
    default = next((t for t in complete if t.user_attrs.get(DEFAULTS)), None)
    gain = None
    if default is not None:
        gain = (best.value - default.value) if maximize else (default.value - best.value)
    return {
        "backend": backend, "metric": metric, "direction": "maximize" if maximize else "minimize",
        "sampler": f"TPE (seed {seed})", "pruner": "median (after 3 trials, from epoch 2)",
        "requested": requested, "timeout": timeout, "seconds": seconds,
        "trials": trials,
        "completed": sum(t.state == states.COMPLETE for t in study.trials),
        "pruned": sum(t.state == states.PRUNED for t in study.trials),
        "failed": sum(t.state == states.FAIL for t in study.trials),
        "best": {"number": best.number, "value": best.value, "params": dict(best.params),
                 "defaults": bool(best.user_attrs.get(DEFAULTS))},
        "best_params": best.user_attrs.get("fit_params") or {},
        "default_value": default.value if default is not None else None,
        "gain": gain,
        "importances": importances(study, seed),
    }


#: Completed sampled trials below which parameter importances are not estimated: a forest fitted on
#: two or three points ranks parameters by noise, and a bar chart would present that as a finding.
MIN_TRIALS_FOR_IMPORTANCES = 5


def importances(study: Any, seed: int = 0) -> dict[str, float] | None:
    """fANOVA importance of each sampled parameter over the completed sampled trials (the defaults
    trial samples nothing, so it is left out), or None with fewer than `MIN_TRIALS_FOR_IMPORTANCES`
    such trials or no parameter that varied. 16 trees, not Optuna's 64: those took seconds for a
    report's bar chart."""
    import optuna

    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.params
              and not t.user_attrs.get(DEFAULTS)]
    if len(trials) < MIN_TRIALS_FOR_IMPORTANCES:
        return None
    varied = [name for name in trials[0].params
              if all(name in t.params for t in trials) and len({repr(t.params[name]) for t in trials}) > 1]
    if not varied:
        return None
    sampled = optuna.create_study(direction=study.direction)
    sampled.add_trials(trials)
    try:
        found = optuna.importance.get_param_importances(
            sampled, params=varied, evaluator=optuna.importance.FanovaImportanceEvaluator(n_trees=16, seed=seed))
    except (ValueError, RuntimeError) as exc:  # e.g. a constant objective
        logging.getLogger(__name__).info("no parameter importances: %s", exc)
        return None
    return {name: float(value) for name, value in found.items()}


def _finite(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
