"""``lmdiff agent ORGANISM --method FAMILY``: an LLM agent with one method family's tools audits an organism."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lmdiff.cli.common import check_llm, console

#: The base model an organism is built on unless --base says otherwise.
DEFAULT_BASE = "smollm2-135m-instruct"

if TYPE_CHECKING:
    from inspect_ai.model import Model

    from lmdiff.llm.config import LlmConfig


def build_agent_model(llm: LlmConfig, agent_model: str | None = None) -> Model:
    """The agent's Inspect model, built by the LLM layer (:attr:`lmdiff.llm.client.LlmClient.inspect_model`).

    So the agent's model is the one every other LLM call of lmdiff gets: ``local/NAME`` resolved and its provider
    registered, the attempt timeout, offline token counts. ``agent_model`` (``--agent-model``) replaces the
    configured model; the configured base URL and provider arguments belong to that model and are dropped with
    it. ``mockllm/model`` is the scripted agent (:mod:`lmdiff.agents.mock`).
    """
    from pydantic import ValidationError

    from lmdiff.errors import ConfigError
    from lmdiff.llm.client import LlmClient
    from lmdiff.llm.config import LlmConfig

    try:
        cfg = llm if agent_model is None else LlmConfig.model_validate(
            {**llm.model_dump(), "model": agent_model, "base_url": None, "model_args": {}})
    except ValidationError as err:
        msg = str(err.errors()[0]["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"The agent model '{agent_model}' is invalid: {msg}.",
                          hint="--agent-model provider/name, e.g. openai/gpt-4.1-mini or mockllm/model") from None
    given = None
    if cfg.model == "mockllm/model":
        from inspect_ai.model import get_model

        from lmdiff.agents.mock import scripted_agent

        given = get_model("mockllm/model", custom_outputs=scripted_agent())
    return LlmClient(cfg, model=given).inspect_model


def agent(
    organism: Annotated[str, typer.Argument(help="organism:NAME (the zoo's or a user organism with a ground truth)")],
    method: Annotated[str, typer.Option(help="adl | kl | behavior | probing | dictionaries | blackbox")] = "adl",
    repeats: Annotated[int, typer.Option(min=1, help="episodes per organism (Inspect epochs)")] = 3,
    out: Annotated[Path | None, typer.Option(help="output directory (default lmdiff-runs/agent-NAME-METHOD)")] = None,
    runs: Annotated[Path | None, typer.Option(help="where the diff run directories live (reused); default OUT/runs")]
    = None,
    base: Annotated[str, typer.Option(help="the base model (the organism's build on it is audited)")] = DEFAULT_BASE,
    agent_model: Annotated[str | None, typer.Option(
        help="the agent's Inspect model (default $LMDIFF_LLM); mockllm/model runs a scripted agent without a key")]
    = None,
    llm_calls: Annotated[int, typer.Option(min=1, help="agent turns per episode at most")] = 12,
    tokens: Annotated[int, typer.Option(min=1, help="agent tokens per episode at most")] = 60_000,
    model_interactions: Annotated[int, typer.Option(min=0, help="ask_model calls per episode at most")] = 10,
    grader_repeats: Annotated[int, typer.Option(min=1, help="LLM grader samples per guess")] = 3,
    discriminate: Annotated[bool, typer.Option(help="also run interactive discrimination on the run's validated "
                                                    "hypotheses (skipped offline, with the reason)")] = True,
) -> None:
    """Run an agent with one method family's tools on an organism; write an Inspect log and graded result."""
    from lmdiff.agents.access import PairAccess
    from lmdiff.agents.budget import AgentBudget
    from lmdiff.agents.dataset import ensure_run, sample_for
    from lmdiff.agents.dataset import organism as load_organism
    from lmdiff.agents.discrimination import run_discrimination
    from lmdiff.agents.task import agent_task, run_agent_eval, summarise
    from lmdiff.agents.tools import FAMILIES
    from lmdiff.errors import ConfigError, LmdiffError
    from lmdiff.llm.client import LlmClient
    from lmdiff.llm.config import ENV_MODEL, LlmConfig
    from lmdiff.models.spec import ModelSpec

    if method not in FAMILIES:
        raise ConfigError(f"Unknown agent method '{method}'.", hint=f"one of {', '.join(FAMILIES)}")
    check_llm()
    llm = LlmConfig()
    model_str = agent_model or llm.model
    if model_str is None:
        raise ConfigError("The agent needs an LLM and none is configured.",
                          hint=f"set {ENV_MODEL} (e.g. openai/gpt-4.1-mini), or --agent-model mockllm/model for a "
                               "scripted protocol check")
    org = load_organism(organism, base)
    out = out or Path("lmdiff-runs") / f"agent-{org.name}-{method}"
    run_dir = ensure_run(org, method, runs or out / "runs")
    access_cache: dict[str, PairAccess] = {}

    def access(meta: dict[str, Any]) -> PairAccess:
        key = str(meta.get("organism"))
        if key not in access_cache:
            access_cache[key] = PairAccess(ModelSpec.model_validate(meta["base"]),
                                           ModelSpec.model_validate(meta["finetuned"]))
        return access_cache[key]

    budget = AgentBudget(llm_calls=llm_calls, tokens=tokens, model_interactions=model_interactions)
    task = agent_task([sample_for(org, run_dir)], method, budget, repeats=repeats, access=access,
                      grader=None if llm.offline else llm, grader_repeats=grader_repeats)
    log = run_agent_eval(task, build_agent_model(llm, agent_model), out / "logs", max_retries=llm.max_retries)
    extra: dict[str, Any] = {"run_dir": str(run_dir) if run_dir else None}
    if discriminate and run_dir is None:
        extra["discrimination"] = {"status": "skipped", "reason": "the black-box agent reads no run directory, so "
                                                                  "there are no validated hypotheses to test"}
    elif discriminate:
        extra["discrimination"] = {"status": "not finished", "reason": "interactive discrimination was running "
                                                                       "when this was written"}
    res = summarise(log, method, out, extra)  # the graded result is written before discrimination can fail
    if discriminate and run_dir is not None:
        client = None if llm.offline else LlmClient(llm)
        try:
            extra["discrimination"] = run_discrimination(run_dir, access({"organism": org.name, **{
                "base": org.base.model_dump(mode="json"), "finetuned": org.finetuned.model_dump(mode="json")}}),
                client)
        except LmdiffError as err:
            extra["discrimination"] = {"status": "failed", "reason": err.message}
        res = summarise(log, method, out, extra)
    for a in res.acc:
        console.print(f"acc@{a['k']}: {a['acc']:.0%} [95% CI {a['low']:.0%}, {a['high']:.0%}] over "
                      f"{a['n_episodes']} episodes ({a['interval']})")
    if res.acc and res.acc[0]["n_errored"]:
        console.print(f"{res.acc[0]['n_errored']} episodes errored and are left out of acc@k (see agent.json)")
    disc = extra.get("discrimination")
    if disc:
        console.print(f"interactive discrimination: {disc['status']}" + (f" ({disc['reason']})" if
                                                                          disc.get("reason") else ""))
    console.print(f"Inspect log: {res.log_path} (inspect view --log-dir {out / 'logs'}); "
                  f"graded result: {out / 'agent.json'}; report: {out / 'report.html'}")
