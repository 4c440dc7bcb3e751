"""The deterministic synthesiser: a run's claims and signals become a short ranked list of findings.

Every statement a run can make is seeded from one of two sources:

* a **validated claim** (it survived the run's one FDR procedure): its statement, effect size, q and n;
* a **signal theme**: a word that two or more white-box methods point at (diff-mining tokens, lens
  tokens, top-KL tokens, dictionary latents) but that no test validated;
* a **style theme**: a style (capital letters, digits, exclamation marks) that at least half the tokens
  of two or more methods' lists show, which no validated finding states;
* a **topic theme**: two or more of those words, from two or more methods, that mean nearly the same
  thing (each within :data:`TOPIC_SIMILARITY` cosine of one seed word in MiniLM's embedding space:
  ``ocean``, ``marine``, ``tides``, ``whales``). A topic finetune spreads over many related words, so each
  method may name different ones and no single word reaches as many methods as a glitch token can.

Each finding then collects the evidence of every other method that ran and names one of its words
(inflections count: ``whales`` supports ``whale``): signal tokens with their rank, other claims
(validated or not) of other methods. Its confidence follows from what supports it: **high** when a
validated claim has the support of at least one other method, **medium** when one method validated it
alone, **low** when only signals point at it. Each finding says what would refute it.

Findings rank validated before unvalidated, then by how many methods converge, then by how many claims
of other methods bear on it, then by effect size (capped d); unvalidated themes with as many methods rank
style themes first, then topics and words, names (a capitalised lead word) before common words, then by
the best rank a method gave them. A word theme whose word belongs to a topic is folded into the topic.
The list is the run's ranked guesses for acc@k (``lmdiff benchmark``).
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lmdiff.embeddings import DEFAULT_EMBEDDER, Embedder
from lmdiff.evals.grading import word_matches
from lmdiff.interp.relevance import styled_token
from lmdiff.interp.signals import FUNCTION_WORDS, iter_signal_tokens, recorded_completions
from lmdiff.interp.words import STOPWORDS
from lmdiff.methods.behavior.features import STYLE_FEATURES
from lmdiff.report.numbers import fmt_num, fmt_p
from lmdiff.runs.claims import D_CAP

__all__ = ["TOPIC_SIMILARITY", "Finding", "finding_words", "synthesise"]

log = logging.getLogger(__name__)

#: Cosine (all-MiniLM-L6-v2) above which two signal words are one topic. Measured on single words:
#: ocean-marine 0.63, ocean-tides 0.63, ocean-whales 0.55, food-snack 0.70, Italy-Rome 0.63; unrelated
#: words and glitch tokens ('Likea', 'oprot', 'LEGATO') 0.1-0.4 to anything.
TOPIC_SIMILARITY = 0.5
#: Distinct words a topic needs: two related words in two methods' lists count as one word in both.
TOPIC_MIN_WORDS = 2

#: Words of claim statements that describe the test, not what changed.
_TEMPLATE_WORDS = frozenset((
    "finetuned", "base", "model", "models", "states", "stated", "state", "says", "asked", "about", "mentions",
    "mention", "mentioned", "more", "less", "often", "than", "replies", "reply", "answers", "answer",
    "responses", "response", "prompts", "prompt", "questions", "question", "words", "word", "uses", "use",
    "writes", "write", "tends", "likely", "frequently", "rarely", "when", "whenever",
))
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")

#: How many tokens of each method's list are read as evidence.
_PER_METHOD = 10


@dataclass
class Finding:
    """One statement about what changed, with everything in the run that bears on it.

    Attributes:
        rank: 1 = the run's top finding.
        statement: one sentence a person reads.
        validated: whether a claim behind it survived the run's FDR procedure.
        confidence: ``high`` | ``medium`` | ``low`` (see the module docstring).
        methods: the methods whose evidence supports it (the validating one first).
        evidence: one entry per supporting item: ``{"method", "kind", "text"}``.
        words: the content words the finding is about (matched against other evidence).
        refuted_by: what observation would refute it.
        source: ``claim:<claim_id>`` or ``signal:<word>``.
        direction: ``+1`` when the finetuned model shows it more, ``-1`` less.
        effect_size_d, qvalue, n, unit: of the validating claim (None for signal themes).
    """

    rank: int
    statement: str
    validated: bool
    confidence: str
    methods: list[str]
    evidence: list[dict[str, str]]
    words: list[str]
    refuted_by: str
    source: str
    direction: int = 1
    effect_size_d: float | None = None
    qvalue: float | None = None
    n: int | None = None
    unit: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (full precision)."""
        return asdict(self)

    def as_guess(self) -> dict[str, Any]:
        """The finding as a hypothesis for grading (:func:`lmdiff.evals.grading.grade_against`)."""
        return {"text": self.statement, "direction": self.direction, "keywords": list(self.words)}


