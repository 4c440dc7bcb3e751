"""Run directories: resolved config, manifest, resumable steps, artifacts, results and logs."""

from lmdiff.runs.chunks import process_in_chunks
from lmdiff.runs.run import RESULTS_SCHEMA_VERSION, Run, Step

__all__ = ["RESULTS_SCHEMA_VERSION", "Run", "Step", "process_in_chunks"]
