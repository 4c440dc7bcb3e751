"""A scripted agent for Inspect's mock model: exercises the loop, the tools and the grader without a key.

It calls each of its family's tools that need no argument (``ask_model`` once, when present), writes a note
on the board and submits a guess taken from the first tool result, so a run without an LLM still goes
through real tool calls, the budget, the scorer and the Inspect log. It is a protocol check, not an auditor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inspect_ai.model import ChatMessage, ChatMessageTool, GenerateConfig, ModelOutput, ModelUsage
from inspect_ai.tool import ToolChoice, ToolInfo

#: Tokens each scripted turn reports (mockllm would otherwise count them with a tokenizer download).
TURN_TOKENS = 50


def _reply(tool: str, args: dict[str, Any]) -> ModelOutput:
    out = ModelOutput.for_tool_call("mockllm", tool, args)
    out.usage = ModelUsage(input_tokens=TURN_TOKENS - 10, output_tokens=10, total_tokens=TURN_TOKENS)
    return out


def scripted_agent() -> Callable[[list[ChatMessage], list[ToolInfo], ToolChoice, GenerateConfig], ModelOutput]:
    """A mockllm ``custom_outputs`` callable: one tool call per turn, then ``submit``."""

    def policy(messages: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice,
               config: GenerateConfig) -> ModelOutput:
        used = {m.function for m in messages if isinstance(m, ChatMessageTool) and m.function}
        plan: list[tuple[str, dict[str, Any]]] = []
        for t in tools:
            if t.name in {"submit", "board_add", "board_update", "board_view"}:
                continue
            if t.name == "ask_model":
                plan.append((t.name, {"model": "finetuned", "prompt": "Tell me about your favourite topic."}))
            elif not t.parameters.required:
                plan.append((t.name, {}))
        for name, args in plan:
            if name not in used:
                return _reply(name, args)
        results = [m.text for m in messages if isinstance(m, ChatMessageTool) and m.text]
        first = next((line for r in results for line in r.splitlines() if line.strip()), "no evidence")
        if "board_add" not in used:
            return _reply("board_add", {"hypothesis": f"(scripted) evidence: {first[:200]}", "confidence": 0.1})
        return _reply("submit", {"guesses": [f"(scripted mock agent) {first[:200]}"]})

    return policy
