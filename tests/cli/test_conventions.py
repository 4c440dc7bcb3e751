"""CLI conventions a user piping output expects: whole names, --json, exit codes, one-sentence errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lmdiff.io import read_json

BASE_ENV = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "LMDIFF_LLM")}
BASE_ENV.update({"HF_HUB_OFFLINE": "1", "LMDIFF_PROGRESS": "0"})
#: Any attempt to reach the network through HTTP(S) fails at once against these proxies.
NO_NET = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
          "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


def lmdiff(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run ``lmdiff ARGS`` with stdout and stderr piped (not a terminal)."""
    return subprocess.run([sys.executable, "-m", "lmdiff.cli.main", *args], capture_output=True, text=True,
                          env={**BASE_ENV, **(env or {})}, timeout=timeout)


def _grep(stdout: str, word: str) -> list[str]:
    return [line for line in stdout.splitlines() if word in line]


def _names() -> dict[tuple[str, ...], list[str]]:
    from lmdiff.methods.registry import available_methods
    from lmdiff.models.registry import SHIPPED
    from lmdiff.organisms.create import load_user_recipes
    from lmdiff.organisms.zoo import RECIPES

    load_user_recipes()  # the organism commands list the user's created organisms too, as the CLI does
    return {("models", "list"): list(SHIPPED), ("organism", "list"): list(RECIPES),
            ("methods",): list(available_methods())}


@pytest.mark.parametrize("columns", [None, "60"])
def test_list_tables_never_truncate_names_when_piped(columns):
    env = {"COLUMNS": columns} if columns else {}
    for command, names in _names().items():
        res = lmdiff(*command, env=env)
        assert res.returncode == 0, res.stderr
        assert "…" not in "".join(line.split("│")[1] for line in res.stdout.splitlines() if line.count("│") > 2)
        for name in names:  # `lmdiff models list | grep NAME` finds every name
            assert _grep(res.stdout, name), f"{name} not whole in `lmdiff {' '.join(command)}` ({columns=})"


def test_list_commands_print_json():
    for command, names in _names().items():
        res = lmdiff(*command, "--json")
        assert res.returncode == 0, res.stderr
        rows = json.loads(res.stdout)  # nothing but the JSON array on stdout
        assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
        assert [r["name"] for r in rows] == names
    rows = json.loads(lmdiff("models", "list", "--json").stdout)
    assert {"name", "kind", "status", "size_bytes", "description"} <= set(rows[0])
    rows = json.loads(lmdiff("methods", "--json").stdout)
    assert {r["name"]: r["white_box"] for r in rows}["samples"] is False


_FAILING_METHOD = textwrap.dedent("""
    import sys
    from lmdiff.methods.base import DiffMethod
    from lmdiff.methods.registry import register_method

    @register_method
    class Boom(DiffMethod):
        name = "boom"
        title = "Always fails"

        def run(self, ctx):
            raise RuntimeError("boom on purpose")

        def render(self, result, section, run):
            pass

    from lmdiff.cli.main import main
    sys.argv = ["lmdiff", *sys.argv[1:]]
    main()
""")


def test_diff_exits_non_zero_when_a_method_failed(tiny_model_dir, tmp_path):
    script = tmp_path / "with_boom.py"
    script.write_text(_FAILING_METHOD)
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, str(script), "diff", str(tiny_model_dir), str(tiny_model_dir),
                          "--methods", "samples,boom", "method.samples.n_prompts=2",
                          "method.samples.max_new_tokens=4", "--out", str(out)],
                         capture_output=True, text=True, env={**BASE_ENV, "COLUMNS": "200"}, timeout=300)
    assert res.returncode == 3, res.stderr
    assert "Traceback" not in res.stderr
    last = [line for line in res.stderr.splitlines() if line.strip()][-1]  # one line says which
    assert last.startswith("Error: 1 method(s) failed: boom (") and "samples" not in last
    results = read_json(out / "results.json")  # everything else was written, report included
    assert results["methods"]["samples"]["status"] == "ok"
    assert results["methods"]["boom"]["status"] == "failed"
    assert (out / "report.html").exists()
    manifest = read_json(out / "manifest.json")
    assert manifest["status"] == "failed" and manifest["history"][-1]["failed_methods"] == ["boom"]


@pytest.mark.parametrize("llm, expected", [
    ("nosuchprovider/x", "Unknown LLM provider 'nosuchprovider'"),
    ("nosuchprovider", "must look like 'provider/name'"),
    ("local/no-such-model-dir", "neither a shipped model nor a directory"),
])
def test_misconfigured_llm_fails_before_loading_models(tiny_model_dir, tmp_path, llm, expected):
    out = tmp_path / "run"
    res = lmdiff("diff", str(tiny_model_dir), str(tiny_model_dir), "--methods", "samples", "--out", str(out),
                 env={"LMDIFF_LLM": llm, "COLUMNS": "300"})
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert expected in " ".join(res.stderr.split())
    assert "Hint:" in res.stderr
    assert not out.exists()  # nothing computed, no run directory


