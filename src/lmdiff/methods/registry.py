"""The method registry: built-in methods register on import; third-party ones via entry points.

A new method is one module in ``lmdiff/methods/`` whose class carries ``@register_method``;
packages outside lmdiff declare an entry point in the group ``lmdiff.methods``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import pkgutil
from typing import TypeVar

from lmdiff.errors import ConfigError
from lmdiff.methods.base import DiffMethod

log = logging.getLogger(__name__)
_REGISTRY: dict[str, type[DiffMethod]] = {}
_DISCOVERED = False
M = TypeVar("M", bound=type[DiffMethod])


def register_method(cls: M) -> M:
    """Class decorator: register a :class:`DiffMethod` under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"method name must be lowercase letters, digits and '_': {name!r}")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
        raise ValueError(f"method '{name}' is registered twice ({existing.__module__}, {cls.__module__})")
    _REGISTRY[name] = cls
    return cls


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    import lmdiff.methods as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in ("base", "registry") and not info.name.startswith("_"):
            importlib.import_module(f"lmdiff.methods.{info.name}")
    for ep in importlib.metadata.entry_points(group="lmdiff.methods"):
        try:
            ep.load()
        except Exception as err:
            log.warning("could not load lmdiff method plugin %s: %s", ep.name, err)
    _DISCOVERED = True


def available_methods() -> dict[str, type[DiffMethod]]:
    """All registered methods by name."""
    _discover()
    return dict(sorted(_REGISTRY.items()))


def get_method(name: str) -> type[DiffMethod]:
    """The method class called ``name``, or a ConfigError listing the known ones."""
    methods = available_methods()
    if name not in methods:
        raise ConfigError(f"Unknown method '{name}'.", hint=f"available methods: {', '.join(methods)}")
    return methods[name]
