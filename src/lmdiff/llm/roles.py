"""The LLM-in-the-loop roles: prompt template + output schema + parser, and a registry.

Every role is registered (in :data:`ROLES`, a :class:`~lmdiff.registry.Registry`) together with
its offline implementation (:class:`OfflineImplementation`), a function that lives with its feature
(the behaviour pipeline, the backdoor evaluation, the white-box methods). A feature asks
:func:`resolve_role` for the LLM-backed role and falls back to the offline implementation when it
gets None; either way each result records its producer (``llm:<model>`` or
``offline:<name>``, see :func:`producer_tag`)::

    judge = resolve_role("judge", client)          # client: LlmClient | LlmConfig | None
    if judge is None:
        offline = get_role("judge").offline        # lmdiff.evals.judges:offline_labels
        result = RoleResult.offline("judge", offline.load()(answer, facts), offline.name)
    else:
        result = judge({"criterion": ..., "question": ..., "answer": ...})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from lmdiff.errors import LlmError
from lmdiff.llm import prompts
from lmdiff.llm.budget import BudgetExceeded
from lmdiff.llm.client import LlmClient
from lmdiff.llm.config import LlmConfig
from lmdiff.llm.parsing import ParseError, parse_json, parse_score, parse_yes_no, score_from_logprobs
from lmdiff.llm.structured import ReplyParser, StructuredResult, run_structured
from lmdiff.llm.types import GenerationParams, LlmReply
from lmdiff.registry import Registry

V = TypeVar("V")

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


# --------------------------------------------------------------------------- schemas


class WrittenHypothesis(BaseModel):
    """One difference between two models as the LLM hypothesis writer states it.

    The behaviour pipeline turns each into its own testable
    :class:`lmdiff.methods.behavior.hypotheses.Hypothesis` (model labels resolved, id, keywords).
    """

    model_config = ConfigDict(extra="ignore")

    description: str = Field(min_length=1)
    more: Literal["A", "B"] | None = Field(None, description="the model that shows the property more")
    property: str = Field("", description="the property alone, a verb phrase that fits either model")
    evidence: str = ""


class HypothesisList(BaseModel):
    """The hypothesis writer's output."""

    model_config = ConfigDict(extra="ignore")

    hypotheses: list[WrittenHypothesis] = Field(min_length=1)


class PromptList(BaseModel):
    """The prompt writer's output."""

    model_config = ConfigDict(extra="ignore")

    prompts: list[str] = Field(min_length=1)


class Grade(BaseModel):
    """The grader's output: a 1-5 rubric score."""

    model_config = ConfigDict(extra="ignore")

    score: int = Field(ge=1, le=5)
    rationale: str = ""


class ExemplarPair(BaseModel):
    """The exemplar writer's output: two replies, one showing the hypothesised property."""

    model_config = ConfigDict(extra="ignore")

    reply_1: str = Field(min_length=1)
    reply_2: str = Field(min_length=1)


class WrittenFinding(BaseModel):
    """One finding as the LLM findings writer states it, with the ids of the evidence it cites."""

    model_config = ConfigDict(extra="ignore")

    statement: str = Field(min_length=1)
    evidence: list[str] = Field(default_factory=list)
    refuted_by: str = ""


class FindingList(BaseModel):
    """The findings writer's output."""

    model_config = ConfigDict(extra="ignore")

    findings: list[WrittenFinding] = Field(min_length=1)


class TokenRelevance(BaseModel):
    """The token relevance grader's output, one label per token."""

    model_config = ConfigDict(extra="ignore")

    labels: list[Literal["RELEVANT", "IRRELEVANT"]]


# --------------------------------------------------------------------------- results


