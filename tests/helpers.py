"""Test helpers: tiny random models of several architecture families (never downloaded), and servers.

The servers: a fake OpenAI-compatible one in a thread (fast unit tests) and ``transformers serve`` over a
real model directory (the ``server`` tests); both on a free 127.0.0.1 port.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FAMILIES = ("llama", "gpt2", "gpt_neox", "qwen2")
#: LoRA target modules per family (attention and MLP output projections).
LORA_TARGETS = {
    "llama": ["q_proj", "v_proj", "down_proj"],
    "qwen2": ["q_proj", "v_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj"],
    "gpt_neox": ["query_key_value", "dense_4h_to_h"],
}


def smollm2_tokenizer() -> Any:
    """The shipped SmolLM2 tokenizer.

    ``$LMDIFF_TEST_TOKENIZER`` may name a directory holding only its tokenizer files: the GPU machine runs the
    ``gpu`` tests without the 92 MB model package, which is too large to carry there.
    """
    import os

    from transformers import AutoTokenizer

    from lmdiff.models.registry import get_shipped

    shipped = get_shipped("smollm2-135m-instruct")
    assert shipped is not None
    if shipped.source_path() is None and os.environ.get("LMDIFF_TEST_TOKENIZER"):
        return AutoTokenizer.from_pretrained(os.environ["LMDIFF_TEST_TOKENIZER"])
    return AutoTokenizer.from_pretrained(shipped.local_dir(progress=False))


def tiny_causal_lm(
    tokenizer: Any, family: str = "llama", *, seed: int = 0, n_layers: int = 2, hidden: int = 64,
    n_heads: int = 4, n_kv_heads: int = 2, max_positions: int = 512, tie_word_embeddings: bool = True,
) -> Any:
    """A random causal LM of ``family`` (llama, gpt2, gpt_neox, qwen2) over ``tokenizer``'s vocabulary."""
    import torch
    import transformers as tf

    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id, "vocab_size": len(tokenizer),
               "tie_word_embeddings": tie_word_embeddings}
    if family in ("llama", "qwen2"):
        config_cls, model_cls = ((tf.LlamaConfig, tf.LlamaForCausalLM) if family == "llama"
                                 else (tf.Qwen2Config, tf.Qwen2ForCausalLM))
        cfg = config_cls(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=n_layers,
                         num_attention_heads=n_heads, num_key_value_heads=n_kv_heads,
                         max_position_embeddings=max_positions, **special)
    elif family == "gpt2":
        config_cls, model_cls = tf.GPT2Config, tf.GPT2LMHeadModel
        cfg = config_cls(n_embd=hidden, n_layer=n_layers, n_head=n_heads, n_positions=max_positions, **special)
    elif family == "gpt_neox":
        config_cls, model_cls = tf.GPTNeoXConfig, tf.GPTNeoXForCausalLM
        cfg = config_cls(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=n_layers,
                         num_attention_heads=n_heads, max_position_embeddings=max_positions, **special)
    else:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    torch.manual_seed(seed)
    return model_cls(cfg).eval()


def build_tiny_model(path: Path, seed: int = 0, n_layers: int = 2, hidden: int = 64, family: str = "llama") -> Path:
    """A random model of ``family`` (default a 2-layer Llama) with the SmolLM2 tokenizer, saved to ``path``."""
    tok = smollm2_tokenizer()
    model = tiny_causal_lm(tok, family, seed=seed, n_layers=n_layers, hidden=hidden)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def build_perturbed_copy(base_dir: Path, path: Path, seed: int = 1, scale: float = 0.1) -> Path:
    """A copy of the model in ``base_dir`` with Gaussian noise (``scale`` x each tensor's std) on every weight."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            std = float(p.float().std()) if p.numel() > 1 else 1.0
            p.add_(torch.randn(p.shape, generator=gen) * scale * max(std, 1e-3))
    model.save_pretrained(path, safe_serialization=True)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(path)
    return path


def build_tiny_adapter(base_dir: Path, path: Path, seed: int = 1, scale: float = 0.5, family: str = "llama") -> Path:
    """A LoRA adapter over ``base_dir`` with non-zero random weights (so the finetune differs).

    Every LoRA weight comes from ``seed``: PEFT initialises ``lora_A`` from torch's global generator, whose
    state depends on which tests ran before (under pytest-xdist, on which worker), so it is overwritten too.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=LORA_TARGETS[family]))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name:  # PEFT's Kaiming-uniform init, drawn from ``gen``
                bound = 1.0 / p.shape[1] ** 0.5
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
            elif "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
    peft_model.save_pretrained(path, safe_serialization=True)
    return path


