"""Hypotheses about how the finetuned model differs, written from the discovery prompts only.

Offline writers:

* **n-grams**: weighted log-odds with an informative Dirichlet prior (:func:`lmdiff.stats.contrastive_ngrams`)
  between the two models' discovery replies, globally and inside each response cluster where
  the models differ; several candidate wordings (top 3 and top 8 terms) per direction, all of
  which are tested and enter the FDR procedure;
* **style**: the features of :mod:`lmdiff.methods.behavior.features` whose shift on discovery prompts
  passes a lenient screen (grouped permutation p below ``screen_p``);
* **clusters**: "more replies like cluster c", annotated by similarity to the cluster centroid.

The LLM writer (role ``hypothesis_writer``) sees both models' discovery texts with the model
labels randomised (A/B assignment drawn from the seed and recorded).
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from lmdiff.methods.behavior.features import REPLY_FEATURES, STYLE_FEATURES
from lmdiff.stats import contrastive_ngrams, grouped_permutation_pvalue, tokenize

log = logging.getLogger(__name__)

__all__ = [
    "Hypothesis",
    "cluster_hypotheses",
    "llm_hypotheses",
    "ngram_hypotheses",
    "offline_score",
    "style_hypotheses",
]


@dataclass
class Hypothesis:
    """One candidate difference, stated in words, with what an offline annotator needs to test it.

    Attributes:
        id: unique id within the run (``h000``...).
        text: the sentence, e.g. 'The finetuned model's replies use more of: "ocean", "whale"'.
        kind: ``"ngram"``, ``"style"``, ``"cluster"`` or ``"llm"``.
        direction: +1 if the finetuned model has more of the property, -1 if less, 0 if unknown
            (tested two-sided).
        terms: n-grams of an n-gram hypothesis (the offline annotator counts them).
        feature: style feature name of a style hypothesis.
        cluster: response cluster the hypothesis came from (-1 = global).
        centroid: unit-norm centroid of a cluster hypothesis.
        keywords: words naming the property (compared with a ground truth).
        producer: ``offline:<writer>`` or ``llm:<model>``.
        discovery: statistics from the discovery prompts that led to it (not used for inference).
        family: hypotheses worded from the same finding share a family (candidate wordings).
        property: what an LLM annotator scores on each text (the property alone, without models:
            "mentions pillows"); the hypothesis says the finetuned model shows it more
            (``direction`` +1) or less (-1) than the base model.
    """

    id: str
    text: str
    kind: str
    direction: int
    terms: list[str] = field(default_factory=list)
    feature: str | None = None
    cluster: int = -1
    centroid: list[float] | None = None
    keywords: list[str] = field(default_factory=list)
    producer: str = "offline"
    discovery: dict[str, Any] = field(default_factory=dict)
    family: str = ""
    property: str = ""

    def direction_label(self) -> str:
        """``finetuned more``, ``finetuned less`` or ``either`` (no stated direction: tested two-sided)."""
        return {1: "finetuned more", -1: "finetuned less"}.get(self.direction, "either")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (centroid dropped: it is saved with the clusters)."""
        d = asdict(self)
        d.pop("centroid", None)
        return d


def _quote(terms: Sequence[str]) -> str:
    return ", ".join(f'"{t}"' for t in terms)


def ngram_hypotheses(
    texts_base: Sequence[str],
    texts_ft: Sequence[str],
    *,
    cluster: int = -1,
    z_min: float = 3.0,
    wordings: Sequence[int] = (3, 8),
    min_df: int = 2,
    scope: str = "",
) -> list[Hypothesis]:
    """Hypotheses from the most contrastive n-grams (unigrams and bigrams) of the two models.

    Args:
        texts_base: discovery replies of the base model.
        texts_ft: discovery replies of the finetuned model.
        cluster: the cluster these texts come from (-1 = all).
        z_min: an n-gram must reach this |z| to be named.
        wordings: candidate wordings name the top-k terms for each k here.
        min_df: minimum number of texts an n-gram occurs in.
        scope: words appended to the sentence (e.g. " in replies like cluster 2").

    Returns:
        Up to ``2 * len(wordings)`` hypotheses (ids left empty).
    """
    if not any(tokenize(t) for t in texts_base) or not any(tokenize(t) for t in texts_ft):
        return []
    try:
        df = contrastive_ngrams(texts_base, texts_ft, ngram_range=(1, 2), min_df=min_df, one_per_document=True)
    except ValueError as err:
        log.info("no n-gram contrast: %s", err)
        return []
    out: list[Hypothesis] = []
    for direction, frame in ((1, df[df.z >= z_min]), (-1, df[df.z <= -z_min].iloc[::-1])):
        terms_all = _dedupe_terms(list(frame.ngram))
        if not terms_all:
            continue
        seen: set[int] = set()
        for k in wordings:
            terms = terms_all[:k]
            if len(terms) in seen:
                continue
            seen.add(len(terms))
            who = "finetuned" if direction > 0 else "base"
            zs = frame.set_index("ngram").z.reindex(terms).round(2).tolist()
            out.append(
                Hypothesis(
                    id="",
                    text=f"The {who} model's replies{scope} use more of: {_quote(terms)}",
                    kind="ngram",
                    direction=direction,
                    terms=terms,
                    cluster=cluster,
                    keywords=list(terms),
                    producer="offline:ngram_log_odds",
                    discovery={"z": zs},
                    family=f"ngram:{cluster}:{direction}",
                )
            )
    return out


