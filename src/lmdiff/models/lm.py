"""``LanguageModel``: one loaded causal LM and the batched primitives every method uses.

All operations take lists and batch them with correct padding and attention masks:

* :meth:`LanguageModel.chat_text` renders messages with the model's own chat template;
* :meth:`LanguageModel.generate` samples with seeds, temperature, top-p/top-k and n per prompt;
* :meth:`LanguageModel.score` gives per-token log-probabilities of continuations;
* :meth:`LanguageModel.next_token_logprobs` gives full next-token distributions;
* :meth:`LanguageModel.hidden_states` gives residual-stream activations at chosen layers;
* :meth:`LanguageModel.iter_forward` streams batches (logits and/or hidden states) so that
  callers never hold a whole corpus of vocabulary distributions in memory.

Forward passes use right padding (positions of real tokens are unchanged by padding);
generation uses left padding. Forward passes compute the output head (unembedding) and the
log-softmax in float32 whatever the weights' dtype, so bf16 logits are not rounded to bf16's
0.06-0.125 spacing at typical logit sizes. Results match unbatched calls within
:func:`lmdiff.models.numerics.score_tolerance` of the weights' dtype (tests/models/test_lm.py).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from lmdiff.config import GenerationConfig
from lmdiff.errors import ConfigError
from lmdiff.models.architecture import Architecture, call_in_float32, resolve_architecture
from lmdiff.models.decoding import decode_batch
from lmdiff.models.spec import ModelSpec
from lmdiff.progress import progress_bar

Messages = list[dict[str, str]]
Prompt = str | Messages
LayerRef = int | float


class _StopForward(Exception):
    """Raised inside a hook to skip the layers after the last one needed."""


# float32 copies of low-precision output heads, per head module (freed with the module):
# head -> (weight data pointer, weight version, fp32 weight, fp32 bias).
_HEAD32: weakref.WeakKeyDictionary[nn.Module, tuple[int, int, torch.Tensor, torch.Tensor | None]] = (
    weakref.WeakKeyDictionary()
)


def fp32_head_weights(head: nn.Linear) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A float32 copy of a linear head's weight and bias, cached per module until the weight changes.

    A tied head shares its weight with the input embedding; the copy is separate and is rebuilt
    when that weight is replaced or modified in place.
    """
    w = head.weight
    cached = _HEAD32.get(head)
    if cached is not None and cached[:2] == (w.data_ptr(), w._version):
        return cached[2], cached[3]
    with torch.no_grad():
        w32 = w.detach().float()
        b32 = head.bias.detach().float() if head.bias is not None else None
    _HEAD32[head] = (w.data_ptr(), w._version, w32, b32)
    return w32, b32


@contextlib.contextmanager
def fp32_head(head: nn.Module | None) -> Iterator[bool]:
    """Make ``head`` (a plain ``nn.Linear`` in bf16/fp16) compute float32 logits while the context is open.

    The head's input is cast to float32 and multiplied by a cached float32 copy of its weight, so the
    logits carry no low-precision rounding; whatever the model does after the head (e.g. logit
    soft-capping) still runs. Heads that are not a plain linear layer (quantized, or wrapped by a PEFT
    adapter) are left alone and their logits are upcast afterwards. Yields whether the head was switched.
    """
    if type(head) is not nn.Linear or head.weight.dtype == torch.float32:
        yield False
        return
    w32, b32 = fp32_head_weights(head)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x.to(device=w32.device, dtype=torch.float32), w32, b32)

    previous = head.__dict__.get("forward")  # e.g. an accelerate dispatch hook's wrapper
    head.forward = forward  # type: ignore[method-assign,assignment]
    try:
        yield True
    finally:
        if previous is None:
            del head.forward
        else:
            head.forward = previous  # type: ignore[method-assign]


@dataclass
class ForwardBatch:
    """One batch of a streamed forward pass (right-padded)."""

    indices: list[int]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    lengths: list[int]
    logits: torch.Tensor | None = None
    hidden: dict[int, torch.Tensor] = field(default_factory=dict)

    def logprobs(self) -> torch.Tensor:
        """Log-softmax of the logits in float32, shape [B, T, V]."""
        if self.logits is None:
            raise ValueError("this forward pass did not compute logits")
        return torch.log_softmax(self.logits.float(), dim=-1)


