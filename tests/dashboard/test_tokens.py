import re

import pytest

from lmdiff.dashboard.tokens import legend_html, token_html


def test_tokens_are_escaped_coloured_by_value_and_carry_their_hover():
    out = token_html(["<b>", " a", "\n"], [0.0, 1.0, 2.0], ["h<1>", "h2", "h3"], vmax=2.0)
    assert "&lt;b&gt;" in out and "<b>" not in out
    alphas = [float(a) for a in re.findall(r"rgba\(220,40,40,([0-9.]+)\)", out)]
    assert alphas == [0.0, 0.5, 1.0]
    assert 'title="h&lt;1&gt;"' in out and out.count('class="lmdiff-tok"') == 3
    assert "\u21b5" in out  # newlines stay visible


def test_values_above_vmax_saturate_and_hovers_must_match():
    out = token_html(["a"], [5.0], vmax=1.0)
    assert "rgba(220,40,40,1.00)" in out
    with pytest.raises(ValueError):
        token_html(["a", "b"], [1.0, 2.0], ["one"])
    assert "nats" in legend_html(1.0)
