"""The Streamlit app's logic, driven by Streamlit's AppTest (no browser)."""

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "src" / "lmdiff" / "dashboard" / "app.py")


def _app(root, monkeypatch, **params):
    monkeypatch.setenv("LMDIFF_DASHBOARD_RUNS", str(root))
    at = AppTest.from_file(APP, default_timeout=900)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def _html(at):
    return "".join(str(h.proto.body) for h in at.get("html"))


def test_index_lists_the_runs(runs_root, monkeypatch):
    at = _app(runs_root, monkeypatch)
    assert not at.exception and not at.error
    assert at.header[0].value == "Runs"
    df = at.dataframe[0].value
    assert df["run"].tolist() == ["tiny"] and df["status"].tolist() == ["ok"]


def test_a_missing_runs_directory_is_one_sentence_in_the_page(tmp_path, monkeypatch):
    at = _app(tmp_path / "nope", monkeypatch)
    assert not at.exception
    assert len(at.error) == 1 and "does not exist" in at.error[0].value


def test_opening_a_run_shows_findings_methods_and_a_kl_heatmap(runs_root, monkeypatch):
    at = _app(runs_root, monkeypatch, run="tiny")
    assert not at.exception and not at.error
    assert "Findings" in [s.value for s in at.subheader]
    tables = [d.value for d in at.dataframe]
    findings = next(t for t in tables if "finding" in t.columns)
    assert len(findings) >= 1 and findings["rank"].tolist()[0] == 1
    html = _html(at)
    assert html.count('class="lmdiff-tok"') > 10 and "KL" in html
    assert at.sidebar.selectbox[0].value == "tiny"


def test_live_kl_tool_colours_typed_text(runs_root, monkeypatch):
    at = _app(runs_root, monkeypatch, run="tiny", page="tools")
    assert not at.exception
    assert "Load a pair" in at.info[0].value
    next(b for b in at.button if b.label == "Load the pair").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Loaded:" in s.value for s in at.success)
    at.text_area(key="kl_text").set_value("Berlin is a city in Germany.")
    next(b for b in at.button if b.label == "Score per-token KL").click()
    at.run()
    assert not at.exception and not at.error
    html = _html(at)
    assert html.count('class="lmdiff-tok"') >= 5 and "finetuned next" in html
    # the chat tool answers on both sides
    at.text_area(key="chat_message").set_value("Hello")
    next(b for b in at.button if b.label == "Send to both").click()
    at.run()
    assert not at.exception and not at.error
    assert len(at.chat_message) == 4  # the message and a reply, on each side


def test_errors_in_a_live_tool_are_one_sentence(runs_root, monkeypatch):
    at = _app(runs_root, monkeypatch, run="tiny", page="tools")
    next(b for b in at.button if b.label == "Load the pair").click()
    at.run()
    at.text_area(key="kl_text").set_value("   ")
    next(b for b in at.button if b.label == "Score per-token KL").click()
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["per-token KL failed: Type some text first."]
