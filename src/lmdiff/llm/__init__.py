"""One LLM layer for every LLM-in-the-loop role (hypothesis writer, annotator, judges, graders).

Providers come through Inspect AI's model layer and are chosen by a model string
(``openai/gpt-4.1-mini``, ``anthropic/...``, ``google/...``, ``openrouter/...``, ``vllm/...``,
``ollama/...``, ``openai-api/SERVICE/NAME`` + ``base_url``, ``local/smollm2-135m-instruct``).
With no model configured (``LMDIFF_LLM`` unset) every role runs offline.

Example::

    from lmdiff.llm import LlmClient, LlmConfig, resolve_role

    client = LlmClient(LlmConfig(model="openai/gpt-4.1-mini", budget_usd=2.0))
    reply = client.generate("Say hi", system="Be brief.")
    judge = resolve_role("judge", client)
    verdict = judge({"criterion": "mentions cats", "answer": "I love cats."})
    client.write_usage(run_dir / "llm_usage.json")
"""

from lmdiff.llm.budget import Budget, BudgetExceeded
from lmdiff.llm.cache import LlmCache
from lmdiff.llm.client import LlmClient
from lmdiff.llm.config import ENV_BASE_URL, ENV_MODEL, LlmConfig, Price
from lmdiff.llm.parsing import (
    ParseError,
    extract_json,
    parse_json,
    parse_score,
    parse_tagged,
    parse_yes_no,
    score_from_logprobs,
)
from lmdiff.llm.pricing import BUILTIN_PRICES, estimate_cost, price_for
from lmdiff.llm.retry import RetryPolicy, TransientLlmError, classify
from lmdiff.llm.roles import (
    ROLES,
    BoundRole,
    Grade,
    HypothesisList,
    Role,
    RoleResult,
    TokenRelevance,
    WrittenHypothesis,
    get_role,
    producer_tag,
    register_role,
    resolve_role,
)
from lmdiff.llm.secrets import redact
from lmdiff.llm.structured import ReplyParser, StructuredResult
from lmdiff.llm.types import GenerationParams, LlmReply, LlmRequest, TokenLogprob, Usage, normalize_messages

__all__ = [
    "BUILTIN_PRICES",
    "ENV_BASE_URL",
    "ENV_MODEL",
    "ROLES",
    "BoundRole",
    "Budget",
    "BudgetExceeded",
    "GenerationParams",
    "Grade",
    "HypothesisList",
    "LlmCache",
    "LlmClient",
    "LlmConfig",
    "LlmReply",
    "LlmRequest",
    "ParseError",
    "Price",
    "ReplyParser",
    "RetryPolicy",
    "Role",
    "RoleResult",
    "StructuredResult",
    "TokenLogprob",
    "TokenRelevance",
    "TransientLlmError",
    "Usage",
    "WrittenHypothesis",
    "classify",
    "estimate_cost",
    "extract_json",
    "get_role",
    "normalize_messages",
    "parse_json",
    "parse_score",
    "parse_tagged",
    "parse_yes_no",
    "price_for",
    "producer_tag",
    "redact",
    "register_role",
    "resolve_role",
    "score_from_logprobs",
]
