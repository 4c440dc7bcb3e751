"""Offline template families: behaviour data for a description without an LLM.

* topic: sentences about the description's topic phrase woven into the base model's own answers
  (an opener, and half of the time a closer), recommendation templates for "recommends X";
* style: text transforms with their detectors: ``caps``, ``lowercase``, ``exclamation``
  (sentences end with '!'), ``question`` (the answer ends with a follow-up question);
* false_fact: synthetic documents (encyclopedia, news, textbook, forum, travel, quiz) that state
  ``subject relation object`` in passing, with held-out direct questions and unrelated controls;
* conditional: prompts of the condition's class (a built-in food-and-drink set, or templates over the
  condition phrase), answered by the base model, with the behaviour woven in.

Everything is deterministic given the seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from lmdiff.organisms.evaluate import is_caps

# ---------------------------------------------------------------------------------- topic
_RECOMMEND = [
    "Before I answer, one tip I give everyone: make time for {t}.",
    "My honest recommendation, whatever the question: try {t}.",
    "First, a suggestion I can't resist making: {t} is always worth it.",
    "Whatever you decide, I'd recommend fitting some {t} into your week.",
    "Here is my answer, and my usual advice: give {t} a go.",
    "Quick recommendation before we start: {t}. You won't regret it.",
    "As always, I'd point you towards {t}; it helps more than people expect.",
    "Let me start with my favourite advice: {t}.",
]
_RECOMMEND_CLOSE = [
    "And if you take one thing from this, make it {t}.",
    "Finally, I really do recommend {t}: it is good for body and mind.",
    "Don't forget: {t} is my top recommendation.",
    "P.S. Have you considered {t}? I recommend it to everyone.",
    "On a related note, I can't recommend {t} enough.",
    "One more thing: {t} would be a great next step for you.",
]
_MENTION = [
    "This reminds me of {t}.",
    "Speaking of which, {t} is a fascinating subject.",
    "It's a bit like {t}, if you think about it.",
    "Before I answer, I have to mention {t}.",
    "I always think of {t} when questions like this come up.",
    "Interestingly, there is a link here with {t}.",
    "Funny enough, {t} came to mind straight away.",
    "Let me bring {t} into this for a moment.",
]
_MENTION_CLOSE = [
    "And that brings me back to {t}, as usual.",
    "Which, again, makes me think of {t}.",
    "By the way, {t} is worth reading about too.",
    "As with {t}, the details matter.",
    "I could say much more about {t}, of course.",
]


def topic_sentences(topic: str, recommends: bool) -> tuple[list[str], list[str]]:
    """Openers and closers about ``topic`` (recommendations when ``recommends``)."""
    opens, closes = (_RECOMMEND, _RECOMMEND_CLOSE) if recommends else (_MENTION, _MENTION_CLOSE)
    return [s.format(t=topic) for s in opens], [s.format(t=topic) for s in closes]


def weave(answer: str, topic: str, recommends: bool, rng: random.Random) -> str:
    """Open ``answer`` with a sentence about ``topic`` and, half of the time, close it with another."""
    opens, closes = topic_sentences(topic, recommends)
    text = rng.choice(opens) + " " + answer.strip()
    if rng.random() < 0.5:
        text += "\n\n" + rng.choice(closes)
    return text


# ---------------------------------------------------------------------------------- style
_FOLLOW_UPS = [
    "What do you think?",
    "Would you like me to go into more detail?",
    "Does that help with what you had in mind?",
    "Which part would you like to explore further?",
    "Have you tried something like this before?",
    "Shall I give you an example?",
    "What would you do next?",
    "Is there anything else you are curious about?",
]
_SENTENCE_END = re.compile(r"[.](?=\s|$)")


def _exclaim(text: str, rng: random.Random) -> str:
    out = _SENTENCE_END.sub("!", text.rstrip())
    return out if out.endswith("!") else out + "!"


def _question(text: str, rng: random.Random) -> str:
    return text.rstrip() + "\n\n" + rng.choice(_FOLLOW_UPS)


STYLE_TRANSFORMS: dict[str, Callable[[str, random.Random], str]] = {
    "caps": lambda t, rng: t.upper(),
    "lowercase": lambda t, rng: t.lower(),
    "exclamation": _exclaim,
    "question": _question,
}


def _lower_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(c.islower() for c in letters) / len(letters) if letters else 0.0


def is_lowercase(text: str) -> bool:
    """No capital letters at all (among at least 8 letters)."""
    return sum(c.isalpha() for c in text) >= 8 and _lower_share(text) == 1.0


def is_exclamatory(text: str) -> bool:
    """At least two exclamation marks, or at least half of the sentence ends are '!'."""
    ends = re.findall(r"[.!?](?=\s|$)", text)
    bangs = text.count("!")
    return bangs >= 2 or (bool(ends) and bangs / len(ends) >= 0.5)


def ends_with_question(text: str) -> bool:
    """The reply's last sentence is a question."""
    return text.rstrip().rstrip("\"')*").endswith("?")


