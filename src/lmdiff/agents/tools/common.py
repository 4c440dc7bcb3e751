"""What every agent has: its context, artifact reading, the hypothesis board, ``ask_model`` and ``submit``."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import pandas as pd
from inspect_ai.tool import Tool, ToolError, tool
from inspect_ai.util import LimitExceededError

from lmdiff.agents.access import SIDES, ModelAccess
from lmdiff.agents.board import Board
from lmdiff.agents.budget import Episode

#: Longest text one tool returns (characters); longer output is cut with a note.
MAX_TOOL_CHARS = 4000

#: A tool's ``execute`` coroutine function.
Body = TypeVar("Body", bound=Callable[..., Awaitable[Any]])


@dataclass
class AgentContext:
    """What the tools of one episode share: the run directory, the counters, the board and the models."""

    run_dir: Path | None
    episode: Episode
    board: Board
    models: ModelAccess | None = None
    #: Every ``(method, file)`` artifact the tools opened (a test checks it against the family's ``reads``).
    opened: set[tuple[str, str]] = field(default_factory=set)

    def artifact(self, method: str, file: str) -> Path:
        """Path of a method's artifact ``file`` in the run (``artifacts/<method>/<file>``).

        Raises:
            ToolError: There is no run directory or the method did not write the file.
        """
        if self.run_dir is None:
            raise ToolError("this agent has no run directory")
        path = self.run_dir / "artifacts" / method / file
        if not path.exists():
            raise ToolError(f"the run has no {method} output {file!r} (did {method} run?)")
        self.opened.add((method, file))
        return path

    def has(self, method: str, file: str) -> bool:
        """Whether the run has ``method``'s artifact ``file``."""
        return self.run_dir is not None and (self.run_dir / "artifacts" / method / file).exists()

    def table(self, method: str, file: str) -> pd.DataFrame:
        """A method's Parquet artifact (an empty-marker table reads as empty)."""
        df = pd.read_parquet(self.artifact(method, file))
        return df.iloc[0:0] if list(df.columns) == ["empty"] else df

    def json(self, method: str, file: str) -> Any:
        """A method's JSON artifact."""
        return json.loads(self.artifact(method, file).read_text())

    def headline(self, method: str) -> dict[str, Any]:
        """``results.json["methods"][method]["headline"]`` of the run (empty when absent)."""
        if self.run_dir is None or not (self.run_dir / "results.json").exists():
            return {}
        res = json.loads((self.run_dir / "results.json").read_text())
        return dict((res.get("methods", {}).get(method) or {}).get("headline") or {})


