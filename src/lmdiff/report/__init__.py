"""Self-contained HTML and Markdown reports, with one section per method."""

from lmdiff.report.builder import Report, Section
from lmdiff.report.render import render_report

__all__ = ["Report", "Section", "render_report"]
