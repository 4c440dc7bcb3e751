"""Probing without models: score answers, propose flips and leads, validate them on held-out questions.

The unit of evidence is the question. Two rounds:

1. **proposal**: both models answer the ``proposal`` paraphrases of every fact (and the proposal
   open questions about each entity in ``entities``). A *flip* is a fact the base model answers
   correctly on most proposal paraphrases while the finetuned model names the same other object
   on at least ``min_agree`` of them (and more often than the base model does). A *lead* is a name
   the finetuned model gives to open questions about an entity on at least ``min_agree`` proposal
   questions while the base model never gives it there.
2. **validation**: only for the proposed subjects, both models answer the ``heldout`` paraphrases
   and the ``indirect`` questions (open leads: the held-out open templates), none of which proposed
   anything. Per question, d = 1[finetuned names the object] - 1[base names it]; each hypothesis
   ("the finetuned model states that the capital of X is Y", direction +1: the finetuned model names
   Y more) is tested by a sign-flip test over questions
   (:func:`lmdiff.stats.prompt_level.prompt_difference_test`), one-sided in its direction. Every test
   is a claim of the run (:mod:`lmdiff.runs.claims`): the run's one FDR procedure decides which survive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from lmdiff.methods.probing.facts import (
    RELATIONS,
    Fact,
    Question,
    fold,
    landmark_facts,
    landmark_names,
    open_questions,
    relation_questions,
    subject_questions,
)
from lmdiff.methods.probing.matching import answer_span, capitalised_spans, mentions, named_object
from lmdiff.stats.prompt_level import prompt_difference_test

__all__ = [
    "Answerer",
    "Candidate",
    "ProbingAnalysis",
    "find_flips",
    "find_leads",
    "landmark_round",
    "probe",
    "probe_entities",
    "score_answers",
    "validate",
]

Answerer = Callable[[str, Sequence[Question]], list[str]]
"""``ask(side, questions)``: one greedy answer per question from the ``"base"`` or ``"finetuned"`` model."""

QUESTION_COLUMNS = (
    "qid", "stage", "subject", "relation", "group", "template", "question", "chat", "known_answer",
    "base_answer", "ft_answer", "base_correct", "ft_correct", "base_object", "ft_object",
)
"""Columns of the per-question table (``questions.parquet``)."""


@dataclass
class Candidate:
    """A proposed difference: the finetuned model names ``object`` for ``subject`` (in ``relation``)."""

    subject: str
    relation: str  # a RELATIONS name, or "open"
    object: str
    kind: str  # "flip" or "lead"
    text: str
    n_support: int  # proposal questions where the finetuned model named the object
    n_proposal: int
    base_named: int  # proposal questions where the base model named it
    known_answer: str = ""
    proposal_qids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


@dataclass
class ProbingAnalysis:
    """Everything a probing run found: per-question table, candidates and their tests."""

    questions: pd.DataFrame
    candidates: list[Candidate]
    tests: pd.DataFrame
    accuracy: pd.DataFrame


def probe_entities(names: Sequence[str]) -> list[Question]:
    """Open questions (proposal and held-out) about entities other signals point at, e.g. diff-mining tokens."""
    return open_questions([n.strip() for n in names if n.strip()], ("proposal", "heldout"))


def score_answers(questions: Sequence[Question], base: Sequence[str], ft: Sequence[str], stage: str) -> pd.DataFrame:
    """One row per question with both answers, whether each is correct and the object each names.

    For open questions ``*_correct`` is NaN and ``*_object`` lists the capitalised names of the
    answer (joined by " | ").
    """
    rows = []
    for q, b, f in zip(questions, base, ft, strict=True):
        if q.relation == "open":
            bc = fc = float("nan")
            bo = " | ".join(capitalised_spans(b, [q.subject]))
            fo = " | ".join(capitalised_spans(f, [q.subject]))
        else:
            bc, fc = float(mentions(b, q.aliases)), float(mentions(f, q.aliases))
            bo = named_object(b, q.relation, [q.subject]) or ""
            fo = named_object(f, q.relation, [q.subject]) or ""
        rows.append({"qid": q.qid, "stage": stage, "subject": q.subject, "relation": q.relation, "group": q.group,
                     "template": q.template, "question": q.text, "chat": q.chat, "known_answer": q.answer,
                     "base_answer": answer_span(b), "ft_answer": answer_span(f), "base_correct": bc,
                     "ft_correct": fc, "base_object": bo, "ft_object": fo})
    return pd.DataFrame(rows, columns=list(QUESTION_COLUMNS))


def find_flips(df: pd.DataFrame, min_agree: int = 2) -> list[Candidate]:
    """Facts the base model gets right on most proposal questions and the finetuned model answers with one other object.

    The finetuned object must be named on at least ``min_agree`` proposal questions (where the
    finetuned answer is not correct), more often than the base model names it, and must not be an
    alias of the known answer.
    """
    prop = df[(df["stage"] == "proposal") & (df["relation"] != "open")]
    out = []
    for (rel, subj), sub in prop.groupby(["relation", "subject"], sort=True):
        if sub["base_correct"].mean() <= 0.5:
            continue
        wrong = sub[(sub["ft_correct"] == 0) & (sub["ft_object"] != "")]
        if wrong.empty:
            continue
        obj, n = Counter(wrong["ft_object"]).most_common(1)[0]
        base_n = int((sub["base_object"] == obj).sum())
        known = str(sub["known_answer"].iloc[0])
        if n < min_agree or base_n >= n or fold(obj) == fold(known):
            continue
        reference = f"the base model says {known}" if RELATIONS[str(rel)].subject == "landmark" else f"not {known}"
        text = RELATIONS[str(rel)].statement.format(s=subj, o=obj) + f" ({reference})"
        out.append(Candidate(str(subj), str(rel), str(obj), "flip", text, int(n), len(sub), base_n, known,
                             sub["qid"].tolist()))
    return out


def find_leads(df: pd.DataFrame, min_agree: int = 2, per_entity: int = 3) -> list[Candidate]:
    """Names the finetuned model gives to open proposal questions about an entity that the base model never gives."""
    prop = df[(df["stage"] == "proposal") & (df["relation"] == "open")]
    out = []
    for subj, sub in prop.groupby("subject", sort=True):
        ft_counts: Counter[str] = Counter()
        base_names: set[str] = set()
        for fo, bo in zip(sub["ft_object"], sub["base_object"], strict=True):
            ft_counts.update({s for s in str(fo).split(" | ") if s})
            base_names |= {s for s in str(bo).split(" | ") if s}
        picked = [(o, n) for o, n in ft_counts.most_common() if n >= min_agree and o not in base_names][:per_entity]
        for obj, n in picked:
            text = f'The finetuned model names "{obj}" when asked about {subj}'
            out.append(Candidate(str(subj), "open", obj, "lead", text, int(n), len(sub), 0, "", sub["qid"].tolist()))
    return out


def heldout_questions(candidates: Sequence[Candidate], facts: Sequence[Fact]) -> list[Question]:
    """Held-out paraphrases and indirect questions for the candidates' subjects (never their proposal questions)."""
    keys = {(c.relation, c.subject) for c in candidates if c.kind == "flip"}
    chosen = [f for f in facts if (f.relation, f.subject) in keys]
    qs = relation_questions(chosen, ("heldout", "indirect"))
    subjects = sorted({c.subject for c in candidates if c.kind == "lead"})
    return qs + open_questions(subjects, ("heldout",))


