"""A per-run spending cap in dollars or tokens that stops cleanly.

The cap is checked before every call that would reach a provider (cache hits are free and
always served). Once the spend reaches the cap, further calls raise
:class:`BudgetExceeded`, which callers catch to save what they have. Calls already in flight
when the cap is reached finish and are counted, so a run may overshoot by at most
``max_connections`` calls.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from lmdiff.errors import LlmError

BudgetKind = Literal["usd", "tokens"]


class BudgetExceeded(LlmError):
    """The run's LLM budget is spent; no further calls reach a provider.

    Attributes:
        kind: Which cap was hit ("usd" or "tokens").
        limit: The cap.
        spent: What had been spent when the call was refused.
        partial: For batch calls, the results obtained so far in input order (None where a
            request was not run).
    """

    def __init__(
        self,
        kind: BudgetKind,
        limit: float,
        spent: float,
        partial: list[Any] | None = None,
    ) -> None:
        unit = "$" if kind == "usd" else ""
        suffix = "" if kind == "usd" else " tokens"
        super().__init__(
            f"LLM budget exhausted: spent {unit}{spent:.6g}{suffix} of {unit}{limit:.6g}{suffix}",
            hint="raise llm.budget_usd / llm.budget_tokens, or re-run: cached calls cost nothing",
        )
        self.kind: BudgetKind = kind
        self.limit = limit
        self.spent = spent
        self.partial = partial

    def with_partial(self, partial: list[Any]) -> BudgetExceeded:
        """Return a copy of this error carrying the partial results of a batch."""
        return BudgetExceeded(self.kind, self.limit, self.spent, partial=partial)


class Budget:
    """Running totals of one run's spend against optional dollar and token caps."""

    def __init__(self, usd: float | None = None, tokens: int | None = None) -> None:
        self.usd = usd
        self.tokens = tokens
        self.spent_usd = 0.0
        self.spent_tokens = 0
        self._lock = threading.Lock()

    def exceeded(self) -> BudgetExceeded | None:
        """Return the error to raise if a cap is reached, else None."""
        with self._lock:
            if self.usd is not None and self.spent_usd >= self.usd:
                return BudgetExceeded("usd", self.usd, self.spent_usd)
            if self.tokens is not None and self.spent_tokens >= self.tokens:
                return BudgetExceeded("tokens", self.tokens, self.spent_tokens)
            return None

    def check(self) -> None:
        """Raise :class:`BudgetExceeded` if a cap is reached.

        Raises:
            BudgetExceeded: The run has spent its dollar or token budget.
        """
        error = self.exceeded()
        if error is not None:
            raise error

    def charge(self, tokens: int, usd: float | None) -> None:
        """Add one call's tokens and (estimated) cost to the totals.

        Args:
            tokens: Total tokens of the call.
            usd: Estimated cost; None when the price is unknown (counted as 0).
        """
        with self._lock:
            self.spent_tokens += int(tokens)
            self.spent_usd += float(usd or 0.0)

    def summary(self) -> dict[str, Any]:
        """Return the caps, the spend and whether a cap was reached."""
        return {
            "budget_usd": self.usd,
            "budget_tokens": self.tokens,
            "spent_usd": round(self.spent_usd, 8),
            "spent_tokens": self.spent_tokens,
            "exhausted": self.exceeded() is not None,
        }
