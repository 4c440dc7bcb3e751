"""One generic registry for everything lmdiff looks up by name.

Methods, LLM roles, corpora, organism recipes, shipped models and model-name prefixes are each a
:class:`Registry`: entries are registered under a name (directly or with the decorator form), looked up
with :meth:`Registry.get` (a :class:`~lmdiff.errors.ConfigError` listing the known names when unknown), and
listed with :meth:`Registry.names` / :meth:`Registry.items`. A registry may discover its built-in entries
lazily (a callable that imports the modules registering them) and loads third-party plugins from its
entry-point group (``lmdiff.methods``, ``lmdiff.organisms``, ...) on first use; a plugin that fails to
load is skipped with a warning naming it::

    CORPORA: Registry[CorpusSource] = Registry("corpus", plural="corpora", group="lmdiff.corpora")

    @CORPORA.register("generic")
    def _generic(request): ...

This module sits at the bottom layer: it imports only the standard library and :mod:`lmdiff.errors`.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import sys
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

from lmdiff.errors import ConfigError

T = TypeVar("T")
E = TypeVar("E")

log = logging.getLogger(__name__)


class _Missing:
    """Marks ``register(name)`` called without an entry (the decorator form)."""


_MISSING = _Missing()


def describe_entry(entry: object, registered_from: str | None = None) -> str:
    """Name an entry for messages: ``module.qualname`` of a class or function, else its type and origin.

    Args:
        entry: The registered object.
        registered_from: The module that registered it (used for instances, which have no qualname).

    Returns:
        A short description, e.g. ``lmdiff.methods.kl.KLMethod``.
    """
    module = getattr(entry, "__module__", None)
    qualname = getattr(entry, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    kind = f"{type(entry).__module__}.{type(entry).__qualname__}"
    return f"{kind} instance registered from {registered_from}" if registered_from else f"{kind} instance"


def _caller_module(stacklevel: int) -> str | None:
    """The ``__name__`` of the module ``stacklevel`` frames above the caller of this function."""
    try:
        frame = sys._getframe(stacklevel + 1)
    except ValueError:
        return None
    name = frame.f_globals.get("__name__")
    return name if isinstance(name, str) else None


class Registry(Generic[T]):
    """Named entries of one kind, with lazy built-in discovery and entry-point plugins.

    Attributes:
        kind: What an entry is, for messages (``"method"``, ``"LLM role"``, ...).
        plural: The plural of ``kind`` (``"corpora"``).
        group: The entry-point group whose plugins are loaded on first use, or None.
    """

    def __init__(
        self,
        kind: str,
        *,
        plural: str | None = None,
        group: str | None = None,
        discover: Callable[[], object] | None = None,
        name_pattern: str | None = None,
        name_rule: str | None = None,
    ) -> None:
        """Create an empty registry.

        Args:
            kind: What an entry is, used in messages.
            plural: Plural of ``kind`` (default: ``kind + "s"``).
            group: Entry-point group of third-party plugins; each is loaded (imported) once, on first
                lookup, and is expected to register its entries when imported.
            discover: Called once, on first lookup, to import the modules that register built-in entries.
            name_pattern: A regular expression every name must match in full.
            name_rule: The rule ``name_pattern`` states, in words (for the error message).
        """
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.group = group
        self._discover = discover
        self._pattern = re.compile(name_pattern) if name_pattern else None
        self._rule = name_rule or (f"match {name_pattern}" if name_pattern else "")
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}
        self._discovered = discover is None and group is None

    # ------------------------------------------------------------------ registering
    @overload
    def register(self, name: str) -> Callable[[E], E]: ...

    @overload
    def register(self, name: str, entry: T, *, replace: bool = False, stacklevel: int = 1) -> T: ...

    def register(
        self, name: str, entry: T | _Missing = _MISSING, *, replace: bool = False, stacklevel: int = 1
    ) -> T | Callable[[E], E]:
        """Register ``entry`` under ``name``; without an entry, return a decorator that registers its target.

        Registering the very same object again is a no-op (a module imported twice); another object
        under a taken name is an error naming both.

        Args:
            name: The name.
            entry: The entry (omit it to use the decorator form: ``@REGISTRY.register("name")``).
            replace: Replace an existing entry instead of failing.
            stacklevel: Frames above the caller that did the registering (for the error message of
                entries without a qualname); wrappers around ``register`` pass 2.

        Returns:
            The entry (or the decorator).

        Raises:
            ValueError: The name is invalid, or taken by another entry and ``replace`` is False.
        """
        if isinstance(entry, _Missing):

            def decorator(target: E) -> E:
                self.register(name, target, replace=replace, stacklevel=2)  # type: ignore[arg-type]
                return target

            return decorator
        self.check_name(name)
        origin = describe_entry(entry, _caller_module(stacklevel))
        existing = self._entries.get(name, _MISSING)
        if not isinstance(existing, _Missing) and existing is not entry and not replace:
            raise ValueError(
                f"{self.kind} '{name}' is registered twice: by {self._origins[name]} and by {origin}; "
                f"rename one of them"
            )
        if existing is not entry:
            self._entries[name] = entry
            self._origins[name] = origin
        return entry

    def check_name(self, name: object) -> None:
        """Raise ValueError unless ``name`` is a valid name in this registry."""
        if not isinstance(name, str) or not name or (self._pattern is not None and not self._pattern.fullmatch(name)):
            rule = self._rule or "be a non-empty string"
            raise ValueError(f"{self.kind} name must {rule}: {name!r}")

    def remove(self, name: str) -> T:
        """Remove and return the entry ``name`` (for tests and plugins that withdraw an entry).

        Raises:
            ConfigError: No such entry.
        """
        entry = self.get(name)
        del self._entries[name]
        del self._origins[name]
        return entry

    def origin(self, name: str) -> str:
        """Where the entry ``name`` comes from (``module.qualname``, see :func:`describe_entry`)."""
        self.get(name)
        return self._origins[name]

    # ------------------------------------------------------------------ discovery
    def _ensure_discovered(self) -> None:
        if self._discovered:
            return
        self._discovered = True  # set first: the imports below register entries and may look names up
        try:
            if self._discover is not None:
                self._discover()
        except BaseException:
            self._discovered = False
            raise
        if self.group is not None:
            self._load_plugins(self.group)

    def _load_plugins(self, group: str) -> None:
        for ep in importlib.metadata.entry_points(group=group):
            try:
                ep.load()
            except Exception as err:
                log.warning("could not load lmdiff %s plugin '%s' (%s): %s", self.kind, ep.name, ep.value, err)

    # ------------------------------------------------------------------ lookups
    def get(self, name: str) -> T:
        """The entry called ``name``.

        Raises:
            ConfigError: No such entry (the hint lists the known names).
        """
        self._ensure_discovered()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise ConfigError(f"Unknown {self.kind} '{name}'.", hint=f"known {self.plural}: {known}") from None

    def find(self, name: str) -> T | None:
        """The entry called ``name``, or None."""
        self._ensure_discovered()
        return self._entries.get(name)

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        self._ensure_discovered()
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs, in registration order."""
        self._ensure_discovered()
        return list(self._entries.items())

    def values(self) -> list[T]:
        """The entries, in registration order."""
        self._ensure_discovered()
        return list(self._entries.values())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        self._ensure_discovered()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ensure_discovered()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"
