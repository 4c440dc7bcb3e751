"""The ``followup`` method: signal -> targeted prompts -> word-level hypotheses -> held-out test -> claim."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from lmdiff.amplify import amplified_generate
from lmdiff.config import GenerationConfig
from lmdiff.embeddings import Embedder
from lmdiff.errors import LmdiffError
from lmdiff.interp.signals import COMPLETIONS_KEY, Signal, collect_signals, run_completions
from lmdiff.interp.words import mentions
from lmdiff.io import write_json, write_parquet
from lmdiff.methods.base import DiffMethod, MethodConfig, MethodContext, MethodResult
from lmdiff.methods.followup.prompts import WORD_RE, content_words, write_prompts
from lmdiff.methods.followup.unprompted import mention_test, plan, prompt_pool, untested, word_use_test
from lmdiff.methods.pair_sampling import REPLIES_FILE, sample_both_sides
from lmdiff.methods.registry import register_method
from lmdiff.models.lm import Generation
from lmdiff.models.recipe import side_recipe
from lmdiff.report.builder import Section
from lmdiff.runs.claims import load_claims, record_claims
from lmdiff.runs.run import Run
from lmdiff.sampling import sample_in_chunks

log = logging.getLogger(__name__)

UNPROMPTED_FILE = "unprompted.parquet"
#: Added to the run's generation seed for the unprompted screen (its draws are not the test's).
SCREEN_SEED_OFFSET = 1_000_003


class FollowupConfig(MethodConfig):
    """Settings of the followup method."""

    max_signals: int = Field(4, ge=0, description="signals (words) followed up")
    topics: list[str] = Field(default_factory=list, description="topics to follow up besides the signals")
    prompts_per_signal: int = Field(16, ge=4, le=40, description="prompts written per signal")
    n_discovery: int = Field(6, ge=2, description="of which propose hypotheses; the rest test them")
    n_per_prompt: int = Field(2, ge=1, description="replies per prompt and model")
    max_new_tokens: int = Field(64, ge=8)
    temperature: float = Field(0.8, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_terms: int = Field(3, ge=1, description="words tested per signal")
    min_prompts: int = Field(2, ge=1, description="discovery prompts on which the leading model must use a word")
    max_covered: int = Field(1, ge=0, description="run prompts that may mention a signal before it counts as covered")
    chunk_size: int = Field(32, ge=1)
    screen_prompts: int = Field(96, ge=0, description=(
        "shipped prompts the finetuned model answers once to see where it brings a signal up unprompted "
        "(0 = no unprompted-mention test)"))
    screen_alpha: float = Field(1.0, ge=0.0, description=(
        "logit-difference amplification of the screen (logits_ft + alpha (logits_ft - logits_base)), so that rare "
        "mentions show; 0, or a pair that cannot be amplified here (an endpoint, tokenizers that differ, models "
        "loaded one at a time), samples the finetune as it is. The test itself always samples both models "
        "unamplified"))
    unprompted_prompts: int = Field(12, ge=2, description="held-out shipped prompts nearest the screen's hits")
    context_words: int = Field(2, ge=0, description="words of the screen's hit prompts to write held-out prompts about")
    written_prompts: int = Field(24, ge=0, le=40, description="held-out prompts written about the context words")
    unprompted_n: int = Field(3, ge=1, description="replies per held-out prompt and model")
    max_unprompted: int = Field(2, ge=0, description="signals tested for unprompted mentions (most screen hits first)")
    min_screen_hits: int = Field(2, ge=1, description="screen prompts the finetune must use a signal on to test it")
    embedder: str = Field("all-minilm-l6-v2", description="embeds prompts to find the screen hits' neighbours")


def propose_terms(disc: pd.DataFrame, topic: str, max_terms: int, min_prompts: int) -> list[tuple[str, int, float]]:
    """Words whose per-prompt rate differs most between the models on the discovery prompts.

    Args:
        disc: replies with ``prompt_id``, ``side`` and ``text``.
        topic: the signal (its own words are not proposed).
        max_terms: how many words.
        min_prompts: the leading model must use the word on at least this many prompts.

    Returns:
        ``(word, direction, mean per-prompt rate difference)``, direction +1 when the finetuned model
        uses the word more.
    """
    topic_words = {w.lower() for w in WORD_RE.findall(topic.lower())}
    words = set().union(*(content_words(t) for t in disc["text"])) - topic_words if len(disc) else set()
    out = []
    for w in words:
        flag = disc["text"].map(lambda t, w=w: mentions(t, w)).astype(float)
        rates = flag.groupby([disc["prompt_id"], disc["side"]]).mean().unstack("side")
        if "finetuned" not in rates or "base" not in rates:
            continue
        diff = (rates["finetuned"] - rates["base"]).dropna()
        if diff.empty or diff.mean() == 0:
            continue
        direction = 1 if diff.mean() > 0 else -1
        lead = rates["finetuned"] if direction > 0 else rates["base"]
        if int((lead > 0).sum()) < min_prompts:
            continue
        out.append((w, direction, float(diff.mean())))
    out.sort(key=lambda t: (-abs(t[2]), t[0]))
    return out[:max_terms]


@register_method
class FollowupMethod(DiffMethod[FollowupConfig]):
    """Targeted prompts about what the white-box methods point at, tested on held-out prompts."""

    name = "followup"
    title = "Follow-up on signals: targeted prompts about what the white-box readouts point at"
    description = "black-box: prompts about words other methods single out; word-level differences tested"
    Config = FollowupConfig
    stage = 1
    tests_hypotheses = True
    demo_settings: ClassVar[dict[str, Any] | None] = {"max_signals": 3, "n_per_prompt": 1, "max_new_tokens": 48}
    # the unprompted-mention test costs about 5 minutes on a 2-core CPU (screen 143 s, held-out sampling 154 s
    # on organism:brand-food), so the default set, sized for ten minutes, leaves it off
    default_set_settings: ClassVar[dict[str, Any]] = {"max_signals": 3, "n_per_prompt": 1, "max_new_tokens": 48,
                                                      "screen_prompts": 0}

    def run(self, ctx: MethodContext[FollowupConfig]) -> MethodResult:
        """Collect signals, write prompts, sample both models, propose and test words; record claims."""
        cfg = ctx.config
        results = ctx.run.results()
        completions = run_completions(ctx.pair.text_side("finetuned"), results)
        chosen, covered = collect_signals(
            results, ctx.prompts.texts, completions=completions, max_signals=cfg.max_signals,
            max_covered=cfg.max_covered,
        )
        chosen += [Signal(t, ["user"]) for t in cfg.topics if t.lower() not in {s.word.lower() for s in chosen}]
        writer = _prompt_writer()
        rows = []
        for i, sig in enumerate(chosen):
            texts, producer = write_prompts(sig.word, cfg.prompts_per_signal, ctx.run_config.seed, writer)
            for j, text in enumerate(texts):
                rows.append(
                    {
                        "signal": sig.word,
                        "prompt_id": f"s{i}:p{j}",
                        "prompt": text,
                        "writer": producer,
                        "split": "discovery" if j < cfg.n_discovery else "validation",
                    }
                )
        prompts = pd.DataFrame(rows, columns=["signal", "prompt_id", "prompt", "writer", "split"])
        out = ctx.artifact_dir
        signals_df = pd.DataFrame(
            [
                {
                    "signal": s.word,
                    "sources": ", ".join(s.sources),
                    "covered_by_prompts": s.covered,
                    "followed_up": s in chosen,
                }
                for s in chosen + covered
            ]
        )
        write_parquet(out / "signals.parquet", signals_df if not signals_df.empty else pd.DataFrame({"empty": []}))
        write_parquet(out / "prompts.parquet", prompts)
        if prompts.empty:
            record_claims(ctx.run.path, self.name, [])
            why = (
                "no white-box method of this run produced a signal"
                if not covered
                else f"every signal ({', '.join(s.word for s in covered)}) is already covered by the run's prompts"
            )
            return MethodResult(
                headline={
                    "n_signals": 0,
                    "signals": [],
                    "covered": [s.word for s in covered],
                    "n_prompts": 0,
                    "n_tested": 0,
                },
                summary=f"Nothing to follow up: {why}.",
                data={"signals": "signals.parquet"},
                artifacts=[str((out / "signals.parquet").relative_to(ctx.run.path))],
            )
        replies = self._sample(ctx, prompts)
        write_parquet(out / "replies.parquet", replies)
        tests = []
        for sig in chosen:
            mine = replies[replies["signal"] == sig.word]
            disc, val = mine[mine["split"] == "discovery"], mine[mine["split"] == "validation"]
            for word, direction, disc_diff in propose_terms(disc, sig.word, cfg.max_terms, cfg.min_prompts):
                tests.append(self._test(sig, word, direction, disc_diff, val, ctx.run_config.seed))
        tests_df = pd.DataFrame(tests)
        write_parquet(out / "tests.parquet", tests_df if not tests_df.empty else pd.DataFrame({"empty": []}))
        unprompted_error = None
        try:
            unprompted = self._unprompted(ctx, chosen, writer)
        except (LmdiffError, RuntimeError, ValueError, MemoryError, OSError) as err:
            # the word tests stand on their own: an optional screen that fails costs its own claims only
            unprompted, unprompted_error = [], f"{type(err).__name__}: {err}"
            log.error("followup: the unprompted-mention test failed (%s); the word tests are kept", unprompted_error)
        write_parquet(out / UNPROMPTED_FILE, pd.DataFrame(unprompted) if unprompted else pd.DataFrame({"empty": []}))
        evidence = ("rate_finetuned", "rate_base", "example_finetuned", "example_base")
        record_claims(
            ctx.run.path,
            self.name,
            [_claim(t, t["direction_label"], f"followup:{t['signal']}:{t['word']}", evidence) for t in tests]
            + [_claim(t, "finetuned more", f"followup:{t['id']}", ("example_prompt", *evidence))
               for t in unprompted if t["tested"]],
        )
        write_json(
            out / "chain.json", {"signals": [s.__dict__ for s in chosen], "covered": [s.__dict__ for s in covered]}
        )
        best = min([t["pvalue"] for t in tests] + [t["pvalue"] for t in unprompted if t["tested"]], default=None)
        headline = {
            "n_signals": len(chosen),
            "signals": [s.word for s in chosen],
            "covered": [s.word for s in covered],
            COMPLETIONS_KEY: completions,
            "n_prompts": int(prompts["prompt_id"].nunique()),
            "prompt_writer": str(prompts["writer"].iloc[0]),
            "n_tested": len(tests),
            "min_pvalue": best,
            "unprompted": {t["word"]: t["screen_hits"] for t in unprompted},
            "n_unprompted_tested": sum(bool(t["tested"]) for t in unprompted),
            "unprompted_error": unprompted_error,
        }
        summary = (
            f"Followed up {len(chosen)} signal(s) ({', '.join(s.word for s in chosen)}) with "
            f"{headline['n_prompts']} written prompts; {len(tests)} word-level differences tested on held-out "
            "prompts (q-values in the run's one FDR family)."
        )
        if unprompted_error is not None:
            summary += f" The unprompted-mention test failed ({unprompted_error}); no claim of it was recorded."
        elif cfg.screen_prompts:
            seen = [f"'{t['word']}' on {t['screen_hits']}/{t['screen_prompts']}" for t in unprompted]
            summary += (
                f" Unprompted: the finetuned model used {', '.join(seen)} screen prompts that never name the word; "
                f"{headline['n_unprompted_tested']} tested on held-out neighbouring prompts."
            )
        arts = [
            str((out / f).relative_to(ctx.run.path))
            for f in ("signals.parquet", "prompts.parquet", "replies.parquet", "tests.parquet", UNPROMPTED_FILE,
                      "chain.json")
        ]
        return MethodResult(headline=headline, summary=summary, data={"tests": "tests.parquet"}, artifacts=arts)

    def _sample(self, ctx: MethodContext[FollowupConfig], prompts: pd.DataFrame) -> pd.DataFrame:
        cfg = ctx.config
        gen = _generation(ctx, cfg.n_per_prompt)
        meta = prompts[["prompt_id", "signal", "split"]]

        def finish(replies: pd.DataFrame) -> pd.DataFrame:
            replies = replies.merge(meta, on="prompt_id")
            return replies[["signal", "split", "prompt_id", "prompt", "side", "sample_index", "text", "seed"]]

        # same seed on both sides: identical models give identical replies
        replies, _ = sample_both_sides(ctx, prompts["prompt"].tolist(), gen, {"prompts": prompts.to_dict("records")},
                                       prompt_ids=prompts["prompt_id"].tolist(), chunk_size=cfg.chunk_size,
                                       finish=finish)
        return replies

    def _unprompted(self, ctx: MethodContext[FollowupConfig], chosen: list[Signal], writer: Any
                    ) -> list[dict[str, Any]]:
        """The unprompted-mention screen and test of every signal (see :mod:`.unprompted`); one row per signal.

        ``writer`` is the LLM ``prompt_writer`` role, or None for templates.
        """
        cfg = ctx.config
        if not cfg.screen_prompts or not chosen:
            return []
        words = [s.word for s in chosen]
        screen, pool = prompt_pool(ctx.prompts.texts, words, ctx.run_config.seed, cfg.screen_prompts)
        # the screen's seeds differ from the test's, so that its replies and the test's are independent draws
        screened = self._screen(ctx, screen, _generation(ctx, 1, seed_offset=SCREEN_SEED_OFFSET))
        emb = Embedder(cfg.embedder, cache_dir=ctx.run.path / "cache" / "embeddings")

        def write(word: str, n: int) -> list[str]:
            return write_prompts(word, n, ctx.run_config.seed, writer)[0]

        plans = plan(screened, words, pool, emb.embed, k=cfg.unprompted_prompts, min_hits=cfg.min_screen_hits,
                     n_context=cfg.context_words, n_written=cfg.written_prompts, write=write,
                     max_tested=cfg.max_unprompted, exclude=ctx.prompts.texts)
        heldout = list(dict.fromkeys(p for pl in plans for p in pl.heldout))
        replies = pd.DataFrame(columns=["prompt", "side", "text"])
        if heldout:
            replies, _ = sample_both_sides(
                ctx, heldout, _generation(ctx, cfg.unprompted_n), {"heldout": heldout},
                chunk_size=cfg.chunk_size, step_name="unprompted",
            )
        rows = []
        for sig, pl in zip(chosen, plans, strict=True):
            like = "; ".join(f"'{h}'" for h in pl.hits[:2])
            about = f" and {len(pl.written)} written about {', '.join(pl.context)}" if pl.written else ""
            chain = (f"signal '{sig.word}' from {', '.join(sig.sources)} -> screen: the finetuned model used it on "
                     f"{len(pl.hits)}/{pl.n_screen} prompts that never name it" + (f" ({like})" if like else "")
                     + f" -> held-out: {len(pl.neighbours)} nearest shipped prompts{about}, both models")
            row = mention_test(pl, replies, ctx.run_config.seed) if pl.heldout else untested(pl)
            rows.append({**row, "signal": sig.word, "hit_prompts": pl.hits[:5], "context": pl.context,
                         "chain": chain, "tested": bool(pl.heldout)})
        return rows

    @staticmethod
    def _screen(ctx: MethodContext[FollowupConfig], prompts: list[str], gen: GenerationConfig) -> pd.DataFrame:
        """The finetuned model's screen replies: amplified (``screen_alpha``) when the pair allows it, else plain."""
        alpha = ctx.config.screen_alpha if _amplifiable(ctx) else 0.0
        step = ctx.step("screen", {"prompts": prompts, "gen": gen.model_dump(), "alpha": alpha}, whole_config=False)
        if step.done:
            return pd.read_parquet(step.dir / REPLIES_FILE)
        d = step.prepare()
        pair = ctx.pair
        if alpha:
            ft, base = pair.finetuned, pair.base  # both resident (checked): bound once for every chunk

            def amplified(t: list[str], g: GenerationConfig) -> list[list[Generation]]:
                return amplified_generate(ft, base, t, g, alpha)

            replies = sample_in_chunks(ft, prompts, gen, d / "finetuned", chunk_size=ctx.config.chunk_size,
                                       generate=amplified, description=f"screen: finetuned, alpha={alpha:g}")
        else:
            replies = sample_in_chunks(pair.text_side("finetuned"), prompts, gen, d / "finetuned",
                                       chunk_size=ctx.config.chunk_size, description="screen: finetuned",
                                       executor=ctx.executor, build=side_recipe(pair, "finetuned"))
        replies = replies.assign(side="finetuned", alpha=alpha)
        write_parquet(d / REPLIES_FILE, replies)
        step.finish({"n": len(replies), "alpha": alpha})
        return replies

    @staticmethod
    def _test(sig: Signal, word: str, direction: int, disc_diff: float, val: pd.DataFrame, seed: int) -> dict[str, Any]:
        more = "more" if direction > 0 else "less"
        res = word_use_test(val, word, "prompt_id", "greater" if direction > 0 else "less", seed)
        return {
            "id": f"{sig.word.lower()}:{word}",
            "signal": sig.word,
            "word": word,
            "direction": direction,
            "direction_label": f"finetuned {more}",
            "statement": f"Asked about {sig.word}, the finetuned model mentions '{word}' {more} often than the base "
            "model",
            "pvalue": res["pvalue"],
            "effect_size_d": direction * res["effect_size_d"],
            "difference": res["difference"],
            "n_prompts": res["n_prompts"],
            "rate_finetuned": res["rate_finetuned"],
            "rate_base": res["rate_base"],
            "discovery_difference": disc_diff,
            "example_finetuned": res["example_finetuned"],
            "example_base": res["example_base"],
            "chain": f"signal '{sig.word}' from {', '.join(sig.sources)} -> prompts about {sig.word}",
        }

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """The chain per signal: where it came from, the prompts written, the words tested and their q-values."""
        section.text(result.summary)
        art = run.path / "artifacts" / self.name
        signals = pd.read_parquet(art / "signals.parquet") if (art / "signals.parquet").exists() else pd.DataFrame()
        if not signals.empty and "signal" in signals:
            section.table(
                signals,
                caption="Signals: which methods pointed at each word, and how many of the run's "
                "prompts already mention it (covered signals are not followed up)",
            )
        claims = load_claims(run.path)
        q = {}
        if claims is not None and not claims.empty:
            mine = claims[claims["method"] == self.name]
            q = {
                str(c).split(":", 1)[1]: (float(qv), bool(sv))
                for c, qv, sv in zip(mine["claim_id"], mine["qvalue"], mine["survives"], strict=True)
            }
        _render_unprompted(art / UNPROMPTED_FILE, q, section)
        tests = pd.read_parquet(art / "tests.parquet") if (art / "tests.parquet").exists() else pd.DataFrame()
        if tests.empty or "word" not in tests:
            section.note("No word-level difference was proposed on the discovery prompts.", "info")
            return
        table = pd.DataFrame(
            {
                "signal": tests["signal"],
                "word": tests["word"],
                "direction": tests["direction_label"],
                "finetuned rate": tests["rate_finetuned"].map(lambda v: f"{v:.0%}"),
                "base rate": tests["rate_base"].map(lambda v: f"{v:.0%}"),
                "held-out prompts": tests["n_prompts"],
                "p": tests["pvalue"].map(_p),
                "q": [_p(q.get(i, (np.nan, False))[0]) for i in tests["id"]],
                "validated": ["yes" if q.get(i, (np.nan, False))[1] else "no" for i in tests["id"]],
            }
        )
        section.table(
            table,
            caption="Words tested on held-out prompts (prompt = unit; sign-flip test in the stated "
            "direction; q from the run's one FDR procedure)",
        )
        ex = tests.sort_values("pvalue").head(3)
        section.side_by_side(
            [
                {
                    "prompt": f"{r.signal}: '{r.word}'",
                    "base": r.example_base or "(no base reply uses it)",
                    "finetuned": r.example_finetuned or "(no finetuned reply uses it)",
                }
                for r in ex.itertuples()
            ],
            "base",
            "finetuned",
        )