def _dedupe_terms(terms: list[str]) -> list[str]:
    """Drop a unigram already inside a kept bigram (and vice versa), keeping order."""
    kept: list[str] = []
    for t in terms:
        words = set(t.split())
        if any(words <= set(k.split()) or set(k.split()) <= words for k in kept):
            continue
        kept.append(t)
    return kept


def style_hypotheses(
    texts: Sequence[str],
    labels: NDArray[np.bool_],
    groups: Sequence[Any],
    *,
    screen_p: float = 0.1,
    n_perm: int = 499,
    seed: int = 0,
    exclude: Collection[str] = (),
    reply_values: Mapping[str, NDArray[np.float64]] | None = None,
) -> list[Hypothesis]:
    """Style hypotheses whose shift on the discovery prompts passes a lenient screen.

    Args:
        texts: discovery replies of both models.
        labels: True = finetuned.
        groups: prompt id of each text.
        screen_p: features with a grouped permutation p-value below this are proposed.
        n_perm: permutations of the screen.
        seed: seed of the screen.
        exclude: features not to propose (e.g. ``length`` when replies were cut at the token limit).
        reply_values: values of :data:`REPLY_FEATURES` (name -> one value per text), when recorded.

    Returns:
        One hypothesis per feature that passes (ids left empty).
    """
    out: list[Hypothesis] = []
    candidates: list[tuple[str, Any, NDArray[np.float64]]] = [
        (name, feat, np.array([feat.fn(t) for t in texts], dtype=np.float64))
        for name, feat in STYLE_FEATURES.items()
        if name not in exclude
    ]
    candidates += [
        (name, REPLY_FEATURES[name], np.asarray(vals, dtype=np.float64))
        for name, vals in (reply_values or {}).items()
        if name not in exclude
    ]
    for name, feat, vals in candidates:
        if np.allclose(vals, vals[0]):
            continue
        try:
            res = grouped_permutation_pvalue(vals, labels, list(groups), n_perm=n_perm, seed=seed)
        except ValueError:
            continue
        if res.pvalue >= screen_p:
            continue
        diff = float(vals[labels].mean() - vals[~labels].mean())
        direction = 1 if diff > 0 else -1
        out.append(
            Hypothesis(
                id="",
                text=f"The finetuned model {feat.more if direction > 0 else feat.less}",
                kind="style",
                direction=direction,
                feature=name,
                keywords=list(feat.keywords),
                producer="offline:style_features",
                discovery={
                    "mean_finetuned": float(vals[labels].mean()),
                    "mean_base": float(vals[~labels].mean()),
                    "pvalue": res.pvalue,
                },
                family=f"style:{name}",
            )
        )
    return out


def cluster_hypotheses(
    shifts: pd.DataFrame, centroids: NDArray[np.float64], top_terms: dict[int, list[str]], *, screen_p: float = 0.1
) -> list[Hypothesis]:
    """Propose "more/fewer replies like cluster c" for clusters whose discovery share shifted.

    Args:
        shifts: per-cluster proportion shifts (columns ``cluster``, ``pvalue``, ``risk_difference``...).
        centroids: unit-norm cluster centroids, one row per cluster.
        top_terms: words that characterise each cluster against the rest.
        screen_p: clusters with a discovery p-value below this are proposed.

    Returns:
        Hypotheses (ids left empty).
    """
    out: list[Hypothesis] = []
    for row in shifts.itertuples():
        if not row.pvalue < screen_p:
            continue
        c = int(row.cluster)
        direction = 1 if row.risk_difference > 0 else -1
        terms = top_terms.get(c, [])[:5]
        what = f"about {_quote(terms)}" if terms else f"of kind {c}"
        out.append(
            Hypothesis(
                id="",
                text=f"The finetuned model gives {'more' if direction > 0 else 'fewer'} replies like cluster {c} "
                f"(replies {what})",
                kind="cluster",
                direction=direction,
                terms=terms,
                cluster=c,
                centroid=[float(x) for x in centroids[c]],
                keywords=list(terms),
                producer="offline:embedding_clusters",
                discovery={"risk_difference": float(row.risk_difference), "pvalue": float(row.pvalue)},
                family=f"cluster:{c}",
            )
        )
    return out


