"""Writing a :class:`Report` to ``report.html`` and ``report.md`` (atomically)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import jinja2

from lmdiff.io import write_text
from lmdiff.report.builder import Report


def render_report(report: Report, out_dir: str | Path) -> Path:
    """Render ``report`` into ``out_dir/report.html`` and ``out_dir/report.md``; return the HTML path."""
    out = Path(out_dir)
    template_text = resources.files("lmdiff.report").joinpath("templates/report.html.j2").read_text()
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(template_text).render(report=report, sections=report.sections)
    write_text(out / "report.html", html)
    md = [f"# {report.title}", ""]
    for k, v in report.meta.items():
        md.append(f"- **{k}**: {v}")
    for sec in report.sections:
        md += ["", f"## {sec.title}", "", *[b + "\n" for b in sec.md_blocks]]
    write_text(out / "report.md", "\n".join(md) + "\n")
    return out / "report.html"