def producer_tag(source: LlmClient | str | None = None, offline: str | None = None) -> str:
    """Return the producer tag a result records.

    Args:
        source: The client (or model string) that produced the result; None if offline.
        offline: The offline implementation's name, when ``source`` is None.

    Returns:
        ``"llm:<model>"`` or ``"offline:<name>"``.

    Raises:
        ValueError: Neither a source nor an offline name was given.
    """
    if isinstance(source, LlmClient):
        return source.producer
    if source:
        return f"llm:{source}"
    if not offline:
        raise ValueError("producer_tag needs an LLM client/model or an offline implementation name")
    return f"offline:{offline}"


@dataclass
class RoleResult(Generic[V]):
    """One output of a role, LLM or offline, with its provenance.

    Attributes:
        role: The role name.
        value: The parsed value (None when invalid).
        valid: False when the reply could not be parsed or the call failed.
        producer: ``llm:<model>`` or ``offline:<name>``.
        raw: The last raw reply (None offline).
        error: Why the result is invalid.
        attempts: LLM replies generated (0 offline).
        cached: True if served entirely from the cache.
        cost_usd: Estimated cost to this run.
    """

    role: str
    value: V | None
    valid: bool
    producer: str
    raw: str | None = None
    error: str | None = None
    attempts: int = 0
    cached: bool = False
    cost_usd: float = 0.0

    @classmethod
    def offline(cls, role: str, value: V, name: str) -> RoleResult[V]:
        """Wrap the value of an offline implementation so it records its producer."""
        return cls(role=role, value=value, valid=True, producer=producer_tag(offline=name))

    @classmethod
    def from_structured(cls, role: str, result: StructuredResult[V]) -> RoleResult[V]:
        """Wrap a structured LLM result."""
        return cls(
            role=role,
            value=result.value,
            valid=result.valid,
            producer=result.producer,
            raw=result.text,
            error=result.error,
            attempts=result.attempts,
            cached=result.cached,
            cost_usd=result.cost_usd,
        )

    def to_record(self) -> dict[str, Any]:
        """Return a JSON-able dict (pydantic values dumped)."""
        value: Any = self.value
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        return {
            "role": self.role,
            "value": value,
            "valid": self.valid,
            "producer": self.producer,
            "raw": self.raw,
            "error": self.error,
            "attempts": self.attempts,
            "cached": self.cached,
            "cost_usd": self.cost_usd,
        }


# --------------------------------------------------------------------------- roles

ReplyParse = Callable[[LlmReply, Mapping[str, Any]], Any]


@dataclass(frozen=True)
class OfflineImplementation:
    """The offline implementation of a role, registered with the role.

    The function lives with its feature (a layer above this one), so the role holds its import path
    and :meth:`load` imports it on demand.

    Attributes:
        name: The name recorded in the producer tag (``offline:<name>``).
        target: ``"package.module:function"``.
    """

    name: str
    target: str

    def __post_init__(self) -> None:
        module, sep, attr = self.target.partition(":")
        if not (module and sep and attr):
            raise ValueError(f"offline implementation target must be 'module:function': {self.target!r}")

    @property
    def producer(self) -> str:
        """The producer tag results of this implementation record (``offline:<name>``)."""
        return producer_tag(offline=self.name)

    def load(self) -> Callable[..., Any]:
        """Import and return the implementing function.

        Raises:
            ImportError: The module or the function does not exist.
        """
        module_name, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise ImportError(f"{self.target}: {module_name} has no attribute {attr!r}") from None
        if not callable(obj):
            raise ImportError(f"{self.target} is not callable")
        return cast("Callable[..., Any]", obj)


