"""`fit(search=N)`: a hyper-parameter study on the validation split before the one final fit.

The study (`transferkit.tuning`) calls an objective that fits a clone of the estimator with the
trial's parameters on the same training and validation split (the data are read and split once)
and returns the clone's validation score. A trial never touches the test split: it trains no
from-scratch control (the one step of `fit` that scores on it) and is not evaluated. Trial
0 fits the estimator's own parameters (the defaults), so the gain over them is measured the same
way. The final model is then fitted once with the best trial's parameters, by the ordinary path
(checkpoints, from-scratch control, report); the test split is scored once, after it, as always.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from sklearn.base import clone

from ..errors import TransferkitError
from ..strategies import STRATEGIES
from ..strategies.registry import strategies_with, traits
from ..strategies.fine_tune import DEFAULT_LR

if TYPE_CHECKING:
    from ..strategies import FitData

#: A task estimator (`base.TransferEstimator`; not imported here: base imports this module)
TransferEstimator = Any

#: What a trial's clone never does: search again, train the from-scratch control (it is scored on
#: the test split), write a run directory, show progress bars.
TRIAL_PARAMS = {"search": 0, "baseline": False, "run_dir": None, "resume": False, "progress": False}


class SearchMixin:
    """What a hyper-parameter search asks of a task estimator (see `TransferEstimator`; the trial
    itself runs through `TransferEstimator._fit_trial`)."""

    #: What a search trial is scored by: (the metric Lightning logs each epoch, which pruning
    #: watches; "maximize" or "minimize"; its name in the report). `_validation_score` computes it.
    search_metric: ClassVar[tuple[str, str, str]] = ("val_loss", "minimize", "validation loss")

    def _search_space(self, trial: Any) -> dict:
        """The params of one search trial, drawn from `trial` (an `optuna.Trial`); may only suggest.
        Default: `search.base_space` (strategy, learning rate, epochs, weight decay, unfreezing depth)."""
        return base_space(self, trial)

    def _validation_score(self, fit_data: FitData) -> float:
        """The fitted model's `search_metric` on `fit_data.val` (never the test split). Required for search."""
        raise TransferkitError(f"{self.task} cannot score a search trial; fit without --search.")

    def _search_data(self) -> Any:
        """The data `_load_data` read, as it accepts them again: the trials and the final fit reuse
        them (same split, no second scan). Default: `data_` as it is."""
        return self.data_


def base_space(est: "TransferEstimator", trial: Any) -> dict:
    """The search space every task shares, as estimator params: the strategy (when the estimator's
    strategy chooses one, as "auto" does: the `searched` strategies of the task's modality, e.g.
    fine-tune, linear-probe and LoRA), then what those strategies read (`Strategy.searched_params`):
    the peak learning rate (log scale, a decade either side of the modality's default; unless `lr`
    was given), the epochs (unless given) and the weight decay (log), and each one's own options
    (`Strategy.search_options`: fine-tune's unfreezing depth and pace).

    When the strategy is drawn, every candidate's values are drawn in every trial, also those the
    drawn strategy ignores (a linear probe has no learning rate), so the space is flat: TPE models
    each parameter over all trials and the importances compare like with like. A fixed strategy
    draws only what it reads: trials of a strategy that ignores the learning rate differ in nothing else."""
    chooses = traits(est.strategy).chooses
    names = strategies_with("searched", est.modality) if chooses else [est.strategy]
    strategy = trial.suggest_categorical("strategy", names) if chooses else est.strategy
    candidates = {name: STRATEGIES.get(name) for name in names}
    read = {p for cls in candidates.values() for p in cls.searched_params}
    default_lr = DEFAULT_LR.get(est.modality, 3e-4)
    params: dict[str, Any] = {"strategy": strategy}
    if "lr" in read and est.lr is None:
        params["lr"] = trial.suggest_float("lr", default_lr / 10, default_lr * 10, log=True)
    if "epochs" in read and est.epochs is None:
        params["epochs"] = trial.suggest_int("epochs", 2, 15)
    if "weight_decay" in read:
        params["weight_decay"] = trial.suggest_float("weight_decay", 1e-4, 0.3, log=True)
    drawn = {name: cls.search_options(trial) for name, cls in candidates.items()}
    options = {**(est.strategy_options or {}), **drawn[strategy]}
    params["strategy_options"] = options or None
    return params


def used_settings(est: "TransferEstimator") -> dict:
    """What a fitted trial trained with, for the trials table (its strategy, LR, epochs run)."""
    s = est.strategy_settings_ or {}
    used = {"strategy": est.strategy_}
    for key in ("lr", "epochs", "epochs_run", "C"):
        if isinstance(s.get(key), (int, float)):
            used[key] = s[key]
    return used


