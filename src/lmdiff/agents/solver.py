"""The agent loop: the agent's LLM calls tools until it submits or a budget is spent.

Written on Inspect's model and tool layer (``get_model().generate`` with tools, ``execute_tools``) rather
than a stock agent, so that the three budgets bind exactly: no LLM call starts past the call or token
budget, each call's reply is capped (``max_tokens``) at what the token budget leaves after its prompt,
``ask_model`` refuses past the model-interaction budget, and the last turn asks for ``submit``.
The episode's spend, the board and the submitted guesses go into the sample's metadata (the Inspect log).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    ModelOutput,
    execute_tools,
    get_model,
)
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.tool import Tool, ToolDef

from lmdiff.agents.access import ModelAccess
from lmdiff.agents.board import Board
from lmdiff.agents.budget import AgentBudget, Episode
from lmdiff.agents.prompts import LAST_TURN, NO_TOOL, system_prompt
from lmdiff.agents.tools import AgentContext, tools_for
from lmdiff.llm.client import CHARS_PER_TOKEN, estimate_tokens

#: Builds the model access of one sample from its metadata (None: the agent cannot ask the models).
AccessFactory = Callable[[dict[str, object]], ModelAccess | None]


def tool_schema_chars(tools: list[Tool]) -> int:
    """Characters of the tools' JSON schemas, which every call sends with the prompt."""
    return sum(len(json.dumps({"name": d.name, "description": d.description,
                               "parameters": d.parameters.model_dump(exclude_none=True)}))
               for d in (ToolDef(t) for t in tools))


def prompt_tokens(messages: list[ChatMessage], schema_chars: int = 0) -> int:
    """Estimated input tokens of one call: the messages (texts and tool-call arguments) and the tool schemas."""
    chars = schema_chars
    for m in messages:
        chars += len(m.text)
        if isinstance(m, ChatMessageAssistant):
            chars += sum(len(json.dumps(c.arguments)) + len(c.function) for c in m.tool_calls or [])
    return -(-chars // CHARS_PER_TOKEN)  # rounded up


def spent_tokens(output: ModelOutput, prompt: int) -> int:
    """Tokens one call spent: the provider's count, else ``prompt`` plus an estimate of the reply.

    A provider that reports no usage (or zero) still spends the budget, at 4 characters per token.
    """
    if output.usage is not None and output.usage.total_tokens:
        return int(output.usage.total_tokens)
    reply = output.message.text + "".join(json.dumps(c.arguments) for c in output.message.tool_calls or [])
    return prompt + (estimate_tokens(reply) if reply else 0)


@solver
def agent_loop(family: str, budget: AgentBudget, access: AccessFactory | None = None) -> Solver:
    """An agent with ``family``'s tools, bounded by ``budget``.

    Args:
        family: A key of :data:`lmdiff.agents.tools.FAMILIES`.
        budget: LLM calls, tokens and model interactions of one episode.
        access: Builds the models an ``ask_model`` call reaches, per sample (None: no ``ask_model``).
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        meta = dict(state.metadata or {})
        run_dir = meta.get("run_dir")
        episode = Episode(budget)
        ctx = AgentContext(run_dir=Path(str(run_dir)) if run_dir else None, episode=episode, board=Board(),
                           models=access(meta) if access is not None else None)
        tools = tools_for(family, ctx)
        can_ask = ctx.models is not None and budget.model_interactions > 0
        state.tools = tools
        state.messages = [ChatMessageSystem(content=system_prompt(family, budget, can_ask)),
                          ChatMessageUser(content=state.input_text)]
        model = get_model()
        schema_chars = tool_schema_chars(tools)
        while ctx.board.submitted is None and episode.can_call_llm():
            if episode.llm_calls == budget.llm_calls - 1:
                state.messages.append(ChatMessageUser(content=LAST_TURN))
            prompt = prompt_tokens(state.messages, schema_chars)
            room = episode.output_room(prompt)
            if room is None:
                break
            cap = room if model.config.max_tokens is None else min(room, model.config.max_tokens)
            output = await model.generate(state.messages, tools, config=GenerateConfig(max_tokens=cap))
            episode.llm_calls += 1
            episode.tokens += spent_tokens(output, prompt)
            state.output = output
            state.messages.append(output.message)
            if output.message.tool_calls:
                result = await execute_tools(state.messages, tools)
                state.messages.extend(result.messages)
            elif ctx.board.submitted is None:
                state.messages.append(ChatMessageUser(content=NO_TOOL))
        if ctx.board.submitted is not None:
            episode.stop_reason = "submitted"
        guesses = ctx.board.submitted
        if guesses is None:  # no submission: the board's open hypotheses stand as the guesses, best first
            guesses = [h.text for h in ctx.board.ranked()][: budget.max_guesses]
        state.metadata = {**meta, "guesses": guesses, "episode": episode.to_dict(), "board": ctx.board.to_dict()}
        state.output = ModelOutput.from_content(model=str(model), content="\n".join(guesses))
        return state

    return solve
