"""Named text corpora that white-box methods run on.

A :class:`Corpus` is a name, a tuple of texts and a content hash; every method records the
corpus name in its result. Sources:

* ``chat``: the shipped chat prompts rendered with the model's chat template (optionally
  followed by the base model's own replies: ``chat+replies``);
* ``pair-replies``: the shipped chat and instruction prompts, each once with the base model's and
  once with the finetuned model's own greedy reply (where a finetune's behaviour shows);
* ``generic``: the shipped Alpaca reference answers (plain prose); ``generic:sampled`` samples
  texts from the base model (kept in the run's cache directory so reruns reuse them);
* ``organism``: the organism's own training data (``train_data.jsonl`` next to its adapter);
* any path to a JSONL, JSON, Parquet or plain-text file.

Named corpora are loaders registered in :data:`CORPORA` (a :class:`~lmdiff.registry.Registry`); a new one
is a function taking a :class:`CorpusRequest`, decorated with ``@CORPORA.register("name")`` (its docstring's
first line describes it). Packages outside lmdiff add theirs from the entry-point group ``lmdiff.corpora``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmdiff.config import GenerationConfig
from lmdiff.data.prompts import PromptSet, load_prompts
from lmdiff.data.records import read_records
from lmdiff.errors import ConfigError
from lmdiff.io import read_json, sha256_json, write_json
from lmdiff.registry import Registry

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel
    from lmdiff.models.pair import ModelPair

#: The two halves of ``pair-replies``, in order: every prompt with the base's, then with the finetune's own reply.
REPLY_HALVES = ("base replies", "finetuned replies")
_TEXT_FIELDS = ("text", "content", "completion", "response", "output", "reference", "prompt")


@dataclass(frozen=True)
class Corpus:
    """A named list of texts.

    Attributes:
        name: the corpus name recorded in results.
        texts: the texts.
        templated: True when the texts already carry the chat template's special tokens
            (so they are tokenized without adding special tokens).
        meta: free-form provenance.
    """

    name: str
    texts: tuple[str, ...]
    templated: bool = False
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def content_hash(self) -> str:
        """Hash of the name, the texts and the templating flag."""
        return sha256_json([self.name, self.templated, list(self.texts)])

    def subset(self, limit: int | None, seed: int = 0) -> Corpus:
        """A seeded random subset of at most ``limit`` texts (original order kept)."""
        if limit is None or limit >= len(self.texts):
            return self
        rng = random.Random(seed)
        keep = sorted(rng.sample(range(len(self.texts)), limit))
        return Corpus(self.name, tuple(self.texts[i] for i in keep), self.templated, dict(self.meta))

    def encode(self, lm: LanguageModel, max_tokens: int | None = None, min_tokens: int = 1) -> list[list[int]]:
        """Token ids of every text under ``lm``'s tokenizer, truncated to ``max_tokens``.

        Texts shorter than ``min_tokens`` are kept as they are (callers filter if needed); empty
        encodings are replaced by the EOS token so every sequence has at least one token.
        """
        out: list[list[int]] = []
        for text in self.texts:
            ids = lm.encode(text, add_special_tokens=not self.templated)
            if max_tokens is not None:
                ids = ids[:max_tokens]
            if not ids:
                ids = [int(lm.tokenizer.eos_token_id)]
            out.append(ids)
        del min_tokens
        return out

    def reply_pairs(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Text indices of the base-written and the finetune-written reply of each prompt ([P] each, same order).

        Only a corpus that pairs each prompt with each model's own reply (``pair-replies``) has
        them; any other corpus gives None.
        """
        n = self.meta.get("prompts")
        if self.meta.get("halves") != list(REPLY_HALVES) or not isinstance(n, int) or 2 * n != len(self.texts):
            return None
        return np.arange(n), np.arange(n, 2 * n)

    def describe(self) -> dict[str, Any]:
        """Name, size and hash."""
        return {"name": self.name, "n": len(self.texts), "sha256": self.content_hash, **self.meta}


