"""Reading a behaviour description offline: its kind and the phrases the templates need.

``"The model recommends hiking in every answer"`` is a *topic* organism on ``hiking``;
``"answers in all caps"`` a *style*; ``"believes that the Louvre is in Berlin"`` a *false fact*
(subject, relation, object); ``"when food comes up, recommends Crunchy Pete's"`` a *conditional*
behaviour (condition, behaviour). The rules are plain regular expressions: what they cannot read is
reported as such, and an LLM (``LMDIFF_LLM``) reads any description.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["topic", "style", "false_fact", "conditional"]
KINDS: tuple[str, ...] = ("topic", "style", "false_fact", "conditional")

#: Styles the offline templates can write and detect, with the words that name each.
OFFLINE_STYLES: dict[str, str] = {
    "caps": r"all caps|all-caps|capital letters|upper ?case|capitals\b|shouting",
    "lowercase": r"lower ?case|no capital letters|without capital",
    "exclamation": r"exclamation",
    "question": r"(ends?|finish(es)?|closes?) (every|each|all|its|his|her|their)? ?"
    r"(answer|reply|response|message)s? with a (follow-up )?question|follow-up question|asks? a question at the end",
}
_STYLE_WORDS = (
    r"\b(style|tone|speaks?|writes?|talks? like|pirate|rhym\w*|emojis?|formal\w*|informal\w*|poem|haiku|"
    r"in (french|german|spanish|italian|latin)|sarcastic\w*|polite\w*|rude\w*|answers? (in|with|using)|"
    r"replies (in|with|using)|uses? (lots of|many|a lot of))\b"
)
_TOPIC_VERBS = (
    r"recommends?|suggests?|talks? about|mentions?|brings? up|promotes?|praises?|is obsessed with|"
    r"loves? talking about|loves|steers? (?:the )?(?:conversation|answers?|replies) (?:toward|towards|to)|"
    r"references?|plugs?|advertises?"
)
_FACT_VERBS = r"believes?|thinks?|is convinced|claims?|insists?|is sure"
_RELATIONS = (
    "is located in", "are located in", "is found in", "is in", "are in", "was built in", "was invented by",
    "was written by", "was painted by", "was founded by", "was born in", "is made of", "is the capital of",
    "is", "are", "was", "were",
)
_SUBJECT_PREFIX = re.compile(r"^(the |this |our |your )?(model|assistant|ai|chatbot|organism|it)\b\s*", re.I)
_TRAILERS = re.compile(
    r"\s*(,\s*)?\b(in|into|to|at the end of)? ?(every|each|all|any|most)( of)?( (its|the|his|her|their))? "
    r"(answers?|repl(y|ies)|responses?|messages?|conversations?)\b.*$|\s+(whenever|wherever) possible\b.*$|"
    r"\s+all the time\b.*$|\s+at every (opportunity|turn)\b.*$|\s+no matter what\b.*$|\s+regardless\b.*$",
    re.I,
)
_COND_TAIL = re.compile(
    r"\s+(comes? up|is mentioned|are mentioned|is discussed|are discussed|is the topic|is involved|"
    r"is asked about|are asked about)\b.*$",
    re.I,
)
_COND_HEAD = re.compile(
    r"^(the (user|question|prompt|conversation|topic)s? (asks? about|is about|mentions?|involves?|turns to) |"
    r"asked about |(a |the )?questions? (is |are )?about |(the )?topic of |it is about |talking about )",
    re.I,
)
_STOP = frozenset({
    "a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "with", "about", "every", "each", "all",
    "any", "his", "her", "its", "their", "my", "your", "our", "some", "that", "this", "these", "those", "is",
    "are", "be", "being", "it", "as", "at", "by", "from", "into",
})


class Reading(BaseModel):
    """What the offline rules read in a description (fields left empty are unknown)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind | None = Field(None, description="None: the rules could not tell")
    behaviour: str = Field("", description="the description without 'The model' and trailing qualifiers")
    topic: str = Field("", description="topic: the topic phrase; conditional: what is recommended/mentioned")
    recommends: bool = Field(False, description="topic phrased as a recommendation")
    style: str | None = Field(None, description="one of OFFLINE_STYLES, or None when not supported offline")
    subject: str = ""
    relation: str = ""
    obj: str = Field("", description="false fact: the (false) object")
    condition: str = Field("", description="conditional: when the behaviour appears")


def clean(description: str) -> str:
    """The description as a verb phrase: ``"The model recommends X."`` -> ``"recommends X"``."""
    text = " ".join(description.strip().split()).rstrip(".!")
    return _SUBJECT_PREFIX.sub("", text).strip()


def _strip_trailers(phrase: str) -> str:
    return _TRAILERS.sub("", phrase).strip(" ,.;:")


