"""A local transformers model as an Inspect AI model provider (``lmdiff-local/DIR``).

Inspect's own ``hf`` provider works offline on a local directory too, but it batches through
a queue that waits up to two seconds for more requests and polls once a second, so every
sequential call costs seconds. This provider generates directly (one call at a time, in a
worker thread), greedy at temperature 0, with logprobs and stop strings. lmdiff maps
``local/NAME`` model strings to it; Inspect evaluations can use ``lmdiff-local/DIR`` once
this module is imported.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    Logprob,
    Logprobs,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    StopReason,
    TopLogprob,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

PROVIDER = "lmdiff-local"
DEFAULT_MAX_TOKENS = 256


class LocalTransformersAPI(ModelAPI):
    """Runs a causal LM from a local directory with ``transformers``.

    Args:
        model_name: The model directory.
        base_url: Unused.
        api_key: Unused (local models need no key).
        config: Default generation config.
        device: Torch device (default "cpu").
        dtype: Torch dtype name, e.g. "bfloat16" (default: the checkpoint's).
        **model_args: Passed to ``AutoModelForCausalLM.from_pretrained``.
    """

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),  # noqa: B008 - Inspect's provider signature
        device: str = "cpu",
        dtype: str | None = None,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=None, config=config)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_args.pop("do_sample", None)  # decided per call from the temperature
        if dtype is not None:
            model_args["dtype"] = getattr(torch, dtype)
        self.device = device
        loader: Any = AutoModelForCausalLM  # transformers' stubs confuse mypy here
        self.tokenizer: Any = AutoTokenizer.from_pretrained(model_name)
        self.model: Any = loader.from_pretrained(model_name, **model_args).to(device).eval()
        self._lock = threading.Lock()

    def max_tokens(self) -> int | None:
        """Default completion length."""
        return DEFAULT_MAX_TOKENS

    def max_connections(self) -> int:
        """One generation at a time (the model is shared)."""
        return 1

    def close(self) -> None:
        """Drop the weights."""
        self.model = None
        self.tokenizer = None

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        """Generate a reply to a chat (tools are not supported)."""
        if tools:
            raise NotImplementedError(f"{PROVIDER} does not support tool calls")
        messages = [{"role": m.role, "content": m.text} for m in input]
        return await anyio.to_thread.run_sync(self._generate_sync, messages, config)

    def _prompt_ids(self, messages: list[dict[str, str]]) -> Any:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        return tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"].to(self.device)

    def _generate_sync(self, messages: list[dict[str, str]], config: GenerateConfig) -> ModelOutput:
        import torch

        with self._lock, torch.inference_mode():
            tok = self.tokenizer
            input_ids = self._prompt_ids(messages)
            max_new = config.max_tokens or DEFAULT_MAX_TOKENS
            sample = bool(config.temperature) and (config.temperature or 0) > 0
            kwargs: dict[str, Any] = {
                "max_new_tokens": max_new,
                "do_sample": sample,
                "return_dict_in_generate": True,
                "output_logits": bool(config.logprobs),
                "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            }
            if sample:
                kwargs["temperature"] = config.temperature
                if config.top_p is not None:
                    kwargs["top_p"] = config.top_p
                if config.top_k is not None:
                    kwargs["top_k"] = config.top_k
            else:  # silence "temperature is set but do_sample=False" from the checkpoint's defaults
                kwargs.update(temperature=None, top_p=None, top_k=None)
            if config.stop_seqs:
                kwargs["stop_strings"] = list(config.stop_seqs)
                kwargs["tokenizer"] = tok
            if config.seed is not None:
                torch.manual_seed(config.seed)
            out = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
            new_ids = out.sequences[0, input_ids.shape[1] :]
            text = str(tok.decode(new_ids, skip_special_tokens=True))
            stop_reason: StopReason = "max_tokens" if len(new_ids) >= max_new else "stop"
            for stop in config.stop_seqs or []:
                if stop in text:
                    text = text[: text.index(stop)]
                    stop_reason = "stop"
            logprobs = self._logprobs(out.logits, new_ids, config.top_logprobs) if config.logprobs else None
        choice = ChatCompletionChoice(
            message=ChatMessageAssistant(content=text, model=self.model_name, source="generate"),
            stop_reason=stop_reason,
            logprobs=logprobs,
        )
        n_in, n_out = int(input_ids.shape[1]), len(new_ids)
        return ModelOutput(
            model=self.model_name,
            choices=[choice],
            usage=ModelUsage(input_tokens=n_in, output_tokens=n_out, total_tokens=n_in + n_out),
        )

    def _logprobs(self, logits: Any, new_ids: Any, top: int | None) -> Logprobs:
        import torch

        tok = self.tokenizer
        content = []
        for step, token_id in enumerate(new_ids.tolist()):
            logp = torch.log_softmax(logits[step][0].float(), dim=-1)
            values, ids = torch.topk(logp, k=max(1, top or 1))
            content.append(
                Logprob(
                    token=str(tok.decode([token_id])),
                    logprob=float(logp[token_id]),
                    top_logprobs=[
                        TopLogprob(token=str(tok.decode([i])), logprob=float(v))
                        for v, i in zip(values.tolist(), ids.tolist(), strict=True)
                    ]
                    if top
                    else None,
                )
            )
        return Logprobs(content=content)


@modelapi(name=PROVIDER)
def lmdiff_local() -> type[ModelAPI]:
    """Register :class:`LocalTransformersAPI` with Inspect AI as ``lmdiff-local``."""
    return LocalTransformersAPI
