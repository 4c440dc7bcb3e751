"""One client for every LLM call lmdiff makes, through Inspect AI's model layer.

:class:`LlmClient` wraps ``inspect_ai.model.get_model``. On top of it, it adds what a run
needs: a disk cache keyed by the full request, a concurrency limit, retries with
exponential backoff, a dollar or token budget that stops cleanly, and a usage and cost
record. Keys stay in the environment, read by the providers; nothing here sees them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from lmdiff.errors import LlmError
from lmdiff.io import sha256_json, write_json
from lmdiff.llm import _loop
from lmdiff.llm.budget import Budget, BudgetExceeded
from lmdiff.llm.cache import LlmCache
from lmdiff.llm.config import LlmConfig
from lmdiff.llm.pricing import estimate_cost, price_for
from lmdiff.llm.retry import RetryPolicy, classify, unwrap
from lmdiff.llm.secrets import redact, safe_url
from lmdiff.llm.structured import Parser, StructuredResult, run_structured
from lmdiff.llm.types import GenerationParams, LlmReply, LlmRequest, TokenLogprob, Usage, normalize_messages
from lmdiff.progress import progress_bar

if TYPE_CHECKING:
    from inspect_ai.model import ChatMessage, GenerateConfig, Model, ModelOutput


logger = logging.getLogger("lmdiff.llm")

T = TypeVar("T")
V = TypeVar("V")

#: Inspect's own connection pool is first-created-wins per provider; give it a ceiling so
#: that lmdiff's semaphore (``max_connections``) is the limit that binds.
_INSPECT_CONNECTION_CEILING = 1024


def _log(level: int, message: str, *args: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, "%s", redact(message % args if args else message))


def _error_text(exc: BaseException) -> str:
    exc = unwrap(exc)
    text = str(exc).strip().splitlines()
    first = text[-1] if text else ""
    return redact(f"{type(exc).__name__}: {first}"[:500])


def _to_inspect(messages: list[dict[str, str]]) -> list[ChatMessage]:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

    kinds = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


_UNSET = object()
_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.gguf", "config.json")


def _dir_fingerprint(model: str) -> str | None:
    provider, _, name = model.partition("/")
    if provider not in {"local", "hf", "lmdiff-local"}:
        return None
    path = Path(name).expanduser()
    if not path.is_dir():
        return None
    stats = sorted(
        (f.name, f.stat().st_size, f.stat().st_mtime_ns) for pattern in _WEIGHT_FILES for f in path.glob(pattern)
    )
    return sha256_json(stats)


def _json_safe(args: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(args.items()) if isinstance(v, str | int | float | bool | type(None))}


class _Stats:
    """Counters of one client (one run); guarded by a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.cache_hits = 0
        self.failed = 0
        self.retries = 0
        self.rate_limited = 0
        self.budget_refused = 0
        self.usage = Usage()
        self.cost_usd = 0.0
        self.saved = Usage()
        self.saved_usd = 0.0
        self.structured_valid = 0
        self.structured_invalid = 0


#: Counters summed over every client of this process (roles build their own clients), so that a
#: run can record how many LLM calls a step made and how many replies were invalid.
_PROCESS_COUNTS: dict[str, int] = {"calls": 0, "cache_hits": 0, "failed_calls": 0, "structured_valid": 0,
                                   "structured_invalid": 0}
_PROCESS_LOCK = threading.Lock()


def _count(field: str) -> None:
    with _PROCESS_LOCK:
        _PROCESS_COUNTS[field] += 1


def process_llm_counts() -> dict[str, int]:
    """LLM calls, cache hits, failed calls and valid/invalid structured replies of every client so far.

    Take it before and after a step (:func:`llm_counts_since`) to attribute counts to that step.
    """
    with _PROCESS_LOCK:
        return dict(_PROCESS_COUNTS)


def llm_counts_since(before: dict[str, int]) -> dict[str, int]:
    """The counts of :func:`process_llm_counts` accumulated since the snapshot ``before``."""
    now = process_llm_counts()
    return {k: now[k] - before.get(k, 0) for k in now}