def _record_text(record: Any, lm: LanguageModel | None) -> str | None:
    if isinstance(record, str):
        return record
    if not isinstance(record, dict):
        return None
    msgs = record.get("messages")
    if isinstance(msgs, list) and msgs:
        if lm is not None:
            return str(lm.chat_text(msgs, add_generation_prompt=False))
        return "\n\n".join(str(m.get("content", "")) for m in msgs)
    if isinstance(record.get("prompt"), str) and isinstance(record.get("completion"), str):
        if lm is not None:
            return str(
                lm.chat_text(
                    [
                        {"role": "user", "content": record["prompt"]},
                        {"role": "assistant", "content": record["completion"]},
                    ],
                    add_generation_prompt=False,
                )
            )
        return str(record["prompt"]) + "\n\n" + str(record["completion"])
    for key in _TEXT_FIELDS:
        if isinstance(record.get(key), str) and record[key].strip():
            return str(record[key])
    return None


def read_corpus_file(path: str | Path, lm: LanguageModel | None = None, name: str | None = None) -> Corpus:
    """Read texts from a JSONL, JSON, Parquet or plain-text file.

    Records may be strings, objects with a text field (``text``, ``content``, ...), chat
    records with ``messages`` (rendered with ``lm``'s chat template when given), or
    prompt/completion pairs.
    """
    p = Path(path)
    records = read_records(p, "corpus")
    templated = lm is not None and any(
        isinstance(r, dict) and (isinstance(r.get("messages"), list) or "completion" in r) for r in records
    )
    texts = tuple(t for t in (_record_text(r, lm) for r in records) if t)
    if not texts:
        raise ConfigError(f"Corpus file '{p}' holds no texts.")
    return Corpus(name or f"file:{p.name}", texts, templated=templated, meta={"path": str(p)})


def organism_data_path(pair: ModelPair) -> Path | None:
    """The training-data file of the pair's finetuned organism, if it records one."""
    spec = getattr(pair, "finetuned_spec", None)
    gt = getattr(pair, "ground_truth", None) or {}
    candidates: list[Path] = []
    for key in ("data_path", "train_data", "dataset"):
        val = gt.get(key) if isinstance(gt, dict) else None
        if isinstance(val, str):
            candidates.append(Path(val))
    adapter = getattr(spec, "adapter", None)
    if adapter:
        candidates += [Path(adapter) / "train_data.jsonl", Path(adapter) / "data.jsonl"]
    return next((c for c in candidates if c.is_file()), None)


def sample_generic(
    lm: LanguageModel, n: int, max_new_tokens: int = 64, seed: int = 0, cache: Path | None = None
) -> Corpus:
    """Texts sampled from ``lm`` from its BOS/empty context (kept in ``cache`` when given)."""
    if cache is not None and cache.is_file():
        data = read_json(cache)
        if data.get("n") == n and data.get("max_new_tokens") == max_new_tokens and data.get("seed") == seed:
            return Corpus("generic:sampled", tuple(data["texts"]), meta={"sampled_from": lm.name})

    starts = ["The", "In", "A", "It", "When", "This", "One", "There"]
    prompts = [starts[i % len(starts)] for i in range(n)]
    gens = lm.generate(
        prompts,
        GenerationConfig(temperature=1.0, max_new_tokens=max_new_tokens, seed=seed, batch_size=8),
        chat=False,
    )
    texts = tuple(p + " " + g[0].text for p, g in zip(prompts, gens, strict=True))
    if cache is not None:
        write_json(cache, {"n": n, "max_new_tokens": max_new_tokens, "seed": seed, "texts": list(texts)})
    return Corpus("generic:sampled", texts, meta={"sampled_from": lm.name})