@dataclass
class Generation:
    """One sampled completion."""

    prompt_index: int
    sample_index: int
    text: str
    n_tokens: int
    finished: bool


class LanguageModel:
    """A loaded causal LM (optionally one side of a shared LoRA pair) with batched operations."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        spec: ModelSpec,
        activate: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.spec = spec
        self._activate = activate or contextlib.nullcontext
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    # ----------------------------------------------------------------- structure
    @property
    def name(self) -> str:
        """Display name."""
        return self.spec.display_name

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the weights."""
        return next(self.model.parameters()).dtype

    @property
    def core(self) -> nn.Module:
        """The transformers model under any PEFT wrapper."""
        m = self.model
        get_base = getattr(m, "get_base_model", None)
        return cast(nn.Module, get_base()) if get_base is not None else m

    def _output_embeddings(self) -> nn.Module | None:
        """The output head as transformers reports it (``get_output_embeddings``)."""
        # nn.Module does not declare the transformers method.
        head: nn.Module | None = cast(Any, self.core).get_output_embeddings()
        return head

    @property
    def config(self) -> Any:
        """The transformers config."""
        return self.core.config

    @property
    def architecture(self) -> Architecture:
        """Blocks, final norm, embeddings and head (see :mod:`lmdiff.models.architecture`)."""
        return resolve_architecture(self.model)

    @property
    def layers(self) -> nn.ModuleList:
        """The decoder blocks, in order."""
        return self.architecture.layers

    @property
    def n_layers(self) -> int:
        """Number of decoder blocks."""
        return len(self.layers)

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        return int(self.config.hidden_size)

    @property
    def final_norm(self) -> nn.Module:
        """The norm applied before the unembedding (for logit lens)."""
        return self.architecture.final_norm

    @property
    def unembed(self) -> nn.Module:
        """The output head."""
        return self.architecture.unembed

    def resolve_layer(self, layer: LayerRef) -> int:
        """Map a layer reference to an index: ints as given (negative from the end), floats in [0, 1] relative."""
        n = self.n_layers
        if isinstance(layer, bool):
            raise ConfigError(f"Layer {layer!r} is not a number.")
        if isinstance(layer, float):
            if not 0.0 <= layer <= 1.0:
                raise ConfigError(
                    f"Relative layer {layer} is outside [0, 1].", hint="use e.g. 0.5 for the middle"
                )
            return int(layer * (n - 1))
        idx = layer + n if layer < 0 else layer
        if not 0 <= idx < n:
            raise ConfigError(f"Layer {layer} is out of range for a {n}-layer model.", hint=f"use 0..{n - 1}")
        return idx

    def resolve_layers(self, layers: Sequence[LayerRef]) -> list[int]:
        """Resolve several layer references (duplicates removed, order kept)."""
        out: list[int] = []
        for layer in layers:
            idx = self.resolve_layer(layer)
            if idx not in out:
                out.append(idx)
        return out

    def logit_lens(self, vectors: torch.Tensor) -> torch.Tensor:
        """Project residual vectors through the final norm and head in float32; returns log-probs [.., V].

        The norm and head run with float32 copies of their weights whatever the model's dtype (a
        bf16 head's logits are spaced 0.125 apart at 16-32, as large as the differences read out).
        """
        arch = self.architecture
        with torch.inference_mode(), self._activate():
            v = vectors.to(device=self.device, dtype=torch.float32)
            normed = call_in_float32(arch.final_norm, v, self.dtype)
            return torch.log_softmax(call_in_float32(arch.unembed, normed, self.dtype), dim=-1)

    # --------------------------------------------------------------------- text
    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer carries a chat template."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def chat_text(self, prompt: Prompt, system: str | None = None, add_generation_prompt: bool = True) -> str:
        """Render a prompt (a user string or a message list) with the model's chat template.

        ``system=None`` adds no system message (the template may still insert its default one;
        see :meth:`default_system_prompt`).
        """
        messages: Messages = (
            [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        )
        if system is not None and not (messages and messages[0]["role"] == "system"):
            messages = [{"role": "system", "content": system}, *messages]
        if not self.has_chat_template:
            parts = [m["content"] for m in messages]
            return "\n\n".join(parts) + ("\n\n" if add_generation_prompt else "")
        return str(
            self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt
            )
        )

    def default_system_prompt(self) -> str | None:
        """The system text the template inserts when none is given (None if it inserts nothing)."""
        if not self.has_chat_template:
            return None
        marker = "\x00lmdiff-probe\x00"
        plain = self.chat_text(marker)
        explicit = self.chat_text(marker, system="")
        if plain == explicit:
            return ""
        probe = self.chat_text(marker, system=marker + "S")
        # The default is whatever the plain render has where the explicit-system render has our text.
        head_plain = plain.split(marker)[0]
        head_probe = probe.split(marker + "S")[0]
        if head_plain.startswith(head_probe):
            rest = head_plain[len(head_probe) :]
            tail = probe.split(marker + "S")[1].split(marker)[0]
            return rest[: len(rest) - len(tail)] if tail and rest.endswith(tail) else rest
        return None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text``."""
        return list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    def encode_chat(
        self, prompt: Prompt, system: str | None = None, add_generation_prompt: bool = True
    ) -> list[int]:
        """Token ids of a chat-rendered prompt (the template supplies the special tokens)."""
        return self.encode(self.chat_text(prompt, system, add_generation_prompt), add_special_tokens=False)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of token ids."""
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens))

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """Each token decoded on its own (for per-token displays)."""
        return [self.tokenizer.decode([i]) for i in ids]

    # ------------------------------------------------------------------ forward
    def _pad_right(self, seqs: list[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        pad = int(self.tokenizer.pad_token_id)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, : len(s)] = 1
        return ids.to(self.device), mask.to(self.device)

    def iter_forward(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        batch_size: int = 8,
        layers: Sequence[LayerRef] = (),
        logits: bool = True,
        sort_by_length: bool = True,
        progress: str | None = None,
    ) -> Iterator[ForwardBatch]:
        """Stream forward passes over token sequences, batch by batch.

        Args:
            sequences: token id lists (no padding).
            batch_size: sequences per forward pass.
            layers: layers whose block outputs (residual stream) to return.
            logits: whether to compute the output logits (in float32, see :func:`fp32_head`);
                without them the pass stops after the last requested layer.
            sort_by_length: batch sequences of similar length together (less padding);
                each batch says which input indices it holds.
            progress: a progress-bar description, or None for no bar.

        Yields:
            ForwardBatch with ``indices`` into ``sequences``.
        """
        if any(len(s) == 0 for s in sequences):
            raise ConfigError("Cannot run a forward pass on an empty sequence.")
        layer_idx = self.resolve_layers(layers)
        order = (
            sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
            if sort_by_length
            else list(range(len(sequences)))
        )
        captured: dict[int, torch.Tensor] = {}
        stop_after = max(layer_idx) if (layer_idx and not logits) else None
        blocks = self.layers

        def make_hook(idx: int) -> Callable[..., None]:
            def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
                captured[idx] = output[0] if isinstance(output, tuple) else output
                if stop_after is not None and idx == stop_after:
                    raise _StopForward

            return hook

        handles = [blocks[i].register_forward_hook(make_hook(i)) for i in layer_idx]
        try:
            with (
                progress_bar(progress or "", len(sequences) if progress else 0) as advance,
                torch.inference_mode(),
                self._activate(),
            ):
                for start in range(0, len(order), batch_size):
                    idx = order[start : start + batch_size]
                    seqs = [sequences[i] for i in idx]
                    ids, mask = self._pad_right(seqs)
                    captured.clear()
                    out_logits = None
                    try:
                        with fp32_head(self._output_embeddings() if logits else None):
                            out = self.model(input_ids=ids, attention_mask=mask, use_cache=False)
                        out_logits = out.logits
                    except _StopForward:
                        pass
                    yield ForwardBatch(
                        indices=idx,
                        input_ids=ids,
                        attention_mask=mask,
                        lengths=[len(s) for s in seqs],
                        logits=out_logits if logits else None,
                        hidden={i: captured[i] for i in layer_idx},
                    )
                    advance(len(idx))
        finally:
            for h in handles:
                h.remove()

    def score(
        self,
        contexts: Sequence[str],
        continuations: Sequence[str],
        *,
        batch_size: int = 8,
        add_special_tokens: bool = False,
        progress: str | None = None,
    ) -> list[np.ndarray]:
        """Per-token log-probabilities of each continuation given its context.

        Context and continuation are tokenized separately and concatenated, so the
        continuation's tokens are exactly those of ``encode(continuation)``.
        Use ``contexts=[""]*n`` with ``add_special_tokens=True`` to score plain texts.

        Returns:
            One float64 array per item, one log-probability per continuation token
            (the first token of a text with an empty context and no BOS is not scored).
        """
        if len(contexts) != len(continuations):
            raise ValueError("contexts and continuations differ in length")
        seqs: list[list[int]] = []
        starts: list[int] = []
        for ctx, cont in zip(contexts, continuations, strict=True):
            c_ids = (
                self.encode(ctx, add_special_tokens=add_special_tokens) if ctx or add_special_tokens else []
            )
            x_ids = self.encode(cont, add_special_tokens=False)
            seq = c_ids + x_ids
            if not seq:
                seq = [int(self.tokenizer.pad_token_id)]
            seqs.append(seq)
            starts.append(max(len(c_ids), 1))
        out: list[np.ndarray] = [np.zeros(0)] * len(seqs)
        for batch in self.iter_forward(seqs, batch_size=batch_size, progress=progress):
            lp = batch.logprobs()
            for row, i in enumerate(batch.indices):
                target = torch.as_tensor(seqs[i], device=lp.device)
                s, n = starts[i], len(seqs[i])
                if s >= n:
                    out[i] = np.zeros(0)
                    continue
                picked = lp[row, s - 1 : n - 1].gather(-1, target[s:n].unsqueeze(-1)).squeeze(-1)
                out[i] = picked.double().cpu().numpy()
        return out

    def next_token_logprobs(
        self, sequences: Sequence[Sequence[int]], *, batch_size: int = 8
    ) -> list[torch.Tensor]:
        """Full next-token log-distributions [T, V] (float32) at every position of each sequence.

        This holds T x V floats per sequence: for corpora use :meth:`iter_forward`.
        """
        out: list[torch.Tensor] = [torch.empty(0)] * len(sequences)
        for batch in self.iter_forward(sequences, batch_size=batch_size):
            lp = batch.logprobs()
            for row, i in enumerate(batch.indices):
                out[i] = lp[row, : batch.lengths[row]].cpu()
        return out

    def hidden_states(
        self, sequences: Sequence[Sequence[int]], layers: Sequence[LayerRef], *, batch_size: int = 8
    ) -> list[dict[int, torch.Tensor]]:
        """Residual-stream outputs of the given layers, per sequence: {layer: [T, D]}."""
        out: list[dict[int, torch.Tensor]] = [{}] * len(sequences)
        for batch in self.iter_forward(sequences, batch_size=batch_size, layers=layers, logits=False):
            for row, i in enumerate(batch.indices):
                n = batch.lengths[row]
                out[i] = {k: v[row, :n].float().cpu() for k, v in batch.hidden.items()}
        return out

    def activated(self) -> contextlib.AbstractContextManager[Any]:
        """The context in which this side's weights are active (a shared LoRA pair's base side has the adapter off)."""
        return self._activate()

    @functools.cached_property
    def _cache_kwarg(self) -> str:
        """The forward argument that takes the KV cache: transformers 5 calls it ``cache``, 4.x ``past_key_values``.

        Read once per model: :meth:`forward_step` runs at every decode step.
        """
        return "cache" if "cache" in inspect.signature(self.core.forward).parameters else "past_key_values"

    def forward_step(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: Any = None, *, fp32_logits: bool = True
    ) -> tuple[torch.Tensor, Any]:
        """One incremental forward pass with a KV cache: float32 logits at the last position, and the cache.

        Args:
            input_ids: the new tokens [B, T] (the whole left-padded prompt on the first call, then one token).
            attention_mask: the mask of everything seen so far, cached tokens included [B, past + T].
            cache: the cache returned by the previous call (None on the first).
            fp32_logits: compute the output head in float32 (:func:`fp32_head`); off, it runs in the weights' dtype.

        Returns:
            ``(logits [B, V] in float32, cache)``; positions follow the mask, so left padding is harmless.
        """
        width = input_ids.shape[1]
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -width:]
        key = self._cache_kwarg
        head = self._output_embeddings() if fp32_logits else None
        with torch.inference_mode(), self._activate(), fp32_head(head):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             use_cache=True, logits_to_keep=1, **{key: cache})
        return out.logits[:, -1].float(), out.get(key)

    # ---------------------------------------------------------------- generation
    def generate(
        self,
        prompts: Sequence[Prompt],
        config: GenerationConfig | None = None,
        *,
        chat: bool = True,
        system: str | None = None,
        progress: str | None = None,
        logits_processor: Callable[[torch.Tensor, torch.Tensor], Any] | None = None,
        fp32_logits: bool = False,
    ) -> list[list[Generation]]:
        """Sample ``config.n`` completions per prompt.

        Prompts are batched by length with left padding. The seed of each batch is derived
        from ``config.seed`` and the batch's first prompt, so a rerun with the same config
        and batch size reproduces every sample.

        Args:
            prompts: user strings or message lists.
            config: sampling settings.
            chat: render prompts with the chat template.
            system: system prompt (default ``config.system_prompt``).
            progress: a progress-bar description, or None for no bar.
            logits_processor: a factory called once per batch with the batch's left-padded prompt ids and
                attention mask (on the model's device, one row per prompt); it returns a callable
                ``(sequences, scores) -> scores`` (a transformers ``LogitsProcessor`` is one) that edits each
                step's next-token scores before temperature and top-p (see :mod:`lmdiff.amplify`); with one,
                the batch keeps its ended rows (:mod:`lmdiff.models.decoding`). It must not draw random
                numbers, so seeds keep their meaning.
            fp32_logits: compute the output head in float32 (:func:`fp32_head`) during generation.
        """
        cfg = config or GenerationConfig()
        system = cfg.system_prompt if system is None else system
        encoded = [
            self.encode_chat(p, system=system)
            if chat
            else self.encode(p if isinstance(p, str) else p[-1]["content"])
            for p in prompts
        ]
        eos_ids = {int(self.tokenizer.eos_token_id)}
        gen_eos = getattr(getattr(self.core, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            eos_ids.add(gen_eos)
        elif isinstance(gen_eos, list):
            eos_ids.update(int(e) for e in gen_eos)
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        results: list[list[Generation]] = [[] for _ in prompts]
        pad = int(self.tokenizer.pad_token_id)
        with progress_bar(progress or "", len(prompts) if progress else 0) as advance, torch.inference_mode():
            for start in range(0, len(order), cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                width = max(len(encoded[i]) for i in idx)
                ids = torch.full((len(idx), width), pad, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for r, i in enumerate(idx):
                    seq = encoded[i]
                    ids[r, width - len(seq) :] = torch.as_tensor(seq)
                    mask[r, width - len(seq) :] = 1
                ids, mask = ids.to(self.device), mask.to(self.device)
                processor = logits_processor(ids, mask) if logits_processor is not None else None
                torch.manual_seed(cfg.seed * 1_000_003 + min(idx))
                rows = decode_batch(self, ids, mask, cfg, sorted(eos_ids), pad_id=pad, processor=processor,
                              fp32_logits=fp32_logits)
                for r, row in enumerate(rows):
                    prompt_i = idx[r // cfg.n]
                    results[prompt_i].append(
                        Generation(
                            prompt_index=prompt_i,
                            sample_index=r % cfg.n,
                            text=self.decode(row.tokens, skip_special_tokens=True).strip(),
                            n_tokens=len(row.tokens),
                            finished=row.finished,
                        )
                    )
                advance(len(idx))
        return results
