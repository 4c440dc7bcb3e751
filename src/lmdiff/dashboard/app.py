"""The dashboard's Streamlit script (``streamlit run`` executes this file; ``lmdiff dashboard`` starts it).

The runs directory comes from ``LMDIFF_DASHBOARD_RUNS`` (default ``lmdiff-runs``). The sidebar picks a
run and a page (the run browser or the live tools); both are mirrored in the URL (``?run=KEY&page=tools``)
so that a view can be linked to.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from lmdiff.dashboard.browser import render_index, render_run
from lmdiff.dashboard.runs import RunData, RunSummary, find_runs
from lmdiff.dashboard.tools import render_tools
from lmdiff.dashboard.ui import shown_errors

RUNS_ENV = "LMDIFF_DASHBOARD_RUNS"
PAGES = {"runs": "Run browser", "tools": "Live tools"}
_ALL = "(all runs)"


def runs_root() -> Path:
    """The directory the dashboard browses."""
    return Path(os.environ.get(RUNS_ENV) or "lmdiff-runs")


@st.cache_data(ttl=15, show_spinner=False)
def _runs(root: str) -> list[RunSummary]:
    return find_runs(root)


def main() -> None:
    """Render the page the sidebar and the URL ask for."""
    st.set_page_config(page_title="lmdiff dashboard", layout="wide")
    root = runs_root()
    runs: list[RunSummary] = []
    with shown_errors("listing runs"):
        runs = _runs(str(root))
    keys = [r.key for r in runs]
    params = st.query_params
    st.sidebar.title("lmdiff")
    st.sidebar.caption(f"runs: {root}")
    wanted_run = params.get("run", _ALL)
    options = [_ALL, *keys]
    run_key = st.sidebar.selectbox("run", options, index=options.index(wanted_run) if wanted_run in options else 0,
                                   key="run_select")
    page_names = list(PAGES.values())
    wanted_page = PAGES.get(params.get("page", "runs"), PAGES["runs"])
    page = st.sidebar.radio("page", page_names, index=page_names.index(wanted_page), key="page_select")
    if st.sidebar.button("Reload the run list"):
        _runs.clear()
        st.rerun()
    page_key = next(k for k, v in PAGES.items() if v == page)
    params.update({"run": run_key, "page": page_key})
    run: RunData | None = None
    if run_key != _ALL:
        with shown_errors("opening the run"):
            run = RunData.open(root / run_key)
    if page_key == "tools":
        render_tools(run)
    elif run is not None:
        render_run(run, run_key)
    else:
        render_index(runs, root)


main()
