"""`parametrize_with_checks`: one pytest case per (object, check), as scikit-learn's decorator of that name."""
from __future__ import annotations

from typing import Any, Callable, Iterable

from .checks import checks_for


def parametrize_with_checks(objects: Iterable[str | type]) -> Callable[[Callable], Callable]:
    """A `pytest.mark.parametrize` over every check of each task, strategy or backbone in `objects`
    (registered names or classes), for a test written as::

        @parametrize_with_checks(["my-task", MyStrategy])
        def test_my_plugin(obj, check):
            check(obj)

    A task × strategy fit listed from both sides (the task and the strategy are both given) is one
    case. Case ids read `NAME-CHECK`. pytest is imported here only: the package never needs it."""
    import pytest

    seen: set[tuple[str, Any]] = set()
    cases = []
    for obj in objects:
        for name, check in checks_for(obj):
            if (name, check) not in seen:
                seen.add((name, check))
                cases.append(pytest.param(name, check, id=f"{name}-{check.name}"))
    return pytest.mark.parametrize(("obj", "check"), cases)
