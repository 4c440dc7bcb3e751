"""Converting a GGUF file into a plain safetensors model directory, once, with checksums."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, cast

from lmdiff.errors import CorruptCacheError, ModelNotFoundError
from lmdiff.io import atomic_dir, read_json, sha256_file, write_json

log = logging.getLogger(__name__)
CHECKSUMS = "lmdiff-checksums.json"


def convert_gguf(gguf_path: Path, dest: Path, name: str, progress: bool = True) -> Path:
    """Dequantize ``gguf_path`` into ``dest`` (safetensors, tokenizer, chat template).

    The directory is built under a temporary name and renamed into place, so a killed
    conversion leaves nothing behind. A checksum file records every file's SHA-256.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise ModelNotFoundError(f"GGUF file '{gguf_path}' does not exist.", hint="check the path")
    log.info("converting %s into %s (once)", gguf_path.name, dest)
    if not progress:
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
    except Exception as err:  # transformers raises many types for a bad GGUF
        raise CorruptCacheError(
            f"Could not read GGUF file '{gguf_path}': {err}",
            hint="check that the file is a complete GGUF model supported by transformers",
        ) from err
    finally:
        if not progress:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    # A GGUF-loaded model refuses save_pretrained until its quantizer is cleared.
    cast(Any, model).hf_quantizer = None  # nn.Module's attribute types do not cover it
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config._name_or_path = name
    with atomic_dir(dest) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        files = {}
        for p in sorted(tmp.iterdir()):
            st = p.stat()
            files[p.name] = {"sha256": sha256_file(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        write_json(
            tmp / CHECKSUMS,
            {"source": str(gguf_path), "source_sha256": sha256_file(gguf_path), "files": files},
        )
    return dest


def cache_status(path: Path) -> str:
    """'converted', 'not converted' or 'corrupt' for a converted-model directory."""
    if not path.exists():
        return "not converted"
    try:
        _check(path, full=False)
    except CorruptCacheError:
        return "corrupt"
    return "converted"


def verified_dir(path: Path, rebuild_hint: str) -> Path:
    """Return ``path`` after checking its files against the recorded checksums.

    Sizes are always compared; the SHA-256 is recomputed whenever a file's size or
    modification time differs from the record.
    """
    try:
        _check(path, full=False)
    except CorruptCacheError as err:
        raise CorruptCacheError(err.message, hint=rebuild_hint) from None
    return path


def _check(path: Path, full: bool) -> None:
    record_path = path / CHECKSUMS
    if not record_path.exists():
        raise CorruptCacheError(f"Converted model in '{path}' has no checksum record.")
    try:
        record = read_json(record_path)
        files = record["files"]
    except (ValueError, KeyError) as err:
        raise CorruptCacheError(f"Checksum record in '{path}' is unreadable.") from err
    for fname, meta in files.items():
        p = path / fname
        if not p.exists():
            raise CorruptCacheError(f"Cached model file '{p}' is missing.")
        st = os.stat(p)
        if st.st_size != meta["size"]:
            raise CorruptCacheError(f"Cached model file '{p}' has the wrong size (corrupt or truncated).")
        rehash = full or st.st_mtime_ns != meta["mtime_ns"]
        if rehash and sha256_file(p) != meta["sha256"]:
            raise CorruptCacheError(f"Cached model file '{p}' failed its checksum (corrupt).")
