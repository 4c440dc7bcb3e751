"""How far scores move with their batch partners, per dtype, and each run's measured noise floor.

A text's log-probabilities should not depend on which other texts share its batch. In float32 they
agree to about 1e-5 nats. In bf16 (and fp16) they do not quite: every layer rounds its output to
8 significant bits, and a padded batch runs the attention kernel over a different number of keys,
so the last bits of some activations differ and the difference is carried through the later
layers. The output head and log-softmax run in float32 (:func:`lmdiff.models.lm.fp32_head`), which
removes the bf16 rounding of the logits themselves; what is left is stated by
:func:`score_tolerance` (measured on the shipped SmolLM2-135M-Instruct; see the numbers in
:data:`SCORE_TOLERANCE`).

Each ``lmdiff diff`` run measures its own floor (:func:`noise_floor`): the same short texts scored
by the finetuned side alone and batched together, reporting the per-token |delta log-prob| and KL
between the two. Differences a method reports that are within 10x of it are flagged in the report
(:func:`noise_warnings`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from lmdiff.io import read_json, write_json
from lmdiff.models.device import dtype_choice, resolve_device

if TYPE_CHECKING:
    from lmdiff.data.prompts import PromptSet
    from lmdiff.models.lm import LanguageModel
    from lmdiff.models.pair import ModelPair
    from lmdiff.runs.run import Run

log = logging.getLogger(__name__)

#: Largest per-token |delta log-prob| (nats) between two batch compositions of the same text.
#: Measured on SmolLM2-135M-Instruct (AVX2 CPU, bf16 emulated), same texts alone vs batched:
#: float32 max 1.2e-5; bfloat16 max 0.023 (a padded chat text; 8 chat prompts: max 1.4e-4, mean KL
#: 2.2e-5, max KL 1.6e-3 nats/token). Before the float32 head, bf16 logits alone were off by up to
#: 0.098 and a native-bf16 CPU showed 0.068 between batch compositions; bf16 keeps headroom for such
#: kernels. float16 keeps 3 more mantissa bits than bf16 (8x finer).
SCORE_TOLERANCE: dict[torch.dtype, float] = {
    torch.float32: 1e-4,
    torch.bfloat16: 0.15,
    torch.float16: 0.02,
}

#: (atol, rtol) for residual-stream activations of the same text in two batch compositions.
HIDDEN_TOLERANCE: dict[torch.dtype, tuple[float, float]] = {
    torch.float32: (1e-4, 1e-4),
    torch.bfloat16: (0.5, 0.05),
    torch.float16: (0.1, 0.01),
}

#: A reported difference within this factor of the noise floor is flagged.
NOISE_FACTOR = 10.0

#: Noise-floor statistic in the same units as each kind of headline figure (see DiffMethod.noise_comparable).
FLOOR_STAT = {"kl": "mean_kl", "logprob": "mean_abs_logprob_delta"}


def score_tolerance(dtype: torch.dtype | str) -> float:
    """The largest per-token |delta log-prob| expected between two batch compositions in ``dtype``.

    Args:
        dtype: the weights' dtype (a torch dtype or its name, e.g. ``"bfloat16"``).

    Returns:
        A tolerance in nats per token, for tests and for judging differences.
    """
    return SCORE_TOLERANCE[_as_dtype(dtype)]


def hidden_tolerance(dtype: torch.dtype | str) -> tuple[float, float]:
    """(atol, rtol) for activations of the same text in two batch compositions in ``dtype``."""
    return HIDDEN_TOLERANCE[_as_dtype(dtype)]


def _as_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)  # type: ignore[assignment]
    if dtype not in SCORE_TOLERANCE:
        raise ValueError(f"no stated score tolerance for {dtype}")
    assert isinstance(dtype, torch.dtype)
    return dtype


@dataclass(frozen=True)
class NoiseFloor:
    """How much the same texts' scores move between two batch compositions."""

    dtype: str
    n_texts: int
    n_tokens: int
    batch_size: int
    max_abs_logprob_delta: float
    mean_abs_logprob_delta: float
    mean_kl: float
    max_kl: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def noise_floor(lm: LanguageModel, sequences: Sequence[Sequence[int]], *, batch_size: int = 8) -> NoiseFloor:
    """Score ``sequences`` alone and batched together (in reverse order), and compare.

    Args:
        lm: the model.
        sequences: short token sequences (the alone pass holds a [T, V] distribution for each).
        batch_size: sequences per forward pass in the batched composition.

    Returns:
        The max and mean |delta log-prob| of each next token and the mean and max
        KL(batched || alone) of the next-token distributions, per token.
    """
    if not sequences:
        raise ValueError("noise_floor needs at least one sequence")
    alone = lm.next_token_logprobs(sequences, batch_size=1)
    deltas: list[torch.Tensor] = []
    kls: list[torch.Tensor] = []
    order = list(reversed(range(len(sequences))))
    for batch in lm.iter_forward([sequences[i] for i in order], batch_size=batch_size, sort_by_length=False):
        lp = batch.logprobs()
        for row, j in enumerate(batch.indices):
            i = order[j]
            n = batch.lengths[row]
            b, a = lp[row, :n].cpu(), alone[i]
            kls.append((b.exp() * (b - a)).sum(-1).clamp_min(0.0))
            nxt = torch.as_tensor(list(sequences[i][1:n]), dtype=torch.long).unsqueeze(-1)
            deltas.append((b[: n - 1].gather(-1, nxt) - a[: n - 1].gather(-1, nxt)).abs().squeeze(-1))
    d = torch.cat(deltas).double()
    k = torch.cat(kls).double()
    return NoiseFloor(
        dtype=str(lm.dtype).removeprefix("torch."),
        n_texts=len(sequences),
        n_tokens=int(k.numel()),
        batch_size=batch_size,
        max_abs_logprob_delta=float(d.max()) if d.numel() else 0.0,
        mean_abs_logprob_delta=float(d.mean()) if d.numel() else 0.0,
        mean_kl=float(k.mean()),
        max_kl=float(k.max()),
    )