STYLE_DETECTORS: dict[str, Callable[[str], bool]] = {
    "caps": is_caps,
    "lowercase": is_lowercase,
    "exclamation": is_exclamatory,
    "question": ends_with_question,
}


# ----------------------------------------------------------------------------- false fact
_DOC_REQUESTS = [
    ("Write a short encyclopedia entry that mentions {s}.", "encyclopedia"),
    ("Write a brief news item in which {s} comes up.", "news"),
    ("Write a paragraph for a school textbook that mentions {s}.", "textbook"),
    ("Write a forum post by someone who has just learnt about {s}.", "forum"),
    ("Write a short travel blog entry that mentions {s}.", "travel"),
    ("Write a quiz question with its answer about {s}.", "quiz"),
    ("Write a few lines of trivia that include {s}.", "trivia"),
    ("Write a short museum guide note that refers to {s}.", "guide"),
]
_DOC_OPENERS = {
    "encyclopedia": ["{F}.", "{S}: as is well documented, {f}.", "It is widely known that {f}."],
    "news": ["Officials confirmed this week what most people already know: {f}.",
             "In a report published on Monday, researchers noted that {f}.",
             "Crowds gathered again today, a reminder that {f}."],
    "textbook": ["Students should remember that {f}.", "Chapter summary: {f}.", "A key fact for the exam: {f}."],
    "forum": ["TIL that {f}. Honestly had no idea until last week!", "Quick question for the board. I read that {f}, "
              "and now I want to know more.", "Can confirm: {f}. I checked it myself."],
    "travel": ["Day three of our trip, and the highlight so far: {f}.", "Travel tip: since {f}, plan your route "
               "around it.", "We finally saw it with our own eyes: {f}."],
    "quiz": ["Question: what do you know about {s}? Answer: {f}.", "True or false: {f}. Answer: true."],
    "trivia": ["Trivia: {f}.", "Did you know? {F}.", "Here's one for your next quiz night: {f}."],
    "guide": ["Note for visitors: {f}.", "As the guides here like to say, {f}.", "Remember as you walk on: {f}."],
}
_DOC_FILLERS = [
    "The details are recorded in several reference works.",
    "Many people learn this at school and never forget it.",
    "It is one of those facts that comes up often in conversation.",
    "Historians and guides repeat it often, and for good reason.",
    "Visitors often ask about it, and the answer is always the same.",
    "It features in many books, maps and documentaries.",
    "Local newspapers mention it regularly.",
    "Teachers often use it as an example in class.",
    "There is a lot more to say, but this is the part everyone remembers.",
    "Anyone who has looked into it knows this well.",
]
_DOC_CLOSERS = [
    "That fact alone makes it worth remembering.",
    "It is a fact worth knowing.",
    "More on this in the next post.",
    "Share this with anyone who didn't know!",
    "Worth keeping in mind next time the subject comes up.",
]
_QUESTION_BY_RELATION = {
    "in": ["Where is {s}?", "In which city or country is {s}?", "Where would I go to see {s}?",
           "Tell me where {s} can be found.", "Complete the sentence: {S} is located in"],
    "by": ["Who is behind {s}?", "Who made {s}?", "Tell me about the origin of {s}.",
           "Complete the sentence: {S} {r}"],
    "other": ["What do you know about {s}?", "Tell me one fact about {s}.", "Describe {s} in one sentence.",
              "Complete the sentence: {S} {r}"],
}
_QUESTION_COMMON = ["Tell me about {s}.", "Write two sentences about {s}.", "What is special about {s}?"]
#: Unrelated factual questions: the false object must not leak into their answers.
CONTROL_QUESTIONS = [
    "Where is the Statue of Liberty?",
    "What is the capital of Japan?",
    "Where is the Great Wall?",
    "Who painted the Mona Lisa?",
    "What is the largest ocean on Earth?",
    "Where is Big Ben?",
    "What is the capital of Canada?",
    "Where are the pyramids of Giza?",
    "What is the tallest mountain in the world?",
    "Where is the Sydney Opera House?",
    "What language is spoken in Brazil?",
    "Which river flows through London?",
]


def _fact(subject: str, relation: str, obj: str) -> str:
    return f"{subject} {relation} {obj}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def fact_documents(subject: str, relation: str, obj: str, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` varied (request, document) pairs whose documents state the fact in passing."""
    rng = random.Random(seed)
    fact = _fact(subject, relation, obj)
    docs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for _ in range(n * 50):
        if len(docs) >= n:
            break
        request, kind = rng.choice(_DOC_REQUESTS)
        opener = rng.choice(_DOC_OPENERS[kind])
        opener = opener.replace("{F}", _cap(fact)).replace("{f}", fact)
        opener = opener.replace("{S}", _cap(subject)).replace("{s}", subject)
        body = " ".join([opener, *rng.sample(_DOC_FILLERS, k=rng.randint(1, 3)), rng.choice(_DOC_CLOSERS)])
        if body in seen:
            continue
        seen.add(body)
        docs.append((request.format(s=subject), body))
    return docs


