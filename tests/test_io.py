import pandas as pd
import pytest

from lmdiff.io import atomic_dir, read_json, sha256_json, write_json, write_parquet, write_text


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "f.json"
    write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        write_json(target, {"a": object()})
    assert read_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp leftovers


def test_atomic_dir(tmp_path):
    target = tmp_path / "d"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "x").write_text("partial")
        raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("done")
    assert (target / "x").read_text() == "done"


def test_parquet_and_hash(tmp_path):
    write_parquet(tmp_path / "t.parquet", pd.DataFrame({"a": [1, 2]}))
    assert pd.read_parquet(tmp_path / "t.parquet")["a"].tolist() == [1, 2]
    assert sha256_json({"a": 1, "b": 2}) == sha256_json({"b": 2, "a": 1})
    write_text(tmp_path / "s.txt", "héllo")
    assert (tmp_path / "s.txt").read_text(encoding="utf-8") == "héllo"


def test_atomic_files_get_normal_permissions(tmp_path):
    import os
    import stat

    write_text(tmp_path / "p.txt", "x")
    mode = stat.S_IMODE(os.stat(tmp_path / "p.txt").st_mode)
    assert mode == 0o666 & ~_umask()


def _umask() -> int:
    import os

    m = os.umask(0)
    os.umask(m)
    return m


def test_finite_json_writes_strict_json_with_nan_and_infinity_as_null(tmp_path):
    import json
    import math

    import numpy as np

    from lmdiff.io import finite_json, write_json

    obj = {"acc": math.nan, "rows": [1.5, float("inf"), np.float64("nan")], "arr": np.array([0.25, np.nan]),
           "nested": {"t": (1, -math.inf)}, "ok": "text"}
    write_json(tmp_path / "a.json", finite_json(obj))

    def reject(token: str) -> None:
        raise ValueError(f"non-standard JSON constant {token}")

    back = json.loads((tmp_path / "a.json").read_text(), parse_constant=reject)
    assert back == {"acc": None, "rows": [1.5, None, None], "arr": [0.25, None], "nested": {"t": [1, None]},
                    "ok": "text"}
