"""What a run found, first in every report: a ranked list of findings with their converging evidence.

:func:`synthesise` turns a run's results and claims into :class:`Finding` objects (the run's
ranked guesses, read by ``lmdiff benchmark`` for acc@k); :func:`render_findings` writes the report
section that opens every diff report.
"""

from lmdiff.findings.render import leads, prompt_coverage, render_findings, unexplained_difference
from lmdiff.findings.synthesis import Finding, synthesise
from lmdiff.findings.written import findings_for_run, written_findings

__all__ = [
    "Finding",
    "findings_for_run",
    "leads",
    "prompt_coverage",
    "render_findings",
    "synthesise",
    "unexplained_difference",
    "written_findings",
]
