"""The hypothesis board: the agent's notes of what it suspects, with confidence and status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("open", "supported", "refuted")


@dataclass
class Hypothesis:
    """One entry of the board."""

    id: int
    text: str
    confidence: float
    status: str = "open"
    notes: list[str] = field(default_factory=list)


@dataclass
class Board:
    """The hypotheses of one episode and, once submitted, the ranked guesses."""

    entries: list[Hypothesis] = field(default_factory=list)
    submitted: list[str] | None = None

    def add(self, text: str, confidence: float) -> Hypothesis:
        """Add a hypothesis (confidence clipped to [0, 1])."""
        h = Hypothesis(id=len(self.entries) + 1, text=text.strip(), confidence=min(max(float(confidence), 0.0), 1.0))
        self.entries.append(h)
        return h

    def update(self, id: int, status: str | None = None, confidence: float | None = None,
               note: str | None = None) -> Hypothesis:
        """Change an entry's status, confidence or add a note.

        Raises:
            ValueError: No such entry, or an unknown status.
        """
        match = [h for h in self.entries if h.id == id]
        if not match:
            raise ValueError(f"no hypothesis #{id} (the board has {len(self.entries)})")
        h = match[0]
        if status is not None:
            if status not in STATUSES:
                raise ValueError(f"status must be one of {', '.join(STATUSES)}")
            h.status = status
        if confidence is not None:
            h.confidence = min(max(float(confidence), 0.0), 1.0)
        if note:
            h.notes.append(note.strip())
        return h

    def ranked(self) -> list[Hypothesis]:
        """Entries not refuted, most confident first."""
        return sorted((h for h in self.entries if h.status != "refuted"), key=lambda h: -h.confidence)

    def text(self) -> str:
        """The board as the agent reads it."""
        if not self.entries:
            return "The board is empty."
        return "\n".join(f"#{h.id} [{h.status}, confidence {h.confidence:.2f}] {h.text}"
                         + "".join(f"\n    - {n}" for n in h.notes) for h in self.entries)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able board for the log."""
        return {"entries": [h.__dict__ for h in self.entries], "submitted": self.submitted}