def resolve_model_string(model: str) -> str:
    """Map lmdiff model strings onto Inspect ones.

    ``local/NAME`` becomes ``lmdiff-local/<dir>`` (see :mod:`lmdiff.llm.local`), where
    ``NAME`` is a shipped model (converted once into the user cache) or a local directory;
    every other string passes through.

    Args:
        model: The configured model string.

    Returns:
        A string ``inspect_ai.model.get_model`` accepts.
    """
    provider, _, name = model.partition("/")
    if provider != "local":
        return model
    try:
        from lmdiff.models.registry import get_shipped
    except ImportError:  # pragma: no cover - the models package is optional here
        get_shipped = None  # type: ignore[assignment]
    shipped = get_shipped(name) if get_shipped is not None else None
    if shipped is not None:
        return f"lmdiff-local/{shipped.local_dir()}"
    path = Path(name).expanduser()
    if not path.is_dir():
        raise LlmError(
            f"local model {name!r} is neither a shipped model nor a directory",
            hint="use local/smollm2-135m-instruct or local/PATH_TO_A_TRANSFORMERS_DIR",
        )
    return f"lmdiff-local/{path.resolve()}"


CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """A character-based token estimate (about 4 characters per token), computed offline."""
    return max(1, len(text) // CHARS_PER_TOKEN)


def offline_token_counts(model: Model) -> Model:
    """Make Inspect's local token estimates for ``model`` offline (4 characters per token).

    Inspect's default ``count_text_tokens`` loads tiktoken's ``o200k_base`` encoding, which
    tiktoken downloads from the internet on first use; Inspect's mock provider (and any provider
    whose reply lacks usage) calls it for every reply. lmdiff never needs exact counts there:
    budgets use the usage the provider reports, else the same character estimate.

    Args:
        model: the Inspect model; its API object gets an instance-level ``count_text_tokens``.

    Returns:
        ``model``.
    """

    async def count_text_tokens(text: str) -> int:
        return estimate_tokens(text)

    api: Any = model.api
    api.count_text_tokens = count_text_tokens
    api._lmdiff_offline_counts = True
    return model


class LlmClient:
    """Cached, budgeted, rate-limited LLM calls for one run.

    Create one client per run and share it between roles: the budget and the usage record
    are per client.

    Args:
        config: The LLM settings (default: from the environment, ``LMDIFF_LLM``).
        model: An Inspect ``Model`` to use instead of building one from ``config.model``
            (tests pass ``get_model("mockllm/model", custom_outputs=...)``).

    Raises:
        LlmError: No model is configured, or a dollar budget is set for a model whose price
            is unknown.
    """

    def __init__(self, config: LlmConfig | None = None, *, model: Model | None = None) -> None:
        self.config = config if config is not None else LlmConfig()
        if self.config.model is None and model is None:
            raise LlmError(
                "no LLM is configured",
                hint="set LMDIFF_LLM (e.g. openai/gpt-4.1-mini) or llm.model; offline roles need no client",
            )
        self.model_name: str = self.config.model or str(model)
        self._model: Model | None = model
        self._model_lock = threading.Lock()
        self.price, self.price_source = price_for(self.model_name, self.config.prices)
        if self.config.budget_usd is not None and self.price is None:
            raise LlmError(
                f"a dollar budget is set but the price of {self.model_name} is unknown",
                hint="add llm.prices.<model>={input: USD_PER_1M, output: USD_PER_1M} or use llm.budget_tokens",
            )
        self.cache = LlmCache(self.config.resolved_cache_dir(), enabled=self.config.cache)
        self.budget = Budget(self.config.budget_usd, self.config.budget_tokens)
        self.retry_policy = RetryPolicy(
            max_retries=self.config.max_retries,
            backoff_initial=self.config.backoff_initial,
            backoff_max=self.config.backoff_max,
        )
        self._stats = _Stats()
        self._semaphore: asyncio.Semaphore | None = None
        self._fingerprint: object = _UNSET

    # ----------------------------------------------------------------- properties

    @property
    def producer(self) -> str:
        """``llm:<model>``: what results produced by this client record as their producer."""
        return f"llm:{self.model_name}"

    @property
    def inspect_model(self) -> Model:
        """The underlying Inspect ``Model`` (built on first use)."""
        with self._model_lock:
            if self._model is None:
                self._model = self._build_model()
            if not getattr(self._model.api, "_lmdiff_offline_counts", False):
                offline_token_counts(self._model)
            return self._model

    def _build_model(self) -> Model:
        from inspect_ai.model import get_model

        assert self.config.model is not None
        model_string = resolve_model_string(self.config.model)
        args = dict(self.config.model_args)
        if model_string.startswith("hf/"):
            # transformers refuses temperature=0 with sampling on; greedy is do_sample=False
            args.setdefault("do_sample", self.config.temperature > 0)
        try:
            if model_string.startswith("lmdiff-local/"):
                import lmdiff.llm.local  # noqa: F401  registers the provider with Inspect
            return get_model(
                model_string,
                config=self._base_generate_config(),
                base_url=self.config.base_url,
                memoize=False,
                **args,
            )
        except Exception as exc:
            raise LlmError(
                f"cannot start LLM {self.model_name}: {_error_text(exc)}",
                hint="check the model string, that the provider's SDK is installed (pip install "
                "'lmdiff[llm]') and that its API key is set in the environment",
            ) from None

    def _base_generate_config(self) -> GenerateConfig:
        from inspect_ai.model import GenerateConfig

        timeout = None if self.config.timeout is None else max(1, math.ceil(self.config.timeout))
        local_batching = (self.config.model or "").startswith("hf/")  # hf's batch size
        return GenerateConfig(
            max_retries=0,  # lmdiff owns retries (see lmdiff.llm.retry)
            attempt_timeout=timeout,
            max_connections=self.config.max_connections if local_batching else _INSPECT_CONNECTION_CEILING,
        )

    # ----------------------------------------------------------------- requests

    def resolve_params(self, params: GenerationParams | None = None, **overrides: Any) -> GenerationParams:
        """Fill per-call parameters with the config's defaults.

        Args:
            params: Per-call parameters.
            **overrides: Individual fields of :class:`GenerationParams`.

        Returns:
            Parameters with temperature and max_tokens always set.
        """
        base = (params or GenerationParams()).merged(overrides)
        return base.merged(
            {
                "temperature": base.temperature if base.temperature is not None else self.config.temperature,
                "max_tokens": base.max_tokens if base.max_tokens is not None else self.config.max_tokens,
            }
        )

    def request_record(
        self, messages: list[dict[str, str]], system: str | None, params: GenerationParams
    ) -> dict[str, Any]:
        """Return the canonical request: everything that can change a reply, nothing secret.

        Args:
            messages: Normalized messages.
            system: System prompt.
            params: Resolved parameters.

        Returns:
            A JSON-able dict; its hash is the cache key.
        """
        return {
            "model": self.model_name,
            "weights": self._weights_fingerprint(),
            "base_url": safe_url(self.config.base_url),
            "model_args": _json_safe(self.config.model_args),
            "system": system,
            "messages": messages,
            "params": params.model_dump(mode="json"),
        }

    def _weights_fingerprint(self) -> str | None:
        """For a model in a local directory, a hash of its weight files' names, sizes and times.

        Retraining into the same directory then misses the cache instead of replaying stale
        replies. Remote models and shipped models (fixed by their package) have None.
        """
        if self._fingerprint is _UNSET:
            self._fingerprint = _dir_fingerprint(self.model_name)
        return cast(str | None, self._fingerprint)

    def _inspect_config(self, params: GenerationParams) -> GenerateConfig:
        from inspect_ai.model import GenerateConfig

        temperature = params.temperature
        if temperature == 0 and self.inspect_model.api.__class__.__name__ == "HuggingFaceAPI":
            temperature = None  # greedy via do_sample=False
        return self._base_generate_config().merge(
            GenerateConfig(
                temperature=temperature,
                max_tokens=params.max_tokens,
                top_p=params.top_p,
                stop_seqs=list(params.stop) if params.stop else None,
                seed=params.seed,
                logprobs=True if params.logprobs else None,
                top_logprobs=params.top_logprobs if params.logprobs else None,
            )
        )

    # ----------------------------------------------------------------- core call

    def _sem(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.config.max_connections)
        return self._semaphore

    async def generate_reply(
        self, messages: list[dict[str, str]], system: str | None, params: GenerationParams
    ) -> LlmReply:
        """One generation through the cache, retries and budget (the structured-call backend)."""
        return await self._generate(messages, system, params)

    def record_structured(self, valid: bool) -> None:
        """Count one structured reply as valid or invalid (per client and per process)."""
        self._record_structured(valid)

    async def _generate(self, prompt: Any, system: str | None, params: GenerationParams) -> LlmReply:
        messages = normalize_messages(prompt)
        request = self.request_record(messages, system, params)
        key = self.cache.key(request)
        hit = self.cache.get(key)
        if hit is not None:
            return self._from_cache(hit, key)
        async with self._sem():
            hit = self.cache.get(key)  # an identical request may have finished meanwhile
            if hit is not None:
                return self._from_cache(hit, key)
            refused = self.budget.exceeded()
            if refused is not None:
                with self._stats.lock:
                    self._stats.budget_refused += 1
                raise refused
            output = await self._call_with_retries(messages, system, params)
            prompt_chars = sum(len(m["content"]) for m in messages) + len(system or "")
            reply = self._from_output(output, key, params, prompt_chars)
            self.cache.put(key, request, self._cache_record(reply))
            return reply

    async def _call_with_retries(
        self, messages: list[dict[str, str]], system: str | None, params: GenerationParams
    ) -> ModelOutput:
        if self._model is None:  # loading a local model takes seconds: not on the event loop
            await asyncio.to_thread(lambda: self.inspect_model)
        model = self.inspect_model
        chat = _to_inspect(([{"role": "system", "content": system}] if system else []) + messages)
        config = self._inspect_config(params)
        retry = 0
        while True:
            try:
                output = await model.generate(chat, config=config, cache=False)
            except Exception as exc:
                kind = classify(exc, model.api)
                if kind is None or retry >= self.retry_policy.max_retries:
                    with self._stats.lock:
                        self._stats.failed += 1
                        _count("failed_calls")
                    why = f"after {retry} retries" if kind is not None else "(not retryable)"
                    raise LlmError(
                        f"LLM call to {self.model_name} failed {why}: {_error_text(exc)}",
                        hint="check the model name, the endpoint and the API key in the environment",
                    ) from None
                with self._stats.lock:
                    self._stats.retries += 1
                    self._stats.rate_limited += kind == "rate_limit"
                _log(
                    logging.WARNING,
                    "LLM %s: %s (%s); retry %d/%d",
                    self.model_name,
                    _error_text(exc),
                    kind,
                    retry + 1,
                    self.retry_policy.max_retries,
                )
                await self.retry_policy.wait(retry)
                retry += 1
                continue
            if output.error and not output.completion:
                with self._stats.lock:
                    self._stats.failed += 1
                    _count("failed_calls")
                raise LlmError(f"LLM {self.model_name} returned an error: {redact(output.error)[:500]}")
            return output

    def _from_output(self, output: ModelOutput, key: str, params: GenerationParams, prompt_chars: int) -> LlmReply:
        text = output.completion or ""
        if output.usage is not None:
            usage = Usage(
                input_tokens=output.usage.input_tokens,
                output_tokens=output.usage.output_tokens,
                total_tokens=output.usage.total_tokens or output.usage.input_tokens + output.usage.output_tokens,
            )
        else:  # rough: 4 characters per token
            n_in = max(1, prompt_chars // CHARS_PER_TOKEN)
            n_out = max(1, len(text) // CHARS_PER_TOKEN)
            usage = Usage(input_tokens=n_in, output_tokens=n_out, total_tokens=n_in + n_out, estimated=True)
        cost = estimate_cost(self.price, usage.input_tokens, usage.output_tokens)
        self.budget.charge(usage.total_tokens, cost)
        with self._stats.lock:
            self._stats.calls += 1
            _count("calls")
            self._stats.usage = _add(self._stats.usage, usage)
            self._stats.cost_usd += cost or 0.0
        logprobs = None
        if params.logprobs and output.choices and output.choices[0].logprobs is not None:
            logprobs = [
                TokenLogprob(
                    token=lp.token,
                    logprob=lp.logprob,
                    top=[(t.token, t.logprob) for t in (lp.top_logprobs or [])],
                )
                for lp in output.choices[0].logprobs.content
            ]
        stop = output.choices[0].stop_reason if output.choices else None
        _log(logging.DEBUG, "LLM %s: %d tokens, $%.6f", self.model_name, usage.total_tokens, cost or 0.0)
        return LlmReply(
            text=text,
            model=self.model_name,
            usage=usage,
            cost_usd=cost,
            cached=False,
            stop_reason=str(stop) if stop is not None else None,
            logprobs=logprobs,
            key=key,
        )

    @staticmethod
    def _cache_record(reply: LlmReply) -> dict[str, Any]:
        return reply.model_dump(mode="json", include={"text", "model", "usage", "stop_reason", "logprobs"})

    def _from_cache(self, record: dict[str, Any], key: str) -> LlmReply:
        reply = LlmReply.model_validate({**record, "cached": True, "cost_usd": 0.0, "key": key})
        saved_cost = estimate_cost(self.price, reply.usage.input_tokens, reply.usage.output_tokens)
        with self._stats.lock:
            self._stats.cache_hits += 1
            _count("cache_hits")
            self._stats.saved = _add(self._stats.saved, reply.usage)
            self._stats.saved_usd += saved_cost or 0.0
        return reply

    # ----------------------------------------------------------------- public API

    async def agenerate(
        self,
        prompt: Any,
        system: str | None = None,
        config: GenerationParams | None = None,
        **overrides: Any,
    ) -> LlmReply:
        """Async :meth:`generate`; safe to await from any event loop."""
        params = self.resolve_params(config, **overrides)
        return await _loop.run_async(self._generate(prompt, system, params))

    def generate(
        self,
        prompt: Any,
        system: str | None = None,
        config: GenerationParams | None = None,
        **overrides: Any,
    ) -> LlmReply:
        """Generate one reply (served from the cache when this exact request was seen).

        Args:
            prompt: A string (one user message) or a list of role/content messages.
            system: Optional system prompt.
            config: Per-call generation parameters.
            **overrides: Individual parameters (temperature=..., max_tokens=..., logprobs=...).

        Returns:
            The reply.

        Raises:
            BudgetExceeded: The run's budget is spent (cached requests are still served).
            LlmError: The call failed for good (after retries for transient errors).
        """
        params = self.resolve_params(config, **overrides)
        return _loop.run_sync(self._generate(prompt, system, params))

    def generate_many(
        self,
        requests: Sequence[Any],
        system: str | None = None,
        config: GenerationParams | None = None,
        *,
        progress: bool = True,
        description: str = "LLM calls",
        **overrides: Any,
    ) -> list[LlmReply]:
        """Generate replies for many requests concurrently (``max_connections`` at a time).

        A request that fails for good yields a reply with ``valid=False`` and ``error`` set;
        it is never dropped.

        Args:
            requests: Prompts, message lists or :class:`LlmRequest` objects.
            system: System prompt for requests that do not carry their own.
            config: Parameters for requests that do not carry their own.
            progress: Show a progress bar.
            description: Progress bar label.
            **overrides: Individual parameters applied to every request.

        Returns:
            One reply per request, in order.

        Raises:
            BudgetExceeded: The budget ran out; ``exc.partial`` holds the replies obtained so
                far (None where a request was not run).
        """
        jobs: list[tuple[Any, str | None, GenerationParams]] = []
        for req in requests:
            if isinstance(req, LlmRequest):
                params = self.resolve_params(req.params or config, **overrides)
                jobs.append((req.prompt, req.system if req.system is not None else system, params))
            else:
                jobs.append((req, system, self.resolve_params(config, **overrides)))
        coros = [self._generate(p, s, c) for p, s, c in jobs]
        return self._run_batch(coros, progress=progress, description=description, on_error=self._failed_reply)

    def _failed_reply(self, exc: LlmError) -> LlmReply:
        _log(logging.WARNING, "%s", exc.message)
        return LlmReply(text="", model=self.model_name, valid=False, error=exc.message, cost_usd=0.0)

    def _run_batch(
        self,
        coros: Sequence[Awaitable[T]],
        *,
        progress: bool,
        description: str,
        on_error: Callable[[LlmError], T],
    ) -> list[T]:
        if not coros:
            return []
        with progress_bar(description, len(coros)) if progress else _NullBar() as advance:

            async def one(coro: Awaitable[T]) -> T:
                try:
                    return await coro
                finally:
                    advance(1)

            async def gather() -> list[T | BaseException]:
                return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)

            outcomes = _loop.run_sync(gather())
        results: list[T | None] = []
        budget_error: BudgetExceeded | None = None
        for outcome in outcomes:
            if isinstance(outcome, BudgetExceeded):
                budget_error = budget_error or outcome
                results.append(None)
            elif isinstance(outcome, LlmError):
                results.append(on_error(outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                results.append(outcome)
        if budget_error is not None:
            raise budget_error.with_partial(results)
        return results  # type: ignore[return-value]  # no None left without a budget error

    # ----------------------------------------------------------------- structured

    async def astructured(
        self,
        prompt: Any,
        parse: Parser[V],
        system: str | None = None,
        config: GenerationParams | None = None,
        *,
        max_attempts: int = 3,
        **overrides: Any,
    ) -> StructuredResult[V]:
        """Async :meth:`structured`; safe to await from any event loop."""
        params = self.resolve_params(config, **overrides)
        return await _loop.run_async(run_structured(self, prompt, parse, system, params, max_attempts))

    def structured(
        self,
        prompt: Any,
        parse: Parser[V],
        system: str | None = None,
        config: GenerationParams | None = None,
        *,
        max_attempts: int = 3,
        **overrides: Any,
    ) -> StructuredResult[V]:
        """Generate and parse a reply, retrying a malformed one with a corrective message.

        Args:
            prompt: A string or a list of messages.
            parse: A pydantic model class (the reply must hold matching JSON) or a function of
                the reply text that raises ``ValueError``/``ParseError`` on malformed input.
            system: Optional system prompt.
            config: Generation parameters.
            max_attempts: Replies to try before giving up (1 = no retry).
            **overrides: Individual generation parameters.

        Returns:
            The parsed value with ``valid=True``, or ``valid=False`` with the error and the
            last raw reply; never silently a success.

        Raises:
            BudgetExceeded: The run's budget is spent.
            LlmError: A call failed for good.
        """
        params = self.resolve_params(config, **overrides)
        return _loop.run_sync(run_structured(self, prompt, parse, system, params, max_attempts))

    def structured_many(
        self,
        prompts: Sequence[Any],
        parse: Parser[V],
        system: str | None = None,
        config: GenerationParams | None = None,
        *,
        max_attempts: int = 3,
        progress: bool = True,
        description: str = "LLM calls",
        **overrides: Any,
    ) -> list[StructuredResult[V]]:
        """Run :meth:`structured` over many prompts concurrently.

        A prompt whose call fails for good yields an invalid result carrying the error.

        Raises:
            BudgetExceeded: The budget ran out; ``exc.partial`` holds the results so far.
        """
        params = self.resolve_params(config, **overrides)
        coros = [run_structured(self, p, parse, system, params, max_attempts) for p in prompts]

        def failed(exc: LlmError) -> StructuredResult[V]:
            _log(logging.WARNING, "%s", exc.message)
            return StructuredResult.failed(self.model_name, exc.message)

        return self._run_batch(coros, progress=progress, description=description, on_error=failed)

    def _record_structured(self, valid: bool) -> None:
        with self._stats.lock:
            if valid:
                self._stats.structured_valid += 1
                _count("structured_valid")
            else:
                self._stats.structured_invalid += 1
                _count("structured_invalid")

    # ----------------------------------------------------------------- usage

    def usage_summary(self) -> dict[str, Any]:
        """Return this run's usage: calls, cache hits, retries, tokens, estimated cost, budget.

        Returns:
            A JSON-able dict (never containing credentials) to write into the run.
        """
        s = self._stats
        with s.lock:
            summary: dict[str, Any] = {
                "model": self.model_name,
                "producer": self.producer,
                "base_url": safe_url(self.config.base_url),
                "price_usd_per_1m": self.price.model_dump() if self.price is not None else None,
                "price_source": self.price_source,
                "calls": s.calls,
                "cache_hits": s.cache_hits,
                "failed_calls": s.failed,
                "retries": s.retries,
                "rate_limited": s.rate_limited,
                "budget_refused": s.budget_refused,
                "input_tokens": s.usage.input_tokens,
                "output_tokens": s.usage.output_tokens,
                "total_tokens": s.usage.total_tokens,
                "tokens_estimated": s.usage.estimated,
                "cost_usd": round(s.cost_usd, 8) if self.price is not None else None,
                "saved_by_cache_tokens": s.saved.total_tokens,
                "saved_by_cache_usd": round(s.saved_usd, 8) if self.price is not None else None,
                "structured_valid": s.structured_valid,
                "structured_invalid": s.structured_invalid,
                "budget": self.budget.summary(),
            }
        return summary

    def write_usage(self, path: str | Path) -> Path:
        """Write :meth:`usage_summary` as JSON (atomically) and return the path."""
        path = Path(path)
        write_json(path, self.usage_summary())
        return path

    # ----------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Release the provider client (and a local model's memory)."""
        with self._model_lock:
            model, self._model = self._model, None
        if model is not None:
            try:
                _loop.run_sync(model.api.aclose())
            except Exception as exc:  # closing is best effort
                _log(logging.DEBUG, "closing %s: %s", self.model_name, _error_text(exc))

    def __enter__(self) -> LlmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        cache = self.cache.root if self.cache.enabled else None
        return f"LlmClient(model={self.model_name!r}, cache={cache})"


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
        estimated=a.estimated or b.estimated,
    )


class _NullBar:
    def __enter__(self) -> Callable[[int], None]:
        def advance(n: int = 1) -> None:
            return None

        return advance

    def __exit__(self, *exc: object) -> None:
        return None
