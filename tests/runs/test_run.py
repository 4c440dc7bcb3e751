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
