"""``lmdiff dashboard``: serve the Streamlit dashboard over a runs directory, on localhost by default."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from lmdiff.cli.common import console, err_console
from lmdiff.errors import LmdiffError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def streamlit_command(runs_dir: Path, host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line that serves the dashboard (headless, no usage statistics)."""
    from lmdiff.dashboard import __file__ as pkg_init

    app = Path(pkg_init).parent / "app.py"
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal",
    ]


def dashboard(
    runs_dir: Annotated[Path, typer.Argument(help="directory holding run directories")] = Path("lmdiff-runs"),
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to serve on")] = 8501,
    host: Annotated[str, typer.Option(help="address to bind (default: this machine only)")] = "127.0.0.1",
) -> None:
    """Explore runs, chat with both models side by side, per-token KL on your own text, steer and amplify."""
    if importlib.util.find_spec("streamlit") is None:
        raise LmdiffError("The dashboard needs Streamlit, which is not installed.",
                          hint="pip install 'lmdiff[dashboard]'")
    if not runs_dir.is_dir():
        raise LmdiffError(f"The runs directory '{runs_dir}' does not exist.",
                          hint="run `lmdiff demo` first, or pass the directory that holds your runs")
    if host not in LOCAL_HOSTS:
        err_console.print(f"[bold yellow]Warning:[/] binding {host}: anyone who can reach this address can read "
                          "your runs and drive the loaded models (there is no login).")
    shown = f"[{host}]" if ":" in host else host
    console.print(f"lmdiff dashboard on [bold]http://{shown}:{port}[/] (runs: {runs_dir.resolve()}); Ctrl+C stops it")
    env = {**os.environ, "LMDIFF_DASHBOARD_RUNS": str(runs_dir.resolve()), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    code = serve_until_stopped(streamlit_command(runs_dir, host, port), env)
    if code:
        raise typer.Exit(code)


def serve_until_stopped(cmd: list[str], env: dict[str, str]) -> int:
    """Run the server ``cmd`` until it exits, Ctrl+C, or SIGTERM; the server never outlives this process.

    SIGTERM (a process manager, ``kill``) is passed on to the server, which would otherwise keep its port
    after this process is gone. Returns the exit status: the server's, 0 after Ctrl+C, 143 after SIGTERM.
    """
    proc = subprocess.Popen(cmd, env=env)
    stopped: list[int] = []

    def _forward(signum: int, _frame: object) -> None:
        stopped.append(signum)
        proc.terminate()

    previous = signal.signal(signal.SIGTERM, _forward)
    try:
        code = proc.wait()
    except KeyboardInterrupt:  # the terminal sent SIGINT to the server too; let it finish
        code = 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 128 + signal.SIGTERM if stopped else code