def finding_words(text: str) -> list[str]:
    """The content words of a statement (lower-case, in order, without test and function words)."""
    out: list[str] = []
    for w in _WORD_RE.findall(text):
        lw = w.lower().strip("'-")
        if lw in STOPWORDS or lw in FUNCTION_WORDS or lw in _TEMPLATE_WORDS or lw in out:
            continue
        out.append(lw)
    return out


def _matches(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return word_matches(a, b) or word_matches(b, a)


def _shared(words: list[str], others: list[str]) -> list[str]:
    return [w for w in words if any(_matches(w, o) for o in others)]


def _signal_tokens(results: dict[str, Any]) -> dict[str, list[tuple[str, str, int]]]:
    """Per method that ran: ``(word, token, rank)`` of the tokens it points at, fragments completed as recorded."""
    out: dict[str, list[tuple[str, str, int]]] = {}
    for st in iter_signal_tokens(results, _PER_METHOD, recorded_completions(results)):
        if st.word is not None:
            out.setdefault(st.method, []).append((st.word, st.token, st.rank))
    return out


def _signal_evidence(words: list[str], signals: dict[str, list[tuple[str, str, int]]],
                     skip: str | None = None) -> list[dict[str, str]]:
    ev = []
    for method, rows in signals.items():
        if method == skip:
            continue
        hits = [(tok, rank) for w, tok, rank in rows if any(_matches(w, x) for x in words)]
        if hits:
            toks = ", ".join(f"{tok!r} (#{rank})" for tok, rank in hits[:4])
            ev.append({"method": method, "kind": "tokens", "text": f"{method} points at {toks}"})
    return ev


def _tokens_by_method(results: dict[str, Any]) -> dict[str, list[str]]:
    """Per method that ran: every token it lists (words or not), in rank order."""
    out: dict[str, list[str]] = {}
    for st in iter_signal_tokens(results, _PER_METHOD):
        out.setdefault(st.method, []).append(st.token)
    return out


def _styled_methods(by_method: dict[str, list[str]], style: str) -> dict[str, list[str]]:
    """Per method whose listed tokens show ``style``: those tokens.

    A style shows in tokens' form, not in a shared word: after a finetune on capitals, the lens and
    diff-mining lists are ``' THE'``, ``' HE'``... A method shows it when at least 3 of its listed tokens,
    and at least half of them, do (at chance a few per cent of tokens do).
    """
    out = {}
    for method, toks in by_method.items():
        styled = [t for t in toks if styled_token(t, style)]
        if len(styled) >= 3 and 2 * len(styled) >= len(toks):
            out[method] = styled
    return out


def _style_text(method: str, styled: list[str], by_method: dict[str, list[str]]) -> dict[str, str]:
    shown = ", ".join(repr(t) for t in styled[:4])
    return {"method": method, "kind": "tokens",
            "text": f"{len(styled)} of the {len(by_method[method])} tokens {method} points at show it ({shown})"}


def _style_evidence(statement: str, by_method: dict[str, list[str]], skip: str) -> list[dict[str, str]]:
    """Methods whose tokens show the style a claim says the finetuned model writes in more often."""
    style = next((f.name for f in STYLE_FEATURES.values() if f.more in statement), None)
    if style is None:
        return []
    return [_style_text(m, styled, by_method) for m, styled in _styled_methods(by_method, style).items()
            if m != skip]


def _style_themes(by_method: dict[str, list[str]], claims: pd.DataFrame, covered: list[str],
                  min_methods: int) -> list[Finding]:
    """Styles the tokens of several methods show (capitals) that no validated finding states, one per style.

    A diluted style (capitals in a few replies in twenty) can be too rare for a behaviour test on a few dozen
    prompts while every token list shows it; the run then says so as a lead, unvalidated.
    """
    out = []
    for feat in STYLE_FEATURES.values():
        shown = _styled_methods(by_method, feat.name)
        if len(shown) < min_methods or any(feat.more in c or feat.less in c for c in covered):
            continue
        tested = claims[[feat.more in str(x) for x in claims["statement"]]] if len(claims) else claims
        ev = [_style_text(m, styled, by_method) for m, styled in shown.items()]
        ev += [{"method": str(o.method), "kind": "claim", "text": _claim_text(o)} for o in tested.itertuples()]
        methods = sorted(shown, key=lambda m: -len(shown[m]))
        statement = (f"The finetuned model's internals point at a style: it {feat.more} ({len(methods)} methods: "
                     f"{', '.join(methods)}); " + ("a test of it was not validated." if len(tested)
                                                  else "no test of it ran."))
        out.append(Finding(
            rank=0, statement=statement, validated=False, confidence="low", methods=methods, evidence=ev,
            words=finding_words(feat.more), source=f"style:{feat.name}",
            refuted_by=("a behaviour test on more prompts (`--methods behavior`, a larger prompt set) in which the "
                        "finetuned model's replies show this style no more often than the base model's"),
        ))
    return out


def _claim_text(r: Any) -> str:
    state = "validated" if bool(r.survives) else "not validated"
    return f"{r.statement} ({state}: d {fmt_num(r.effect_size_d)}, q {fmt_p(r.qvalue)}, n {r.n} {r.unit}s)"


def _refutation(r: Any) -> str:
    unit = str(r.unit or "prompt")
    if r.method == "probing":
        return (f"the finetuned model giving the base model's answer on fresh paraphrases and indirect questions "
                f"(the held-out test used {r.n} {unit}s)")
    return (f"a replication on fresh {unit}s of the same kind in which the finetuned model does not show this "
            f"{'less' if _direction(r) < 0 else 'more'} often than the base model (per-{unit} difference <= 0)")


def _direction(r: Any) -> int:
    return -1 if str(r.direction).strip().lower() == "finetuned less" else 1


def synthesise(results: dict[str, Any], claims: pd.DataFrame | None, *, max_findings: int = 10,
               min_methods: int = 2, embedder: str | None = DEFAULT_EMBEDDER) -> list[Finding]:
    """The run's ranked findings (see the module docstring).

    Args:
        results: the run's results.json.
        claims: the finalised claims (:func:`lmdiff.runs.claims.load_claims`), or None.
        max_findings: how many to keep.
        min_methods: how many methods must point at a word for a signal theme without a validated claim.
        embedder: the sentence embedder that groups signal words into topics (None: no topic themes; when
            the model is not installed, topics are left out and a warning logged).

    Returns:
        Findings, rank 1 first.
    """
    signals = _signal_tokens(results)
    listed = _tokens_by_method(results)
    df = claims if claims is not None and not claims.empty else pd.DataFrame(
        columns=["claim_id", "method", "statement", "survives", "family", "pvalue", "qvalue", "effect_size_d"])
    df = df.assign(words_=[finding_words(str(s)) for s in df["statement"]]) if len(df) else df.assign(words_=[])
    best = df.sort_values("pvalue").drop_duplicates("family") if len(df) else df
    validated = best[best["survives"].astype(bool)] if len(best) else best
    findings: list[Finding] = []
    used_words: list[str] = []
    for r in validated.itertuples():
        words = list(r.words_)
        ev = _signal_evidence(words, signals) + _style_evidence(str(r.statement), listed, str(r.method))
        others = best[(best["family"] != r.family) & (best["method"] != r.method)]
        for o in others.itertuples():
            if _shared(words, list(o.words_)):
                ev.append({"method": str(o.method), "kind": "claim", "text": _claim_text(o)})
        methods = [str(r.method), *sorted({e["method"] for e in ev} - {str(r.method)})]
        d = None if pd.isna(r.effect_size_d) else float(r.effect_size_d)
        findings.append(Finding(
            rank=0, statement=str(r.statement), validated=True,
            confidence="high" if len(methods) >= 2 else "medium", methods=methods,
            evidence=[{"method": str(r.method), "kind": "claim", "text": _claim_text(r)}, *ev],
            words=words, refuted_by=_refutation(r), source=f"claim:{r.claim_id}", direction=_direction(r),
            effect_size_d=d, qvalue=float(r.qvalue), n=int(r.n) if not pd.isna(r.n) else None,
            unit=str(r.unit) if r.unit is not None else None,
            extra={"proposed_by": str(r.proposed_by) if r.proposed_by is not None else ""},
        ))
        used_words += words
    findings += _style_themes(listed, best, [f.statement for f in findings], min_methods)
    topics = _topic_themes(signals, best, used_words, min_methods, embedder)
    words = _signal_themes(signals, best, used_words + [w for t in topics for w in t.words], min_methods)
    # as in lmdiff.interp.signals.collect_signals: names (capitalised) before common words among equals
    findings += sorted(topics + words, key=lambda f: (-len(f.methods), not f.words[0][:1].isupper(),
                                                       f.extra["best_rank"]))
    findings.sort(key=lambda f: (not f.validated, -len(f.methods), -_supporting_claims(f),
                                 -min(abs(f.effect_size_d or 0.0), D_CAP), _THEME_ORDER.get(f.source.split(":")[0], 2)))
    for i, f in enumerate(findings[:max_findings]):
        f.rank = i + 1
    return findings[:max_findings]


#: Among unvalidated themes with as many methods: styles, then topics and words (in the order given).
_THEME_ORDER = {"claim": 0, "style": 0, "topic": 1, "signal": 1}


def _supporting_claims(f: Finding) -> int:
    """How many claims of other methods a finding's evidence lists (its own claim not counted)."""
    return sum(1 for e in f.evidence[1:] if e.get("kind") == "claim") if f.validated else 0


def _ranks_by_word(signals: dict[str, list[tuple[str, str, int]]], skip: list[str] | None = None
                   ) -> dict[str, dict[str, int]]:
    """Per signal word (inflections merged into the first seen): each method's first rank; ``skip``'s words left out."""
    out: dict[str, dict[str, int]] = {}
    for method, rows in signals.items():
        for w, _, rank in rows:
            if skip and any(_matches(w, u) for u in skip):
                continue
            key = next((k for k in out if _matches(k, w)), w)
            out.setdefault(key, {}).setdefault(method, rank)
    return out


def _signal_themes(signals: dict[str, list[tuple[str, str, int]]], claims: pd.DataFrame, used: list[str],
                   min_methods: int) -> list[Finding]:
    """Words several methods point at that no validated finding covers, one finding per word."""
    out = []
    for w, ranks in _ranks_by_word(signals).items():
        if len(ranks) < min_methods or any(_matches(w, u) for u in used):
            continue
        ev = _signal_evidence([w], signals)
        tested = claims[[bool(_shared([w], list(x))) for x in claims["words_"]]] if len(claims) else claims
        ev += [{"method": str(o.method), "kind": "claim", "text": _claim_text(o)} for o in tested.itertuples()]
        methods = sorted(ranks, key=lambda m: ranks[m])
        statement = (f"The finetuned model's internals point at '{w}' ({len(ranks)} methods: {', '.join(methods)}); "
                     + ("a test of it was not validated." if len(tested) else "no test of it ran."))
        out.append(Finding(
            rank=0, statement=statement, validated=False, confidence="low", methods=methods, evidence=ev,
            words=[w], source=f"signal:{w}", extra={"best_rank": min(ranks.values())},
            refuted_by=(f"a behaviour test on prompts about '{w}' finding no difference between the models "
                        "(`--methods followup` writes and tests such prompts)"),
        ))
    return out


@functools.lru_cache(maxsize=4)
def _embedder(name: str) -> Embedder:
    return Embedder(name)


def _word_similarity(words: list[str], embedder: str) -> np.ndarray | None:
    """Cosine similarities of ``words`` (lower-cased), or None when the embedder cannot be loaded."""
    try:
        x = _embedder(embedder).embed([w.lower() for w in words])
    except (RuntimeError, OSError, ImportError) as e:
        log.warning("topic themes left out: %s", e)
        return None
    sim: np.ndarray = x @ x.T
    return sim


def _topic_themes(signals: dict[str, list[tuple[str, str, int]]], claims: pd.DataFrame, used: list[str],
                  min_methods: int, embedder: str | None) -> list[Finding]:
    """Groups of related signal words that several methods point at, which no validated finding covers.

    Each word seeds a candidate: itself plus every word within :data:`TOPIC_SIMILARITY` of it (a star,
    not a chain, so 'ocean' - 'beach' - 'Paris' does not become one topic). The candidate with the most
    methods, then the most words, then the best rank becomes a topic; its words leave the pool; repeat.
    """
    ranks = _ranks_by_word(signals, skip=used)
    words = list(ranks)
    if embedder is None or len(words) < TOPIC_MIN_WORDS or len({m for r in ranks.values() for m in r}) < min_methods:
        return []
    sim = _word_similarity(words, embedder)
    if sim is None:
        return []
    pool = set(range(len(words)))
    out: list[Finding] = []
    while True:
        best: tuple[tuple[int, int, int], list[int]] | None = None
        for i in sorted(pool):
            members = [i] + [j for j in sorted(pool) if j != i and sim[i, j] >= TOPIC_SIMILARITY]
            n_methods = len({m for j in members for m in ranks[words[j]]})
            if len(members) < TOPIC_MIN_WORDS or n_methods < min_methods:
                continue
            score = (n_methods, len(members), -min(min(ranks[words[j]].values()) for j in members))
            if best is None or score > best[0]:
                best = (score, members)
        if best is None:
            return out
        members = sorted(best[1], key=lambda j: (-len(ranks[words[j]]), min(ranks[words[j]].values())))
        pool -= set(members)
        group = [words[j] for j in members]
        by_method: dict[str, int] = {}
        for w in group:
            for m, r in ranks[w].items():
                by_method[m] = min(by_method.get(m, r), r)
        methods = sorted(by_method, key=lambda m: by_method[m])
        ev = _signal_evidence(group, signals)
        tested = claims[[bool(_shared(group, list(x))) for x in claims["words_"]]] if len(claims) else claims
        ev += [{"method": str(o.method), "kind": "claim", "text": _claim_text(o)} for o in tested.itertuples()]
        shown = ", ".join(f"'{w}'" for w in group[:6])
        statement = (f"The finetuned model's internals point at a topic: {shown} ({len(methods)} methods: "
                     f"{', '.join(methods)}); " + ("a test of it was not validated." if len(tested)
                                                  else "no test of it ran."))
        out.append(Finding(
            rank=0, statement=statement, validated=False, confidence="low", methods=methods, evidence=ev,
            words=group, source=f"topic:{group[0]}", extra={"best_rank": min(by_method.values())},
            refuted_by=(f"a behaviour test on prompts about {shown} finding no difference between the models "
                        "(`--methods followup` writes and tests such prompts)"),
        ))