def record_noise_floor(
    run: Run, pair: ModelPair, prompts: PromptSet, *, n_texts: int = 8, max_tokens: int = 64
) -> dict[str, Any]:
    """Measure the finetuned side's noise floor as a resumable step and save it in results.json.

    The texts are the first ``n_texts`` prompts, chat-rendered, cut to ``max_tokens`` tokens. The
    result goes under the top-level key ``numerics`` with the dtype and why it was chosen.

    Returns:
        The ``numerics`` entry: ``dtype``, ``dtype_reason``, ``score_tolerance``, ``noise_floor``.
    """
    spec = pair.finetuned_spec
    choice = dtype_choice(spec.dtype, resolve_device(spec.device))
    texts = prompts.texts[:n_texts]
    step = run.step("numerics-noise-floor", {"pair": pair.cache_key(), "texts": texts, "max_tokens": max_tokens})
    if step.done:
        floor = dict(read_json(step.dir / "noise_floor.json"))
    else:
        lm = pair.finetuned
        seqs = [lm.encode_chat(t)[:max_tokens] for t in texts]
        floor = noise_floor(lm, seqs, batch_size=len(seqs)).to_dict() if seqs else {}
        write_json(step.prepare() / "noise_floor.json", floor)
        step.finish(floor)
    entry = {
        "dtype": choice.name,
        "dtype_reason": choice.reason,
        "logits": "float32 (output head and log-softmax)",
        "score_tolerance": score_tolerance(choice.dtype),
        "noise_floor": floor,
    }
    if floor:
        log.info("noise floor (%s): max |dlogp| %.3g, mean |dlogp| %.3g, mean KL %.3g nats/token",
                 choice.name, floor["max_abs_logprob_delta"], floor["mean_abs_logprob_delta"], floor["mean_kl"])
    run.set_meta(numerics=entry)
    return entry


def numerics_note(entry: Mapping[str, Any]) -> str:
    """One sentence for the report's overview: the dtype, why, and the noise floor (``numerics`` entry)."""
    nf = entry.get("noise_floor") or {}
    floor = (
        f"; noise floor (the same {nf['n_texts']} texts scored alone vs batched): max |delta log-prob| "
        f"{nf['max_abs_logprob_delta']:.3g}, mean {nf['mean_abs_logprob_delta']:.3g}, "
        f"mean KL {nf['mean_kl']:.3g} nats/token"
        if nf
        else ""
    )
    return f"Numerics: {entry['dtype']} ({entry['dtype_reason']}); logits in {entry['logits']}{floor}."


def within_noise(
    headline: Mapping[str, Any], comparable: Mapping[str, str], floor: Mapping[str, Any],
    factor: float = NOISE_FACTOR,
) -> list[str]:
    """Warnings for headline figures that are within ``factor`` x the noise floor in the same units.

    Args:
        headline: a method's headline figures.
        comparable: headline key -> kind of figure (``"kl"`` or ``"logprob"``, nats per token).
        floor: the run's noise floor (:meth:`NoiseFloor.to_dict`).
        factor: how far above the floor a figure must be to pass without a warning.
    """
    out = []
    for key, kind in comparable.items():
        value, noise = headline.get(key), floor.get(FLOOR_STAT[kind])
        if not isinstance(value, int | float) or not isinstance(noise, int | float) or noise <= 0:
            continue
        if abs(value) < factor * noise:
            out.append(
                f"{key} = {value:.3g} nats/token is within {factor:g}x of the numerical noise floor "
                f"({FLOOR_STAT[kind]} {noise:.3g} between batch compositions in {floor.get('dtype', '?')}): "
                "it may be rounding noise, not a difference between the models."
            )
    return out


def noise_warnings(
    results: Mapping[str, Any], comparable: Callable[[str], Mapping[str, str]]
) -> dict[str, list[str]]:
    """Per method in ``results`` (results.json), the :func:`within_noise` warnings for its headline.

    ``comparable(name)`` gives a method's comparable headline keys (``DiffMethod.noise_comparable``).
    """
    floor = results.get("numerics", {}).get("noise_floor") or {}
    out: dict[str, list[str]] = {}
    for name, entry in results.get("methods", {}).items():
        if entry.get("status") == "ok" and floor:
            warns = within_noise(entry.get("headline", {}), comparable(name), floor)
            if warns:
                out[name] = warns
    return out
