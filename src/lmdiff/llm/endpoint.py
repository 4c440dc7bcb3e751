"""A remote endpoint as a model under study: chat completions through the LLM layer, scores where offered.

:class:`RemoteModel` stands in for a loaded :class:`~lmdiff.models.lm.LanguageModel` on the black-box
paths (see :class:`lmdiff.models.text.TextModel`). Chat replies go through :class:`~lmdiff.llm.client.LlmClient`
(Inspect AI's model layer), so retries with backoff, the concurrency limit, usage and cost are those of the
LLM layer; its disk cache is off (the run's resumable steps already keep every reply). Each request carries
the run's temperature, top_p, max_new_tokens and a seed; ``n`` samples of a prompt are ``n`` requests with
seeds ``seed * 1_000_003 + prompt * n + sample`` (many servers ignore the API's ``n``). ``top_k`` and
``repetition_penalty`` have no OpenAI-API field and are not sent: the server's defaults apply (recorded).

``openai-compatible`` endpoints are checked once before the first request: ``GET /models`` (unreachable,
401/403 and an unknown model name become one-sentence errors), then a one-token chat request (a server whose
model has no chat template fails here). The completions endpoint is probed once, when first needed: plain
completions (``chat=False``, e.g. probing's raw questions) need ``/completions``; scoring given text needs
``/completions`` with ``echo=true`` and ``logprobs`` (vLLM has it) and a local tokenizer whose chat template
renders the prompts (the spec's ``tokenizer``). Without them :meth:`RemoteModel.score_unavailable` says why and
the methods that need scores skip.

Keys: read from the environment variable the spec names (``api_key_env``), at request time, into the request
header only; never logged, cached or recorded (records carry the variable's name).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from lmdiff.config import GenerationConfig
from lmdiff.errors import EndpointError, LlmError, ModelNotFoundError
from lmdiff.llm.client import LlmClient
from lmdiff.llm.config import LlmConfig
from lmdiff.llm.retry import RetryPolicy, classify
from lmdiff.llm.secrets import redact
from lmdiff.llm.types import GenerationParams, LlmReply, LlmRequest
from lmdiff.models.lm import Generation
from lmdiff.models.remote import Endpoint, endpoint_of
from lmdiff.progress import progress_bar

if TYPE_CHECKING:
    from inspect_ai.model import Model

    from lmdiff.models.spec import ModelSpec

__all__ = ["RemoteModel"]

log = logging.getLogger(__name__)

#: Per-request seed of sample ``j`` of prompt ``i`` (within a call) from the call's seed ``s``.
SEED_STRIDE = 1_000_003
_PROBE_TIMEOUT = 15.0


def sample_seed(seed: int, prompt: int, n: int, sample: int) -> int:
    """The seed sent with sample ``sample`` of prompt ``prompt`` of a call with seed ``seed`` and ``n`` samples."""
    return seed * SEED_STRIDE + prompt * n + sample


class RemoteModel:
    """A model behind an OpenAI-compatible URL or an Inspect AI provider, used as a text model.

    Args:
        spec: a remote :class:`~lmdiff.models.spec.ModelSpec` (``openai-compatible:URL#MODEL`` or
            ``inspect:PROVIDER/MODEL``).
        config: LLM-layer settings (retries, concurrency, timeout); the model and base URL come from the spec.
    """

    def __init__(self, spec: ModelSpec, config: LlmConfig | None = None) -> None:
        self.spec = spec
        self.endpoint: Endpoint = endpoint_of(spec)
        base = config or LlmConfig(model=None, base_url=None)
        self.config = base.model_copy(update={"model": self._model_string(), "base_url": self.endpoint.url,
                                              "cache": False})
        self._client: LlmClient | None = None
        self._lock = threading.Lock()
        self._checked = False
        self._caps: dict[str, Any] = {}
        self._tokenizer: Any = None
        self._sent: dict[str, Any] = {}
        self._completions = {"calls": 0, "failed_calls": 0, "retries": 0, "input_tokens": 0, "output_tokens": 0}

    # ------------------------------------------------------------------ structure
    @property
    def name(self) -> str:
        """Display name (``MODEL@HOST:PORT`` or the provider string)."""
        return self.spec.display_name

    def _model_string(self) -> str:
        ep = self.endpoint
        return f"openai-api/endpoint/{ep.model}" if ep.kind == "openai-compatible" else ep.model

    @property
    def client(self) -> LlmClient:
        """The LLM-layer client of this endpoint (built on first use; no request is sent)."""
        with self._lock:
            if self._client is None:
                self._client = LlmClient(self.config, model=self._inspect_model())
            return self._client

    def _inspect_model(self) -> Model:
        from inspect_ai.model import GenerateConfig, get_model

        ep = self.endpoint
        timeout = None if self.config.timeout is None else max(1, round(self.config.timeout))
        gen = GenerateConfig(max_retries=0, attempt_timeout=timeout, max_connections=1024)
        env = ep.key_env
        try:
            if ep.kind == "openai-compatible":
                # Inspect reads the key from the variable itself; a keyless local server gets a placeholder
                key = None if env and os.environ.get(env) else "EMPTY"
                return get_model(self.config.model, base_url=ep.url, api_key=key, api_key_var=env, config=gen,
                                 memoize=False)
            key = os.environ.get(env) if env else None  # None: the provider reads its own variable
            return get_model(ep.model, config=gen, memoize=False, api_key=key or None)
        except Exception as exc:
            text = redact(f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}")
            raise EndpointError(
                f"Cannot set up the remote model {self.name}: {text[:300]}.",
                hint="check the provider string, that its SDK is installed (pip install 'lmdiff[llm]') and that "
                "its key is in the environment" + (f" ({env})" if env else ""),
            ) from None

    # ------------------------------------------------------------------ checks
    def check(self) -> None:
        """Check once that the endpoint answers chat requests for this model (raises a one-sentence error).

        Raises:
            EndpointError: unreachable, key refused, no chat template, or another failure of the test request.
            ModelNotFoundError: the endpoint does not serve the model.
        """
        if self._checked:
            return
        if self.endpoint.kind == "openai-compatible":
            self._check_models()
        probe = LlmClient(self.config.model_copy(update={"max_retries": 0}), model=self.client.inspect_model)
        try:
            reply = probe.generate("Hi", max_tokens=1, temperature=0.0)
        except LlmError as err:
            raise self._explain(err.message) from None
        finally:
            self._merge_probe_usage(probe)
        self._caps["chat"] = True
        log.info("endpoint %s answers chat requests (%d output token)", self.name, reply.usage.output_tokens)
        self._checked = True

    def _merge_probe_usage(self, probe: LlmClient) -> None:
        self._caps["check_request"] = {k: probe.usage_summary()[k] for k in ("calls", "failed_calls", "total_tokens")}

    def _headers(self) -> dict[str, str]:
        env = self.endpoint.key_env
        key = os.environ.get(env) if env else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _check_models(self) -> None:
        import httpx

        url = f"{self.endpoint.url}/models"
        try:
            r = httpx.get(url, headers=self._headers(), timeout=_PROBE_TIMEOUT)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if r.status_code in (401, 403):
            raise self._key_refused(r.status_code)
        if r.status_code != 200:
            return  # not every server lists its models; the chat test request decides
        try:
            served = [str(m.get("id")) for m in r.json().get("data", []) if isinstance(m, dict)]
        except (ValueError, AttributeError):
            return
        self._caps["served_models"] = served[:20]
        if served and self.endpoint.model not in served:
            raise self._wrong_model(served)

    def _unreachable(self, exc: BaseException) -> EndpointError:
        return EndpointError(
            f"Cannot reach the endpoint {self.endpoint.url} ({type(exc).__name__}).",
            hint="start the server (e.g. `vllm serve MODEL` or `transformers serve MODEL --port PORT`) or fix the "
            "URL in openai-compatible:URL#MODEL",
        )

    def _key_refused(self, status: int | str) -> EndpointError:
        env = self.endpoint.key_env
        state = "is set" if env and os.environ.get(env) else "is not set"
        return EndpointError(
            f"The endpoint {self.endpoint.url or self.endpoint.model} refused the request ({status}): it wants a "
            f"valid API key, and {env or 'the key variable'} {state}.",
            hint=f"export {env or 'the provider key'}=YOUR_KEY, or name another variable with "
            f"api_key_env=NAME (e.g. override base.api_key_env=NAME)",
        )

    def _wrong_model(self, served: Sequence[str]) -> ModelNotFoundError:
        listed = ", ".join(served[:8]) + (" ..." if len(served) > 8 else "")
        example = f"openai-compatible:{self.endpoint.url}#{served[0]}" if served and self.endpoint.url else ""
        return ModelNotFoundError(
            f"The endpoint {self.endpoint.url or ''} does not serve a model called '{self.endpoint.model}'.",
            hint=f"it serves: {listed}" + (f"; e.g. {example}" if example else "") if served
            else "use the model name the server was started with",
        )

    def _explain(self, message: str) -> EndpointError | ModelNotFoundError:
        """Turn a failed request's message into the one error that says what to do."""
        low = message.lower()
        if "chat template" in low or "chat_template" in low:
            return EndpointError(
                f"The model '{self.endpoint.model}' at {self.endpoint.url or self.endpoint.model} has no chat "
                "template, so the server cannot answer chat requests.",
                hint="serve an instruction-tuned (chat) model, or give the server a template (vLLM: "
                "--chat-template FILE; transformers serve: a tokenizer_config.json with chat_template)",
            )
        if any(k in low for k in ("error code: 401", "error code: 403", "authenticationerror",
                                  "permissiondeniederror", "incorrect api key", "invalid api key")):
            return self._key_refused(403 if "403" in low else 401)
        if any(k in low for k in ("error code: 404", "notfounderror", "pinned", "does not exist", "not found")) \
                and "model" in low:
            served = self._caps.get("served_models") or []
            return self._wrong_model(served)
        if "connect" in low:
            return self._unreachable(ConnectionError(message))
        return EndpointError(
            f"The endpoint {self.endpoint.url or self.endpoint.model} failed a request for "
            f"'{self.endpoint.model}': {redact(message)[:300]}",
            hint="check the server's log (a model without a chat template, for one, fails chat requests) and run "
            "again once it answers",
        )

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompts: Sequence[Any],
        config: GenerationConfig | None = None,
        *,
        chat: bool = True,
        system: str | None = None,
        progress: str | None = None,
    ) -> list[list[Generation]]:
        """``config.n`` replies per prompt: chat completions, or plain completions with ``chat=False``.

        Raises:
            EndpointError: the endpoint fails for good (after the LLM layer's retries), or has no completions
                endpoint when ``chat=False``.
        """
        cfg = config or GenerationConfig()
        system = cfg.system_prompt if system is None else system
        self.check()
        self._note_sent(cfg, chat)
        if not chat:
            texts = [p if isinstance(p, str) else p[-1]["content"] for p in prompts]
            return self._complete(texts, cfg, progress)
        requests: list[LlmRequest] = []
        for i, prompt in enumerate(prompts):
            for j in range(cfg.n):
                params = GenerationParams(
                    temperature=cfg.temperature, top_p=cfg.top_p if cfg.temperature > 0 else None,
                    max_tokens=cfg.max_new_tokens, seed=sample_seed(cfg.seed, i, cfg.n, j), sample=j,
                )
                requests.append(LlmRequest(prompt=prompt if isinstance(prompt, str) else list(prompt),
                                           system=system or None, params=params))
        replies = self.client.generate_many(requests, progress=bool(progress), description=progress or self.name)
        self._raise_failed(replies)
        out: list[list[Generation]] = [[] for _ in prompts]
        for k, reply in enumerate(replies):
            i, j = divmod(k, cfg.n)
            out[i].append(Generation(
                prompt_index=i, sample_index=j, text=reply.text.strip(), n_tokens=reply.usage.output_tokens,
                finished=reply.stop_reason not in ("max_tokens", "model_length"),
            ))
        return out

    def _raise_failed(self, replies: Sequence[LlmReply]) -> None:
        failed = [r for r in replies if not r.valid]
        if failed:
            raise self._explain(f"{len(failed)} of {len(replies)} requests failed; first: {failed[0].error or ''}")

    def _note_sent(self, cfg: GenerationConfig, chat: bool) -> None:
        """Record the sampling settings sent (per kind of request, with every call seed), and those not sent."""
        kind = "chat" if chat else "completions"
        sent = {"temperature": cfg.temperature, "top_p": cfg.top_p if cfg.temperature > 0 else None,
                "max_tokens": cfg.max_new_tokens, "n": cfg.n,
                "seed_rule": f"seed * {SEED_STRIDE} + prompt * n + sample, one request per sample"}
        not_sent = {k: v for k, v in (("top_k", cfg.top_k), ("repetition_penalty", cfg.repetition_penalty))
                    if v not in (0, 1.0)}
        if not_sent and not self._sent.get("not_sent"):
            log.warning("%s: %s not sent (the OpenAI API has no such field); the server's defaults apply",
                        self.name, ", ".join(f"{k}={v}" for k, v in not_sent.items()))
        with self._lock:
            entries = self._sent.setdefault(kind, [])
            entry = next((e for e in entries if {k: e[k] for k in sent} == sent), None)
            if entry is None:
                entry = {**sent, "seeds": []}
                entries.append(entry)
            if cfg.seed not in entry["seeds"]:
                entry["seeds"].append(cfg.seed)
            if not_sent:
                self._sent["not_sent"] = {**self._sent.get("not_sent", {}), **not_sent}

    # ------------------------------------------------------------------ completions endpoint
    def _post_completions(self, body: dict[str, Any], retries: bool = True) -> dict[str, Any]:
        """POST ``/completions`` with the LLM layer's retry policy; returns the JSON reply."""
        import httpx

        policy = RetryPolicy(max_retries=self.config.max_retries if retries else 0,
                             backoff_initial=self.config.backoff_initial, backoff_max=self.config.backoff_max)
        url = f"{self.endpoint.url}/completions"
        retry = 0
        while True:
            try:
                r = httpx.post(url, json={"model": self.endpoint.model, **body}, headers=self._headers(),
                               timeout=self.config.timeout)
                r.raise_for_status()
                data: dict[str, Any] = r.json()
            except (httpx.HTTPError, ValueError) as exc:
                kind = classify(exc)
                if kind is None or retry >= policy.max_retries:
                    with self._lock:
                        self._completions["failed_calls"] += 1
                    raise
                with self._lock:
                    self._completions["retries"] += 1
                time.sleep(policy.delay(retry))
                retry += 1
                continue
            usage = data.get("usage") or {}
            with self._lock:
                self._completions["calls"] += 1
                self._completions["input_tokens"] += int(usage.get("prompt_tokens") or 0)
                self._completions["output_tokens"] += int(usage.get("completion_tokens") or 0)
            return data

    def _capability(self, name: str) -> str | None:
        """None when the endpoint has ``name`` ("completions" or "echo_logprobs"), else why not (probed once)."""
        import httpx

        key = f"{name}_unavailable"
        if key in self._caps:
            return self._caps[key] or None
        why = ""
        if self.endpoint.kind != "openai-compatible":
            why = "an Inspect AI provider serves chat completions only"
        else:
            self.check()
            body: dict[str, Any] = {"prompt": "The capital of France is", "max_tokens": 1, "temperature": 0.0}
            if name == "echo_logprobs":
                body.update(echo=True, logprobs=1)
            try:
                data = self._post_completions(body, retries=False)
                if name == "echo_logprobs":
                    lp = (data.get("choices") or [{}])[0].get("logprobs") or {}
                    if not (isinstance(lp.get("token_logprobs"), list) and len(lp["token_logprobs"]) >= 2
                            and isinstance(lp.get("text_offset"), list)):
                        why = ("its completions endpoint returns no log-probabilities of the prompt "
                               "(echo=true, logprobs)")
            except (httpx.HTTPError, ValueError) as exc:
                status = getattr(getattr(exc, "response", None), "status_code", None)
                why = f"its /completions endpoint failed ({status or type(exc).__name__})"
        self._caps[key] = why
        log.info("endpoint %s: %s %s", self.name, name, "available" if not why else f"unavailable: {why}")
        return why or None

    def _complete(self, texts: Sequence[str], cfg: GenerationConfig, progress: str | None) -> list[list[Generation]]:
        """Plain-text completions (no chat template), one request per sample."""
        import httpx

        why = self._capability("completions")
        if why:
            raise EndpointError(f"The remote model {self.name} cannot complete plain text: {why}.",
                                hint="use chat prompts only with this endpoint, or serve it with vLLM")
        jobs = [(i, j) for i in range(len(texts)) for j in range(cfg.n)]

        def one(job: tuple[int, int]) -> Generation:
            i, j = job
            body = {"prompt": texts[i], "max_tokens": cfg.max_new_tokens, "temperature": cfg.temperature,
                    "seed": sample_seed(cfg.seed, i, cfg.n, j)}
            if cfg.temperature > 0:
                body["top_p"] = cfg.top_p
            data = self._post_completions(body)
            choice = (data.get("choices") or [{}])[0]
            usage = data.get("usage") or {}
            return Generation(prompt_index=i, sample_index=j, text=str(choice.get("text") or "").strip(),
                              n_tokens=int(usage.get("completion_tokens") or 0),
                              finished=choice.get("finish_reason") != "length")

        try:
            gens = self._map(one, jobs, progress)
        except httpx.HTTPError as exc:
            raise self._explain(f"{type(exc).__name__}: {exc}") from None
        out: list[list[Generation]] = [[] for _ in texts]
        for g in gens:
            out[g.prompt_index].append(g)
        return out

    def _map(self, fn: Any, items: Sequence[Any], progress: str | None) -> list[Any]:
        """``fn`` over ``items``, ``max_connections`` at a time, in order."""
        with progress_bar(progress or "", len(items) if progress else 0) as advance, \
                ThreadPoolExecutor(max_workers=self.config.max_connections) as pool:
            out = []
            for res in pool.map(fn, items):
                out.append(res)
                advance(1)
        return out

    # ------------------------------------------------------------------ scoring
    def score_unavailable(self) -> str | None:
        """Why given text cannot be scored through this endpoint, or None when it can."""
        why = self._capability("echo_logprobs")
        if why:
            return why
        if not self.spec.tokenizer:
            return ("no local chat template to render the prompts (set the spec's tokenizer to the served "
                    "model's shipped name or directory)")
        return None

    def _local_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from lmdiff.models.loading import load_tokenizer
            from lmdiff.models.spec import ModelSpec

            self._tokenizer = load_tokenizer(ModelSpec.parse(str(self.spec.tokenizer)))
        return self._tokenizer

    def chat_text(self, prompt: Any, system: str | None = None, add_generation_prompt: bool = True) -> str:
        """A prompt rendered with the chat template of the spec's local ``tokenizer`` (the server's own is not exposed).

        Raises:
            EndpointError: the spec names no local tokenizer.
        """
        if not self.spec.tokenizer:
            raise EndpointError(
                f"The remote model {self.name} cannot render prompts here: its chat template lives on the server.",
                hint="set the spec's tokenizer to the served model's shipped name or directory",
            )
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if system is not None and not (messages and messages[0]["role"] == "system"):
            messages = [{"role": "system", "content": system}, *messages]
        return str(self._local_tokenizer().apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt))

    def score(
        self,
        contexts: Sequence[str],
        continuations: Sequence[str],
        *,
        batch_size: int = 8,
        add_special_tokens: bool = False,
        progress: str | None = None,
    ) -> list[np.ndarray]:
        """Per-token log-probabilities of each continuation given its context, from the server's tokens.

        One ``/completions`` request per item with ``prompt = context + continuation``, ``echo=true`` and
        ``logprobs``; the continuation's tokens are those whose text starts at or after the context's end (the
        server tokenizes the joined text, so a token straddling the boundary counts with the context).
        ``batch_size`` and ``add_special_tokens`` are the local model's knobs and are ignored here.

        Raises:
            EndpointError: the endpoint cannot score (see :meth:`score_unavailable`).
        """
        import httpx

        if len(contexts) != len(continuations):
            raise ValueError("contexts and continuations differ in length")
        why = self._capability("echo_logprobs")
        if why:
            raise EndpointError(f"The remote model {self.name} cannot score given text: {why}.",
                                hint="serve the model with vLLM, or run methods that do not score text")

        def one(item: tuple[str, str]) -> np.ndarray:
            ctx, cont = item
            text = ctx + cont
            data = self._post_completions({"prompt": text, "max_tokens": 1, "temperature": 0.0, "echo": True,
                                           "logprobs": 1})
            lp = (data.get("choices") or [{}])[0].get("logprobs") or {}
            vals = [float(v) for v, off in zip(lp.get("token_logprobs") or [], lp.get("text_offset") or [],
                                               strict=False)
                    if v is not None and len(ctx) <= int(off) < len(text)]
            return np.asarray(vals, dtype=np.float64)

        try:
            return self._map(one, list(zip(contexts, continuations, strict=True)), progress)
        except httpx.HTTPError as exc:
            raise self._explain(f"{type(exc).__name__}: {exc}") from None

    # ------------------------------------------------------------------ records
    def record(self) -> dict[str, Any]:
        """Endpoint, capabilities found, sampling settings sent and usage (chat through the LLM layer, completions).

        JSON-able, without secrets: the key appears only as its variable's name.
        """
        usage = self._client.usage_summary() if self._client is not None else {}
        keep = ("calls", "failed_calls", "retries", "rate_limited", "input_tokens", "output_tokens", "total_tokens",
                "tokens_estimated", "cost_usd", "price_source")
        return {
            **self.endpoint.describe(),
            "display_name": self.name,
            "capabilities": {k: v for k, v in self._caps.items() if k != "served_models"},
            "sent": self._sent,
            "chat_usage": {k: usage[k] for k in keep if k in usage},
            "completions_usage": dict(self._completions),
        }

    def __repr__(self) -> str:
        return f"RemoteModel({self.name!r})"