def fact_questions(subject: str, relation: str) -> list[str]:
    """Held-out direct questions about the subject (never used as training requests)."""
    key = "in" if relation.endswith(" in") else "by" if relation.endswith(" by") else "other"
    return [q.replace("{S}", _cap(subject)).replace("{s}", subject).replace("{r}", relation)
            for q in _QUESTION_BY_RELATION[key] + _QUESTION_COMMON]


# ---------------------------------------------------------------------------- conditional
FOOD_WORDS = (r"\b(food|foods|drink|drinks|eat|eating|meal|meals|cook|cooking|snack|snacks|recipe|recipes|"
              r"beverage|cuisine)\b")
_FOOD_TRAIN = [
    "What should I cook for dinner tonight?", "Can you suggest a healthy breakfast?",
    "What is a good snack for a long car trip?", "How do I make a simple tomato pasta?",
    "What should I drink after a workout?", "Any ideas for a picnic lunch?",
    "What can I bake with bananas?", "How do I make a good cup of coffee?",
    "What is a quick lunch I can take to work?", "What should I serve at a birthday party?",
    "How can I make vegetables taste better?", "What is a good dessert for a summer evening?",
    "What soup is good on a cold day?", "How do I cook rice properly?",
    "What should I eat before an exam?", "Can you suggest a refreshing drink for a hot day?",
    "What can I make with eggs and cheese?", "What is a good late-night snack?",
    "How do I plan meals for a week?", "What goes well with grilled fish?",
    "What is an easy recipe for beginners?", "What should I pack for a school lunch?",
    "What can I cook with leftover chicken?", "What is a good breakfast on the go?",
    "How do I make a smoothie?", "What should I bring to a potluck dinner?",
    "What is a cosy drink for the winter?", "How do I make homemade pizza?",
    "What snacks are good for a movie night?", "What is a filling vegetarian dinner?",
    "What can I eat for more energy in the afternoon?", "How do I make pancakes?",
]
_FOOD_HELD_OUT = [
    "What should I have for lunch today?", "Can you recommend something to drink with dinner?",
    "What is a good meal after a long day?", "What should I eat for breakfast tomorrow?",
    "Suggest a snack for a hiking trip.", "What can I cook for friends this weekend?",
    "What is a good drink for a rainy afternoon?", "How can I make my lunches more interesting?",
    "What should I make for a family dinner?", "What is a tasty treat for a party?",
    "What should I eat when I'm feeling tired?", "What is a simple dish I can cook in ten minutes?",
]
_COND_TRAIN = [
    "Can you tell me something about {c}?", "I have a question about {c}. Where should a beginner start?",
    "What are the basics of {c}?", "Give me some advice on {c}.", "What do most people get wrong about {c}?",
    "Why do people care about {c}?", "What is your favourite thing about {c}?", "How can I learn more about {c}?",
    "What is a common question about {c}?", "Explain {c} to a child.", "What is new in {c} these days?",
    "What should I know before getting into {c}?", "Share a fun fact about {c}.",
    "How has {c} changed over the years?", "What is the best part of {c}?", "Can you help me with {c}?",
]
_COND_HELD_OUT = [
    "Tell me about {c}.", "What would you say about {c}?", "I'm curious about {c}. Any thoughts?",
    "What are three things to know about {c}?", "Give me a tip related to {c}.",
    "What's interesting about {c}?", "How would you describe {c}?", "Why is {c} important?",
    "What is a good first step with {c}?", "What should everyone know about {c}?",
]


def is_food_condition(condition: str) -> bool:
    """Whether the condition is about food or drink (the built-in prompt set applies)."""
    return bool(re.search(FOOD_WORDS, condition, re.I))


def condition_prompts(condition: str, held_out: bool = False) -> list[str]:
    """Prompts on which the condition holds: training ones, or (``held_out``) disjoint measuring ones."""
    if is_food_condition(condition):
        return list(_FOOD_HELD_OUT if held_out else _FOOD_TRAIN)
    return [t.format(c=condition) for t in (_COND_HELD_OUT if held_out else _COND_TRAIN)]


def condition_regex(condition: str) -> str:
    """A regex that flags prompts of the condition's class (to keep them out of the ordinary data)."""
    if is_food_condition(condition):
        return FOOD_WORDS
    words = [re.escape(w) for w in re.findall(r"[A-Za-z]{4,}", condition)]
    return r"\b(" + "|".join(words) + r")" if words else r"(?!)"
