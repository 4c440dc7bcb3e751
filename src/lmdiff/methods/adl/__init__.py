r"""``adl``: Activation Difference Lens.

The mean difference h_ft - h_base at each of the first k positions of N texts, at several layers
(the middle, as in the paper, and the last, where a small model's logit lens becomes readable),
read out four ways:

* **logit lens** of +diff and -diff through the finetuned model's final norm and head, and the
  **lens delta**: lens(mean finetuned activation) - lens(mean base activation), which rare tokens
  aligned with the raw difference cannot dominate;
* **patchscope**: the difference, rescaled to the finetuned model's typical norm, replaces the
  residual at the last token of identity prompts ("man -> man\\n1135 -> 1135\\nhello -> hello\\n?")
  over a range of scales; tokens are kept only if they are in every prompt's top list;
* **steering**: alpha * unit(diff) * norm is added at the layer while the finetuned model
  generates; the strength is searched so that generations stay coherent (offline: base-model
  perplexity and repetition; an optional grader callable);
* **token relevance**: the share of top lens tokens matching the ground truth's keywords
  (``producer="offline:keywords"``, whole words against curated terms).

Modules: :mod:`.config` (settings), :mod:`.method` (the registered method), :mod:`.readouts`
(lens, patchscope and relevance rows), :mod:`.steering` (strength search and steered samples),
:mod:`.report` (the report section). The primitives come from :mod:`lmdiff.interp`.
"""

from lmdiff.methods.adl.config import ADLConfig
from lmdiff.methods.adl.method import ADLMethod

__all__ = ["ADLConfig", "ADLMethod"]
