import warnings

import pytest

from transferkit._registry import Registry
from transferkit.errors import UnknownNameError


def test_register_get_and_wildcard_listing():
    reg: Registry = Registry("thing")
    reg.register("alpha_one", "first")(1)
    reg.register("alpha_two")(2)
    reg.register("beta")(3)
    assert reg.get("alpha_two") == 2
    assert reg.names("alpha*") == ["alpha_one", "alpha_two"]
    assert reg.entry("alpha_one").description == "first"
    assert "beta" in reg and len(reg) == 3


def test_unknown_name_suggests_close_matches():
    reg: Registry = Registry("thing")
    reg.register("efficientnet")(1)
    with pytest.raises(UnknownNameError, match="Did you mean efficientnet"):
        reg.get("efficientnt")


def test_registering_twice_warns_and_replaces():
    reg: Registry = Registry("thing")
    reg.register("x")(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg.register("x")(2)
    assert any("registered twice" in str(w.message) for w in caught)
    assert reg.get("x") == 2


def test_declared_entry_imports_its_target_on_first_use():
    reg: Registry = Registry("thing")
    reg.declare("dec", "json:dumps", "declared", kind="light")
    entry = reg.entry("dec")
    assert not entry.loaded and entry.description == "declared" and entry.meta == {"kind": "light"}
    import json

    assert reg.get("dec") is json.dumps and entry.loaded


def test_unknown_name_points_to_the_plural_list_command():
    reg: Registry = Registry("strategy", plural="strategies")
    with pytest.raises(UnknownNameError, match="transferkit list strategies`"):
        reg.get("nope")


def test_every_declared_entry_loads_and_agrees_with_its_object():
    """A declaration that names a missing attribute, or a strategy whose class says another name,
    is caught the day it is declared."""
    from transferkit.backbones import BACKBONES
    from transferkit.selection import SCORES
    from transferkit.strategies import STRATEGIES
    from transferkit.strategies.auto import MAX_PER_CLASS_FOR_SETFIT, MIN_PER_CLASS_TO_FINE_TUNE
    from transferkit.tasks import TASKS

    for registry in (BACKBONES, SCORES, STRATEGIES, TASKS):
        for entry in registry.entries():
            assert callable(entry.obj), entry
    for entry in STRATEGIES.entries():
        assert entry.obj.name == entry.name
    for entry in TASKS.entries():
        assert entry.obj.task == entry.name
    auto = STRATEGIES.entry("auto").description
    assert f"≤{MAX_PER_CLASS_FOR_SETFIT} " in auto and f"<{MIN_PER_CLASS_TO_FINE_TUNE} " in auto