@dataclass(frozen=True)
class Role(Generic[V]):
    """A prompt template, an output schema and a parser, run through an :class:`LlmClient`.

    Attributes:
        name: Registry name.
        description: What the role does.
        template: Jinja2 template of the user message.
        parse: ``(reply, inputs) -> value``; raises ``ValueError``/``ParseError`` if malformed.
        inputs: Required input names.
        system: Optional system prompt.
        schema: The pydantic output schema, when the reply is JSON.
        params: Generation defaults of the role (merged over the client's config).
        max_attempts: Replies to try before recording the result as invalid.
        offline: The offline implementation the feature provides (None: the feature skips the step offline).
    """

    name: str
    description: str
    template: str
    parse: ReplyParse
    inputs: tuple[str, ...]
    system: str | None = None
    schema: type[BaseModel] | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    max_attempts: int = 3
    offline: OfflineImplementation | None = None

    def render(self, inputs: Mapping[str, Any]) -> str:
        """Render the user message.

        Raises:
            LlmError: A required input is missing.
        """
        missing = [k for k in self.inputs if k not in inputs]
        if missing:
            raise LlmError(
                f"role {self.name!r} is missing inputs: {', '.join(missing)}",
                hint=f"it needs {', '.join(self.inputs)}",
            )
        try:
            return _ENV.from_string(self.template).render(**inputs)
        except jinja2.UndefinedError as exc:
            raise LlmError(f"role {self.name!r}: {exc}", hint=f"it needs {', '.join(self.inputs)}") from None

    def _parser(self, inputs: Mapping[str, Any]) -> ReplyParser[V]:
        return ReplyParser(lambda reply: self.parse(reply, inputs))

    def run(self, client: LlmClient, inputs: Mapping[str, Any]) -> RoleResult[V]:
        """Run the role once.

        Args:
            client: The run's LLM client.
            inputs: Template inputs.

        Returns:
            A valid result, or one marked invalid with the error and raw reply.

        Raises:
            BudgetExceeded: The run's budget is spent.
            LlmError: The call failed for good.
        """
        result = client.structured(
            self.render(inputs),
            self._parser(inputs),
            system=self.system,
            config=self.params,
            max_attempts=self.max_attempts,
        )
        return RoleResult.from_structured(self.name, result)

    def run_many(
        self, client: LlmClient, inputs: Sequence[Mapping[str, Any]], progress: bool = True
    ) -> list[RoleResult[V]]:
        """Run the role over many inputs concurrently.

        A call that fails for good yields an invalid result; none is dropped.

        Raises:
            BudgetExceeded: The budget ran out; ``exc.partial`` holds the role results so far
                (None where an input was not run).
        """
        params = client.resolve_params(self.params)
        coros = [
            run_structured(client, self.render(item), self._parser(item), self.system, params, self.max_attempts)
            for item in inputs
        ]

        def failed(exc: LlmError) -> StructuredResult[Any]:
            return StructuredResult.failed(client.model_name, exc.message)

        try:
            results = client._run_batch(coros, progress=progress, description=self.name, on_error=failed)
        except BudgetExceeded as exc:
            partial = [RoleResult.from_structured(self.name, r) if r is not None else None for r in (exc.partial or [])]
            raise exc.with_partial(partial) from None
        return [RoleResult.from_structured(self.name, r) for r in results]


# --------------------------------------------------------------------------- parsers


def _parse_hypotheses(reply: LlmReply, inputs: Mapping[str, Any]) -> HypothesisList:
    return parse_json(reply.text, HypothesisList)


def _parse_prompts(reply: LlmReply, inputs: Mapping[str, Any]) -> PromptList:
    return parse_json(reply.text, PromptList)


def _parse_findings(reply: LlmReply, inputs: Mapping[str, Any]) -> FindingList:
    return parse_json(reply.text, FindingList)


def _parse_annotation(reply: LlmReply, inputs: Mapping[str, Any]) -> float:
    return parse_score(reply.text, 0, 100)


def _parse_judge(reply: LlmReply, inputs: Mapping[str, Any]) -> bool:
    return parse_yes_no(reply.text)


def _parse_grade(reply: LlmReply, inputs: Mapping[str, Any]) -> Grade:
    return parse_json(reply.text, Grade)