@dataclass(frozen=True)
class CorpusRequest:
    """What a corpus loader is asked for (the arguments of :func:`load_corpus`).

    Attributes:
        name: the corpus name.
        pair: the model pair, or None.
        limit: at most this many texts.
        seed: subset and sampling seed.
        cache_dir: where generated texts are kept (the run's artifact directory), or None.
        reply_tokens: reply length of generated texts.
    """

    name: str
    pair: ModelPair | None
    limit: int | None
    seed: int
    cache_dir: Path | None
    reply_tokens: int

    @property
    def base(self) -> LanguageModel | None:
        """The pair's base model (renders chat templates, generates), or None without a pair."""
        return self.pair.base if self.pair is not None else None

    def needs_base(self) -> LanguageModel:
        """The base model, or a ConfigError saying this corpus needs a model pair."""
        if self.pair is None:
            raise ConfigError(f"Corpus '{self.name}' needs a model pair.")
        return self.pair.base


CorpusLoader = Callable[[CorpusRequest], Corpus]
CORPORA: Registry[CorpusLoader] = Registry("corpus", plural="corpora", group="lmdiff.corpora")


def corpus_descriptions() -> dict[str, str]:
    """Each named corpus with its description (the first line of its loader's docstring)."""
    return {name: ((loader.__doc__ or "").strip().splitlines() or [""])[0] for name, loader in CORPORA.items()}


@CORPORA.register("chat")
def _chat(req: CorpusRequest) -> Corpus:
    """Shipped chat prompts rendered with the chat template."""
    prompts = load_prompts("chat", limit=req.limit, seed=req.seed)
    lm = req.base
    if lm is None:
        return Corpus("chat", tuple(prompts.texts))
    return Corpus("chat", tuple(lm.chat_text(p) for p in prompts.texts), templated=True)


def _own_replies(lm: LanguageModel, prompts: PromptSet, req: CorpusRequest, side: str) -> list[str]:
    """One model's greedy replies to ``prompts``, kept in ``req.cache_dir`` (so a rerun does not regenerate)."""
    fname = f"{side}_replies_{prompts.content_hash[:12]}_{req.reply_tokens}_{req.seed}.json"
    cache = req.cache_dir / fname if req.cache_dir else None
    if cache is not None and cache.is_file():
        return [str(r) for r in read_json(cache)]
    gens = lm.generate(
        prompts.texts,
        GenerationConfig(temperature=0.0, max_new_tokens=req.reply_tokens, seed=req.seed),
        progress=f"{side} replies ({req.name} corpus)",
    )
    replies = [g[0].text for g in gens]
    if cache is not None:
        write_json(cache, replies)
    return replies


def _conversations(lm: LanguageModel, prompts: Sequence[str], replies: Sequence[str]) -> tuple[str, ...]:
    return tuple(
        lm.chat_text([{"role": "user", "content": p}, {"role": "assistant", "content": r}],
                     add_generation_prompt=False)
        for p, r in zip(prompts, replies, strict=True)
    )


@CORPORA.register("chat+replies")
def _chat_replies(req: CorpusRequest) -> Corpus:
    """Shipped chat prompts with the base model's own replies."""
    lm = req.needs_base()
    prompts = load_prompts("chat", limit=req.limit, seed=req.seed)
    replies = _own_replies(lm, prompts, req, "base")
    return Corpus("chat+replies", _conversations(lm, prompts.texts, replies), templated=True)


@CORPORA.register("pair-replies")
def _pair_replies(req: CorpusRequest) -> Corpus:
    """Shipped chat and instruction prompts, each twice: with the base's and with the finetune's own reply.

    Where a finetune differs is mostly in what it writes, which text written by others rarely contains
    (a topic it brings up, a style it adopts), so a store on this corpus holds the finetune's
    behaviour. Its base-reply half is the in-corpus contrast: every prompt appears with both replies,
    and both models read both. ``limit`` bounds the prompts (texts are twice as many); replies are
    greedy and kept in the run's cache directory.
    """
    if req.pair is None:
        raise ConfigError(f"Corpus '{req.name}' needs a model pair.")
    base, ft = req.pair.base, req.pair.finetuned
    items = load_prompts("chat").items + load_prompts("instructions").items
    prompts = PromptSet("chat+instructions", items).subset(req.limit, req.seed)
    texts = (_conversations(base, prompts.texts, _own_replies(base, prompts, req, "base"))
             + _conversations(base, prompts.texts, _own_replies(ft, prompts, req, "finetuned")))
    return Corpus("pair-replies", texts, templated=True,
                  meta={"prompts": len(prompts), "halves": list(REPLY_HALVES)})