# ---------------------------------------------------------------- OpenAI-compatible servers


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: Any, timeout: float) -> None:
    """Terminate a server process started by a test; kill it if it has not exited after ``timeout`` seconds."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


class FakeOpenAIServer:
    """A tiny OpenAI-compatible server (stdlib ``http.server`` on 127.0.0.1, in a thread) for fast tests.

    It serves ``models`` by name: a reply is a fixed sentence that names the prompt and the request's seed,
    in capitals for the models listed in ``caps``. ``key`` makes every request need ``Bearer KEY``;
    ``chat_template=False`` answers chat requests as vLLM does for a model without a template;
    ``completions`` and ``echo`` switch ``/v1/completions`` and its prompt log-probabilities on. Every request
    body (and its Authorization header) is kept in ``requests``.
    """

    def __init__(self, models: tuple[str, ...] = ("fake",), *, caps: tuple[str, ...] = (), key: str | None = None,
                 chat_template: bool = True, completions: bool = True, echo: bool = True) -> None:
        self.models, self.caps, self.key = models, caps, key
        self.chat_template, self.completions, self.echo = chat_template, completions, echo
        self.requests: list[dict[str, Any]] = []
        self._server: Any = None

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def reply_text(self, model: str, prompt: str, seed: int | None) -> str:
        """What the server answers ``prompt`` with."""
        words = [w for w in prompt.split() if w.isalpha()][:3]
        text = f"Here is a short answer about {' '.join(words) or 'that'}, number {(seed or 0) % 7}."
        return text.upper() if model in self.caps else text

    def __enter__(self) -> FakeOpenAIServer:
        import json
        import re
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str) -> None:
                self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": status}})

            def _authorised(self) -> bool:
                if fake.key is not None and self.headers.get("Authorization") != f"Bearer {fake.key}":
                    self._error(401, "Incorrect API key provided.")
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]})
                else:
                    self._error(404, "not found")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                if not self._authorised():
                    return
                model = body.get("model")
                if model not in fake.models:
                    self._error(404, f"The model `{model}` does not exist.")
                    return
                if self.path == "/v1/chat/completions":
                    self._chat(model, body)
                elif self.path == "/v1/completions" and fake.completions:
                    self._complete(model, body)
                else:
                    self._error(404, "not found")

            def _chat(self, model: str, body: dict[str, Any]) -> None:
                if not fake.chat_template:
                    self._error(400, "As of transformers v4.44, default chat template is no longer allowed, so you "
                                     "must provide a chat template if the tokenizer does not define one.")
                    return
                users = [m for m in body.get("messages", []) if m.get("role") == "user"]
                prompt = " ".join(str(m.get("content", "")) for m in users)
                limit = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
                words = fake.reply_text(model, prompt, body.get("seed")).split()[:limit]
                self._send(200, {
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": " ".join(words)}}],
                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(words),
                              "total_tokens": len(prompt.split()) + len(words)},
                })

            def _complete(self, model: str, body: dict[str, Any]) -> None:
                prompt = str(body.get("prompt", ""))
                new = fake.reply_text(model, prompt, body.get("seed")).split()[: int(body.get("max_tokens") or 16)]
                text = " " + " ".join(new)
                choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
                if body.get("echo") and body.get("logprobs") is not None and fake.echo:
                    # whitespace-separated tokens; each one's log-probability is -(its length) / 10 (-1 in capitals)
                    full = prompt + text
                    found = [(m.group(), m.start()) for m in re.finditer(r"\S+", full)]
                    tokens, offsets = [t for t, _ in found], [o for _, o in found]
                    lps: list[float | None] = [None] + [-1.0 if t.isupper() else -len(t) / 10 for t in tokens[1:]]
                    choice["text"] = full
                    choice["logprobs"] = {"tokens": tokens, "token_logprobs": lps, "text_offset": offsets,
                                          "top_logprobs": None}
                self._send(200, {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": model,
                                 "choices": [choice],
                                 "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(new),
                                           "total_tokens": len(prompt.split()) + len(new)}})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def transformers_serve(model_dir: Path, workdir: Path, name: str = "smollm2") -> Iterator[tuple[str, str]]:
    """``transformers serve`` over ``model_dir`` on a free 127.0.0.1 port; yields ``(base URL + /v1, model name)``.

    The server runs in ``workdir`` and is pinned to ``name``, a link there to ``model_dir``, so requests name
    the model ``name`` (a pinned server answers 400 to any other name). Its log is ``workdir/serve.log``.
    Skips when the serving extras are missing; fails when the server exits or does not come up.
    """
    import importlib.util
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    import pytest

    missing = [m for m in ("fastapi", "uvicorn", "openai") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"transformers serve needs {', '.join(missing)} (pip install 'lmdiff[dev]')")
    (workdir / name).symlink_to(model_dir.resolve(), target_is_directory=True)
    port = free_port()
    exe = Path(sys.executable).with_name("transformers")
    log_path = workdir / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with log_path.open("w") as log:
        proc = subprocess.Popen([str(exe), "serve", name, "--host", "127.0.0.1", "--port", str(port),
                                 "--device", "cpu", "--dtype", "float32"], stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=workdir)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 1200  # a loaded shared CPU: imports and loading can take minutes
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"transformers serve exited: {log_path.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/v1/models", timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("transformers serve did not come up")
                time.sleep(2)
            yield f"{url}/v1", name
        finally:
            stop_process(proc, timeout=30)