def _parse_coherence(reply: LlmReply, inputs: Mapping[str, Any]) -> float:
    top = reply.first_token_top_logprobs()
    if top is not None:
        score = score_from_logprobs(top, 0, 100)
        if score is None:
            raise ParseError("less than 25% of the probability is on a number from 0 to 100")
        return score
    return parse_score(reply.text, 0, 100)  # provider without logprobs: read the text


def _parse_exemplars(reply: LlmReply, inputs: Mapping[str, Any]) -> tuple[str, str]:
    """``(exemplar, control)``: the reply in ``exemplar_slot`` shows the property, the other does not."""
    pair = parse_json(reply.text, ExemplarPair)
    if pair.reply_1.strip() == pair.reply_2.strip():
        raise ParseError("the two replies are identical")
    return (pair.reply_1, pair.reply_2) if int(inputs["exemplar_slot"]) == 1 else (pair.reply_2, pair.reply_1)


def _parse_token_relevance(reply: LlmReply, inputs: Mapping[str, Any]) -> list[bool]:
    labels = parse_json(reply.text, TokenRelevance).labels
    expected = len(inputs["tokens"])
    if len(labels) != expected:
        raise ParseError(f"expected {expected} labels, got {len(labels)}")
    return [label == "RELEVANT" for label in labels]


# --------------------------------------------------------------------------- registry

ROLES: Registry[Role[Any]] = Registry("LLM role", group="lmdiff.llm_roles", name_pattern=r"[a-z0-9_]+",
                                      name_rule="be lowercase letters, digits and '_'")


def register_role(role: Role[Any], replace: bool = False) -> Role[Any]:
    """Add a role (with its offline implementation) to :data:`ROLES`.

    Args:
        role: The role.
        replace: Allow replacing a role of the same name.

    Returns:
        The role.

    Raises:
        ValueError: The name is taken by another role and ``replace`` is False.
    """
    return ROLES.register(role.name, role, replace=replace, stacklevel=2)


def get_role(name: str) -> Role[Any]:
    """Return the registered role ``name``.

    Raises:
        ConfigError: No such role.
    """
    return ROLES.get(name)


