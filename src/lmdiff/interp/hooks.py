"""Forward hooks on decoder blocks: edit a block's output hidden state, or steer by adding a vector."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel

HiddenEdit = Callable[[torch.Tensor], torch.Tensor]


def replace_hidden(output: Any, fn: HiddenEdit) -> Any:
    """Apply ``fn`` to the hidden state in a block's output, whether the block returns a tensor or a tuple."""
    if isinstance(output, tuple):
        return (fn(output[0]), *output[1:])
    return fn(output)


@contextlib.contextmanager
def layer_hook(lm: LanguageModel, layer: int, fn: HiddenEdit) -> Iterator[None]:
    """Replace the output hidden state [B, T, D] of block ``layer`` by ``fn(hidden)`` while inside the context.

    Args:
        lm: the model (any architecture :mod:`lmdiff.models.architecture` knows).
        layer: the block index.
        fn: the edit; it must return a tensor of the same shape.

    The hook is removed on exit, also when the body raises.
    """

    def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> Any:
        return replace_hidden(output, fn)

    handle = lm.layers[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def steer(
    lm: LanguageModel, layer: int, vector: torch.Tensor, alpha: float
) -> contextlib.AbstractContextManager[None]:
    """A context manager adding ``alpha * vector`` at every position of block ``layer``'s output."""
    v = vector.detach()

    def fn(h: torch.Tensor) -> torch.Tensor:
        return h + alpha * v.to(h.device, h.dtype)

    return layer_hook(lm, layer, fn)
