from pathlib import Path

from typer.testing import CliRunner

from lmdiff.cli.dashboard import streamlit_command
from lmdiff.cli.main import app


def test_the_server_binds_where_asked_headless_and_without_usage_statistics(tmp_path):
    cmd = streamlit_command(tmp_path, "127.0.0.1", 8765)
    assert Path(cmd[cmd.index("run") + 1]).name == "app.py"
    opts = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert opts["--server.address"] == "127.0.0.1" and opts["--server.port"] == "8765"
    assert opts["--server.headless"] == "true" and opts["--browser.gatherUsageStats"] == "false"


def test_a_missing_runs_directory_is_refused(tmp_path):
    res = CliRunner().invoke(app, ["dashboard", str(tmp_path / "nope")])
    assert res.exit_code != 0 and "does not exist" in str(res.exception)


def test_sigterm_stops_the_streamlit_server_too(tmp_path):
    # regression: `lmdiff dashboard` ran Streamlit as a child and died alone on SIGTERM, leaving the server
    # serving its port (every CI run left one behind)
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    import pytest

    pytest.importorskip("streamlit")
    from tests.helpers import free_port, stop_process

    port = free_port()
    url = f"http://127.0.0.1:{port}/_stcore/health"

    def up() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    proc = subprocess.Popen([sys.executable, "-m", "lmdiff.cli.main", "dashboard", str(tmp_path), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        end = time.monotonic() + 300
        while not up() and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.5)
        assert up(), "the dashboard did not come up"
        proc.send_signal(signal.SIGTERM)  # to the lmdiff process only, as a process manager would
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
        end = time.monotonic() + 15
        while up() and time.monotonic() < end:
            time.sleep(0.5)
        assert not up(), "the Streamlit server outlived `lmdiff dashboard`"
    finally:
        if proc.poll() is None:
            stop_process(proc, timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group (only when the test fails)
