"""Tools per method family, and the run files each family's tools read.

A family names the diff methods whose run directory its agent reads (``diff_methods``), builds its
tools over an :class:`~lmdiff.agents.tools.common.AgentContext`, and lists every ``(method, file)`` its
tools read (``reads``, the methods' own file-name constants) so a test can check that a real run writes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from inspect_ai.tool import Tool

from lmdiff.agents.tools import adl, behavior, dictionaries, kl, probing
from lmdiff.agents.tools.common import AgentContext, common_tools


@dataclass(frozen=True)
class Family:
    """One agent: its method tools, the diff methods it needs and the files its tools read."""

    name: str
    description: str
    diff_methods: tuple[str, ...]
    method_tools: Callable[[AgentContext], list[Tool]] | None
    reads: tuple[tuple[str, str], ...]



FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("adl", "Activation Difference Lens: overview, then lens, patchscope and steering", ("adl",),
               adl.adl_tools, adl.READS),
        Family("kl", "per-token KL: top tokens and the texts where the models disagree most", ("kl",),
               kl.kl_tools, kl.READS),
        Family("behavior", "behaviour pipeline: validated hypotheses and reply clusters", ("behavior",),
               behavior.behavior_tools, behavior.READS),
        Family("probing", "knowledge probing: accuracy per relation and changed answers", ("probing",),
               probing.probing_tools, probing.READS),
        Family("dictionaries", "difference dictionaries: units and their steering", ("pca",),
               dictionaries.dictionary_tools, dictionaries.READS),
        Family("blackbox", "black box: only asks either model (budgeted)", (), None, ()),
    )
}


def tools_for(family: str, ctx: AgentContext) -> list[Tool]:
    """The tools of ``family``'s agent: its method tools, then ``ask_model``, the board and ``submit``.

    Raises:
        KeyError: Unknown family.
    """
    fam = FAMILIES[family]
    return [*(fam.method_tools(ctx) if fam.method_tools else []), *common_tools(ctx)]


__all__ = ["FAMILIES", "AgentContext", "Family", "tools_for"]
