"""Property-based tests (hypothesis) of the request schema and fuzz tests of the script readers
(issue 9): whatever arrives, admission either accepts a request every stage can plan or refuses
it with a ValueError; a parser either reads a script or raises ScriptError. Nothing else."""

from __future__ import annotations

import math

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamwise.bus.codec import MessageError, decode
from streamwise.bus.limits import LIMITS
from streamwise.bus.messages import Request
from streamwise.core.deadlines import load_profiles
from streamwise.script import ScriptError, decode_script, parse_script
from streamwise.service.admission import check_request
from streamwise.workflow.podcast import PodcastPlan

PROFILES = load_profiles()
NUMERIC = ("ttff_s", "fps", "segment_s", "first_segment_s", "max_clip_s", "submitted_at", "width", "height", "v")

anything = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40), st.binary(max_size=20),
    st.lists(st.integers(-1000, 1000), max_size=3))
plausible = {
    "ttff_s": st.floats(allow_nan=True, allow_infinity=True), "fps": st.sampled_from([24.0, 25.0, 30.0, 23.976, 0.0]),
    "segment_s": st.floats(min_value=-1, max_value=100), "first_segment_s": st.floats(min_value=-1, max_value=100),
    "max_clip_s": st.floats(min_value=-1, max_value=100), "width": st.integers(-100, 10_000),
    "height": st.integers(-100, 10_000), "submitted_at": st.floats(allow_nan=True, allow_infinity=True),
    "request_id": st.text(min_size=0, max_size=70), "tenant": st.text(max_size=70),
}


@st.composite
def request_maps(draw):
    raw = {"request_id": "r1", "submitted_at": 1000.0, "script": "Ada: Hello.\nBob: Hi there.\n"}
    for key in draw(st.sets(st.sampled_from(sorted(plausible) + ["script", "topic", "v", "title"]), max_size=5)):
        strategy = plausible.get(key, anything)
        raw[key] = draw(st.one_of(strategy, anything))
    if draw(st.booleans()):
        raw.pop(draw(st.sampled_from(sorted(raw))), None)
    return raw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_maps())
def test_admission_accepts_only_requests_every_stage_can_plan(raw):
    try:
        request = decode(msgpack.packb(raw), Request)
        check_request(request)
    except (MessageError, ValueError) as exc:
        assert str(exc) and "\n" not in str(exc)          # one line that names the problem
        return
    for name in NUMERIC:
        assert math.isfinite(getattr(request, name)), name
    assert LIMITS.ttff_s[0] <= request.ttff_s <= LIMITS.ttff_s[1]
    assert LIMITS.segment_s[0] <= request.segment_s <= LIMITS.segment_s[1]
    assert request.width % 8 == 0 and request.height % 8 == 0
    plan = PodcastPlan(request, PROFILES)                  # no OverflowError or ZeroDivisionError
    assert plan.frames_per_segment >= 1 and math.isfinite(plan.dag["screenplay"].deadline)


labels = st.sampled_from(["Ada:", "BOB.", "Dr. Who:", "**Eve:**", "[00:01] Ann:", "NARRATOR", "", "-", "<v Joe>",
                          "WEBVTT", "1", "00:00:01,000 --> 00:00:02,000", "{", "[", "# Title", "Studio:"])


@st.composite
def script_texts(draw):
    lines = draw(st.lists(st.tuples(labels, st.text(max_size=60)), max_size=30))
    return "\n".join(f"{label} {text}" for label, text in lines)


@settings(max_examples=400, deadline=None)
@given(st.one_of(script_texts(), st.text(max_size=400)), st.sampled_from([None, "text", "vtt", "srt", "json"]))
def test_script_parsers_read_or_refuse_with_file_and_line(text, fmt):
    try:
        play = parse_script(text, path="fuzz.txt", fmt=fmt)
    except ScriptError as exc:
        assert str(exc).startswith("fuzz.txt:")
        return
    assert play.lines and all(line.speaker in play.speakers for line in play.lines)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_script_bytes_decode_to_text_or_are_refused(data):
    try:
        text = decode_script(data, "fuzz.bin")
    except ScriptError as exc:
        assert str(exc).startswith("fuzz.bin:")
        return
    assert isinstance(text, str)
