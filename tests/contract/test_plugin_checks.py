"""`transferkit.testing` checks a plug-in as it checks the packaged entries, and a broken plug-in
fails with a message that names the broken rule."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from transferkit.strategies import STRATEGIES, StrategyInfo, register_strategy
from transferkit.tasks import TASKS, TaskInfo, register_task
from transferkit.testing import (check_fit_save_load_predicts_the_same, check_strategy,
                                 check_strategy_options_have_defaults, check_task_agrees_with_its_registry_entry,
                                 check_task_is_constructible_with_no_arguments, checks_for)

SRC = Path(__file__).resolve().parents[2] / "src" / "transferkit"


@pytest.fixture
def plugins(monkeypatch):
    """Registrations made in the test through the public decorators are undone after it."""
    for registry in (TASKS, STRATEGIES):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))


def _probe_subclass():
    from transferkit.strategies.linear_probe import LinearProbe

    class ShyProbe(LinearProbe):
        """A linear probe published by a plug-in under its own name."""

    return ShyProbe


def test_a_registered_plugin_strategy_passes_every_check(plugins):
    probe = register_strategy("test-probe", StrategyInfo(modalities=("image",)))(_probe_subclass())
    names = [f"{obj}-{check.name}" for obj, check in checks_for(probe)]
    assert names == ["test-probe-strategy_agrees_with_its_registry_entry",
                     "test-probe-strategy_options_have_defaults",
                     "image-classification-test-probe-fit_save_load_predicts_the_same",
                     "image-classification-test-probe-extend_grows_or_refuses_in_one_line"]
    check_strategy("test-probe")  # fits, saves, reloads and extends the image classifier with it


def test_a_strategy_whose_options_lack_a_default_fails_naming_them(plugins):
    probe = _probe_subclass()

    @dataclasses.dataclass
    class Options:
        width: int
        depth: int = 2

    probe.Options = Options
    register_strategy("test-probe", StrategyInfo(modalities=("image",)))(probe)
    with pytest.raises(AssertionError, match=r"^test-probe options without a default: \['width'\]$"):
        check_strategy_options_have_defaults("test-probe")


def test_a_strategy_for_a_modality_no_task_reads_fails(plugins):
    register_strategy("test-probe", StrategyInfo(modalities=("audio",)))(_probe_subclass())
    with pytest.raises(AssertionError, match=r"test-probe: StrategyInfo.modalities \('audio',\) must name some of"):
        check_strategy("test-probe")


def _forgetful_classifier():
    """An image classifier whose `save` loses its `image_size` (a plug-in's bug)."""
    from transferkit.tasks import ImageClassifier

    class Forgetful(ImageClassifier):
        task = "test-forgetful"

        def config(self) -> dict:
            config = super().config()
            del config["params"]["image_size"]
            return config

    return Forgetful


def test_a_task_whose_save_loses_a_parameter_fails_the_round_trip_check(plugins):
    forgetful = register_task("test-forgetful", TaskInfo(modality="image"))(_forgetful_classifier())
    check_task_agrees_with_its_registry_entry(forgetful)
    check_task_is_constructible_with_no_arguments(forgetful)
    with pytest.raises(AssertionError) as failed:
        check_fit_save_load_predicts_the_same(forgetful, "linear-probe")
    assert str(failed.value) == ("test-forgetful with linear-probe: save → load changed params ['image_size']: "
                                 "{'image_size': (32, None)} (saved, loaded)")


def test_an_unregistered_or_misnamed_task_fails_saying_how_to_register(plugins):
    forgetful = _forgetful_classifier()
    with pytest.raises(AssertionError, match=r"Forgetful is not registered as task 'test-forgetful': decorate it "
                                             r"with @register_task\('test-forgetful', \.\.\.\)"):
        check_task_agrees_with_its_registry_entry(forgetful)
    register_task("test-forgotten", TaskInfo(modality="image"))(forgetful)
    with pytest.raises(AssertionError, match=r"^Forgetful.task = 'test-forgetful', registered as 'test-forgotten'$"):
        check_task_agrees_with_its_registry_entry("test-forgotten")


def test_the_package_needs_no_pytest_and_nothing_in_transferkit_imports_it():
    script = ("import sys; sys.modules['pytest'] = None; import transferkit.testing, transferkit.cli; "
              "from transferkit.testing import check_task")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    importers = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if "testing" not in p.relative_to(SRC).parts
                 and any(token in p.read_text() for token in ("transferkit.testing", "from ..testing", "from .testing"))]
    assert not importers, f"modules in src/ import transferkit.testing: {importers}"
