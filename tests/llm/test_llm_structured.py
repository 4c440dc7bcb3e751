from __future__ import annotations

from pydantic import BaseModel

from lmdiff.llm import ParseError, parse_yes_no


class Verdict(BaseModel):
    label: str
    confidence: float


def test_malformed_reply_is_retried_with_a_correction(make_client, recorder):
    rec = recorder(["Sure! I think it is positive.", '```json\n{"label": "pos", "confidence": 0.9}\n```'])
    client = make_client(rec)
    result = client.structured("Classify: great movie", Verdict, system="JSON only")
    assert result.valid and result.value == Verdict(label="pos", confidence=0.9)
    assert result.attempts == 2 and result.error is None
    second_input = rec.calls[1][0]
    assert [m.role for m in second_input] == ["system", "user", "assistant", "user"]
    assert second_input[2].text == "Sure! I think it is positive."
    assert "could not be used" in second_input[3].text and "JSON" in second_input[3].text
    assert client.usage_summary()["structured_valid"] == 1


def test_persistently_malformed_reply_is_recorded_invalid(make_client, recorder):
    rec = recorder(["maybe?"])
    client = make_client(rec)
    result = client.structured("Is it?", parse_yes_no, max_attempts=3)
    assert result.valid is False and result.value is None
    assert result.attempts == 3 and len(rec.calls) == 3
    assert result.text == "maybe?" and "yes or no" in (result.error or "")
    usage = client.usage_summary()
    assert usage["structured_invalid"] == 1 and usage["structured_valid"] == 0


def test_structured_results_replay_from_cache(make_client, recorder, tmp_path):
    rec = recorder(["let me think", "<answer>YES</answer>"])
    first = make_client(rec, cache_dir=tmp_path / "c").structured("q?", parse_yes_no)
    assert first.valid and first.value is True and first.attempts == 2
    again = make_client(recorder(["never"]), cache_dir=tmp_path / "c").structured("q?", parse_yes_no)
    assert again.valid and again.value is True and again.cached and again.cost_usd == 0


def test_custom_parser_raising_parse_error(make_client):
    def parse(text: str) -> int:
        if not text.isdigit():
            raise ParseError("need digits only")
        return int(text)

    result = make_client(["x", "42"]).structured("n?", parse)
    assert result.value == 42 and result.attempts == 2


def test_structured_many_keeps_invalid_results(make_client, output):
    def model(input, tools, tool_choice, config):
        return output("YES" if "good" in input[0].text else "hmm")

    results = make_client(model).structured_many(["good", "bad", "good"], parse_yes_no, max_attempts=2)
    assert [r.valid for r in results] == [True, False, True]
    assert results[1].attempts == 2
