"""Dictionary methods on the activation store: ``pca``, ``sae_diff`` and ``crosscoder``.

* ``pca``: principal components of per-token differences h_ft - h_base at one layer
  (streamed float64 covariance); explained-variance curve; each component's lens, max- and
  min-activating tokens in context, and steering along it.
* ``sae_diff``: a BatchTopK SAE on normalised differences (or a SAELens SAE trained elsewhere,
  ``pretrained: PATH``); latents ranked by their share of the difference's variance, with
  lens, examples, frequency and steering; the SAE is exported in SAELens' format.
* ``crosscoder``: a BatchTopK crosscoder on (base, finetuned) activations; decoder-norm tags
  (finetuned-only, base-only, shared), latent scaling on both decoder sides, and the same
  crosscoder trained on a control (sides swapped at random) so the finetuned-only count has a null.

Modules: :mod:`.config` (settings), :mod:`.readouts` (store, lens, examples, relevance, steering
shared by the three), :mod:`.pca`, :mod:`.sae_diff`, :mod:`.crosscoder` (the registered methods),
:mod:`.report` (shared report parts). Training and the dictionaries are :mod:`lmdiff.dictionaries`.
"""

from lmdiff.methods.dictionaries.crosscoder import CrosscoderMethod
from lmdiff.methods.dictionaries.pca import PCAMethod
from lmdiff.methods.dictionaries.sae_diff import SAEDiffMethod

__all__ = ["CrosscoderMethod", "PCAMethod", "SAEDiffMethod"]
