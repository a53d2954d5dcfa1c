"""`adapt`: domain adaptation with unlabelled target data, each method chosen without target labels.

The strategy trains, next to a source-only reference, one model per adaptation method (or the one
requested) through the one `TransferModule`, source and target batches drawn together, and keeps
for each the epoch an unsupervised criterion picks (`CRITERIA`); `method="auto"` then keeps the
candidate the criterion predicts best, and source-only unless a method is predicted to beat it.

- `encoder="frozen"` (the default, cheap on a CPU): the pretrained encoder's features are
  extracted once; a `Bottleneck` + classifier (+ the method's head) train on them. The source-only
  reference is the logistic probe on the same features (the strongest cheap source-only model).
- `encoder="fine-tune"`: each candidate fine-tunes its own copy of the encoder below the bottleneck
  (gradual unfreezing, discriminative LRs); slower, for a GPU.

What it measured goes into the run (config.json's strategy settings): each candidate's source
validation accuracy, target prediction entropy, deep-embedded-validation risk and (when labelled
target examples were given, only to evaluate) target accuracy; the proxy A-distance between source
and target features before and after; a 2-D PCA projection of both for the report's plot.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataError, TransferkitError
from ..models import DEFAULT_HEAD, TransferModel, to_device
from ..rundir import check_tensor_shapes
from . import adapt_summary
from .adaptation import (METHODS, AdaptedHead, adaptation_head, dev_score, prediction_entropy, proxy_a_distance,
                         set_progress)
from .base import FitData, FitOutcome, Strategy, TrainSettings
from .lightning_module import TransferModule
from .summary import StrategySummary

#: The source-only model kept when no method is predicted to help: the logistic probe on the
#: encoder's features (what a plain fit ships).
SOURCE_ONLY = "source-only"
#: The bottleneck trained on the source alone (the same training as each method's, without its
#: loss): what the adaptation loss adds is measured against it.
NO_ADAPTATION = "none"
ENCODERS = ("frozen", "fine-tune")
#: Unsupervised checkpoint criteria (lower is better): the logged metric and what it is.
CRITERIA = {
    "dev": ("val_dev_risk", "the DEV score: the source validation errors importance-weighted towards the target "
                            "by a domain classifier on the features (deep embedded validation's weights, "
                            "self-normalised), a relative score, not an estimate of the target error"),
    "entropy": ("val_target_entropy", "mean entropy of the target predictions (lower: more confident)"),
}
#: How the reasons name each criterion.
CRITERION_NAMES = {"dev": "DEV score", "entropy": "target entropy"}
#: At most this many target examples score the criteria each epoch (and fill the A-distance and plot).
CRITERION_SAMPLE = 1000
PROJECTION_POINTS = 300  # per domain, in the report's before/after plot
FROZEN_LR = 1e-3


@dataclass
class AdaptOptions:
    """Knobs of the `adapt` strategy."""

    method: str = "auto"  # one of METHODS, "auto" (try each, keep what the criterion predicts best) or "none"
    encoder: str = "frozen"  # "frozen": train on features extracted once; "fine-tune": the encoder trains too
    bottleneck: int = 256  # width of the features the methods align
    trade_off: float = 1.0  # weight of the adaptation loss next to the source cross-entropy
    criterion: str = "dev"  # "dev" or "entropy": picks each method's epoch, and the method under "auto"


class AdaptationModule(TransferModule):
    """`TransferModule` that also scores each epoch without target labels: after validation it logs
    `val_target_entropy` (the target predictions' mean entropy) and `val_dev_risk` (deep embedded
    validation on the features below the classifier), and it tells the scheduled parts of the
    losses (reversal coefficient, self-training ramp) how far training is."""

    def __init__(self, *args: Any, target: Any, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.target_loader = target  # plain loader over (a sample of) the target inputs
        self.seed = seed
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        set_progress(self, self.global_step / max(1, self.schedule.total_steps))

    def on_validation_epoch_start(self) -> None:
        self._val = []

    def _outputs(self, x) -> dict[str, torch.Tensor]:
        """The heads' outputs on one backbone pass; in validation the features are kept for the criterion."""
        features = self.model.backbone(x)
        outputs = {head: self.model.heads[head](features) for head in self.losses}
        if not self.training:
            self._validated = (features, outputs[self.model.default_head])
        return outputs

    def validation_step(self, batch, batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)  # one pass: `_outputs` keeps its features and logits
        features, logits = self._validated
        # 0-1 errors, not cross-entropy: candidates compare on accuracy, whatever their calibration
        # (label smoothing, a probe's C) does to their losses
        errors = logits.argmax(1) != batch[1]
        self._val.append((features.float().cpu(), errors.float().cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        features, probs = [], []
        for x, _ in self.target_loader:
            z = self.model.backbone(to_device(x, self.device))
            features.append(z.float().cpu())
            probs.append(F.softmax(self.model.heads[self.model.default_head](z), dim=1).float().cpu())
        source, losses = (torch.cat(t) for t in zip(*self._val))
        self.log("val_target_entropy", prediction_entropy(torch.cat(probs)), sync_dist=True)
        dev = dev_score(source, torch.cat(features), losses, self.seed)
        self.log("val_dev_risk", dev["score"], sync_dist=True)
        # its bootstrap band and the weights' effective sample size: how far apart two scores must be
        for key in ("low", "high", "effective_n"):
            self.log(f"val_dev_{key}", dev[key], sync_dist=True)


class DomainAdapt(Strategy):
    """Domain adaptation on unlabelled target data: DANN, CDAN, CORAL, MMD or self-training on a
    bottleneck (frozen encoder by default), each epoch and method chosen by an unsupervised
    criterion; `auto` keeps source-only unless a method is predicted to beat it."""

    name = "adapt"
    Options = AdaptOptions

    @classmethod
    def summarise(cls, settings: dict[str, Any], target: dict | None = None,
                  metrics: dict | None = None) -> StrategySummary | None:
        """What was kept and why, each candidate's measures and the domain shift (`adapt_summary`)."""
        return adapt_summary.summarise(settings, target, metrics)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        for value, allowed, what in ((o.method, (*METHODS, "auto", "none"), "method"), (o.encoder, ENCODERS, "encoder"),
                                     (o.criterion, tuple(CRITERIA), "criterion")):
            if value not in allowed:
                raise TransferkitError(f"adapt: unknown {what} {value!r}; use one of {', '.join(allowed)}.")
        if o.bottleneck < 2 or o.trade_off < 0:
            raise TransferkitError("adapt: bottleneck must be at least 2 and trade_off at least 0.")

    @property
    def candidates(self) -> tuple[str, ...]:
        """What is trained besides the source-only probe: the bottleneck without an adaptation loss
        (`none`, what the loss adds is measured against it), then the method(s)."""
        chosen = METHODS if self.options.method == "auto" else (self.options.method,)
        return (NO_ADAPTATION, *[m for m in chosen if m != NO_ADAPTATION])

    def plan(self, data: FitData, settings: TrainSettings) -> list[tuple[str, str]]:
        o = self.options
        target = len(data.unlabelled) if data.unlabelled is not None else 0
        methods = ", ".join(self.candidates)
        how = ("each method is trained and the one the criterion predicts best is kept; source-only when none is "
               "predicted to beat it" if o.method == "auto" else "as requested; compared with source-only")
        return [
            (f"strategy: adapt ({o.method})", f"{target} unlabelled target examples; {how}"),
            (f"methods: {SOURCE_ONLY} (logistic probe), {methods}", f"{o.encoder} encoder, a {o.bottleneck}-wide "
             f"bottleneck, adaptation loss weight {o.trade_off:g}"),
            (f"epochs: up to {settings.epochs or self._default_epochs(len(data.train))} per method",
             f"each method keeps its epoch with the lowest {o.criterion} ({CRITERIA[o.criterion][1]})"),
        ]

    def _default_epochs(self, num_train: int) -> int:
        if self.options.encoder == "fine-tune":
            from .fine_tune import default_epochs

            return default_epochs(num_train)
        # features are cheap: about 25,000 source examples seen, 10-40 epochs
        return int(min(40, max(10, round(25_000 / max(1, num_train)))))

    # ------------------------------------------------------------------ fit
    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        import lightning as L

        from .freezing import set_trainable

        if data.unlabelled is None or not len(data.unlabelled):
            raise DataError("strategy 'adapt' needs unlabelled target data: fit(source, unlabeled=TARGET), "
                            "`transferkit adapt SOURCE TARGET` or `fit SOURCE --adapt-to TARGET`.")
        if data.objective != "classification":
            raise TransferkitError("strategy 'adapt' adapts classifiers; this task is not one.")
        o = self.options
        L.seed_everything(settings.seed, workers=True, verbose=False)
        start = time.perf_counter()
        set_trainable(model.backbone.parameters(), False)
        feats = _Features.extract(model.backbone, data, settings)
        extracted = time.perf_counter()
        epochs = settings.epochs or self._default_epochs(len(feats.train_y))
        rows = [_source_only(feats, data.num_classes, settings.seed, o.criterion)]
        trained: dict[str, AdaptedHead | tuple[nn.Module, AdaptedHead]] = {}
        histories: dict[str, list[dict]] = {}
        for method in self.candidates:
            began = time.perf_counter()
            row, kept, history = self._train(method, model, data, feats, settings, epochs)
            row["seconds"] = round(time.perf_counter() - began, 2)
            rows.append(row)
            trained[method], histories[method] = kept, history
        chosen, reason = self._choose(rows)
        for row in rows:
            row["chosen"] = int(row["method"] == chosen)
        outcome = FitOutcome(timings={"feature extraction": extracted - start,
                                      "adaptation": time.perf_counter() - extracted})
        if chosen == SOURCE_ONLY:
            model.head = rows[0].pop("_head")
        else:
            rows[0].pop("_head")
            kept = trained[chosen]
            if o.encoder == "fine-tune":
                encoder, kept = kept
                model.backbone.load_state_dict(encoder.state_dict())
            model.head = kept
            outcome.history = histories[chosen]
        model.eval()
        set_trainable(model.parameters(), True)
        shift = _shift(model, feats, data, chosen != SOURCE_ONLY, o.encoder == "fine-tune", settings)
        outcome.notes.append(reason)
        if o.method != "auto" and rows[-1]["criterion"] > rows[0]["criterion"]:
            outcome.warnings.append(
                f"the {o.criterion} criterion predicts {chosen} worse than {SOURCE_ONLY} ({rows[-1]['criterion']:.4f} "
                f"vs {rows[0]['criterion']:.4f}); kept as requested (method auto keeps the candidate predicted best)")
        outcome.settings = {
            **asdict(o), "chosen_method": chosen, "reason": reason,
            "head": "linear" if chosen == SOURCE_ONLY else "bottleneck", "epochs": epochs,
            "criterion_metric": CRITERIA[o.criterion][0],
            "candidates": rows, "epochs_by_method": {m: _criteria_columns(h) for m, h in histories.items()},
            "target_examples": len(feats.target_x), "target_labelled": len(feats.eval_y),
            "criterion_vs_target": criterion_against_target(rows),
            **shift,
        }
        return outcome

    def _train(self, method: str, model: TransferModel, data: FitData, feats: "_Features", settings: TrainSettings,
               epochs: int) -> tuple[dict, Any, list[dict]]:
        """Train one candidate from the pretrained encoder; returns its row, what it keeps (the head,
        or (encoder, head) when the encoder trains) and its per-epoch history."""
        from torch.utils.data import TensorDataset

        from .. import backbones
        from .finetuning import LayerGroupUnfreezing
        from .freezing import GradualUnfreeze
        from .lightning_module import Schedule, discriminative_lrs, steps_per_epoch
        from .losses import Objective, build_losses
        from .training import run_lightning

        o = self.options
        torch.manual_seed(settings.seed)  # every candidate starts from the same random bottleneck
        head = AdaptedHead(feats.train_x.shape[1], data.num_classes, o.bottleneck)
        head.bottleneck.standardise_with(feats.train_x)
        frozen = o.encoder == "frozen"
        body = head.bottleneck if frozen else nn.Sequential(copy.deepcopy(model.backbone), head.bottleneck)
        heads = {DEFAULT_HEAD: head.classifier}
        objectives: dict[str, Any] = {DEFAULT_HEAD: "cross-entropy"}
        # self-training on images reads two views of each target image, as FixMatch: pseudo-labels
        # from a weakly augmented one, the loss on a strongly augmented one
        views = data.unlabelled_views if method == "self-training" else None
        if method != "none":
            heads["adaptation"] = adaptation_head(method, o.bottleneck, data.num_classes, head.classifier)
            objectives["adaptation"] = Objective(method, weight=o.trade_off, options={"views": 2} if views else {})
        trainer_model = TransferModel(body, heads)
        if frozen:
            train = TensorDataset(feats.train_x, feats.train_y)
            unlabelled = TensorDataset(feats.target_x, torch.zeros(len(feats.target_x)))
            if views:  # one augmented draw of each view per image: the encoder is frozen, features are cached
                weak, strong = (_Features.of(model.backbone, view, data, settings, what)[0]
                                for view, what in zip(views, ("weak target views", "strong target views")))
                unlabelled = TensorDataset(strong, weak)
            fit_data = FitData(train=train, train_plain=train, val=TensorDataset(feats.val_x, feats.val_y),
                               num_classes=data.num_classes, modality=data.modality, objectives=objectives,
                               unlabelled=unlabelled)
            target = fit_data.loader(TensorDataset(feats.criterion_x, feats.criterion_x[:, 0]), 256)
            groups = [[name for name, _ in body.named_parameters()]]
            lr = settings.lr or FROZEN_LR
            group_lrs, head_lr, freezing = [lr], lr, None
        else:
            from .fine_tune import DEFAULT_LR

            fit_data = replace(data, objectives=objectives,
                               unlabelled=_Pairs(views[1], views[0]) if views else data.unlabelled)
            target = data.loader(feats.criterion_inputs, settings.batch_size)
            named = backbones.layer_groups(body[0])
            groups = [[f"0.{n}" for n in names] for _, names in named] + \
                [[f"1.{n}" for n, _ in head.bottleneck.named_parameters()]]
            lr = settings.lr or DEFAULT_LR.get(data.modality, 3e-4)
            group_lrs, head_lr = discriminative_lrs(len(groups), lr, 0.8), 10 * lr
            group_lrs[-1] = head_lr  # the bottleneck is new: it learns at the head's rate
            freezing = LayerGroupUnfreezing(GradualUnfreeze(len(groups), 3, 2), True)
        schedule = Schedule(group_lrs=group_lrs, head_lr=head_lr, weight_decay=settings.weight_decay,
                            total_steps=epochs * steps_per_epoch(len(fit_data.train),
                                                                 settings.batch_size * settings.processes),
                            warmup_fraction=0.1)
        losses, weights = build_losses(fit_data, settings)
        module = AdaptationModule(trainer_model, groups, schedule, losses, freezing, weights,
                                  unlabelled=fit_data.unlabelled_loader(settings), target=target, seed=settings.seed)
        metric = CRITERIA[o.criterion][0]
        run_settings = replace(settings, patience=epochs + 1,  # no early stopping: the criterion picks the epoch
                               checkpoint_dir=Path(settings.checkpoint_dir) / method if settings.checkpoint_dir else None)
        run = run_lightning(module, *fit_data.training_loaders(run_settings), epochs, run_settings, monitor=metric)
        trainer_model.eval()
        best = min(run.history, key=lambda r: r.get(metric, math.inf))
        row = {"method": method, "epoch": int(best["epoch"]), "epochs_run": run.epochs_run,
               "source_val_accuracy": best.get("val_accuracy"), "target_entropy": best.get("val_target_entropy"),
               "dev_risk": best.get("val_dev_risk"), **_dev_band(best), "criterion": best.get(metric)}
        if len(feats.eval_y):
            with torch.no_grad():
                logits = head(feats.eval_x) if frozen else _logits(body[0], head, data, feats.eval_inputs)
            row["target_accuracy"] = float((logits.argmax(1) == feats.eval_y).float().mean())
        return row, (head if frozen else (body[0], head)), run.history

    def _choose(self, rows: list[dict]) -> tuple[str, str]:
        """The candidate to keep and why, from the criterion alone (no target labels): under `auto`,
        the lowest criterion of all candidates, the source-only probe on a tie (every criterion
        estimates the same thing, the target error or confidence, on the same target examples)."""
        o = self.options
        name = CRITERION_NAMES[o.criterion]
        reference = rows[0]
        if o.method != "auto":
            return o.method, f"method {o.method} as requested ({name} {rows[-1]['criterion']:.4f}; " \
                             f"{SOURCE_ONLY} {reference['criterion']:.4f})"
        best = min(rows, key=lambda r: r["criterion"])  # the first on a tie: source-only
        if best is reference:
            runner_up = min(rows[1:], key=lambda r: r["criterion"])
            overlap = ""
            if o.criterion == "dev" and _overlap(runner_up.get("dev_band"), reference.get("dev_band")):
                overlap = (f"; their 95% bands overlap, so the scores do not tell {runner_up['method']} from "
                           f"{SOURCE_ONLY} apart")
            return SOURCE_ONLY, (f"{SOURCE_ONLY} kept: its {name} ({reference['criterion']:.4f}) is the lowest; "
                                 f"best of the others {runner_up['method']} {runner_up['criterion']:.4f}, so "
                                 f"adaptation is not predicted to help{overlap}")
        overlap = ""
        if o.criterion == "dev" and _overlap(best.get("dev_band"), reference.get("dev_band")):
            overlap = f"; their 95% bands overlap, so the scores do not tell {best['method']} from {SOURCE_ONLY} apart"
        return best["method"], (f"{best['method']}: lowest {name} of {len(rows)} candidates ({best['criterion']:.4f}; "
                                f"{SOURCE_ONLY} {reference['criterion']:.4f}){overlap}")

    # ---- save and restore
    @classmethod
    def restore(cls, info: dict[str, Any], settings: dict[str, Any], state: dict[str, torch.Tensor],
                build_model: Callable[[nn.Module, int], TransferModel], run_dir: Path) -> TransferModel:
        """The saved model, its head rebuilt as the bottleneck head when a method was kept."""
        from ..backbones.run_dir import build_architecture

        num_features = int(info["num_features"])
        model = build_model(build_architecture(info, run_dir), num_features)
        if settings.get("head") == "bottleneck":
            model.head = AdaptedHead(num_features, model.head.out_features, int(settings["bottleneck"]))
        check_tensor_shapes(model.state_dict(), state, run_dir)
        model.load_state_dict(state, strict=True)
        return model


# ------------------------------------------------------------------------------------ helpers
@dataclass
class _Features:
    """The pretrained encoder's features of each split (and the inputs behind the sampled ones)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    train_index: torch.Tensor  # rows of `train_x` in `FitData.train_plain`
    val_x: torch.Tensor
    val_y: torch.Tensor
    target_x: torch.Tensor
    criterion_x: torch.Tensor  # the target sample that scores the criteria
    criterion_inputs: Any  # the same sample as raw inputs (a dataset), for a training encoder
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    eval_inputs: Any

    @staticmethod
    def of(backbone: nn.Module, dataset, data: FitData, settings: TrainSettings, what: str,
           progress: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, labels) of `dataset` through the frozen `backbone` (a progress bar as
        `settings` say, unless `progress` says otherwise)."""
        from ..models.features import extract_features

        x, y = extract_features(backbone, dataset, batch_size=max(settings.batch_size, 64), hflip=False,
                                num_workers=settings.num_workers,
                                progress=settings.progress if progress is None else progress,
                                collate_fn=data.collate_fn, description=what)
        return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)

    @classmethod
    def extract(cls, backbone: nn.Module, data: FitData, settings: TrainSettings) -> "_Features":
        from torch.utils.data import Subset

        def features(dataset, what):
            return cls.of(backbone, dataset, data, settings, what)

        train_x, train_y = features(data.train_plain, "source features")
        index = torch.arange(len(train_y))
        if len(data.val):
            val_x, val_y = features(data.val, "validation features")
        else:  # nothing held out (tiny data): the criteria need source examples the model did not fit
            order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(settings.seed))
            cut = max(1, len(order) // 10)
            val_x, val_y = train_x[order[:cut]], train_y[order[:cut]]
            train_x, train_y, index = train_x[order[cut:]], train_y[order[cut:]], index[order[cut:]]
        target_x, _ = features(data.unlabelled, "target features")
        sample = torch.randperm(len(target_x), generator=torch.Generator().manual_seed(settings.seed))[:CRITERION_SAMPLE]
        sample = sample.sort().values
        eval_set = data.target_eval
        eval_x, eval_y = features(eval_set, "labelled target features") if eval_set is not None and len(eval_set) \
            else (torch.zeros(0, train_x.shape[1]), torch.zeros(0, dtype=torch.long))
        return cls(train_x, train_y, index, val_x, val_y, target_x, target_x[sample], Subset(data.unlabelled, sample.tolist()),
                   eval_x, eval_y, eval_set)


class _Pairs(torch.utils.data.Dataset):
    """Items (a[i][0], b[i][0]) of two datasets of the same inputs: (strong view, weak view)."""

    def __init__(self, a, b) -> None:
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int):
        return self.a[i][0], self.b[i][0]


