import pandas as pd
import pytest

from lmdiff.config import GenerationConfig
from lmdiff.io import read_json
from lmdiff.runs import Run, process_in_chunks


def test_steps_reuse_and_invalidate(tmp_path):
    run = Run(tmp_path / "r", GenerationConfig(), command="test", seeds={"s": 1})
    step = run.step("work", {"x": 1})
    assert not step.done
    d = step.prepare()
    (d / "out.txt").write_text("result")
    step.finish({"n": 1})
    run.close()
    run2 = Run(tmp_path / "r", GenerationConfig(), command="test")
    assert run2.resumed and run2.step("work", {"x": 1}).done
    assert run2.step("work", {"x": 1}).summary() == {"n": 1}
    changed = run2.step("work", {"x": 2})
    assert not changed.done
    changed.prepare()
    assert not (changed.dir / "out.txt").exists()  # stale artifacts of other inputs are cleared
    manifest = read_json(tmp_path / "r" / "manifest.json")
    assert manifest["invocations"] == 2 and "torch" in manifest["versions"]
    assert (tmp_path / "r" / "config.yaml").exists()
    run2.close()


def test_chunks_resume_after_interruption(tmp_path):
    calls: list[int] = []

    def fn(chunk, offset):
        calls.append(offset)
        if offset == 4 and len(calls) == 3:
            raise KeyboardInterrupt  # killed in the middle of the third chunk
        return pd.DataFrame({"i": [offset + k for k in range(len(chunk))], "v": [x * 2 for x in chunk]})

    items = list(range(10))
    with pytest.raises(KeyboardInterrupt):
        process_in_chunks(items, fn, tmp_path, chunk_size=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    calls.clear()
    df = process_in_chunks(items, fn, tmp_path, chunk_size=2)
    assert calls == [4, 6, 8]  # finished chunks are not recomputed
    assert df["v"].tolist() == [x * 2 for x in items]


def test_results_json_schema(tmp_path):
    run = Run(tmp_path / "r", GenerationConfig(), command="test")
    run.record("kl", status="ok", headline={"mean_kl": 0.1}, summary="s", corpus="chat")
    run.record("adl", status="failed", headline={}, error="boom")
    res = read_json(run.results_path)
    assert res["schema_version"] == 1
    assert res["methods"]["kl"] == {"status": "ok", "headline": {"mean_kl": 0.1}, "summary": "s",
                                    "artifacts": [], "corpus": "chat"}
    assert res["methods"]["adl"]["status"] == "failed"
    run.close()


def _manifest(path):
    return read_json(path / "manifest.json")


def test_run_context_manager_records_how_each_invocation_ended(tmp_path):
    import logging

    from lmdiff.errors import ConfigError

    path = tmp_path / "r"
    with Run(path, GenerationConfig(), command="test") as run:
        assert _manifest(path)["status"] == "running"  # a run killed outright stays "running"
        assert read_json(run.results_path)["methods"] == {}  # results.json exists from the start
        logging.getLogger("lmdiff.test").info("inside the run")
    assert run._handler not in logging.getLogger("lmdiff").handlers  # log handler detached
    assert "inside the run" in (path / "logs" / "run.log").read_text()
    m = _manifest(path)
    assert m["status"] == "ok" and m["history"][0]["status"] == "ok" and "ended" in m["history"][0]

    with pytest.raises(ConfigError), Run(path, GenerationConfig(), command="test"):
        raise ConfigError("bad value", hint="fix it")
    m = _manifest(path)
    assert m["status"] == "error" and m["history"][1] | {"ended": None} == {
        "invocation": 2, "command": "test", "started": m["history"][1]["started"], "status": "error",
        "ended": None, "error": "bad value"}

    with pytest.raises(KeyboardInterrupt), Run(path, GenerationConfig(), command="test"):
        raise KeyboardInterrupt
    assert _manifest(path)["status"] == "interrupted"

    with Run(path, GenerationConfig(), command="test") as run:
        run.record("kl", status="ok", headline={})
        run.record("adl", status="failed", headline={}, error="boom")
    m = _manifest(path)
    assert m["status"] == "failed" and m["history"][3]["failed_methods"] == ["adl"]
    assert [h["invocation"] for h in m["history"]] == [1, 2, 3, 4] and m["invocations"] == 4
    assert run.failed_methods() == ["adl"]
    run.close()  # closing twice is harmless


def test_run_dir_that_is_a_file_is_a_config_error(tmp_path):
    from lmdiff.errors import ConfigError

    target = tmp_path / "file.txt"
    target.write_text("x")
    for path in (target, target / "sub"):
        with pytest.raises(ConfigError, match="is an existing file"):
            Run(path, GenerationConfig(), command="test")
    assert target.read_text() == "x"