def test_misconfigured_llm_fails_eval_and_demo_too(tmp_path):
    env = {"LMDIFF_LLM": "nosuchprovider/x", "COLUMNS": "300"}
    for args in (["demo", "--out", str(tmp_path / "demo")], ["eval", "sweep", "--out", str(tmp_path / "sweep")]):
        res = lmdiff(*args, env=env)
        assert res.returncode == 1 and "Unknown LLM provider" in res.stderr and "Traceback" not in res.stderr
        assert not (tmp_path / args[-1]).exists()


def test_corrupt_adapter_is_one_sentence(tiny_model_dir, tiny_adapter_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad-adapter"
    shutil.copytree(tiny_adapter_dir, bad)
    weights = bad / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])  # truncated mid-header
    res = lmdiff("generate", str(tiny_model_dir), "hi", "--adapter", str(bad), "--out", str(tmp_path / "r"),
                 env={"COLUMNS": "300"})
    assert res.returncode == 1
    assert "Traceback" not in res.stderr and "SafetensorError" not in res.stderr
    text = " ".join(res.stderr.split())
    assert "truncated or corrupt" in text and "Hint:" in text


def test_out_pointing_at_a_file_is_one_sentence(tiny_model_dir, tmp_path):
    target = tmp_path / "existing.txt"
    target.write_text("not a directory")
    for args in (["generate", str(tiny_model_dir), "hi"],
                 ["diff", str(tiny_model_dir), str(tiny_model_dir), "--methods", "samples"]):
        res = lmdiff(*args, "--out", str(target), env={"COLUMNS": "300"})
        assert res.returncode == 1
        assert "Traceback" not in res.stderr and "NotADirectoryError" not in res.stderr
        assert "is an existing file" in " ".join(res.stderr.split())
    assert target.read_text() == "not a directory"


def test_bad_jsonl_prompt_line_names_file_and_line(tiny_model_dir, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "fine"}\n\n{"prompt": broken}\n')
    res = lmdiff("diff", str(tiny_model_dir), str(tiny_model_dir), "--methods", "samples",
                 f"prompts.file={prompts}", "--out", str(tmp_path / "r"), env={"COLUMNS": "300"})
    assert res.returncode == 1 and "Traceback" not in res.stderr
    text = " ".join(res.stderr.split())
    assert "Line 3" in text and str(prompts) in text


def test_subcommand_registration_does_not_swallow_import_errors():
    code = "import sys; sys.modules['lmdiff.cli.evals'] = None; import lmdiff.cli.main"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=BASE_ENV, timeout=120)
    assert res.returncode != 0 and "lmdiff.cli.evals" in res.stderr  # the import error surfaces


def _mockllm_diff(base: str, finetuned: str, out: Path, extra: list[str]) -> subprocess.CompletedProcess[str]:
    settings = ["method.behavior.n_prompts=8", "method.behavior.n_per_prompt=2", "method.behavior.max_new_tokens=8",
                "method.behavior.global_n_perm=19", "method.behavior.n_perm=99", "method.behavior.embedder=hashing",
                "method.behavior.generative_prompts=2"]
    return lmdiff("diff", base, finetuned, "--methods", "behavior", *settings, *extra, "--out", str(out),
                  env={"LMDIFF_LLM": "mockllm/model", "COLUMNS": "300", **NO_NET}, timeout=900)


def _assert_junk_counted(res: subprocess.CompletedProcess[str], out: Path) -> dict[str, object]:
    assert res.returncode == 0, res.stderr[-3000:]
    entry = read_json(out / "results.json")["methods"]["behavior"]
    assert entry["status"] == "ok", entry.get("error")
    llm = entry["llm"]
    assert llm["structured_invalid"] > 0 and llm["structured_valid"] == 0  # every junk reply is invalid
    assert llm["calls"] + llm["cache_hits"] >= llm["structured_invalid"]
    assert llm["failed_calls"] == 0  # no call reached for the network
    return dict(entry)


def test_mock_llm_offline_tiny_pair(tiny_model_dir, tiny_adapter_dir, tmp_path):
    out = tmp_path / "run"
    _assert_junk_counted(_mockllm_diff(str(tiny_model_dir), str(tiny_adapter_dir), out, []), out)


@pytest.mark.real_model
def test_mock_llm_offline_real_organism(tmp_path):
    out = tmp_path / "run"
    entry = _assert_junk_counted(_mockllm_diff("smollm2-135m-instruct", "organism:caps", out, []), out)
    assert entry["headline"]["n_hypotheses_tested"] > 0  # the offline hypotheses still ran