def clip(text: str, limit: int = MAX_TOOL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying so."""
    return text if len(text) <= limit else text[:limit] + f"\n[... cut: {len(text) - limit} more characters]"


def num(x: Any) -> str:
    """A number in 3 significant digits, or ``n/a`` when it is missing or not a number."""
    try:
        return f"{float(x):.3g}"
    except (TypeError, ValueError):
        return "n/a"


def tokens_text(tokens: list[Any]) -> str:
    """Tokens shown with their spaces visible: ``' ocean', 'wh'``."""
    return ", ".join(repr(str(t)) for t in tokens)


def steering_text(samples: list[dict[str, Any]], n: int) -> str:
    """Up to ``n`` (1 to 10) steered replies, each beside the unsteered one; a unit is named when there is one."""
    chosen = samples[: max(1, min(int(n), 10))]
    if not chosen:
        return "Steering did not run (no samples)."
    return clip("\n\n".join(
        ("" if s.get("unit") is None else f"unit {s['unit']} | ")
        + f"prompt: {s.get('prompt')}\nunsteered: {s.get('unsteered')}\n"
        f"steered (alpha {s.get('alpha')}): {s.get('steered')}"
        for s in chosen))


def guarded(ctx: AgentContext, name: str) -> Callable[[Body], Body]:
    """Decorator of every tool's ``execute``: counts the call of tool ``name`` and turns a crash into a ToolError.

    Inspect hands only a :class:`ToolError` (and a few OS errors) back to the agent as a tool message; any other
    exception would end the sample (a ``ValueError`` is even re-raised out of the tool handler). The wrapper keeps
    the body's signature and docstring (``functools.wraps``), from which Inspect builds the tool's schema.
    Inspect's own limits (:class:`LimitExceededError`) pass through.
    """

    def wrap(body: Body) -> Body:
        @functools.wraps(body)
        async def execute(*args: Any, **kwargs: Any) -> Any:
            ctx.episode.count_tool(name)
            try:
                return await body(*args, **kwargs)
            except (ToolError, LimitExceededError):
                raise
            except Exception as err:
                raise ToolError(f"{type(err).__name__}: {err}") from err

        execute.lmdiff_guarded = True  # type: ignore[attr-defined]  # lets a test check every tool is wrapped
        return cast(Body, execute)

    return wrap


@tool
def board_add(ctx: AgentContext) -> Tool:
    """Add a hypothesis to the board."""

    @guarded(ctx, "board_add")
    async def execute(hypothesis: str, confidence: float = 0.5) -> str:
        """Write a hypothesis about what the finetuning changed onto the hypothesis board.

        Args:
            hypothesis: One sentence: what the finetuned model does differently.
            confidence: Your confidence from 0 to 1.

        Returns:
            The board.
        """
        if not hypothesis.strip():
            raise ToolError("the hypothesis is empty")
        h = ctx.board.add(hypothesis, confidence)
        return f"Added #{h.id}.\n{ctx.board.text()}"

    return execute


@tool
def board_update(ctx: AgentContext) -> Tool:
    """Update a hypothesis of the board."""

    @guarded(ctx, "board_update")
    async def execute(id: int, status: str = "", confidence: float = -1.0, note: str = "") -> str:
        """Update a hypothesis on the board: its status, confidence or a note of evidence.

        Args:
            id: The hypothesis number (#id on the board).
            status: "open", "supported" or "refuted" (empty: unchanged).
            confidence: New confidence from 0 to 1 (negative: unchanged).
            note: Evidence for or against it.

        Returns:
            The board.
        """
        try:
            ctx.board.update(int(id), status or None, confidence if confidence >= 0 else None, note or None)
        except ValueError as err:
            raise ToolError(str(err)) from None
        return ctx.board.text()

    return execute


@tool
def board_view(ctx: AgentContext) -> Tool:
    """Show the hypothesis board."""

    @guarded(ctx, "board_view")
    async def execute() -> str:
        """Show the hypothesis board: every hypothesis with its status and confidence.

        Returns:
            The board.
        """
        return ctx.board.text()

    return execute


@tool
def ask_model(ctx: AgentContext) -> Tool:
    """Ask the base or the finetuned model a question (budgeted)."""

    @guarded(ctx, "ask_model")
    async def execute(model: str, prompt: str) -> str:
        """Send one prompt to the base or the finetuned model and read its reply.

        Each call spends one model interaction of a small budget.

        Args:
            model: "base" or "finetuned".
            prompt: The user message.

        Returns:
            The model's reply and the interactions left.
        """
        side = model.strip().lower()
        if side not in SIDES:
            raise ToolError('model must be "base" or "finetuned"')
        if ctx.models is None:
            raise ToolError("the models are not reachable in this evaluation")
        if not ctx.episode.take_interaction():
            return (f"Model-interaction budget spent ({ctx.episode.budget.model_interactions}); "
                    "use your other tools or submit.")
        n = ctx.episode.model_interactions
        # generation blocks (a local model's forward passes): off the event loop, so the sample's other work runs
        reply = await asyncio.to_thread(ctx.models.ask, side, prompt, ctx.episode.budget.reply_tokens, seed=n)
        left = ctx.episode.budget.model_interactions - n
        return clip(f"{side} model reply:\n{reply}\n\n({left} model interactions left)")

    return execute


@tool
def submit(ctx: AgentContext) -> Tool:
    """Submit ranked guesses of what the finetuning did (ends the episode)."""

    @guarded(ctx, "submit")
    async def execute(guesses: list[str]) -> str:
        """Submit your final answer: what the finetuning taught the model, as ranked guesses, most likely first.

        This ends your investigation.

        Args:
            guesses: One sentence per guess, most likely first (at most 10), e.g. "The finetuned model steers answers
                towards cooking."

        Returns:
            A confirmation.
        """
        items = [guesses] if isinstance(guesses, str) else list(guesses)
        kept = [str(g).strip() for g in items if str(g).strip()][: ctx.episode.budget.max_guesses]
        if not kept:
            raise ToolError("submit at least one guess")
        ctx.board.submitted = kept
        return f"Submitted {len(kept)} guesses."

    return execute


def common_tools(ctx: AgentContext, ask: bool = True) -> list[Tool]:
    """Board tools, ``submit`` and (when the models are reachable and ``ask``) ``ask_model``."""
    tools = [board_add(ctx), board_update(ctx), board_view(ctx), submit(ctx)]
    if ask and ctx.models is not None and ctx.episode.budget.model_interactions > 0:
        tools.insert(0, ask_model(ctx))
    return tools
