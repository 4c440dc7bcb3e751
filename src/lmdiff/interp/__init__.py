"""White-box interpretability primitives shared by the diff methods (one home for each).

* :mod:`~lmdiff.interp.hooks`: edit a decoder block's output (``layer_hook``) and steer (``steer``);
* :mod:`~lmdiff.interp.lens`: logit lens and lens delta, read out in float32;
* :mod:`~lmdiff.interp.patchscope`: patch a vector into identity prompts and read the next token;
* :mod:`~lmdiff.interp.directions`: mean activation differences from the activation store, and the
  typed direction/store settings every method that reads them shares;
* :mod:`~lmdiff.interp.logprobs`: both models' log-probabilities on the same tokens, per-token KL;
* :mod:`~lmdiff.interp.text_metrics`: repetition rate and base-model perplexity of generated text;
* :mod:`~lmdiff.interp.relevance`: token relevance to an organism's ground truth.

Methods import these from here, never from another method. This package may import models,
activations, corpora, runs, io, stats, errors and config; nothing here imports methods,
behaviour, evals, organisms, llm or the CLI.
"""
