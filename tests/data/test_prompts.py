import json

import pytest

from lmdiff.data.prompts import load_prompts
from lmdiff.errors import ConfigError


def test_shipped_sets():
    chat = load_prompts("chat")
    assert len(chat) == 100 and {p.category for p in chat.items} >= {"self", "reasoning"}
    sub = chat.subset(12, seed=0)
    assert len(sub) == 12 and len({p.category for p in sub.items}) == 6
    assert sub.texts == chat.subset(12, seed=0).texts and sub.texts != chat.subset(12, seed=1).texts
    inst = load_prompts("instructions", limit=5)
    assert all("reference" in p.meta for p in inst.items)
    assert len(load_prompts("math")) == 400


def test_user_files(tmp_path):
    (tmp_path / "p.txt").write_text("one\n\ntwo\n")
    assert load_prompts(str(tmp_path / "p.txt")).texts == ["one", "two"]
    rows = [{"question": "q1"}, {"messages": [{"role": "user", "content": "q2"}]}]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert load_prompts("file", file=str(tmp_path / "p.jsonl")).texts == ["q1", "q2"]
    (tmp_path / "bad.jsonl").write_text(json.dumps({"other": 1}))
    with pytest.raises(ConfigError, match="no text"):
        load_prompts(str(tmp_path / "bad.jsonl"))
    with pytest.raises(ConfigError, match="Unknown prompt set"):
        load_prompts("nope")