def _claim(t: dict[str, Any], direction: str, family: str, evidence: tuple[str, ...]) -> dict[str, Any]:
    """A followup test row as a claim of the run (prompt = unit, sign-flip test)."""
    return {
        "claim_id": t["id"],
        "statement": t["statement"],
        "direction": direction,
        "pvalue": t["pvalue"],
        "effect_size_d": t["effect_size_d"],
        "n": t["n_prompts"],
        "unit": "prompt",
        "test": "prompt_sign_flip",
        "family": family,
        "proposed_by": t["chain"],
        "evidence": {k: t[k] for k in evidence},
    }


def _render_unprompted(path: Path, q: dict[str, tuple[float, bool]], section: Section) -> None:
    """The unprompted-mention table: screen hits, held-out rates, p and q per signal, and examples."""
    df = pd.read_parquet(path) if path.exists() else pd.DataFrame()
    if df.empty or "word" not in df:
        return
    qs = [q.get(i, (np.nan, False)) for i in df["id"]]
    table = pd.DataFrame(
        {
            "signal": df["word"],
            "screen: finetune used it": [f"{h}/{n}" for h, n in zip(df["screen_hits"], df["screen_prompts"],
                                                                     strict=True)],
            "prompts written about": [", ".join(c) for c in df["context"]],
            "held-out prompts": df["n_prompts"],
            "finetuned rate": [f"{v:.0%}" if t else "-" for v, t in zip(df["rate_finetuned"], df["tested"],
                                                                         strict=True)],
            "base rate": [f"{v:.0%}" if t else "-" for v, t in zip(df["rate_base"], df["tested"], strict=True)],
            "p": [_p(v) if t else "not tested" for v, t in zip(df["pvalue"], df["tested"], strict=True)],
            "q": [_p(v[0]) if t else "-" for v, t in zip(qs, df["tested"], strict=True)],
            "validated": [("yes" if v[1] else "no") if t else "-" for v, t in zip(qs, df["tested"], strict=True)],
        }
    )
    section.table(
        table,
        caption="Unprompted mentions: on how many screen prompts (which never name the word) the finetuned model "
        "used it, and the one-sided test on held-out prompts (the shipped prompts nearest the screen's hits and "
        "prompts written about words of the hits), both models sampled (prompt = unit; q from the run's one FDR "
        "procedure). A word is not tested when the screen saw it fewer than min_screen_hits times, or when words "
        "seen more often took the max_unprompted places.",
    )
    ex = df[df["tested"] & (df["example_finetuned"] != "")]
    if len(ex):
        section.side_by_side(
            [{"prompt": r.example_prompt, "base": r.example_base or "(no base reply uses it)",
              "finetuned": r.example_finetuned} for r in ex.itertuples()],
            "base",
            "finetuned",
        )


def _amplifiable(ctx: MethodContext[FollowupConfig]) -> bool:
    """Whether both models are in memory here together with one tokenizer, so the screen can sample amplified."""
    pair = ctx.pair
    return pair.white_box_unavailable() is None and pair.tokenizer_check().shared and pair.both_resident()


def _generation(ctx: MethodContext[FollowupConfig], n: int, seed_offset: int = 0) -> GenerationConfig:
    """The method's sampling settings with ``n`` replies per prompt (seeds offset by ``seed_offset``)."""
    cfg = ctx.config
    return GenerationConfig(
        temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, n=n,
        seed=ctx.run_config.generation.seed + seed_offset,
        batch_size=min(cfg.chunk_size, ctx.run_config.compute.batch_size),
    )


def _prompt_writer() -> Any:
    """The LLM ``prompt_writer`` role when an LLM is configured, else None (templates)."""
    from lmdiff.llm.roles import resolve_role

    try:
        return resolve_role("prompt_writer", None)
    except Exception:  # an unusable LLM configuration falls back to templates; diff checks the provider first
        return None


def _p(x: Any) -> str:
    v = float(x)
    if v != v:
        return "n/a"
    return "< 0.001" if v < 0.001 else f"{v:.3g}"
