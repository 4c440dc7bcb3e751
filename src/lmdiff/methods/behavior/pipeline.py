"""The statistics layer of the behaviour pipeline: from texts and embeddings to tested hypotheses.

It needs no language model: give it a table of replies (``text_id``, ``prompt_id``, ``side``,
``text``) and their embeddings. The order of operations is the point:

1. prompts are split into a discovery and a validation half (whole prompts, seeded) first;
2. the global two-sample tests and the bag-of-words baseline run on all replies;
3. clustering, cluster shifts and every hypothesis use the discovery prompts only;
4. every hypothesis is tested on the validation prompts only;
5. one FDR procedure runs over all tested hypotheses;
6. validated hypotheses are ranked and, when a ground truth is known, graded (acc@1, acc@5).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from lmdiff.evals.grading import acc_summary
from lmdiff.llm import resolve_role
from lmdiff.methods.behavior.clusters import cluster_embeddings, cluster_shifts, match_clusters
from lmdiff.methods.behavior.config import BehaviorConfig
from lmdiff.methods.behavior.features import REPLY_FEATURES
from lmdiff.methods.behavior.generative import Scorer, generative_test
from lmdiff.methods.behavior.hypotheses import (
    Hypothesis,
    cluster_hypotheses,
    llm_hypotheses,
    ngram_hypotheses,
    offline_score,
    style_hypotheses,
)
from lmdiff.methods.behavior.validate import (
    acc_at_k,
    apply_fdr,
    grade_offline,
    rank_tests,
    split_prompts,
    test_hypothesis,
)
from lmdiff.stats import bag_of_words_baseline, classifier_two_sample_test, contrastive_ngrams, mmd_permutation_test

if TYPE_CHECKING:
    from lmdiff.llm.client import LlmClient

log = logging.getLogger(__name__)

__all__ = ["BehaviorAnalysis", "analyze"]


@dataclass
class BehaviorAnalysis:
    """Everything the pipeline found; tables are saved as Parquet by the method.

    Attributes:
        split: prompt id -> ``"discovery"`` / ``"validation"``.
        global_tests: classifier AUC, MMD and bag-of-words results (dicts).
        hypotheses: every hypothesis, in id order.
        tests: one row per hypothesis: held-out statistics, q-value, survives, grade.
        annotations: one row per (hypothesis, held-out text): the score behind each p-value.
        clusters: per-cluster shifts on discovery prompts.
        matching: Hungarian matching of per-model clusters.
        points: 2-D PCA coordinates of every reply (for the cluster map).
        headline: the headline figures.
        records: extra JSON-able provenance (LLM calls, settings).
        generative: one row per (hypothesis, held-out prompt) of the generative test: the written
            exemplar and control and their log-probabilities under both models (empty offline).
    """

    split: dict[str, str]
    global_tests: dict[str, Any]
    hypotheses: list[Hypothesis]
    tests: pd.DataFrame
    annotations: pd.DataFrame
    clusters: pd.DataFrame
    matching: pd.DataFrame
    points: pd.DataFrame
    headline: dict[str, Any]
    records: dict[str, Any] = field(default_factory=dict)
    generative: pd.DataFrame = field(default_factory=pd.DataFrame)


def _safe(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return dict(fn(*args, **kwargs).to_dict())
    except ValueError as err:
        log.warning("%s failed: %s", getattr(fn, "__name__", fn), err)
        return {"error": str(err)}


def _top_cluster_terms(texts: list[str], labels: NDArray[Any], k: int) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for c in range(k):
        inside = [t for t, lab in zip(texts, labels, strict=True) if lab == c]
        rest = [t for t, lab in zip(texts, labels, strict=True) if lab != c]
        try:
            df = contrastive_ngrams(rest, inside, min_df=2, one_per_document=True)
            out[c] = list(df[df.z > 1.0].ngram[:8])
        except ValueError:
            out[c] = []
    return out


def analyze(
    replies: pd.DataFrame,
    embeddings: NDArray[Any],
    config: BehaviorConfig | None = None,
    *,
    ground_truth: dict[str, Any] | None = None,
    llm: LlmClient | None = None,
    seed: int = 0,
    known_behaviours: dict[str, dict[str, Any]] | None = None,
    scorer: Scorer | None = None,
    other_pvalues: NDArray[Any] | None = None,
) -> BehaviorAnalysis:
    """Run the statistics layer on replies of both models.

    Args:
        replies: columns ``text_id``, ``prompt_id``, ``side`` (``"base"``/``"finetuned"``), ``text``.
        embeddings: one unit-norm row per reply, in the same order.
        config: pipeline settings.
        ground_truth: the finetune's known behaviour (``keywords``, ``description``), if any.
        llm: an :class:`lmdiff.llm.LlmClient` or config for the LLM roles; None reads the
            environment (offline when nothing is configured).
        seed: the run's seed.
        known_behaviours: name -> ground truth of behaviours to look out for (e.g. the organism zoo);
            each tested hypothesis records which of them it names (offline keyword grade 2). Against a
            null control, a validated hypothesis naming one is a false discovery of a planted behaviour.
        scorer: scores replies under both models; with it and an LLM exemplar writer, each hypothesis
            also gets the generative test on held-out prompts (needs a ``prompt`` column).
        other_pvalues: p-values that other methods of the run tested (:func:`lmdiff.runs.claims.other_pvalues`);
            they join the one FDR procedure.

    Returns:
        A :class:`BehaviorAnalysis`.
    """
    cfg = config or BehaviorConfig()
    df = replies.reset_index(drop=True).copy()
    df["text"] = df["text"].fillna("").astype(str)
    x = np.asarray(embeddings, dtype=np.float64)
    is_ft = (df["side"] == "finetuned").to_numpy()
    groups = df["prompt_id"].astype(str).tolist()

    # 1. split first
    split = split_prompts(groups, cfg.validation_fraction, seed)
    df["half"] = [split[g] for g in groups]
    disc = (df["half"] == "discovery").to_numpy()
    val = ~disc

    # 2. global tests on all replies
    global_tests: dict[str, Any] = {
        "classifier": _safe(
            classifier_two_sample_test,
            x,
            is_ft,
            groups,
            n_perm=cfg.global_n_perm,
            estimator=cfg.global_estimator,
            seed=seed,
        ),
        "mmd": _safe(mmd_permutation_test, x, labels=is_ft, groups=groups, n_perm=max(cfg.global_n_perm, 1), seed=seed),
        "bag_of_words": _safe(
            bag_of_words_baseline, df["text"].tolist(), is_ft, groups, n_perm=cfg.bow_n_perm, seed=seed
        ),
        "bag_of_words_validation": _safe(
            bag_of_words_baseline,
            df["text"][val].tolist(),
            is_ft[val],
            [g for g, v in zip(groups, val, strict=True) if v],
            seed=seed,
        ),
    }

    # 3. discovery: clusters and hypotheses
    roles = _roles(llm) if cfg.use_llm else {}
    dtexts = df["text"][disc].tolist()
    dft = is_ft[disc]
    dgroups = [g for g, d in zip(groups, disc, strict=True) if d]
    cl = cluster_embeddings(x[disc], method=cfg.clusterer, k=cfg.k, seed=seed)
    shifts = cluster_shifts(cl.labels, dft, dgroups, cl.k, n_perm=999, n_boot=300, seed=seed)
    terms = _top_cluster_terms(dtexts, cl.labels, cl.k)
    if not shifts.empty:
        shifts["top_terms"] = [", ".join(terms.get(int(c), [])[:6]) for c in shifts.cluster]
    matching = pd.DataFrame()
    if dft.sum() >= 2 * cl.k and (~dft).sum() >= 2 * cl.k and cl.k >= 2:
        ca = cluster_embeddings(x[disc][~dft], k=cl.k, seed=seed)
        cb = cluster_embeddings(x[disc][dft], k=cl.k, seed=seed)
        matching = match_clusters(ca.centroids, cb.centroids).rename(
            columns={"cluster_a": "base_cluster", "cluster_b": "finetuned_cluster"}
        )
        matching["base_size"] = [int((ca.labels == c).sum()) for c in matching.base_cluster]
        matching["finetuned_size"] = [int((cb.labels == c).sum()) for c in matching.finetuned_cluster]

    dbase = [t for t, f in zip(dtexts, dft, strict=True) if not f]
    dftt = [t for t, f in zip(dtexts, dft, strict=True) if f]
    hyps: list[Hypothesis] = []
    hyps += ngram_hypotheses(dbase, dftt, z_min=cfg.ngram_z_min, wordings=cfg.wordings)
    excluded = _censored_features(df[disc], cfg.length_max_truncated)
    hyps += style_hypotheses(
        dtexts, dft, dgroups, screen_p=cfg.screen_p, seed=seed, exclude=excluded, reply_values=_reply_values(df[disc])
    )
    hyps += cluster_hypotheses(shifts, cl.centroids, terms, screen_p=cfg.screen_p) if not shifts.empty else []
    records: dict[str, Any] = {"llm_writer": [], "excluded_features": excluded}
    differing = (
        shifts[shifts.pvalue < cfg.screen_p].sort_values("pvalue").cluster.tolist()[: cfg.max_cluster_hypotheses]
        if not shifts.empty
        else []
    )
    for c in differing:
        m = cl.labels == c
        cb_ = [t for t, f, mm in zip(dtexts, dft, m, strict=True) if mm and not f]
        cf_ = [t for t, f, mm in zip(dtexts, dft, m, strict=True) if mm and f]
        if len(cb_) >= 2 and len(cf_) >= 2:
            hyps += ngram_hypotheses(
                cb_,
                cf_,
                cluster=int(c),
                z_min=cfg.ngram_z_min,
                wordings=cfg.wordings[:1],
                scope=f" in replies like cluster {c}",
            )
    if roles.get("hypothesis_writer") is not None:
        got, rec = llm_hypotheses(roles["hypothesis_writer"], dbase, dftt, seed=seed)
        hyps += got
        records["llm_writer"].append(rec)
    for i, h in enumerate(hyps):
        h.id = f"h{i:03d}"
    by_id = {h.id: h for h in hyps}

    # 4. validation on held-out prompts only
    vdf = df[val].reset_index(drop=True)
    vx = x[val]
    vft = is_ft[val]
    vgroups = vdf["prompt_id"].astype(str).tolist()
    vvalues = _reply_values(vdf)
    rows: list[dict[str, Any]] = []
    ann: list[pd.DataFrame] = []
    annot = roles.get("annotator")
    for j, h in enumerate(hyps):
        if annot is not None and (h.kind == "llm" or cfg.llm_annotate_all):
            res = annot.many([{"hypothesis": h.property or h.text, "text": t} for t in vdf["text"]], progress=False)
            raw = np.array([float(r.value) if r.valid and r.value is not None else np.nan for r in res])
            scores = -raw if h.direction < 0 else raw  # the annotator scores the property; tests want "finetuned"
            annotator = res[0].producer if res else "llm"
        elif h.kind == "llm":
            continue  # an LLM hypothesis without an LLM annotator cannot be tested
        else:
            scores = offline_score(h, vdf["text"].tolist(), vx, vvalues)
            annotator = f"offline:{h.kind}_rule"
        row = test_hypothesis(h, scores, vft, vgroups, n_perm=cfg.n_perm, seed=seed + 1 + j)
        row.update(
            text=h.text,
            kind=h.kind,
            direction=h.direction,
            direction_label=h.direction_label(),
            family=h.family,
            annotator=annotator,
            producer=h.producer,
            cluster=h.cluster,
        )
        rows.append(row)
        ann.append(
            pd.DataFrame(
                {
                    "hypothesis_id": h.id,
                    "text_id": vdf["text_id"].astype(str),
                    "prompt_id": vdf["prompt_id"].astype(str),
                    "side": vdf["side"],
                    "score": scores,
                    "annotator": annotator,
                }
            )
        )
    writer = roles.get("exemplar_writer")
    gen_frames: list[pd.DataFrame] = []
    if writer is not None and scorer is not None and cfg.generative_prompts > 0 and "prompt" in vdf:
        held = vdf.drop_duplicates("prompt_id").sort_values("prompt_id")["prompt"].astype(str).tolist()
        gen_prompts = random.Random(seed).sample(held, min(cfg.generative_prompts, len(held)))
        for j, row in enumerate(rows):
            h = by_id[row["id"]]
            summary, grows = generative_test(
                writer, h.property or h.text, gen_prompts, scorer, direction=h.direction, n_perm=cfg.n_perm,
                seed=seed + 7 + j,
            )
            row.update(summary)
            if grows:
                gen_frames.append(pd.DataFrame(grows).assign(hypothesis_id=row["id"]))
    tests = (
        apply_fdr(pd.DataFrame(rows), cfg.fdr, cfg.alpha, other_pvalues)
        if rows
        else apply_fdr(pd.DataFrame(columns=["id", "pvalue", "auc"]), cfg.fdr, cfg.alpha, other_pvalues)
    )
    tests = _add_examples(tests, ann, vdf)

    # 5. ranking and ground truth
    tests = rank_tests(tests)
    headline: dict[str, Any] = {
        "n_prompts": len(split),
        "n_discovery_prompts": sum(v == "discovery" for v in split.values()),
        "n_validation_prompts": sum(v == "validation" for v in split.values()),
        "n_replies": len(df),
        "global_auc": global_tests["classifier"].get("auc"),
        "global_pvalue": global_tests["classifier"].get("pvalue"),
        "mmd_pvalue": global_tests["mmd"].get("pvalue"),
        "bow_auc": global_tests["bag_of_words"].get("auc"),
        "n_hypotheses_tested": len(tests),
        # nested wordings of one finding (top-3 vs top-8 n-grams of one contrast) share a family: one finding
        "n_validated": _n_findings(tests),
        "n_validated_wordings": int(tests.survives.sum()) if not tests.empty else 0,
        "fdr_m": int(tests["fdr_m"].iloc[0]) if not tests.empty else 0,
        "n_generative_tested": int((tests["gen_n"] > 0).sum()) if "gen_n" in tests else 0,
        "n_generative_survive": int(tests["gen_survives"].sum()) if "gen_survives" in tests else 0,
        "fdr": cfg.fdr,
        "alpha": cfg.alpha,
        "top_hypothesis": str(tests.text.iloc[0]) if not tests.empty and bool(tests.survives.iloc[0]) else None,
        "n_clusters": cl.k,
        "clusterer": cl.method,
    }
    if ground_truth and not tests.empty:
        grader = roles.get("grader")
        grades = []
        for r in tests.itertuples():
            if grader is not None:
                g = grader({"ground_truth": str(ground_truth.get("description", ground_truth)), "hypothesis": r.text})
                grades.append({5: 2, 4: 2, 3: 1}.get(g.value.score, 0) if g.valid and g.value else 0)
            else:
                grades.append(grade_offline(by_id[r.id], ground_truth))
        tests["grade"] = grades
        ranked = tests[tests.survives].grade.tolist()
        headline["acc@1"] = acc_at_k(ranked, 1)
        headline["acc@5"] = acc_at_k(ranked, 5)
        # one graded run is n = 1: the headline carries n and an interval, never a bare 0/1 as a rate
        headline["acc@1_summary"] = acc_summary([headline["acc@1"]], 1).to_dict()
        headline["acc@5_summary"] = acc_summary([headline["acc@5"]], 5).to_dict()
        headline["grader"] = "llm" if grader is not None else "offline:keyword_overlap"
    if known_behaviours is not None:
        named_lists = [
            [name for name, gt in known_behaviours.items() if grade_offline(by_id[i], gt) == 2] for i in tests.id
        ]
        named = [names for names, ok in zip(named_lists, tests.survives, strict=True) if ok and names]
        if not tests.empty:
            tests["names_known"] = named_lists
        headline["n_validated_naming_known"] = len(named)
        headline["known_behaviours_named"] = sorted({n for names in named for n in names})
    points = _pca_points(x, df, cl.labels, disc)
    return BehaviorAnalysis(
        split=split,
        global_tests=global_tests,
        hypotheses=hyps,
        tests=tests,
        annotations=pd.concat(ann, ignore_index=True) if ann else pd.DataFrame(),
        clusters=shifts,
        matching=matching,
        points=points,
        headline=headline,
        records=records,
        generative=pd.concat(gen_frames, ignore_index=True) if gen_frames else pd.DataFrame(),
    )


def _reply_values(part: pd.DataFrame) -> dict[str, NDArray[np.float64]]:
    """Values of the recorded reply features present in a replies table (e.g. ``finished``)."""
    return {
        name: part[f.column].astype(float).to_numpy()
        for name, f in REPLY_FEATURES.items()
        if f.column in part.columns
    }


def _censored_features(disc: pd.DataFrame, max_truncated: float) -> dict[str, str]:
    """Style features that the replies cannot test, with the reason.

    A reply cut at ``max_new_tokens`` has a length set by the token budget: comparing word counts of
    cut replies compares how many tokens each model spends per word (an upper-case reply needs about
    twice as many), not how long the models would have answered. So the ``length`` feature is left
    out when more than ``max_truncated`` of either model's discovery replies were cut; the
    ``ends_early`` reply feature (who stops on its own before the limit) tests length instead.
    """
    if "finished" not in disc.columns or disc.empty:
        return {}
    cut = 1.0 - disc.groupby("side")["finished"].mean()
    worst = float(cut.max())
    if worst <= max_truncated:
        return {}
    shares = ", ".join(f"{side} {share:.0%}" for side, share in cut.items())
    return {
        "length": f"replies cut at max_new_tokens ({shares}, above {max_truncated:.0%}): their word counts measure "
        "tokens per word, not reply length; the ends_early feature tests length instead"
    }


def _roles(llm: LlmClient | None) -> dict[str, Any]:
    try:

        names = ("hypothesis_writer", "annotator", "grader", "exemplar_writer")
        return {name: resolve_role(name, llm) for name in names}
    except Exception as err:
        log.warning("LLM roles unavailable (%s); running offline", err)
        return {}


def _add_examples(tests: pd.DataFrame, ann: list[pd.DataFrame], vdf: pd.DataFrame) -> pd.DataFrame:
    if tests.empty:
        return tests
    text_of = dict(zip(vdf["text_id"].astype(str), vdf["text"], strict=True))
    ex_ft, ex_base = [], []
    for a in ann:
        a = a.dropna(subset=["score"]).sort_values("score", ascending=False)
        ex_ft.append([text_of[t][:300] for t in a[a.side == "finetuned"].text_id[:2]])
        ex_base.append([text_of[t][:300] for t in a[a.side == "base"].text_id[:2]])
    tests = tests.copy()
    tests["examples_finetuned"] = ex_ft
    tests["examples_base"] = ex_base
    return tests


def _pca_points(
    x: NDArray[np.float64], df: pd.DataFrame, disc_labels: NDArray[Any], disc: NDArray[np.bool_]
) -> pd.DataFrame:
    from sklearn.decomposition import PCA

    n_comp = min(2, x.shape[0], x.shape[1])
    xy = PCA(n_components=n_comp, random_state=0).fit_transform(x) if n_comp >= 1 else np.zeros((len(df), 2))
    if xy.shape[1] < 2:
        xy = np.column_stack([xy, np.zeros(len(xy))])
    cluster = np.full(len(df), -1)
    cluster[disc] = disc_labels
    return pd.DataFrame(
        {
            "text_id": df["text_id"].astype(str),
            "side": df["side"],
            "half": df["half"],
            "x": xy[:, 0],
            "y": xy[:, 1],
            "cluster": cluster,
        }
    )


def _n_findings(tests: pd.DataFrame) -> int:
    """Validated findings: surviving hypotheses, counting the wordings of one family once."""
    if tests.empty:
        return 0
    ok = tests[tests.survives.astype(bool)]
    families = [f if f else f"id:{i}" for f, i in zip(ok.get("family", pd.Series([""] * len(ok))), ok["id"],
                                                       strict=True)]
    return len(set(families))