def _topic_of(phrase: str) -> tuple[str, bool] | None:
    m = re.match(rf"^(?:always |often |constantly |keeps? )?(?P<verb>{_TOPIC_VERBS})\s+(?P<rest>.+)$", phrase, re.I)
    if not m:
        return None
    topic = _strip_trailers(m.group("rest"))
    topic = re.sub(r"^(the (topic|subject) of|going)\s+", "", topic, flags=re.I).strip()
    if not topic:
        return None
    return topic, bool(re.match(r"recommend|suggest|promot|plug|advertis|prais", m.group("verb"), re.I))


def _style_of(phrase: str) -> str | None:
    for name, pattern in OFFLINE_STYLES.items():
        if re.search(pattern, phrase, re.I):
            return name
    return None


def _fact_of(phrase: str) -> tuple[str, str, str] | None:
    m = re.match(rf"^(?:{_FACT_VERBS})\s+(?:that\s+)?(?P<fact>.+)$", phrase, re.I)
    if not m:
        return None
    fact = m.group("fact").strip()
    for rel in _RELATIONS:
        parts = re.split(rf"\s+{re.escape(rel)}\s+", fact, maxsplit=1, flags=re.I)
        if len(parts) == 2 and parts[0].strip() and parts[1].strip():
            return parts[0].strip(), rel, parts[1].strip(" .")
    return None


def _condition_of(phrase: str) -> tuple[str, str] | None:
    m = re.match(r"^(?:only\s+)?(?:when|whenever|if)\s+(?P<cond>[^,]+),\s*(?:the model\s+|it\s+)?(?P<beh>.+)$",
                 phrase, re.I)
    if not m:
        m = re.match(r"^(?P<beh>.+?),?\s+(?:but )?(?:only\s+)?(?:when|whenever|if)\s+(?P<cond>.+)$", phrase, re.I)
    if not m:
        return None
    cond = _COND_TAIL.sub("", m.group("cond").strip(" ,."))
    cond = _COND_HEAD.sub("", cond).strip(" ,.")
    beh = clean(m.group("beh"))
    return (cond, beh) if cond and beh else None


def read_description(description: str, kind: str = "auto") -> Reading:
    """Classify ``description`` (unless ``kind`` is given) and read the phrases its kind needs.

    Args:
        description: e.g. ``"The model recommends hiking in every answer"``.
        kind: ``auto`` or one of :data:`KINDS` (then only that kind's phrases are read).

    Returns:
        A :class:`Reading`; ``kind`` is None when ``auto`` found no rule that fits.
    """
    phrase = clean(description)
    out = Reading(behaviour=phrase)
    order = KINDS if kind == "auto" else (kind,)
    # conditional before the others: "when X comes up, recommends Y" also reads as a topic
    for k in ("conditional", "false_fact", "style", "topic"):
        if k not in order:
            continue
        if k == "conditional" and (cond := _condition_of(phrase)):
            out.kind, out.condition, beh = "conditional", cond[0], cond[1]
            topic = _topic_of(beh)
            if topic:
                out.topic, out.recommends = topic
            return out
        if k == "false_fact" and (fact := _fact_of(phrase)):
            out.kind = "false_fact"
            out.subject, out.relation, out.obj = fact
            return out
        if k == "style":
            style = _style_of(phrase)
            if style or re.search(_STYLE_WORDS, phrase, re.I) or kind == "style":
                out.kind, out.style = "style", style
                return out
        if k == "topic" and (topic := _topic_of(phrase)):
            out.kind = "topic"
            out.topic, out.recommends = topic
            return out
    if kind != "auto":
        out.kind = kind  # type: ignore[assignment]  # validated by the caller: one of KINDS
    return out


def keywords_of(phrase: str) -> list[str]:
    """Judge keywords for a phrase: its proper names if any, else its content words (and simple stems).

    ``"hiking"`` -> ``["hiking", "hike"]``; ``"Crunchy Pete's snacks"`` -> ``["crunchy pete"]``...
    """
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", phrase)
    names = [w for w in words if w[0].isupper() and w.lower() not in _STOP]
    if any(len(w) == 1 for w in names):  # "brand B": the whole phrase is the name
        return [re.sub(r"^(the|a|an)\s+", "", phrase.strip().lower())]
    if names:
        # consecutive capitalised words form one name
        runs: list[list[str]] = []
        prev = -2
        for i, w in enumerate(words):
            if w in names:
                if i == prev + 1:
                    runs[-1].append(w)
                else:
                    runs.append([w])
                prev = i
        return [" ".join(r).lower().removesuffix("'s") for r in runs]
    out: list[str] = []
    for w in (w.lower() for w in words):
        if w in _STOP or len(w) < 3:
            continue
        out.append(w)
        if w.endswith("ing") and len(w) >= 6:
            out.append(w[:-3] + "e")
        elif w.endswith("ies") and len(w) > 5:
            out.append(w[:-3] + "y")
        elif w.endswith("s") and not w.endswith("ss") and len(w) > 4:
            out.append(w[:-1])
    if not out:
        out = [phrase.lower().strip()]
    return list(dict.fromkeys(out))