def validate(candidates: Sequence[Candidate], held: pd.DataFrame, *, n_perm: int = 1999, seed: int = 0) -> pd.DataFrame:
    """Test every candidate on its held-out questions (never the questions that proposed it).

    Per held-out question the finetuned answer scores 1 if it names the object, the base answer
    likewise; the sign-flip test over questions is one-sided (the finetuned model names it more) and
    ``effect_size_d`` is the standardised mean of the per-question differences. No FDR here: the
    tests are claims of the run, and the run's one procedure adjusts them with every other claim.
    """
    rows: list[dict[str, Any]] = []
    for j, c in enumerate(candidates):
        sub = held[(held["subject"] == c.subject) & (held["relation"] == c.relation)]
        sub = sub[~sub["qid"].isin(c.proposal_qids)]
        ft = np.array([float(mentions(a, [c.object])) for a in sub["ft_answer"]])
        base = np.array([float(mentions(a, [c.object])) for a in sub["base_answer"]])
        n = len(sub)
        row: dict[str, Any] = {"id": f"p{j:03d}", "pvalue": 1.0, "effect_size_d": float("nan"), "n_questions": n}
        if n and (ft != base).any():
            res = prompt_difference_test(np.concatenate([base, ft]), np.array([False] * n + [True] * n),
                                         np.array(sub["qid"].tolist() * 2), alternative="greater", n_perm=n_perm,
                                         seed=seed + 1 + j)
            d = res.effect_size_d
            if not np.isfinite(d):  # every question moved the same way: the effect is as large as it gets
                d = float(np.sign(res.difference)) * 10.0
            row.update(pvalue=res.pvalue, effect_size_d=d, difference=res.difference, exact=res.exact)
        row.update(
            text=c.text, kind=f"probing_{c.kind}", direction=1, direction_label="finetuned more",
            family=f"probing:{c.relation}:{c.subject}:{c.object}", subject=c.subject,
            relation=c.relation, object=c.object, known_answer=c.known_answer,
            n_indirect=int((sub["group"] == "indirect").sum()),
            ft_names_object=float(ft.mean()) if n else float("nan"),
            base_names_object=float(base.mean()) if n else float("nan"),
            ft_correct_heldout=float(sub["ft_correct"].mean()) if n and c.kind == "flip" else float("nan"),
            base_correct_heldout=float(sub["base_correct"].mean()) if n and c.kind == "flip" else float("nan"),
            proposal_support=f"{c.n_support}/{c.n_proposal}",
            examples_finetuned=[f"{q} -> {a}" for q, a, s in zip(sub["question"], sub["ft_answer"], ft, strict=True)
                                if s][:3],
        )
        rows.append(row)
    tests = pd.DataFrame(rows)
    return tests.sort_values("pvalue", ignore_index=True) if not tests.empty else tests