def fit_with_search(est: "TransferEstimator", data: Any, unlabeled: Any = None, target_labels: Any = None
                    ) -> "TransferEstimator":
    """`est.fit(data)` with `est.search` > 0 (see the module docstring); sets `est.search_` (the study,
    as config.json's run["search"] records it) and returns `est`."""
    from ..tuning import run_search
    from ..tuning.callbacks import pruning_callback

    if unlabeled is not None or target_labels is not None:
        raise TransferkitError("--search tunes on labelled data and does not combine with domain adaptation "
                               "(--adapt-to); run one or the other.")
    if est.resume:
        raise TransferkitError("--resume continues an interrupted fit, not a search; run the search again "
                               "without --resume.")
    if est.devices * est.num_nodes > 1:
        # every trial would start and tear down its own process group; spread trials instead
        raise TransferkitError("--search runs its trials in one process each: drop --devices/--num-nodes, or "
                               "spread the trials over machines with --search-backend ray.")
    start = time.perf_counter()
    import torch

    torch.manual_seed(est.seed)
    est.notes_, est.warnings_ = [], []
    est._load_data(data)  # once: every trial and the final fit reuse these splits
    loaded = est._search_data()
    fixed: dict[str, Any] = {}
    ranking = None
    if est.backbone == "auto":  # rank once, not in every trial
        fixed["backbone"] = est._rank_candidates()
        ranking = est.ranking_
    monitor, direction, label = est.search_metric

    def objective(params: dict, reporter: Any, budget: float | None) -> tuple[float, dict]:
        trial = clone(est).set_params(**{**TRIAL_PARAMS, **fixed, **params})
        if budget is not None and budget < (trial.max_seconds or float("inf")):
            trial.max_seconds = budget  # what is left of search_seconds caps this trial's training
        score = trial._fit_trial(loaded, [pruning_callback(monitor, reporter)])
        used = used_settings(trial)
        if trial.max_seconds != est.max_seconds:
            used["max_seconds"] = trial.max_seconds
        return float(score), used

    study = run_search(objective, est._search_space, n_trials=int(est.search), direction=direction, seed=est.seed,
                       backend=est.search_backend, timeout=est.search_seconds, progress=est.progress, metric=label)
    searched = time.perf_counter() - start
    chosen = {**fixed, **study["best_params"]}
    best_used = next(t["used"] for t in study["trials"] if t["number"] == study["best"]["number"])
    if traits(chosen.get("strategy", est.strategy)).chooses:
        # "auto" decides from measured speed (how many fine-tuning epochs fit its budget), so a refit could
        # train another model than the one scored: the final fit trains what the best trial's auto chose
        chosen["strategy"] = best_used["strategy"]
        if "epochs" in best_used and est.epochs is None:
            chosen["epochs"] = best_used["epochs"]
    if "max_seconds" in best_used:  # the best trial trained within what was left of the budget: so does the final fit
        chosen["max_seconds"] = best_used["max_seconds"]
    asked = est.get_params()
    est.set_params(**{**chosen, "search": 0})
    try:
        est.fit(loaded)  # the ordinary path: checkpoints, control, plan; the test split is scored after
    finally:
        est.set_params(**{k: asked[k] for k in (*chosen, "search")})
    if ranking is not None:
        est.ranking_ = ranking
    study["final_params"] = {k: v for k, v in chosen.items()}
    est.search_ = study
    est.timings_ = {"hyper-parameter search": searched, **est.timings_}
    est.timings_["total fit"] += searched
    folds = ((getattr(est, "data_", None) and est.data_.split) or {}).get("cross_validation_folds")
    if folds:
        study["cross_validated"] = int(folds)
    est.decisions_.insert(2, search_decision(study))
    if folds:
        # few examples: no split was held out, so the search chose on the folds the accuracy is estimated on
        est.warnings_.append(f"the search chose its settings on the same {folds}-fold cross-validation that "
                             "estimates the accuracy, so the estimate is optimistic; judge the settings on "
                             "new labelled data (`transferkit evaluate RUN DATA`)")
    return est


def search_decision(study: dict) -> tuple[str, str]:
    """The decisions line of a searched fit: what was chosen and why."""
    best = study["best"]
    chosen = "the defaults" if best["defaults"] else f"trial {best['number']}: " + ", ".join(
        f"{k}={_short(v)}" for k, v in best["params"].items())
    gain = study.get("gain")
    versus = "" if gain is None else f", {_signed(gain)} over the defaults' {study['default_value']:.4g}"
    return (f"hyper-parameters: {chosen}",
            f"best {study['metric']} ({best['value']:.4g}{versus}) of {summary_counts(study)} "
            f"({study['backend']}, {study['sampler']}, {study['pruner']} pruning), in {study['seconds']:.0f} s; "
            + (f"trials were scored by the {study['cross_validated']}-fold cross-validation that also estimates "
               "the accuracy (too few examples to hold a split out)" if study.get("cross_validated") else
               "trials were scored on the validation split only, never on the test split"))


def summary_counts(study: dict) -> str:
    """"12 trials (3 pruned, 1 failed)"."""
    extra = [f"{study[k]} {k}" for k in ("pruned", "failed") if study.get(k)]
    n = len(study["trials"])
    return f"{n} trial{'s' if n != 1 else ''}" + (f" ({', '.join(extra)})" if extra else "")


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _signed(value: float) -> str:
    return f"{value:+.4g}"
