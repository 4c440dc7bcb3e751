"""Budgets of one agent episode: LLM calls, tokens and interactions with the models under study."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AgentBudget(BaseModel):
    """What one agent episode (one organism x repeat) may spend.

    Attributes:
        llm_calls: Agent turns (calls to the agent's LLM) at most; the last turn asks it to submit.
        tokens: Tokens (input + output, as the provider reports them; estimated at 4 characters per token when
            it reports none) at most: a call starts only when its estimated prompt leaves room for a reply,
            and its reply is capped (``max_tokens``) at that room. Only a prompt the provider counts larger
            than the estimate can take the spend past it.
        model_interactions: Generations from the base or finetuned model (``ask_model``) at most.
        reply_tokens: Length bound of one such generation.
        max_guesses: Ranked guesses a submission keeps (acc@k is graded up to this k).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    llm_calls: int = Field(12, ge=1)
    tokens: int = Field(60_000, ge=1)
    model_interactions: int = Field(10, ge=0)
    reply_tokens: int = Field(96, ge=1)
    max_guesses: int = Field(10, ge=1)


@dataclass
class Episode:
    """Running counters of one episode against its budget (what the log records as ``budget``)."""

    budget: AgentBudget
    llm_calls: int = 0
    tokens: int = 0
    model_interactions: int = 0
    tool_calls: int = 0
    tools_used: dict[str, int] = field(default_factory=dict)
    stop_reason: str = ""

    def can_call_llm(self) -> bool:
        """Whether another agent turn fits the LLM-call and token budgets (sets ``stop_reason`` if not)."""
        if self.llm_calls >= self.budget.llm_calls:
            self.stop_reason = self.stop_reason or f"LLM-call budget spent ({self.budget.llm_calls})"
            return False
        if self.tokens >= self.budget.tokens:
            self.stop_reason = self.stop_reason or f"token budget spent ({self.tokens} of {self.budget.tokens})"
            return False
        return True

    def output_room(self, prompt_tokens: int) -> int | None:
        """Reply tokens the token budget leaves after a prompt of ``prompt_tokens``.

        None (and ``stop_reason`` set) when not even one is left.
        """
        room = self.budget.tokens - self.tokens - prompt_tokens
        if room < 1:
            self.stop_reason = self.stop_reason or (f"token budget spent ({self.tokens} of {self.budget.tokens}, "
                                                    f"the next prompt about {prompt_tokens})")
            return None
        return room

    def take_interaction(self) -> bool:
        """Count one generation from a model under study; False (nothing counted) when the budget is spent."""
        if self.model_interactions >= self.budget.model_interactions:
            return False
        self.model_interactions += 1
        return True

    def count_tool(self, name: str) -> None:
        """Count one tool call."""
        self.tool_calls += 1
        self.tools_used[name] = self.tools_used.get(name, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        """Spend next to the budget, for the log's sample metadata."""
        return {"llm_calls": self.llm_calls, "tokens": self.tokens, "model_interactions": self.model_interactions,
                "tool_calls": self.tool_calls, "tools_used": dict(self.tools_used), "stop_reason": self.stop_reason,
                "budget": self.budget.model_dump()}
