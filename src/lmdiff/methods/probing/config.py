"""Settings of the probing method."""

from __future__ import annotations

from pydantic import Field, field_validator

from lmdiff.methods.base import MethodConfig
from lmdiff.methods.probing.facts import RELATIONS

__all__ = ["ProbingConfig"]


class ProbingConfig(MethodConfig):
    """Settings of the probing method.

    The defaults ask 192 proposal questions (16 countries x 3 relations x 3 paraphrases, 16 cities x 3).
    """

    relations: list[str] = Field(default_factory=lambda: list(RELATIONS), description="structured relations asked")
    n_countries: int = Field(16, ge=0, description="most populous countries asked about (capital, continent, currency)")
    n_cities: int = Field(16, ge=0, description="largest cities asked about (city_country; at most two per country)")
    entities: list[str] = Field(default_factory=list, description=(
        "names other signals point at (diff-mining tokens, lens tokens): asked open questions"))
    signal_words: int = Field(8, ge=0, description=(
        "words read from the run's earlier methods (diff mining, lens, KL tokens): places among them bring their "
        "structured facts (a city: its country's capital, continent, currency), other names open questions; 0: off"))
    signal_entities: int = Field(4, ge=0, description="signal names (not places) asked open questions")
    max_new_tokens: int = Field(12, ge=1, le=64, description="greedy answer length")
    batch_size: int = Field(16, ge=1)
    min_agree: int = Field(2, ge=1, description="proposal questions that must name the same other object")
    continents: bool = Field(True, description=(
        "ask open questions about the inhabited continents too, so landmarks are found without any signal word"))
    landmarks: int = Field(8, ge=0, description=(
        "landmarks named in the open answers that are asked where they are (landmark_city; the base model's "
        "consistent answer is the reference); 0: off"))
    leads_per_entity: int = Field(3, ge=0, description="open-question names kept per entity")
    n_perm: int = Field(1999, ge=99, description="random sign patterns beyond 16 held-out questions")
    examples: int = Field(12, ge=0, description="changed answers shown in the report")

    @field_validator("relations")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [r for r in v if r not in RELATIONS]
        if unknown:
            raise ValueError(f"unknown relation(s) {unknown}; known: {sorted(RELATIONS)}")
        return v
