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