def _has_phrase(tokens: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    if n == 1:
        return phrase[0] in tokens
    return any(tokens[i : i + n] == phrase for i in range(len(tokens) - n + 1))


def offline_score(
    hyp: Hypothesis,
    texts: Sequence[str],
    embeddings: NDArray[np.float32] | None = None,
    reply_values: Mapping[str, NDArray[np.float64]] | None = None,
) -> NDArray[np.float64]:
    """The offline annotator: how strongly each text shows the property the hypothesis names.

    Higher means "more like what the hypothesis says the finetuned model does" (the sign of
    ``direction`` is applied). N-gram hypotheses count the distinct named terms present; style
    hypotheses use the feature's value; cluster hypotheses the cosine similarity to the centroid.

    Args:
        hyp: the hypothesis.
        texts: the texts to score.
        embeddings: unit-norm embeddings of ``texts`` (needed by cluster hypotheses).
        reply_values: recorded reply features (name -> one value per text), for hypotheses on them.

    Returns:
        One float per text (NaN where a score cannot be computed).
    """
    sign = -1.0 if hyp.direction < 0 else 1.0
    if hyp.kind == "style" and hyp.feature in REPLY_FEATURES:
        if reply_values is None or hyp.feature not in reply_values:
            return np.full(len(texts), np.nan)
        return sign * np.asarray(reply_values[hyp.feature], dtype=np.float64)
    if hyp.kind == "style" and hyp.feature:
        fn = STYLE_FEATURES[hyp.feature].fn
        return sign * np.array([fn(t) for t in texts], dtype=np.float64)
    if hyp.kind == "cluster" and hyp.centroid is not None:
        if embeddings is None:
            return np.full(len(texts), np.nan)
        return sign * (np.asarray(embeddings, dtype=np.float64) @ np.asarray(hyp.centroid, dtype=np.float64))
    if hyp.terms:
        phrases = [t.split() for t in hyp.terms]
        out = []
        for t in texts:
            toks = tokenize(t)
            out.append(float(sum(_has_phrase(toks, p) for p in phrases)))
        return sign * np.array(out, dtype=np.float64)
    return np.full(len(texts), np.nan)


_MODEL_REF = re.compile(r"\bModel ([AB])\b")


def stated_direction(description: str, finetuned_label: str) -> int:
    """+1 when the first model a writer's sentence names is the finetuned one, -1 for the base, 0 for none.

    The fallback for a written hypothesis without an explicit ``more`` field: writers are asked for
    "Model X ... more than Model Y", so the first model named is the one with more of the property.
    """
    m = _MODEL_REF.search(description)
    if m is None:
        return 0
    return 1 if m.group(1) == finetuned_label else -1


def _canonical(direction: int, prop: str) -> str:
    """The hypothesis as the report states it, always about the finetuned model and with its direction."""
    prop = prop.strip().rstrip(".")
    if direction > 0:
        return f"The finetuned model more often {prop} than the base model"
    if direction < 0:
        return f"The finetuned model less often {prop} than the base model"
    return f"The two models differ in how often they {prop}"


def llm_hypotheses(
    writer: Callable[[dict[str, Any]], Any],
    texts_base: Sequence[str],
    texts_ft: Sequence[str],
    *,
    max_texts: int = 20,
    seed: int = 0,
    focus: str | None = None,
) -> tuple[list[Hypothesis], dict[str, Any]]:
    """Ask the LLM hypothesis writer, with model labels and text order randomised.

    Args:
        writer: the bound ``hypothesis_writer`` role.
        texts_base: discovery replies of the base model.
        texts_ft: discovery replies of the finetuned model.
        max_texts: texts shown per model.
        seed: seed of the sampling, shuffling and label assignment.
        focus: optional focus sentence.

    Returns:
        ``(hypotheses, record)``: each states the finetuned model's direction (more / less of the
        property than the base model) whichever letter the writer saw it under; the annotator
        scores the property alone, and the tests sign its scores by that direction.
    """
    rng = random.Random(seed)
    a_is_ft = rng.random() < 0.5
    sample_b = rng.sample(list(texts_base), min(max_texts, len(texts_base)))
    sample_f = rng.sample(list(texts_ft), min(max_texts, len(texts_ft)))
    texts_a, texts_b = (sample_f, sample_b) if a_is_ft else (sample_b, sample_f)
    inputs: dict[str, Any] = {"texts_a": texts_a, "texts_b": texts_b}
    if focus:
        inputs["focus"] = focus
    res = writer(inputs)
    record = {"a_is_finetuned": a_is_ft, "producer": getattr(res, "producer", "llm"), "valid": res.valid}
    if not res.valid or res.value is None:
        return [], record
    names = {"A": "finetuned" if a_is_ft else "base", "B": "base" if a_is_ft else "finetuned"}
    ft_label = "A" if a_is_ft else "B"
    out = []
    for i, h in enumerate(res.value.hypotheses):
        written = _MODEL_REF.sub(lambda m: f"the {names[m.group(1)]} model", h.description)
        if h.more is not None and h.property.strip():
            direction = 1 if h.more == ft_label else -1
            prop = h.property.strip()
            text = _canonical(direction, prop)
        else:  # no explicit direction: read it from the sentence, score the sentence itself
            direction = stated_direction(h.description, ft_label)
            prop = written
            text = written[0].upper() + written[1:]
        out.append(
            Hypothesis(
                id="",
                text=text,
                kind="llm",
                direction=direction,
                keywords=[w for w in tokenize(prop) if len(w) > 3],
                producer=res.producer,
                discovery={"evidence": h.evidence, "written": written},
                family=f"llm:{i}",
                property=prop,
            )
        )
    return out, record