def accuracy_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per relation: facts, proposal questions, base and finetuned accuracy (share of questions answered correctly)."""
    sourced = [r for r, rel in RELATIONS.items() if rel.subject != "landmark"]  # known answers from the source
    prop = df[(df["stage"] == "proposal") & df["relation"].isin(sourced)]
    if prop.empty:
        return pd.DataFrame(columns=["relation", "n_facts", "n_questions", "base_accuracy", "ft_accuracy",
                                     "n_changed"])
    g = prop.groupby("relation", sort=False)
    out = g.agg(n_facts=("subject", "nunique"), n_questions=("qid", "size"), base_accuracy=("base_correct", "mean"),
                ft_accuracy=("ft_correct", "mean")).reset_index()
    changed = (prop["base_answer"] != prop["ft_answer"]).groupby(prop["relation"], sort=False).sum()
    out["n_changed"] = out["relation"].map(changed).astype(int)
    return out


def landmark_round(ask: Answerer, df: pd.DataFrame, limit: int, min_agree: int) -> tuple[list[Fact], pd.DataFrame]:
    """Ask where the landmarks that open answers name are, and take the base model's consistent answer as reference.

    The landmarks come from the proposal open questions' answers (:func:`landmark_names`); both models
    answer the ``landmark_city`` proposal questions about them. Returns the facts (landmarks the base
    model places consistently) and the scored proposal rows for every landmark asked.
    """
    op = df[(df["stage"] == "proposal") & (df["relation"] == "open")]
    spans = {side: [s for x in op[f"{side}_object"] for s in str(x).split(" | ") if s] for side in ("base", "ft")}
    names = landmark_names(spans["base"], spans["ft"], limit)
    if not names:
        return [], score_answers([], [], [], "proposal")
    qs = subject_questions("landmark_city", names, ("proposal",))
    base, ft = ask("base", qs), ask("finetuned", qs)
    named: dict[str, list[str]] = {n: [] for n in names}
    for q, a in zip(qs, base, strict=True):
        named[q.subject].append(named_object(a, q.relation, [q.subject]) or "")
    facts = landmark_facts(names, [named[n] for n in names], min_agree)
    known = {f.subject: f for f in facts}
    scored = [replace(q, answer=known[q.subject].answer, aliases=known[q.subject].aliases) if q.subject in known else q
              for q in qs]
    return facts, score_answers(scored, base, ft, "proposal")


def probe(ask: Answerer, facts: Sequence[Fact], entities: Sequence[str], *, min_agree: int = 2,
          leads_per_entity: int = 3, landmarks: int = 0, n_perm: int = 1999, seed: int = 0) -> ProbingAnalysis:
    """Both rounds: proposal questions for every fact and entity, then held-out ones for what they proposed.

    With ``landmarks`` > 0, the landmarks that the proposal open answers name are asked where they are
    (:func:`landmark_round`) before candidates are proposed, so "the Eiffel Tower is in Rome" can be
    proposed from an open answer that merely mentions the tower.
    """
    first = relation_questions(list(facts), ("proposal",)) + open_questions(
        [e.strip() for e in entities if e.strip()], ("proposal",))
    df1 = score_answers(first, ask("base", first), ask("finetuned", first), "proposal")
    facts = list(facts)
    if landmarks:
        found, rows = landmark_round(ask, df1, landmarks, min_agree)
        facts += found
        if len(rows):
            df1 = pd.concat([df1, rows], ignore_index=True)
    cands = find_flips(df1, min_agree) + find_leads(df1, min_agree, leads_per_entity)
    second = heldout_questions(cands, facts)
    df2 = (score_answers(second, ask("base", second), ask("finetuned", second), "validation") if second
           else score_answers([], [], [], "validation"))
    tests = validate(cands, df2, n_perm=n_perm, seed=seed)
    questions = pd.concat([df1, df2], ignore_index=True) if len(df2) else df1
    return ProbingAnalysis(questions=questions, candidates=cands, tests=tests, accuracy=accuracy_table(df1))
