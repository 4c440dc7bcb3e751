"""Follow-up on weak signals: targeted prompts about what the white-box readouts point at.

Signals (tokens that diff mining, the ADL lens, the top-KL contexts or amplified samples single
out) that the run's prompts did not cover become topics; lmdiff writes prompts about each (from
templates offline, through the LLM layer's ``prompt_writer`` when one is configured), samples both
models, proposes word-level differences on half of the prompts and tests them on the other half.
Every test is a claim of the run (:mod:`lmdiff.runs.claims`) under its one FDR procedure.
"""

from lmdiff.interp.signals import SIGNAL_KEYS, Signal, collect_signals
from lmdiff.methods.followup.method import FollowupConfig, FollowupMethod

__all__ = ["SIGNAL_KEYS", "FollowupConfig", "FollowupMethod", "Signal", "collect_signals"]
