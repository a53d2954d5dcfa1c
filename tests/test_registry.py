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