def _source_only(feats: _Features, num_classes: int, seed: int, criterion: str) -> dict:
    """The reference: the logistic probe (C on validation log-loss) on the encoder's features, scored
    by the same criteria as the methods (from its fit on the training split alone)."""
    from .linear_probe import _logistic_sweep

    head, _, c, val_proba = _logistic_sweep(feats.train_x.numpy(), feats.train_y.numpy(), feats.val_x.numpy(),
                                            feats.val_y.numpy(), num_classes, seed, refit_on_val=False)
    val_y = feats.val_y.numpy()
    losses = torch.as_tensor((val_proba.argmax(1) != val_y).astype(np.float32))  # 0-1 errors, as the methods
    mean, scale = feats.train_x.mean(0), feats.train_x.std(0).clamp_min(1e-6)
    with torch.no_grad():
        probs = F.softmax(head(feats.criterion_x), dim=1)
    scored = dev_score((feats.val_x - mean) / scale, (feats.criterion_x - mean) / scale, losses, seed)
    dev, entropy = scored["score"], prediction_entropy(probs)
    row = {"method": SOURCE_ONLY, "epoch": None, "epochs_run": 0, "C": c,
           "source_val_accuracy": float((val_proba.argmax(1) == val_y).mean()), "target_entropy": entropy,
           "dev_risk": dev, **_dev_band({f"val_dev_{k}": v for k, v in scored.items()}),
           "criterion": dev if criterion == "dev" else entropy, "_head": head}
    if len(feats.eval_y):
        with torch.no_grad():
            row["target_accuracy"] = float((head(feats.eval_x).argmax(1) == feats.eval_y).float().mean())
    return row


