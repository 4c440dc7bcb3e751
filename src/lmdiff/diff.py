"""Running named methods on a model pair into a run directory, and rendering its report."""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any

from lmdiff.config import validate
from lmdiff.data.prompts import load_prompts
from lmdiff.errors import ConfigError, LmdiffError
from lmdiff.findings import findings_for_run, prompt_coverage, render_findings
from lmdiff.interp.signals import SIGNAL_KEYS
from lmdiff.io import read_json, write_json
from lmdiff.llm.client import llm_counts_since, process_llm_counts
from lmdiff.methods.base import DiffMethod, MethodContext, MethodResult
from lmdiff.methods.registry import get_method
from lmdiff.models.device import set_threads
from lmdiff.models.numerics import noise_warnings, numerics_note, record_noise_floor
from lmdiff.models.pair import ModelPair
from lmdiff.report.builder import Report, Section
from lmdiff.report.render import render_report
from lmdiff.run_config import DiffRunConfig
from lmdiff.runs.claims import finalise_claims, load_claims
from lmdiff.runs.run import Run

log = logging.getLogger(__name__)


#: What ``lmdiff diff BASE FINETUNED`` runs without ``--methods`` when both models load here and share a
#: tokenizer: token-level readouts, knowledge probing, follow-up on what the readouts point at, and the
#: behaviour pipeline, which validates last under the run's one FDR procedure.
DEFAULT_WHITE_BOX: tuple[str, ...] = ("kl", "diff_mining", "adl", "probing", "followup", "behavior")
#: The default when the tokenizers differ or a model is a remote endpoint: methods that compare text only.
DEFAULT_BLACK_BOX: tuple[str, ...] = ("probing", "behavior")


def default_methods(pair: ModelPair) -> tuple[list[str], str]:
    """The default method set for ``pair`` and why (white-box readouts only where tokens can be compared)."""
    remote = pair.white_box_unavailable()
    if remote is not None:
        return list(DEFAULT_BLACK_BOX), f"{remote}: black-box methods only"
    tok = pair.tokenizer_check()
    if tok.shared:
        return list(DEFAULT_WHITE_BOX), "both models load here and share a tokenizer: white-box and black-box methods"
    return list(DEFAULT_BLACK_BOX), f"the tokenizers differ ({tok.reason}): black-box methods only"


def method_configs(config: DiffRunConfig, methods: list[str] | None = None, default_set: bool = False
                   ) -> dict[str, Any]:
    """Validate each method's settings against its own Config (errors name the key).

    Args:
        config: the run's config.
        methods: the methods that run (default: ``config.methods``).
        default_set: the methods are the default set: each starts from its ``default_set_settings``.
    """
    names = list(methods if methods is not None else config.methods or [])
    unknown = set(config.method) - set(names)
    if unknown:
        raise ConfigError(
            f"Settings given for methods that are not run: {', '.join(sorted(unknown))}.",
            hint=f"add them to methods=... (now: {', '.join(names)})",
        )
    out = {}
    for name in names:
        cls = get_method(name)
        given = {**(cls.default_set_settings if default_set else {}), **config.method.get(name, {})}
        out[name] = validate(cls.Config, given, prefix=f"method.{name}")
    return out


def method_order(methods: list[str]) -> list[str]:
    """The order methods run in: as given within a stage (:attr:`DiffMethod.stage`), stages in order."""
    return sorted(methods, key=lambda name: get_method(name).stage)


def run_diff(config: DiffRunConfig, out: str | Path, command: str = "diff") -> Run:
    """Run every method of ``config`` on its pair; returns the finished run (report rendered).

    A method that fails is recorded as ``failed`` in results.json and the others still run;
    :meth:`Run.failed_methods` of the returned run names them.
    """
    set_threads(config.compute.threads)
    pair = ModelPair(config.base, config.finetuned, load=config.compute.load)
    if config.methods:
        methods, why = list(config.methods), "as asked"
    else:
        methods, why = default_methods(pair)
        log.info("default method set: %s (%s)", ", ".join(methods), why)
    cfgs = method_configs(config, methods, default_set=not config.methods)
    prompts = load_prompts(
        config.prompts.name, config.prompts.file, config.prompts.limit, config.prompts.seed
    )
    with Run(
        out,
        config,
        command=command,
        seeds={"seed": config.seed, "generation": config.generation.seed},
        inputs={"prompts": prompts.content_hash},
    ) as run:
        tok = pair.tokenizer_check()
        run.set_meta(
            pair=pair.describe(),
            tokenizers_shared=tok.shared,
            tokenizer_check=tok.reason,
            prompts=prompts.describe(),
            ground_truth=pair.ground_truth,
            coverage=prompt_coverage(prompts),
            methods_run={"methods": methods, "why": why},
        )
        if not pair.remote_sides:  # the noise floor of per-token numbers, which only white-box methods report
            record_noise_floor(run, pair, prompts)
        try:
            for name in method_order(methods):
                cls = get_method(name)
                _run_one(cls, name, cfgs[name], pair, run, config, prompts, tok.shared, tok.reason)
        finally:
            if pair.remote_sides:  # endpoints, what they support, the settings sent and their usage (no keys)
                run.set_meta(endpoints=pair.remote_records())
        behaviour = cfgs.get("behavior")
        finalise_claims(run.path, getattr(behaviour, "fdr", "bh"), getattr(behaviour, "alpha", 0.05), methods)
        found, record = findings_for_run(run.results(), load_claims(run.path))
        run.set_meta(findings=[f.to_dict() for f in found], findings_producer=record)
        write_report(run)
    return run


