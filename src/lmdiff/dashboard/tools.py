"""The live tools' page: load a pair once (cached across reruns), then chat, KL on typed text, steering, amplification.

Each tool is a Streamlit fragment, so working in one reruns only that tool; the models are held by
:func:`cached_pair` (one copy per pair for the whole server) and driven under the pair's lock.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from lmdiff.dashboard.runs import Direction, RunData
from lmdiff.dashboard.tokens import legend_html, token_html
from lmdiff.dashboard.ui import progress_bar, shown_errors

if TYPE_CHECKING:  # the live tools import torch and the models: loaded only when this page is opened
    from lmdiff.dashboard import live

_PAIR_KEY = "lmdiff_pair"


@st.cache_resource(show_spinner=False, max_entries=2)
def cached_pair(base_json: str, finetuned_json: str) -> live.LoadedPair:
    """Load a pair once per server (keyed by both specs as JSON); reruns and other sessions reuse it."""
    from lmdiff.dashboard import live

    return live.load_pair(json.loads(base_json), json.loads(finetuned_json))


def current_pair() -> live.LoadedPair | None:
    """The pair this session loaded, if any."""
    key = st.session_state.get(_PAIR_KEY)
    return cached_pair(*key) if key else None


def render_tools(run: RunData | None) -> None:
    """The live tools page; ``run`` (if given) supplies the pair and its saved directions."""
    st.header("Live tools")
    _pair_picker(run)
    loaded = current_pair()
    if loaded is None:
        st.info("Load a pair above to use the live tools. Models load once and stay loaded across reruns.")
        return
    st.success(f"Loaded: {loaded.label}")
    sampling = _sampling()
    chat, kl, steering, amp = st.tabs(["Chat side by side", "KL on your text", "Steering", "Amplification"])
    with chat:
        chat_tool(loaded, sampling)
    with kl:
        kl_tool(loaded)
    with steering:
        steering_tool(loaded, sampling, run.steering_directions() if run is not None else [])
    with amp:
        amplify_tool(loaded, sampling)


def _pair_picker(run: RunData | None) -> None:
    specs = run.pair_specs() if run is not None else None
    with st.form("pair-form"):
        source = st.radio("pair", ["the run's pair", "other models"] if specs else ["other models"], horizontal=True)
        c1, c2 = st.columns(2)
        base = c1.text_input("base model (name, path, hub id in the cache)", value="smollm2-135m-instruct")
        ft = c2.text_input("finetuned model (or organism:NAME)", value="organism:caps")
        go = st.form_submit_button("Load the pair")
    if not go:
        return
    b: Any = specs[0] if specs and source == "the run's pair" else base.strip()
    f: Any = specs[1] if specs and source == "the run's pair" else ft.strip()
    key = (json.dumps(b, sort_keys=True), json.dumps(f, sort_keys=True))
    with shown_errors("loading the pair"), st.spinner("Loading both models (once; later reruns reuse them)..."):
        cached_pair(*key)
        st.session_state[_PAIR_KEY] = key


def _sampling() -> live.Sampling:
    from lmdiff.dashboard import live

    with st.expander("Sampling settings (the same on both sides)"):
        c1, c2, c3, c4 = st.columns(4)
        temperature = c1.slider("temperature", 0.0, 2.0, 0.7, 0.05, key="temperature")
        top_p = c2.slider("top-p", 0.05, 1.0, 0.95, 0.05, key="top_p")
        max_new = c3.number_input("max new tokens", 1, 512, 64, key="max_new_tokens")
        seed = c4.number_input("seed", 0, 2**31 - 1, 0, key="seed")
    return live.Sampling(temperature=float(temperature), top_p=float(top_p), max_new_tokens=int(max_new),
                         seed=int(seed))


@st.fragment
def chat_tool(loaded: live.LoadedPair, sampling: live.Sampling) -> None:
    """Side-by-side chat: the same message to both models, each continuing its own conversation."""
    from lmdiff.dashboard import live

    history: list[dict[str, str]] = st.session_state.setdefault("chat_history", [])
    trigger = live.trigger_template(loaded.pair.ground_truth)
    conversation = st.container()  # filled after the form is handled, so a new turn shows at once
    with st.form("chat-form", clear_on_submit=True):
        message = st.text_area("message", height=80, key="chat_message")
        use_trigger = st.toggle("wrap the message in the organism's trigger", value=False, disabled=trigger is None,
                                help=("the finetune's trigger: " + trigger) if trigger else
                                "this finetune has no trigger", key="chat_trigger")
        c1, c2 = st.columns(2)
        send = c1.form_submit_button("Send to both")
        clear = c2.form_submit_button("Clear the conversation")
    if clear:
        history.clear()
    if send:
        with shown_errors("the chat"):
            update, done = progress_bar("chat")
            with loaded.lock:
                turn = live.chat_turn(loaded.pair, history, message, sampling,
                                      trigger if use_trigger else None, update)
            done()
            history.append(turn)
    with conversation:
        left, right = st.columns(2)
        left.markdown(f"**base** · {loaded.pair.base_spec.display_name}")
        right.markdown(f"**finetuned** · {loaded.pair.finetuned_spec.display_name}")
        for turn in history:
            for col, side in ((left, "base"), (right, "finetuned")):
                with col:
                    st.chat_message("user").write(turn["user"])
                    st.chat_message("assistant").write(turn[side])


@st.fragment
def kl_tool(loaded: live.LoadedPair) -> None:
    """Per-token KL on typed text, tokens coloured by KL; hovering shows both models' top next tokens."""
    from lmdiff.dashboard import live

    with st.form("kl-form"):
        text = st.text_area("text to score", value="The capital of Germany is", height=100, key="kl_text")
        go = st.form_submit_button("Score per-token KL")
    if go:
        with shown_errors("per-token KL"):
            update, done = progress_bar("per-token KL")
            with loaded.lock:
                st.session_state["kl_df"] = live.typed_text_kl(loaded.pair, text, progress=update)
            done()
    df: pd.DataFrame | None = st.session_state.get("kl_df")
    if df is None or df.empty:
        return
    vmax = max(float(df["kl"].max()), 1e-9)
    st.markdown(f"**KL(finetuned || base) after each token**: mean {df['kl'].mean():.4g}, max {vmax:.4g} nats "
                f"over {len(df)} tokens")
    st.html(legend_html(vmax))
    st.html(token_html(df["token_str"].tolist(), df["kl"].tolist(), df["hover"].tolist(), vmax=vmax))
    cols = [c for c in ("pos", "token_str", "kl", "kl_rev", "top_ft", "top_base") if c in df]
    st.dataframe(df[cols].rename(columns={"token_str": "token", "kl_rev": "KL(base||ft)",
                                          "top_ft": "finetuned next", "top_base": "base next"}),
                 hide_index=True, width="stretch")


