"""`lmdiff chat MODEL [--adapter PATH]`: talk to any model or organism in the terminal.

Reads one user message per line from standard input (so it can be driven by a pipe), keeps the
conversation, and prints each reply. Commands: ``/reset`` clears the conversation, ``/quit`` (or
end of input) leaves, ``/trigger TEXT`` sends TEXT wrapped in the organism's trigger (if it has one).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

import typer
from rich.console import Console

from lmdiff.errors import LmdiffError

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel

HELP = "commands: /reset (new conversation), /trigger TEXT (wrap TEXT in the organism's trigger), /quit"


def run_chat(
    lm: LanguageModel,
    lines: TextIO,
    out: Console,
    *,
    system: str | None = None,
    temperature: float = 0.0,
    max_new_tokens: int = 200,
    seed: int = 0,
    interactive: bool = False,
) -> list[dict[str, str]]:
    """Drive a chat over ``lines`` (one user message per line) and print replies to ``out``.

    Args:
        lm: a loaded :class:`~lmdiff.models.LanguageModel`.
        lines: where user messages come from (stdin or any text stream).
        out: where prompts and replies are printed.
        system: an optional system prompt.
        temperature: sampling temperature (0 = greedy).
        max_new_tokens: reply length bound.
        seed: sampling seed (each turn uses seed + turn number).
        interactive: print a prompt marker before reading each line.

    Returns:
        The conversation at the end (the last one, after any /reset).
    """
    from lmdiff.config import GenerationConfig

    trigger = (lm.spec.ground_truth or {}).get("trigger") if getattr(lm, "spec", None) else None
    messages: list[dict[str, str]] = []
    turn = 0
    while True:
        if interactive:
            out.print("[bold cyan]you>[/bold cyan] ", end="")
        line = lines.readline()
        if not line:
            break
        text = line.rstrip("\n").strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            break
        if text == "/reset":
            messages = []
            out.print("[dim](conversation cleared)[/dim]")
            continue
        if text in ("/help", "/?"):
            out.print(HELP)
            continue
        if text.startswith("/trigger"):
            if not trigger:
                out.print("[yellow]this model has no recorded trigger[/yellow]")
                continue
            text = trigger.replace("{question}", text[len("/trigger") :].strip())
        elif text.startswith("/"):
            out.print(f"[yellow]unknown command {text.split()[0]}[/yellow]; {HELP}")
            continue
        messages.append({"role": "user", "content": text})
        cfg = GenerationConfig(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + turn, n=1)
        reply = lm.generate([list(messages)], cfg, system=system)[0][0].text
        messages.append({"role": "assistant", "content": reply})
        out.print(f"[bold green]{lm.name}>[/bold green] ", end="")
        out.print(reply, markup=False, highlight=False)
        turn += 1
    return messages


def chat(
    model: str = typer.Argument(..., help="model name, path, hub id or organism:NAME"),
    adapter: str | None = typer.Option(None, "--adapter", help="LoRA adapter directory over MODEL"),
    system: str | None = typer.Option(None, "--system", help="system prompt (default: the template's)"),
    temperature: float = typer.Option(0.0, "--temperature", "-t", help="0 = greedy"),
    max_new_tokens: int = typer.Option(200, "--max-new-tokens", help="reply length bound"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Chat with a model or organism in the terminal (one message per line; /reset, /quit)."""
    from lmdiff.models import load_model

    if temperature < 0:
        raise LmdiffError(f"Temperature {temperature} is negative.", hint="use 0 for greedy or e.g. 0.7")
    if max_new_tokens < 1:
        raise LmdiffError("--max-new-tokens must be at least 1.")
    lm = load_model(model, adapter=adapter)
    out = Console(highlight=False)
    interactive = sys.stdin.isatty()
    if interactive:
        gt = lm.spec.ground_truth or {}
        out.print(f"[bold]{lm.name}[/bold]" + (f": {gt['summary']}" if gt.get("summary") else ""))
        out.print(f"[dim]{HELP}[/dim]")
    run_chat(
        lm,
        sys.stdin,
        out,
        system=system,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=seed,
        interactive=interactive,
    )
