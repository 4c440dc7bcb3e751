"""Evaluations of model organisms: the four-condition backdoor/persona evaluation and sweeps."""