@st.fragment
def steering_tool(loaded: live.LoadedPair, sampling: live.Sampling, directions: list[Direction]) -> None:
    """Steered vs unsteered samples along a direction the run saved (ADL mean difference or PCA component)."""
    from lmdiff.dashboard import live

    if not directions:
        st.info("Open a run with adl (or pca) results to steer along its saved directions.")
        return
    labels = [d.label for d in directions]
    pick = st.selectbox("direction", labels, key="steer_direction")
    direction = directions[labels.index(pick)] if pick in labels else directions[0]
    strength = st.slider("strength (multiples of the finetune's typical activation norm at that layer)",
                         -8.0, 8.0, 1.0, 0.25, key="steer_strength")
    from lmdiff.interp.steering import STEERING_PROMPTS

    prompts = st.text_area("prompts (one per line)", "\n".join(STEERING_PROMPTS[:2]), key="steer_prompts")
    if st.button("Generate steered and unsteered", key="steer_go"):
        with shown_errors("steering"):
            update, done = progress_bar("steering")
            with loaded.lock:
                st.session_state["steer_df"] = live.steer_compare(loaded.pair, direction, strength,
                                                                  prompts.splitlines(), sampling, update)
            done()
    df = st.session_state.get("steer_df")
    if df is not None:
        _side_by_side(df)


@st.fragment
def amplify_tool(loaded: live.LoadedPair, sampling: live.Sampling) -> None:
    """Base, finetuned and amplified samples: logit-difference alpha and LoRA scale."""
    from lmdiff.dashboard import live

    has_lora = bool(loaded.pair.finetuned_spec.adapter)
    c1, c2 = st.columns(2)
    alpha = c1.slider("logit-difference alpha (0: the finetune as is)", -1.0, 8.0, 1.0, 0.25, key="amp_alpha")
    scale = c2.slider("LoRA scale (1: as trained)", 0.0, 4.0, 1.0, 0.25, key="amp_scale", disabled=not has_lora,
                      help=None if has_lora else "the finetune is not a LoRA adapter")
    prompts = st.text_area("prompts (one per line)", "Tell me about yourself.", key="amp_prompts")
    if st.button("Generate amplified samples", key="amp_go"):
        with shown_errors("amplification"):
            update, done = progress_bar("amplification")
            with loaded.lock:
                st.session_state["amp_df"] = live.amplify_compare(loaded.pair, prompts.splitlines(), alpha,
                                                                  scale if has_lora else 1.0, sampling, update)
            done()
    df = st.session_state.get("amp_df")
    if df is not None:
        _side_by_side(df)


def _side_by_side(df: pd.DataFrame) -> None:
    for row in df.itertuples(index=False):
        d = row._asdict()
        st.markdown(f"**{d.pop('prompt')}**")
        cols = st.columns(len(d))
        for col, (name, text) in zip(cols, zip(df.columns[1:], d.values(), strict=True), strict=True):
            col.caption(name)
            col.text(text)