def upstream_signals(cls: type[DiffMethod[Any]], results: dict[str, Any]) -> dict[str, Any] | None:
    """What a stage-1 method reads from the run (the tokens stage-0 methods point at), or None for others.

    It is not part of the method's step key (an earlier run's step stays valid while they are unchanged) but
    is saved with the step: a finished step whose stage-0 methods since pointed at other tokens is rerun
    rather than reused. Steps saved before this record existed are reused.
    """
    if cls.stage != 1:
        return None
    out = {}
    for method, key in SIGNAL_KEYS.items():
        entry = results.get("methods", {}).get(method) or {}
        if entry.get("status") == "ok" and key in (entry.get("headline") or {}):
            out[f"{method}.{key}"] = entry["headline"][key]
    normalised: dict[str, Any] = json.loads(json.dumps(out))  # as it reads back from the step's record
    return normalised


def _run_one(
    cls: type[DiffMethod[Any]],
    name: str,
    cfg: Any,
    pair: ModelPair,
    run: Run,
    config: DiffRunConfig,
    prompts: Any,
    shared: bool,
    reason: str,
) -> None:
    remote = pair.white_box_unavailable()
    if (cls.white_box or cls.needs_shared_tokenizer or cls.needs_both_resident) and remote is not None:
        msg = f"skipped: white-box (reads weights, logits or tokens), but {remote}"
        log.warning("%s %s", name, msg)
        run.record(name, status="skipped", headline={}, summary=msg)
        return
    if cls.needs_scores and remote is not None:
        cannot = pair.scoring_unavailable()
        if cannot is not None:
            msg = f"skipped: scores given text under both models, but {cannot}"
            log.warning("%s %s", name, msg)
            run.record(name, status="skipped", headline={}, summary=msg)
            return
    if cls.needs_shared_tokenizer and not shared:
        msg = f"skipped: compares tokens, but the tokenizers differ ({reason})"
        log.warning("%s %s", name, msg)
        run.record(name, status="skipped", headline={}, summary=msg)
        return
    if cls.needs_both_resident and not pair.both_resident():
        msg = ("skipped: needs both models in memory at once, but this pair loads them one at a time "
               "(set compute.load=together if memory allows)")
        log.warning("%s %s", name, msg)
        run.record(name, status="skipped", headline={}, summary=msg)
        return
    step = run.step(
        f"method-{name}",
        {
            "config": cfg.model_dump(mode="json"),
            "pair": pair.cache_key(),
            "prompts": prompts.content_hash,
            "seed": config.seed,
        },
    )
    upstream = upstream_signals(cls, run.results())
    saved_upstream = step.summary().get("upstream", upstream) if step.done else upstream
    if step.done and saved_upstream != upstream:
        log.info("%s: the tokens earlier methods point at changed since it finished; rerunning", name)
    elif step.done:
        log.info("%s: finished earlier with the same inputs; reusing", name)
        if run.results().get("methods", {}).get(name, {}).get("status") != "ok":  # results.json lost or replaced
            saved = MethodResult.from_dict(read_json(step.dir / "result.json"))
            run.record(name, status="ok", headline=saved.headline, summary=saved.summary, artifacts=saved.artifacts,
                       corpus=saved.corpus, extra={"seconds": step.summary().get("seconds")})
        return
    ctx = MethodContext(pair=pair, run=run, config=cfg, run_config=config, prompts=prompts, method_name=name)
    llm_before = process_llm_counts()
    t0 = time.perf_counter()
    try:
        result = cls().run(ctx)
    except LmdiffError as err:
        log.error("%s failed: %s", name, err)
        run.record(name, status="failed", headline={}, summary=err.message, error=str(err),
                   extra=_llm_extra(llm_before))
        return
    except (RuntimeError, ValueError, MemoryError) as err:
        log.error("%s failed: %s: %s", name, type(err).__name__, err)
        log.info("%s traceback (for run.log):\n%s", name, traceback.format_exc())
        run.record(
            name,
            status="failed",
            headline={},
            summary=f"{type(err).__name__}: {err}",
            error=f"{type(err).__name__}: {err}",
            extra=_llm_extra(llm_before),
        )
        return
    d = step.prepare()
    write_json(d / "result.json", result.to_dict())
    run.record(
        name,
        status="ok",
        headline=result.headline,
        summary=result.summary,
        artifacts=result.artifacts,
        corpus=result.corpus,
        extra={**_llm_extra(llm_before), "seconds": round(time.perf_counter() - t0, 1)},
    )
    step.finish({"status": "ok", "seconds": round(time.perf_counter() - t0, 1),
                 **({"upstream": upstream} if upstream is not None else {})})


