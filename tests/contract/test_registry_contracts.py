"""Every registered strategy and task agrees with its registry entry and is constructible with no
arguments (scikit-learn's `check_parameters_default_constructible`)."""
from __future__ import annotations

import dataclasses
import inspect

import pytest

from transferkit.strategies import STRATEGIES, Strategy, create_strategy
from transferkit.tasks import TASKS, TransferEstimator

from .conftest import MODALITIES, strategy_modalities, task_modality


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_strategy_class_agrees_with_its_registry_entry(name):
    cls = STRATEGIES.get(name)
    assert issubclass(cls, Strategy)
    assert cls.name == name
    modalities = strategy_modalities(name)
    assert modalities and set(modalities) <= set(MODALITIES), modalities


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_strategy_options_all_have_defaults(name):
    options = STRATEGIES.get(name).Options
    if options is not None:
        assert dataclasses.is_dataclass(options)
        missing = [f.name for f in dataclasses.fields(options)
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        assert not missing, f"{name} options without a default: {missing}"
    assert isinstance(create_strategy(name), Strategy)


@pytest.mark.parametrize("name", TASKS.names())
def test_task_class_agrees_with_its_registry_entry(name):
    cls = TASKS.get(name)
    assert issubclass(cls, TransferEstimator)
    assert cls.task == name
    assert cls.modality == task_modality(name) and cls.modality in MODALITIES


@pytest.mark.parametrize("name", TASKS.names())
def test_task_is_constructible_with_no_arguments(name):
    cls = TASKS.get(name)
    signature = inspect.signature(cls)
    missing = [p for p in cls._get_param_names() if signature.parameters[p].default is inspect.Parameter.empty]
    assert not missing, f"{name} params without a default: {missing}"
    estimator = cls()
    defaults = {p: signature.parameters[p].default for p in cls._get_param_names()}
    # the constructor only stores its arguments: get_params returns the declared defaults unchanged
    assert estimator.get_params() == defaults