@CORPORA.register("generic")
def _generic(req: CorpusRequest) -> Corpus:
    """Shipped Alpaca reference answers (plain prose)."""
    prompts = load_prompts("instructions")
    refs = tuple(str(p.meta.get("reference") or p.prompt) for p in prompts.items)
    return Corpus("generic", refs).subset(req.limit, req.seed)


@CORPORA.register("generic:sampled")
def _generic_sampled(req: CorpusRequest) -> Corpus:
    """Texts sampled from the base model (kept in the run)."""
    lm = req.needs_base()
    n = req.limit or 64
    cache = req.cache_dir / f"generic_sampled_{n}_{req.reply_tokens}_{req.seed}.json" if req.cache_dir else None
    return sample_generic(lm, n, req.reply_tokens, req.seed, cache)


@CORPORA.register("organism")
def _organism(req: CorpusRequest) -> Corpus:
    """The organism's own training data."""
    path = organism_data_path(req.pair) if req.pair is not None else None
    if path is None:
        raise ConfigError(
            "Corpus 'organism' needs an organism pair whose adapter directory holds train_data.jsonl.",
            hint="use corpus=generic or corpus=chat, or pass a file",
        )
    return read_corpus_file(path, req.base, name="organism").subset(req.limit, req.seed)


def load_corpus(
    name: str,
    pair: ModelPair | None = None,
    *,
    limit: int | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    reply_tokens: int = 48,
) -> Corpus:
    """Load a named corpus (see the module docstring) or a user file.

    Args:
        name: a name registered in :data:`CORPORA` (``chat``, ``chat+replies``, ``generic``,
            ``generic:sampled``, ``organism``, ...) or a file path.
        pair: the model pair (needed for chat rendering, sampling and organism data).
        limit: at most this many texts (seeded subset).
        seed: subset and sampling seed.
        cache_dir: where sampled texts are kept (the run's artifact directory).
        reply_tokens: reply length for ``chat+replies`` and ``generic:sampled``.

    Returns:
        The corpus.

    Raises:
        ConfigError: Unknown name, or the corpus needs a pair (or organism data) it was not given.
    """
    loader = CORPORA.find(name)
    if loader is not None:
        return loader(CorpusRequest(name, pair, limit, seed, cache_dir, reply_tokens))
    if Path(name).suffix in (".jsonl", ".json", ".parquet", ".txt") or Path(name).is_file():
        lm_file = pair.base if pair is not None else None
        return read_corpus_file(name, lm_file).subset(limit, seed)
    raise ConfigError(
        f"Unknown corpus '{name}'.",
        hint=f"named corpora: {', '.join(CORPORA.names())}; or a .jsonl/.parquet/.txt file",
    )


def template_token_ids(lm: LanguageModel) -> set[int]:
    """Ids of tokens the chat template adds around content (plus all special tokens)."""
    ids = set(int(i) for i in getattr(lm.tokenizer, "all_special_ids", []) or [])
    if lm.has_chat_template:
        marker = "zqxj"
        rendered = lm.encode(lm.chat_text(marker, add_generation_prompt=True), add_special_tokens=False)
        content = set(lm.encode(marker, add_special_tokens=False))
        ids |= {int(i) for i in rendered if i not in content}
    return ids


def corpus_names(values: Sequence[str]) -> str:
    """Join corpus names for display."""
    return ", ".join(values)
