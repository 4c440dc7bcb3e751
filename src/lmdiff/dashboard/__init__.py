"""``lmdiff dashboard``: a local Streamlit app over run directories, plus live tools on a loaded pair.

Plain-Python layers (unit-testable without Streamlit):

* :mod:`lmdiff.dashboard.runs`: finding run directories and reading their saved results and artifacts
  (never recomputing them).
* :mod:`lmdiff.dashboard.live`: the live tools on a loaded pair (side-by-side chat, per-token KL on
  typed text, steering along a run's direction, amplified sampling), built on lmdiff's own primitives.
* :mod:`lmdiff.dashboard.tokens`: tokens as HTML coloured by a value, with a hover text.

Streamlit layers: :mod:`lmdiff.dashboard.app` (the script ``streamlit run`` executes),
:mod:`lmdiff.dashboard.browser` (the run browser) and :mod:`lmdiff.dashboard.tools` (the live tools' pages).
"""