@torch.no_grad()
def _logits(encoder: nn.Module, head: nn.Module, data: FitData, dataset) -> torch.Tensor:
    encoder.eval()
    device = next(encoder.parameters()).device
    out = [head(encoder(to_device(x, device))).cpu() for x, _ in data.loader(dataset, 64)]
    return torch.cat(out)


def _overlap(a: list | None, b: list | None) -> bool:
    """Whether two recorded [low, high] bands overlap (False when either is missing)."""
    if not a or not b or None in a or None in b:
        return False
    return a[0] <= b[1] and b[0] <= a[1]


def _dev_band(logged: dict) -> dict:
    """The DEV score's 95 % bootstrap band and effective sample size from one epoch's logged metrics."""
    low, high = logged.get("val_dev_low"), logged.get("val_dev_high")
    out: dict[str, Any] = {"dev_band": [low, high] if low is not None and high is not None else None}
    if logged.get("val_dev_effective_n") is not None:
        out["dev_effective_n"] = round(float(logged["val_dev_effective_n"]), 1)
    return out


def criterion_against_target(rows: list[dict]) -> dict | None:
    """How the criterion ranks the candidates against their real target error (labelled target data
    given, only to report): Spearman's rank correlation over the candidates (1: the same order, 0: no
    relation, negative: reversed) and whether the candidate it kept is the best on the target; None
    without target labels or with fewer than 3 candidates."""
    from scipy.stats import spearmanr

    scored = [r for r in rows if r.get("target_accuracy") is not None and r.get("criterion") is not None]
    if len(scored) < 3:
        return None
    rho = spearmanr([r["criterion"] for r in scored], [1 - r["target_accuracy"] for r in scored])[0]
    best = max(r["target_accuracy"] for r in scored)
    kept = next((r for r in scored if r.get("chosen")), None)
    return {"spearman": None if math.isnan(rho) else round(float(rho), 3), "candidates": len(scored),
            "kept_is_best": bool(kept is not None and kept["target_accuracy"] >= best),
            "best_on_target": [r["method"] for r in scored if r["target_accuracy"] >= best]}


