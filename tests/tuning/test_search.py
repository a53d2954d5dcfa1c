"""fit(search=N): the study, its defaults trial, a test split the trials never see, pruning, the report, the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from transferkit import ImageClassifier
from transferkit.reporting import write_run_report
from transferkit.tuning import run_search

FAST = dict(strategy="fine-tune", epochs=1, image_size=32, batch_size=8, val_fraction=0.2, test_fraction=0.2,
            progress=False, baseline=False)


class Recording(ImageClassifier):
    """An ImageClassifier that writes down, for every fit (each trial's clone and the final fit), the
    params it fitted with, the splits it was given and what it was scored on."""

    fits: list[dict] = []

    def _load_data(self, data) -> None:
        super()._load_data(data)
        Recording.fits.append({"params": self.get_params(), "test": len(self.data_.test),
                               "train": sorted(map(str, self.data_.train.paths)),
                               "val": sorted(map(str, self.data_.val.paths))})

    def _validation_score(self, fit_data) -> float:
        Recording.fits[-1]["scored"] = sorted(map(str, fit_data.val.paths))
        return super()._validation_score(fit_data)


@pytest.fixture(scope="module")
def searched(colour_folder_session, tmp_path_factory):
    """A searched fit, with every image file the fit opened (the real loader, watched)."""
    from transferkit.data import ImageDataset

    run_dir = tmp_path_factory.mktemp("searched")
    Recording.fits, opened = [], set()
    image = ImageDataset.image

    def watched(self, index):
        opened.add(str(self.paths[index]))
        return image(self, index)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageDataset, "image", watched)
        est = Recording(search=3, run_dir=run_dir, **FAST).fit(colour_folder_session)
    est.evaluate()
    est.save(run_dir)
    return est, run_dir, list(Recording.fits), opened


def test_study_runs_defaults_first_on_the_same_split_and_never_opens_the_test_split(searched):
    est, _, fits, opened = searched
    study = est.search_
    assert len(study["trials"]) == 3 and study["completed"] + study["pruned"] + study["failed"] == 3
    assert len(fits) == 5  # the search reads the data once, three trials fit, then the final fit
    trials, final = fits[1:4], fits[4]
    # trial 0 fitted the estimator's own params (only what a trial never does differs)
    asked = {**est.get_params(), "search": 0, "baseline": False, "run_dir": None}
    assert study["trials"][0]["defaults"] and study["trials"][0]["params"] == {}
    assert trials[0]["params"] == asked
    assert trials[1]["params"] != asked  # the others drew from the space
    # the trials trained and were scored on the final fit's train and validation splits; no test image was
    # opened by the whole fit (trials and final fit: the test split is scored once, by evaluate())
    assert all(t["train"] == final["train"] and t["val"] == final["val"] == t["scored"] for t in trials)
    test = set(map(str, est.data_.test.paths))
    assert test and opened and not opened & test and opened <= set(final["train"]) | set(final["val"])
    assert "scored" not in final  # the final fit is not a trial: the test split is scored once, by evaluate()
    # the final fit used the best trial's params; the estimator keeps the params it was given
    best = study["best"]
    assert {k: trials[best["number"]]["params"][k] for k in study["best_params"]} == study["best_params"]
    assert {k: final["params"][k] for k in study["best_params"]} == study["best_params"]
    assert est.get_params()["search"] == 3 and est.get_params()["lr"] is None
    values = [t["value"] for t in study["trials"] if t["state"] == "complete"]
    assert best["value"] == max(values) and study["gain"] == pytest.approx(best["value"] - study["default_value"])
    assert est.decisions_[2][0].startswith("hyper-parameters:")
    assert est.timings_["hyper-parameter search"] > 0


def test_config_and_report_hold_the_study(searched):
    est, run_dir, _, _ = searched
    study = json.loads((run_dir / "config.json").read_text())["run"]["search"]
    assert study["backend"] == "optuna" and study["metric"] == "validation accuracy"
    assert {"params", "value", "state", "seconds"} <= set(study["trials"][1])
    html = write_run_report(run_dir).read_text()
    assert 'id="hyper-parameter-search"' in html and "gain over the defaults on validation" in html
    assert "search trials and parameter importances" in html and "Trials table (3 rows)" in html


def test_run_search_prunes_records_and_measures_importances():
    """A real study on a cheap objective: the median pruner stops trials whose epochs lag, trial 0 samples
    nothing, the gain and the importances are computed."""
    seen = []

    def space(trial):
        return {"lr": trial.suggest_float("lr", 1e-4, 1.0, log=True), "depth": trial.suggest_int("depth", 1, 4)}

    def objective(params, reporter, budget):
        seen.append(params)
        quality = 0.5 if not params else 1 - abs(params["lr"] - 0.01) - 0.01 * params["depth"]
        for step in range(1, 6):
            reporter.report(quality * step / 5, step)
        return quality, {"lr": params.get("lr")}

    study = run_search(objective, space, n_trials=12, direction="maximize", seed=0, progress=False)
    assert seen[0] == {} and study["trials"][0]["defaults"] and study["default_value"] == 0.5
    assert study["pruned"] > 0 and {t["state"] for t in study["trials"]} >= {"complete", "pruned"}
    assert study["gain"] == pytest.approx(study["best"]["value"] - 0.5) and study["gain"] > 0
    assert set(study["importances"]) == {"lr", "depth"}
    assert study["best_params"] == seen[study["best"]["number"]]


def test_epoch_reporter_prunes_a_lightning_run():
    """The callback on a real Lightning run: a trial whose validation accuracy trails the median of
    finished trials is stopped (TrialPruned out of fit) after its first epoch; one that leads runs on."""
    import lightning as L
    import optuna
    import torch

    from transferkit.tuning.callbacks import pruning_callback
    from transferkit.tuning.study import _OptunaReporter

    class Constant(L.LightningModule):
        def __init__(self, accuracy: float) -> None:
            super().__init__()
            self.accuracy, self.layer = accuracy, torch.nn.Linear(2, 1)

        def training_step(self, batch, _):
            return self.layer(batch[0]).pow(2).mean()

        def validation_step(self, batch, _):
            self.log("val_accuracy", self.accuracy)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=4)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    for _ in range(2):
        study.add_trial(optuna.trial.create_trial(value=0.8, intermediate_values={s: 0.8 for s in range(1, 6)},
                                                  params={}, distributions={}))

    def train(accuracy: float) -> L.Trainer:
        trainer = L.Trainer(max_epochs=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0,
                            callbacks=[pruning_callback("val_accuracy", _OptunaReporter(study.ask()))])
        trainer.fit(Constant(accuracy), data, data)
        return trainer

    with pytest.raises(optuna.TrialPruned):
        train(0.3)
    assert train(0.9).current_epoch == 5


def test_cli_fit_search_end_to_end(colour_folder_session, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "transferkit.cli", "fit", str(colour_folder_session), "--out", str(out), "--search", "2",
         "--strategy", "linear-probe", "--image-size", "32", "--no-baseline", "--quiet"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "search: 2 trials" in result.stdout and "over the defaults" in result.stdout
    assert json.loads((out / "config.json").read_text())["run"]["search"]["requested"] == 2
    assert 'id="hyper-parameter-search"' in (out / "report.html").read_text()


def test_bad_search_backend_is_one_line_exit_2(monkeypatch, capsys, tmp_path):
    from transferkit.cli import main

    monkeypatch.setattr(sys, "argv", ["transferkit", "fit", str(tmp_path), "--out", str(tmp_path / "run"),
                                      "--search", "2", "--search-backend", "spark"])
    with pytest.raises(SystemExit) as exit:
        main()
    err = capsys.readouterr().err.strip()
    assert exit.value.code == 2 and len(err.splitlines()) == 1
    assert "--search-backend" in err and "optuna" in err and "Traceback" not in err


def test_ray_backend_runs_the_same_study():
    pytest.importorskip("ray.tune")

    def space(trial):
        return {"x": trial.suggest_float("x", -1.0, 1.0)}

    def objective(params, reporter, budget):
        value = 1 - (params.get("x", 0.5) - 0.2) ** 2
        reporter.report(value, 1)
        return value, {}

    study = run_search(objective, space, n_trials=3, direction="maximize", seed=0, backend="ray", progress=False)
    assert study["backend"] == "ray" and len(study["trials"]) == 3 and study["trials"][0]["defaults"]
    assert study["default_value"] == pytest.approx(1 - 0.09) and study["completed"] + study["pruned"] == 3


@pytest.mark.parametrize("task", ["image-classification", "text-classification", "forecast"])
def test_every_task_space_draws_params_the_task_accepts(task):
    """Each task's search space (a task hook) yields params its estimator accepts, over many draws;
    fine-tune's unfreezing knobs go only to fine-tune, and a given lr or epochs is not searched."""
    import optuna

    from transferkit.tasks import TASKS

    cls = TASKS.get(task)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    strategies = set()
    for _ in range(12):
        trial = study.ask()
        params = cls()._search_space(trial)
        cls(**params)._check_params()
        strategies.add(params["strategy"])
        options = params.get("strategy_options") or {}
        assert ("start_groups" in options) == (params["strategy"] == "fine-tune")
        study.tell(trial, 0.5)
    assert len(strategies) >= 2
    fixed = cls(lr=1e-3, epochs=2, strategy="fine-tune")._search_space(study.ask())
    assert "lr" not in fixed and "epochs" not in fixed and fixed["strategy"] == "fine-tune"


def test_the_space_asks_the_strategy_what_it_tunes():
    """A fixed strategy is searched over what it reads only (`Strategy.searched_params`,
    `search_options`): a linear probe draws no learning rate, epochs or unfreezing knobs, so its
    trials cannot differ in what it ignores; a choosing strategy ("auto") draws every candidate's
    values in every trial (a flat space), its knobs going only to the strategy drawn."""
    import optuna

    from transferkit.strategies import STRATEGIES

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    probe = ImageClassifier(strategy="linear-probe")._search_space(trial := study.ask())
    assert set(trial.params) == {"augment"} and set(probe) == {"strategy", "strategy_options", "augment"}
    assert STRATEGIES.get("linear-probe").searched_params == () and STRATEGIES.get("prototypes").searched_params == ()
    lora = ImageClassifier(strategy="lora")._search_space(trial := study.ask())
    assert set(trial.params) == {"lr", "epochs", "weight_decay", "augment"} and lora["strategy_options"] is None
    auto = ImageClassifier(strategy="auto")._search_space(trial := study.ask())
    assert set(trial.params) == {"strategy", "lr", "epochs", "weight_decay", "start_groups", "unfreeze_epochs",
                                 "augment"}
    assert ("start_groups" in (auto["strategy_options"] or {})) == (auto["strategy"] == "fine-tune")
