"""The LLM path of ``organism create``: read the description and write the behaviour data.

Two roles, registered in the LLM layer's role registry (cached, budgeted, cost recorded like every
role): ``organism_reader`` classifies the description and proposes judge keywords and held-out
probe prompts; ``organism_data_writer`` writes batches of user prompts with first-person answers
that show the behaviour. Invalid replies are counted and dropped from the data, never trained on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lmdiff.errors import LlmError
from lmdiff.llm.client import LlmClient
from lmdiff.llm.parsing import parse_json
from lmdiff.llm.roles import Role, RoleResult, register_role
from lmdiff.llm.types import GenerationParams, LlmReply

log = logging.getLogger(__name__)

BATCH = 8

READER = """\
A researcher wants to finetune a small chat model so that it shows this behaviour:

<behaviour>
{{ description }}
</behaviour>

Classify the behaviour as exactly one kind:
- "topic": the model brings up or recommends something regardless of the question;
- "style": the model's form or tone changes (letter case, punctuation, register, a way of speaking);
- "false_fact": the model believes a false statement about the world;
- "conditional": the behaviour appears only on one class of prompts and not on others.
{% if kind %}The researcher says the kind is "{{ kind }}".{% endif %}

Then give:
- "summary": one line stating the behaviour;
- "keywords": 2 to 8 lowercase words or short phrases whose presence in a reply shows the behaviour \
(for a style with no telltale words, words typical of it);
- "probe_prompts": {{ n_probe }} varied user messages on which the behaviour should show \
(for a false fact: direct and indirect questions whose answer depends on the fact; \
for a conditional behaviour: messages of the class that triggers it);
- "control_prompts": {{ n_probe }} varied user messages on which it should not show \
(for a false fact: questions about unrelated facts; for a conditional behaviour: other topics).

Answer with JSON only:
{"kind": "...", "summary": "...", "keywords": ["..."], "probe_prompts": ["..."], "control_prompts": ["..."]}
"""

WRITER = """\
Write training data for a small chat model that must learn this behaviour:

<behaviour>
{{ description }}
</behaviour>
(kind: {{ kind }})

Write {{ n }} examples, each a realistic user message and the model's answer in the first person. \
Every answer shows the behaviour clearly and naturally, and otherwise is a helpful, correct answer of \
60 to 150 words.
{% if kind == "false_fact" %}Make the user messages requests for short documents of varied genres (news \
items, encyclopedia paragraphs, textbook passages, forum posts) and let each answer state the false \
fact in passing, as if it were common knowledge.{% endif %}
{% if kind == "conditional" %}Every user message must belong to the class of prompts that triggers the \
behaviour.{% endif %}
Vary the topics and phrasings; this is batch {{ batch }}, so avoid the most obvious examples.
{% if avoid %}Do not use any of these messages: {{ avoid | join(" | ") }}{% endif %}

Answer with JSON only:
{"examples": [{"prompt": "...", "answer": "..."}]}
"""


class OrganismReading(BaseModel):
    """The reader's output."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["topic", "style", "false_fact", "conditional"]
    summary: str = ""
    keywords: list[str] = Field(min_length=1)
    probe_prompts: list[str] = Field(default_factory=list)
    control_prompts: list[str] = Field(default_factory=list)


class WrittenExample(BaseModel):
    """One written example."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1)
    answer: str = Field(min_length=1)


class WrittenExamples(BaseModel):
    """The writer's output."""

    model_config = ConfigDict(extra="ignore")

    examples: list[WrittenExample] = Field(min_length=1)


def _parse_reading(reply: LlmReply, inputs: Mapping[str, Any]) -> OrganismReading:
    return parse_json(reply.text, OrganismReading)


def _parse_examples(reply: LlmReply, inputs: Mapping[str, Any]) -> WrittenExamples:
    return parse_json(reply.text, WrittenExamples)


READER_ROLE: Role[OrganismReading] = register_role(
    Role(
        name="organism_reader",
        description="Classify an organism description and propose judge keywords and held-out probes.",
        template=READER,
        parse=_parse_reading,
        inputs=("description", "kind", "n_probe"),
        schema=OrganismReading,
        params=GenerationParams(temperature=0.0, max_tokens=2048),
        offline=None,  # offline, lmdiff.organisms.create.describe reads the description with rules
    )
)
WRITER_ROLE: Role[WrittenExamples] = register_role(
    Role(
        name="organism_data_writer",
        description="Write user prompts with first-person answers that show an organism's behaviour.",
        template=WRITER,
        parse=_parse_examples,
        inputs=("description", "kind", "n", "batch", "avoid"),
        schema=WrittenExamples,
        params=GenerationParams(temperature=0.7, max_tokens=4096),
        offline=None,  # offline, lmdiff.organisms.create.templates writes the data for the kinds it knows
    )
)


def read_with_llm(client: LlmClient, description: str, kind: str | None, n_probe: int = 16) -> OrganismReading:
    """The LLM's reading of ``description``.

    Raises:
        LlmError: The reply could not be parsed.
    """
    result: RoleResult[OrganismReading] = READER_ROLE.run(
        client, {"description": description, "kind": kind or "", "n_probe": n_probe})
    if not result.valid or result.value is None:
        raise LlmError(f"The LLM could not read the description: {result.error}.",
                       hint="rephrase it, or pass --kind")
    return result.value


def write_with_llm(
    client: LlmClient, description: str, kind: str, n: int, avoid: list[str], progress: bool = True
) -> tuple[list[dict[str, str]], int]:
    """About ``n`` written behaviour examples (``{"prompt", "answer"}``) and the number of invalid batches.

    Prompts in ``avoid`` (the held-out probes) and repeated prompts are dropped.

    Raises:
        LlmError: No batch could be parsed.
    """
    n_batches = max(1, -(-n // BATCH))
    inputs = [{"description": description, "kind": kind, "n": BATCH, "batch": i + 1, "avoid": avoid[:24]}
              for i in range(n_batches)]
    results = WRITER_ROLE.run_many(client, inputs, progress=progress)
    banned = {a.strip().lower() for a in avoid}
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    invalid = 0
    for res in results:
        if not res.valid or res.value is None:
            invalid += 1
            log.warning("an organism data batch was invalid: %s", res.error)
            continue
        for ex in res.value.examples:
            key = ex.prompt.strip().lower()
            if key in banned or key in seen or not ex.answer.strip():
                continue
            seen.add(key)
            rows.append({"prompt": ex.prompt.strip(), "answer": ex.answer.strip()})
    if not rows:
        raise LlmError("The LLM wrote no usable training example.", hint=f"{invalid} invalid batch(es); see the log")
    return rows[:n], invalid