def _llm_extra(before: dict[str, int]) -> dict[str, Any]:
    """``{"llm": counts}`` for results.json when the method called an LLM (calls, invalid replies)."""
    counts = llm_counts_since(before)
    return {"llm": counts} if any(counts.values()) else {}


def write_report(run: Run) -> Path:
    """(Re-)render report.html and report.md from the results saved in ``run``."""
    res = run.results()
    pair = res.get("pair", {})
    base = pair.get("base", {}).get("model", "?")
    ft = pair.get("finetuned", {})
    ft_name = ft.get("model", "?") + (f" + adapter {Path(ft['adapter']).name}" if ft.get("adapter") else "")
    report = Report(
        title=f"lmdiff: {base} vs {ft_name}",
        meta={
            "run": str(run.path),
            "base": base,
            "finetuned": ft_name,
            "weights": "shared (LoRA switched on/off)"
            if pair.get("shares_weights")
            else pair.get("load_policy", "?"),
            "tokenizers": res.get("tokenizer_check", "?"),
            "prompts": f"{res.get('prompts', {}).get('name', '?')} ({res.get('prompts', {}).get('n', '?')})",
        },
    )
    render_findings(report.section("Findings", "findings"), res, load_claims(run.path))
    overview = report.section("Overview", "overview")
    noise = noise_warnings(res, lambda name: get_method(name).noise_comparable)
    _overview(overview, res, noise)
    for name, entry in res.get("methods", {}).items():
        cls = get_method(name)
        sec = report.section(cls.title, name)
        if entry["status"] != "ok":
            sec.status = "failed" if entry["status"] == "failed" else "ok"
            sec.note(f"{entry['status']}: {entry.get('summary', '')}", kind="warn")
            continue
        for msg in noise.get(name, []):
            sec.note(msg, kind="warn")
        result_path = run.path / "artifacts" / f"method-{name}" / "result.json"
        try:
            cls().render(MethodResult.from_dict(read_json(result_path)), sec, run)
        except Exception as err:
            log.error("rendering %s failed:\n%s", name, traceback.format_exc())
            sec.status = "failed"
            sec.note(f"rendering failed: {type(err).__name__}: {err}", kind="warn")
    return render_report(report, run.path)


def _overview(sec: Section, res: dict[str, Any], noise: dict[str, list[str]]) -> None:
    import pandas as pd

    gt = res.get("ground_truth")
    if gt:
        sec.note(
            f"Ground truth (known because this finetune is an organism): {gt.get('description', gt)}", "info"
        )
    rows = [
        {"method": k, "status": v["status"], "summary": v.get("summary", "")}
        for k, v in res.get("methods", {}).items()
    ]
    if rows:
        sec.table(pd.DataFrame(rows), caption="Methods run")
    chosen = res.get("methods_run") or {}
    if chosen.get("why") and chosen["why"] != "as asked":
        sec.note(f"Default method set ({', '.join(chosen.get('methods', []))}): {chosen['why']}.", "info")
    if res.get("numerics"):
        sec.note(numerics_note(res["numerics"]), "info")
    for name, msgs in noise.items():
        for msg in msgs:
            sec.note(f"{name}: {msg}", "warn")
    remote = (res.get("pair") or {}).get("remote")
    if remote:
        sec.note(f"Remote endpoint ({', '.join(remote)} side): only black-box methods ran; white-box methods "
                 "were skipped (they read weights, logits or tokens).", "info")
    elif not res.get("tokenizers_shared", True):
        sec.note(
            "The two models use different tokenizers: token-level (white-box) methods were skipped.", "warn"
        )
