"""Typed stage payloads (bus/payloads.py): each stage's task inputs and event outputs checked
where they cross the bus, with one-line errors naming the field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamwise.bus.codec import MessageError
from streamwise.bus.payloads import INPUTS, OUTPUTS, check_inputs, check_outputs

SPEECH = {"text": "Hello there.", "speaker_index": 0, "fps": 25, "max_clip_s": 3.5, "first_clip_s": None,
          "pause_after_s": 0.35}


def test_valid_inputs_pass_and_extra_fields_are_allowed():
    check_inputs("tts", SPEECH)
    check_inputs("tts", {**SPEECH, "voice": "heart", "a_future_field": [1, 2]})
    check_inputs("screenplay", {"script": "A: hi\nB: hello", "format": None, "name": "x.txt", "script_ref": None})
    check_inputs("screenplay", {"topic": "bees", "document": None, "name": None, "resume": None})
    check_inputs("unknown-stage", {"anything": 1})


@pytest.mark.parametrize("inputs, field", [
    ({k: v for k, v in SPEECH.items() if k != "text"}, "text"),
    ({**SPEECH, "fps": "fast"}, "fps"),
    ({**SPEECH, "speaker_index": 1.5}, "speaker_index"),
    ({**SPEECH, "voice": 7}, "voice"),
])
def test_a_missing_or_wrong_typed_input_is_refused_naming_the_field(inputs, field):
    with pytest.raises(MessageError, match=field):
        check_inputs("tts", inputs)


def test_outputs_are_checked_per_stage_and_a_blob_reference_stands_for_them():
    check_outputs("tts", {"audio": "a.pcm", "samples": 4800, "sample_rate": 48000, "clips": [[0, 4800]],
                          "engine": "piper", "emulated": True})
    check_outputs("video", {"$ref": "outputs.msgpack"})
    with pytest.raises(MessageError, match="clips"):
        check_outputs("tts", {"audio": "a.pcm", "samples": 4800, "sample_rate": 48000, "clips": [[0, "end"]]})
    with pytest.raises(MessageError, match="image"):
        check_outputs("image", {"layout": {}})
    with pytest.raises(MessageError, match="lines"):
        check_outputs("screenplay", {"speakers": ["A"], "lines": [{"speaker": "A", "pieces": ["hi"]}]}, partial=True)


@settings(max_examples=200, deadline=None)
@given(stage=st.sampled_from(sorted(set(INPUTS) | set(OUTPUTS))),
       payload=st.dictionaries(st.sampled_from(["text", "fps", "clip", "image", "lines", "index", "audio", "video",
                                                "samples", "kind", "$ref", "script"]),
                               st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=5),
                                         st.lists(st.integers(), max_size=3)), max_size=6))
def test_any_payload_is_either_accepted_or_refused_with_a_message_error(stage, payload):
    for check in (check_inputs, check_outputs):
        try:
            check(stage, payload)
        except MessageError as exc:
            assert str(exc).startswith(stage)
