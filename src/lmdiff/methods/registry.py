"""The method registry: built-in methods register on import; third-party ones via entry points.

A new method is one module in ``lmdiff/methods/`` whose class carries ``@register_method``;
packages outside lmdiff declare an entry point in the group ``lmdiff.methods`` (importing it registers
the method). :data:`METHODS` is the :class:`~lmdiff.registry.Registry`; the functions below are thin
wrappers over it.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, TypeVar

from lmdiff.methods.base import DiffMethod
from lmdiff.registry import Registry

M = TypeVar("M", bound=type[DiffMethod[Any]])


def _import_builtin_methods() -> None:
    import lmdiff.methods as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in ("base", "registry") and not info.name.startswith("_"):
            importlib.import_module(f"lmdiff.methods.{info.name}")


METHODS: Registry[type[DiffMethod[Any]]] = Registry(
    "method",
    group="lmdiff.methods",
    discover=_import_builtin_methods,
    name_pattern=r"[a-z0-9_]*[a-z0-9][a-z0-9_]*",
    name_rule="be lowercase letters, digits and '_'",
)


def register_method(cls: M) -> M:
    """Class decorator: register a :class:`DiffMethod` under ``cls.name``.

    Raises:
        ValueError: The name is not lowercase letters, digits and '_', or another class has it.
    """
    name = getattr(cls, "name", None)
    METHODS.check_name(name)
    METHODS.register(str(name), cls, stacklevel=2)
    return cls


def available_methods() -> dict[str, type[DiffMethod[Any]]]:
    """All registered methods by name."""
    return dict(sorted(METHODS.items()))


def get_method(name: str) -> type[DiffMethod[Any]]:
    """The method class called ``name``, or a ConfigError listing the known ones."""
    return METHODS.get(name)