def _criteria_columns(history: list[dict]) -> list[dict]:
    keys = ("epoch", "train_loss", "val_accuracy", "val_target_entropy", "val_dev_risk")
    return [{k: row.get(k) for k in keys} for row in history]


@torch.no_grad()
def _shift(model: TransferModel, feats: _Features, data: FitData, adapted: bool, encoder_trained: bool,
           settings: TrainSettings) -> dict:
    """Proxy A-distance between source and target features before adaptation (the encoder's) and
    after (the bottleneck's; through the trained encoder when it trained), and a 2-D PCA of both."""
    from sklearn.decomposition import PCA
    from torch.utils.data import Subset

    seed = settings.seed
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.permutation(len(feats.train_x))[:CRITERION_SAMPLE])
    source, target = feats.train_x[torch.as_tensor(pick)], feats.criterion_x
    def distance(s: torch.Tensor, t: torch.Tensor) -> dict | None:
        return proxy_a_distance(s.numpy(), t.numpy(), seed=seed) if min(len(s), len(t)) >= 5 else None

    out: dict[str, Any] = {"a_distance_before": distance(source, target)}
    views = {"before": (source, target)}
    if adapted:
        head = model.head.eval()
        if encoder_trained:  # the encoder's features moved too: extract them again
            rows = feats.train_index[torch.as_tensor(pick)].tolist()
            source, target = (_Features.of(model.backbone, dataset, data, settings, what, progress=False)[0]
                              for dataset, what in ((Subset(data.train_plain, rows), "source features"),
                                                    (feats.criterion_inputs, "target features")))
        views["after"] = (head.bottleneck(source), head.bottleneck(target))
        out["a_distance_after"] = distance(*views["after"])
    n = min(PROJECTION_POINTS, len(source), len(target))
    pick_s, pick_t = rng.permutation(len(source))[:n], rng.permutation(len(target))[:n]
    projection = {}
    for when, (s, t) in views.items():
        pooled = np.concatenate([s.numpy()[pick_s], t.numpy()[pick_t]])
        pooled = (pooled - pooled.mean(0)) / pooled.std(0).clip(1e-6)
        xy = PCA(2, random_state=seed).fit_transform(pooled).round(3)
        projection[when] = {"source": xy[:n].tolist(), "target": xy[n:].tolist()}
    out["projection"] = projection
    return out


def target_domain_metrics(settings: dict, target: dict | None = None) -> dict:
    """An adapted run's headline on the domain it was adapted to, from the strategy's `settings`
    and the run's target summary (`target`, config.json run.target): with labelled target data the
    kept model's target accuracy, its count and a 95 % Wilson band; without, `accuracy` None and
    why. {} for settings that are not an adaptation's."""
    rows = [r for r in settings.get("candidates") or [] if isinstance(r, dict)]
    kept = next((r for r in rows if r.get("chosen")), None)
    if kept is None:
        return {}
    target = target or {}
    out: dict[str, Any] = {"method": kept.get("method"), "unlabelled": target.get("unlabeled"),
                           "labelled": target.get("labelled")}
    n = int(target.get("labelled_examples") or settings.get("target_labelled") or 0)
    accuracy = kept.get("target_accuracy")
    if accuracy is None or not n:
        return {**out, "accuracy": None, "n": 0,
                "why": "no labelled target data were given (--target-labels), so the target accuracy is unknown"}
    z = 1.96
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {**out, "accuracy": float(accuracy), "n": n, "correct": int(round(accuracy * n)),
            "band": [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]}
