"""The private Faust and aiokafka names streams.engine.faust_hooks relies on still exist, with the
parameters it calls them with: a Faust or aiokafka upgrade that moves one fails here, by name."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from streams.engine import faust_hooks
from streams.engine.faust_hooks import OVERRIDDEN, PRIVATE_NAMES


def assigned_on_instances(cls: type, name: str) -> bool:
    """Whether `cls` or a base declares `name` or assigns `self.<name>` (an instance attribute)."""
    pattern = re.compile(rf"self\.{re.escape(name)}\s*(:|=(?!=))|\b{re.escape(name)}\s*:")
    for klass in cls.__mro__:
        if name in vars(klass) or name in getattr(klass, "__annotations__", {}):
            return True
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if pattern.search(source):
            return True
    return False


def parameters(function: object) -> list[str]:
    if isinstance(function, property):
        function = function.fget
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hook", "owner", "name", "kind", "expected"),
    PRIVATE_NAMES,
    ids=[f"{hook}:{owner.__name__}.{name}" for hook, owner, name, _, _ in PRIVATE_NAMES],
)
def test_each_private_name_a_hook_uses_is_there(
    hook: str, owner: type, name: str, kind: str, expected: list[str]
) -> None:
    where = f"{owner.__module__}.{owner.__qualname__}.{name}"
    assert hasattr(faust_hooks, hook), f"faust_hooks.{hook} is listed in PRIVATE_NAMES but not defined"
    if kind == "attribute":
        assert assigned_on_instances(owner, name), (
            f"faust_hooks.{hook} relies on {where}, which this Faust/aiokafka no longer has: "
            "see what replaced it and change the hook"
        )
        return
    assert callable(getattr(owner, name, None)), (
        f"faust_hooks.{hook} relies on the method {where}, which this Faust/aiokafka no longer has"
    )
    found = parameters(getattr(owner, name))
    assert found[: len(expected)] == list(expected) or set(expected) <= set(found), (
        f"faust_hooks.{hook} calls {where}({', '.join(expected)}), but it now takes ({', '.join(found)})"
    )


@pytest.mark.parametrize(
    "overridden", OVERRIDDEN, ids=[f"{each.owner.__name__}.{each.name}" for each in OVERRIDDEN]
)
def test_each_overridden_method_is_still_the_frameworks(overridden: faust_hooks.Overridden) -> None:
    where = f"{overridden.owner.__module__}.{overridden.owner.__qualname__}.{overridden.name}"
    original = getattr(overridden.owner, overridden.name, None)
    assert original is not None, (
        f"{overridden.by} overrides {where}, which this Faust/aiokafka no longer has: the override"
        " would never be called"
    )
    assert parameters(original) == list(overridden.parameters), (
        f"{overridden.by} overrides {where}({', '.join(overridden.parameters)}), but Faust's now takes"
        f" ({', '.join(parameters(original))})"
    )
    module, _, name = overridden.by.rpartition(".")
    subclass = getattr(importlib.import_module(module), name)
    assert issubclass(subclass, overridden.owner)
    assert overridden.name in vars(subclass), f"{overridden.by} no longer overrides {overridden.name}"


def test_the_guard_sees_a_missing_name() -> None:
    class Bare:
        pass

    assert not assigned_on_instances(Bare, "_acked")


# Faust's and aiokafka's public modules, which any layer may import; every other of their modules
# is an internal that only streams.engine reaches into.
PUBLIC_SUBMODULES = {
    "faust.web",
    "faust.types",
    "aiokafka.errors",
    "aiokafka.structs",
    "aiokafka.admin",
    "aiokafka.partitioner",
}
# Private by name but public by contract (namedtuple's API; argparse's subparsers type, for hints).
PUBLIC_BY_CONTRACT = {"_replace", "_asdict", "_fields", "_SubParsersAction"}
STREAMS = Path(__file__).resolve().parents[2] / "streams"


def outside_the_engine() -> list[Path]:
    return [path for path in sorted(STREAMS.rglob("*.py")) if "engine" not in path.relative_to(STREAMS).parts]


@pytest.mark.parametrize("path", outside_the_engine(), ids=lambda path: str(path.relative_to(STREAMS)))
def test_no_module_outside_the_engine_touches_a_private_framework_name(path: Path) -> None:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            root, _, rest = node.module.partition(".")
            if root in {"faust", "aiokafka", "mode"} and rest and node.module not in PUBLIC_SUBMODULES:
                found.append(f"line {node.lineno}: from {node.module} import ...")
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in PUBLIC_BY_CONTRACT
            and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert not found, (
        f"{path.relative_to(STREAMS.parent)} reaches into a framework's internals; put it behind a"
        f" function in streams/engine/faust_hooks.py: {'; '.join(found)}"
    )
