import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from lmdiff.report import Report, render_report


def test_render_html_and_markdown(tmp_path):
    rep = Report(title="t", meta={"base": "a<b"})
    sec = rep.section("KL", "kl")
    sec.text("plain <script>alert(1)</script>").figures({"mean KL": 0.123456})
    sec.table(pd.DataFrame({"token": ["x", "y"], "count": [3, 1]}), caption="top")
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    sec.figure(fig, "a plot")
    sec.side_by_side([{"prompt": "p", "base": "b1", "finetuned": "F1"}], "base", "finetuned")
    path = render_report(rep, tmp_path)
    html = path.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "data:image/png;base64," in html and "0.1235" in html and 'id="kl"' in html
    md = (tmp_path / "report.md").read_text()
    assert "## KL" in md and "| token | count |" in md and "**mean KL**: 0.1235" in md