register_role(
    Role(
        name="hypothesis_writer",
        description="Contrast samples of two models and state concrete, checkable differences.",
        template=prompts.HYPOTHESIS_WRITER,
        system=prompts.HYPOTHESIS_WRITER_SYSTEM,
        parse=_parse_hypotheses,
        inputs=("texts_a", "texts_b"),
        schema=HypothesisList,
        params=GenerationParams(max_tokens=2048),
        offline=OfflineImplementation("ngram_contrast", "lmdiff.methods.behavior.hypotheses:ngram_hypotheses"),
    )
)
register_role(
    Role(
        name="annotator",
        description="Score 0-100 how well one text matches a hypothesis (per-text annotation).",
        template=prompts.ANNOTATOR,
        parse=_parse_annotation,
        inputs=("hypothesis", "text"),
        params=GenerationParams(temperature=0.0, max_tokens=32),
        offline=OfflineImplementation("keyword_annotator", "lmdiff.methods.behavior.hypotheses:offline_score"),
    )
)
register_role(
    Role(
        name="exemplar_writer",
        description="Write a reply showing a hypothesised property and a matched one without it (generative test).",
        template=prompts.EXEMPLAR_WRITER,
        parse=_parse_exemplars,
        inputs=("hypothesis", "prompt", "exemplar_slot", "max_words"),
        schema=ExemplarPair,
        params=GenerationParams(temperature=0.7, max_tokens=1024),
        offline=None,  # the generative test needs written texts; offline it is skipped
    )
)
register_role(
    Role(
        name="prompt_writer",
        description="Write varied user prompts about a topic (follow-up on a white-box signal).",
        template=prompts.PROMPT_WRITER,
        parse=_parse_prompts,
        inputs=("topic", "n"),
        schema=PromptList,
        params=GenerationParams(temperature=0.8, max_tokens=1024),
        offline=OfflineImplementation("prompt_templates", "lmdiff.methods.followup.prompts:template_prompts"),
    )
)
register_role(
    Role(
        name="judge",
        description="YES/NO: does an answer meet a criterion (persona present, fact stated...).",
        template=prompts.JUDGE,
        parse=_parse_judge,
        inputs=("criterion", "answer"),
        params=GenerationParams(temperature=0.0, max_tokens=16),
        offline=OfflineImplementation("keyword_judge", "lmdiff.evals.judges:offline_labels"),
    )
)
register_role(
    Role(
        name="grader",
        description="Grade 1-5 a description of a finetune against its ground truth.",
        template=prompts.GRADER,
        parse=_parse_grade,
        inputs=("ground_truth", "hypothesis"),
        schema=Grade,
        params=GenerationParams(temperature=0.0, max_tokens=256),
        offline=OfflineImplementation("keyword_overlap_grader", "lmdiff.methods.behavior.validate:grade_offline"),
    )
)
register_role(
    Role(
        name="coherence_grader",
        description="0-100 coherence of an answer (emergent-misalignment judge, scored from logprobs).",
        template=prompts.COHERENCE_GRADER,
        parse=_parse_coherence,
        inputs=("question", "answer"),
        params=GenerationParams(temperature=0.0, max_tokens=4, logprobs=True, top_logprobs=20),
        offline=OfflineImplementation("perplexity_coherence", "lmdiff.organisms.evaluate:coherence"),
    )
)
register_role(
    Role(
        name="findings_writer",
        description="Write a run's ranked findings from its numbered evidence, citing it.",
        template=prompts.FINDINGS_WRITER,
        system=prompts.FINDINGS_WRITER_SYSTEM,
        parse=_parse_findings,
        inputs=("evidence", "n"),
        schema=FindingList,
        params=GenerationParams(temperature=0.0, max_tokens=2048),
        offline=OfflineImplementation("deterministic_synthesis", "lmdiff.findings.synthesis:synthesise"),
    )
)
register_role(
    Role(
        name="token_relevance_grader",
        description="Label each token RELEVANT or IRRELEVANT to a finetuning description.",
        template=prompts.TOKEN_RELEVANCE_GRADER,
        parse=_parse_token_relevance,
        inputs=("description", "tokens"),
        schema=TokenRelevance,
        params=GenerationParams(temperature=0.0, max_tokens=1024),
        offline=OfflineImplementation("frequency_relevance", "lmdiff.interp.relevance:token_relevance"),
    )
)


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class BoundRole(Generic[V]):
    """A role bound to a client: call it with inputs."""

    role: Role[V]
    client: LlmClient

    @property
    def producer(self) -> str:
        """``llm:<model>``."""
        return self.client.producer

    def __call__(self, inputs: Mapping[str, Any]) -> RoleResult[V]:
        """Run the role once (see :meth:`Role.run`)."""
        return self.role.run(self.client, inputs)

    def many(self, inputs: Sequence[Mapping[str, Any]], progress: bool = True) -> list[RoleResult[V]]:
        """Run the role over many inputs (see :meth:`Role.run_many`)."""
        return self.role.run_many(self.client, inputs, progress=progress)


def resolve_role(role_name: str, llm: LlmClient | LlmConfig | None = None) -> BoundRole[Any] | None:
    """Return the LLM-backed role, or None when no LLM is configured (use the offline path).

    Pass the run's shared :class:`LlmClient` so that all roles share one budget, cache and
    usage record; a config builds a new client.

    Args:
        role_name: A registered role name.
        llm: The run's client, an LLM config, or None to read ``LMDIFF_LLM``.

    Returns:
        A callable bound role, or None.

    Raises:
        ConfigError: Unknown role.
    """
    role = get_role(role_name)
    if isinstance(llm, LlmClient):
        return BoundRole(role, llm)
    config = llm if llm is not None else LlmConfig()
    if config.offline:
        return None
    return BoundRole(role, LlmClient(config))
