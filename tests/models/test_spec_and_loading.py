import json

import pytest

from lmdiff.errors import AdapterError, ConfigError, CorruptCacheError, ModelNotFoundError
from lmdiff.io import sha256_file, write_json
from lmdiff.models.gguf import CHECKSUMS, cache_status, verified_dir
from lmdiff.models.loading import load_model
from lmdiff.models.spec import ModelSpec


def test_spec_kinds(tiny_model_dir, tmp_path):
    assert ModelSpec.parse("smollm2-135m-instruct").source_kind == "shipped"
    assert ModelSpec.parse(str(tiny_model_dir)).source_kind == "local"
    assert ModelSpec.parse("some-org/some-model").source_kind == "hub"
    assert ModelSpec.parse(str(tmp_path / "x.gguf")).source_kind == "gguf"
    assert ModelSpec.parse("x").trust_remote_code is False


def test_adapter_dir_resolves_to_base(tiny_model_dir, tiny_adapter_dir):
    spec = ModelSpec.parse(str(tiny_adapter_dir))
    assert spec.adapter == str(tiny_adapter_dir)
    assert spec.model == str(tiny_model_dir)


def test_bad_values_give_config_errors():
    with pytest.raises(ConfigError, match="dtype"):
        ModelSpec.parse("x", dtype="float64")
    with pytest.raises(ConfigError, match="unknown key"):
        ModelSpec.parse({"model": "x", "colour": "red"})


def test_unknown_model_offline_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="no-such-model") as info:
        load_model("no-such-model")
    assert info.value.hint and "smollm2-135m-instruct" in info.value.hint


def test_missing_local_dir_and_adapter(tmp_path, tiny_model_dir):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model(str(tmp_path / "nowhere"))
    with pytest.raises(AdapterError, match=r"adapter_config\.json"):
        load_model(str(tiny_model_dir), adapter=str(tmp_path / "noadapter"))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tiny_model_dir)}))
    (pickled / "adapter_model.bin").write_bytes(b"not safe")
    with pytest.raises(AdapterError, match="safetensors"):
        load_model(str(tiny_model_dir), adapter=str(pickled))


def test_unknown_organism_prefix():
    with pytest.raises(ModelNotFoundError):
        ModelSpec.parse("nosuchprefix:thing")


def _fake_converted(path):
    path.mkdir()
    (path / "model.safetensors").write_bytes(b"0123456789")
    st = (path / "model.safetensors").stat()
    write_json(path / CHECKSUMS, {"files": {"model.safetensors": {
        "sha256": sha256_file(path / "model.safetensors"), "size": st.st_size, "mtime_ns": st.st_mtime_ns}}})
    return path


def test_checksum_detects_corruption(tmp_path):
    d = _fake_converted(tmp_path / "m")
    assert cache_status(d) == "converted"
    assert verified_dir(d, rebuild_hint="x") == d
    (d / "model.safetensors").write_bytes(b"0123456780")  # same size, new content
    assert cache_status(d) == "corrupt"
    with pytest.raises(CorruptCacheError, match="checksum") as info:
        verified_dir(d, rebuild_hint="lmdiff models convert m --force")
    assert info.value.hint == "lmdiff models convert m --force"
    (d / "model.safetensors").write_bytes(b"short")
    with pytest.raises(CorruptCacheError, match="size"):
        verified_dir(d, rebuild_hint="x")
    assert cache_status(tmp_path / "absent") == "not converted"
