"""Building report sections: text, key figures, tables, plots and side-by-side examples.

A :class:`Section` collects blocks as HTML and Markdown at once, so the HTML report and
the Markdown summary always say the same thing. Plots are embedded as base64 PNG, so the
HTML file is self-contained.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


def esc(text: Any) -> str:
    """HTML-escape any value."""
    return html.escape(str(text))


def fmt(value: Any, digits: int = 4) -> str:
    """Format a number compactly for tables."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.{digits}g}"
        return f"{value:.3e}"
    return str(value)


@dataclass
class Section:
    """One method's part of the report."""

    title: str
    key: str
    html_blocks: list[str] = field(default_factory=list)
    md_blocks: list[str] = field(default_factory=list)
    status: str = "ok"

    def text(self, text: str) -> Section:
        """A paragraph (plain text)."""
        self.html_blocks.append(f"<p>{esc(text)}</p>")
        self.md_blocks.append(text)
        return self

    def bullets(self, items: list[tuple[str, list[str]]]) -> Section:
        """A list of items, each with sub-items (plain text, escaped): ``[(item, [sub, ...]), ...]``."""
        html = "".join(
            f"<li>{esc(head)}" + (f"<ul>{''.join(f'<li>{esc(x)}</li>' for x in subs)}</ul>" if subs else "") + "</li>"
            for head, subs in items
        )
        self.html_blocks.append(f"<ul class=\"bullets\">{html}</ul>")
        self.md_blocks.append("\n".join(f"- {head}" + "".join(f"\n    - {x}" for x in subs) for head, subs in items))
        return self

    def note(self, text: str, kind: str = "info") -> Section:
        """A highlighted note (kind: info, warn, ok)."""
        self.html_blocks.append(f'<div class="note {esc(kind)}">{esc(text)}</div>')
        self.md_blocks.append(f"> **{kind.upper()}**: {text}")
        return self

    def heading(self, text: str) -> Section:
        """A sub-heading."""
        self.html_blocks.append(f"<h3>{esc(text)}</h3>")
        self.md_blocks.append(f"### {text}")
        return self

    def figures(self, values: dict[str, Any]) -> Section:
        """Headline figures as a row of cards."""
        cards = "".join(
            f'<div class="card"><div class="v">{esc(fmt(v))}</div><div class="k">{esc(k)}</div></div>'
            for k, v in values.items()
        )
        self.html_blocks.append(f'<div class="cards">{cards}</div>')
        self.md_blocks.append("\n".join(f"- **{k}**: {fmt(v)}" for k, v in values.items()))
        return self

    def table(
        self,
        df: pd.DataFrame,
        caption: str | None = None,
        max_rows: int = 30,
        cell_styles: pd.DataFrame | None = None,
    ) -> Section:
        """A table (the first ``max_rows`` rows)."""
        shown = df.head(max_rows)
        head = "".join(f"<th>{esc(c)}</th>" for c in shown.columns)
        rows = []
        for r, (_, row) in enumerate(shown.iterrows()):
            cells = []
            for c_i, v in enumerate(row):
                style = ""
                if cell_styles is not None:
                    style = f' style="{esc(cell_styles.iat[r, c_i])}"'
                cells.append(f"<td{style}>{esc(fmt(v))}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        cap = f"<caption>{esc(caption)}</caption>" if caption else ""
        more = (
            f'<div class="more">{len(df) - max_rows} more rows in the artifact</div>'
            if len(df) > max_rows
            else ""
        )
        self.html_blocks.append(
            f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"
        )
        md = [f"*{caption}*", ""] if caption else []
        md.append("| " + " | ".join(str(c) for c in shown.columns) + " |")
        md.append("|" + "---|" * len(shown.columns))
        for _, row in shown.iterrows():
            md.append("| " + " | ".join(fmt(v).replace("|", "\\|").replace("\n", " ") for v in row) + " |")
        self.md_blocks.append("\n".join(md))
        return self

    def figure(self, fig: Any, caption: str = "") -> Section:
        """A matplotlib figure, embedded as PNG."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        data = base64.b64encode(buf.getvalue()).decode()
        self.html_blocks.append(
            f'<figure><img src="data:image/png;base64,{data}"/><figcaption>{esc(caption)}</figcaption></figure>'
        )
        self.md_blocks.append(f"*(figure: {caption} — see report.html)*")
        return self

    def side_by_side(
        self,
        rows: Sequence[dict[str, str]],
        left: str,
        right: str,
        title_key: str = "prompt",
        max_rows: int = 8,
    ) -> Section:
        """Examples with two columns (e.g. base vs finetuned replies to one prompt)."""
        blocks = []
        md = []
        for row in rows[:max_rows]:
            blocks.append(
                f'<div class="pair"><div class="prompt">{esc(row.get(title_key, ""))}</div>'
                f'<div class="cols"><div><div class="lab">{esc(left)}</div><pre>{esc(row[left])}</pre></div>'
                f'<div><div class="lab">{esc(right)}</div><pre>{esc(row[right])}</pre></div></div></div>'
            )
            md.append(f"**{row.get(title_key, '')}**\n\n- *{left}*: {row[left]}\n- *{right}*: {row[right]}")
        self.html_blocks.append("".join(blocks))
        self.md_blocks.append("\n\n".join(md))
        return self

    def raw_html(self, fragment: str, markdown: str = "") -> Section:
        """A pre-built HTML fragment (callers escape their own content)."""
        self.html_blocks.append(fragment)
        if markdown:
            self.md_blocks.append(markdown)
        return self


@dataclass
class Report:
    """An ordered list of sections plus the run's header information."""

    title: str
    meta: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str, key: str) -> Section:
        """Add and return a new section."""
        sec = Section(title=title, key=key)
        self.sections.append(sec)
        return sec
