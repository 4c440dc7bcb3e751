"""``amplification``: sample the finetune with its change exaggerated, and see what grows.

* **logit-difference amplification** at alphas (default 0, 1, 2, 4): the finetune samples from
  ``logits_ft + alpha * (logits_ft - logits_base)`` (:func:`lmdiff.amplify.amplified_generate`);
* **LoRA weight amplification** for adapter pairs at adapter scales (default 2, 4; scale 1 is alpha 0)
  (:func:`lmdiff.amplify.lora_scaled`);
* per setting: the replies (Parquet), coherence (base-model perplexity, repetition, empty replies), the
  ground truth's keyword rate when known, and the words whose rate grows with alpha
  (:mod:`lmdiff.interp.amplified_words`);
* **weight-space statistics** (:mod:`lmdiff.interp.weight_delta`): per block and module kind, how far the
  weights moved and how low-rank the change is (full pairs directly, LoRA pairs from the merged delta).

Amplified samples propose; the method validates nothing and adds no claim to the run's FDR family.

Modules: :mod:`.config` (settings), :mod:`.method` (the registered method), :mod:`.report` (its section).
"""

from lmdiff.methods.amplification.config import AmplificationConfig
from lmdiff.methods.amplification.method import AmplificationMethod

__all__ = ["AmplificationConfig", "AmplificationMethod"]
