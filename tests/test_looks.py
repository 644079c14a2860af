"""Issue 12 item 5, faces that fit: a speaker's look read from what the screenplay says (streamwise.core.looks),
drawn by the CPU rung's portrait (pixels measured), a voice that agrees with it (streamwise.workflow.cast, through
a real plan), and mouth shapes from the phonemes piper spoke (streamwise.stages.art.visemes, real piper)."""
from __future__ import annotations

import asyncio
import colorsys
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from streamwise.bus.messages import Event, Request
from streamwise.core.dag import NodeState
from streamwise.core.deadlines import load_profiles
from streamwise.core.looks import look_text, read_look
from streamwise.stages.art.head import HeadAnimator
from streamwise.stages.art.portrait import MOUTH_HOLE, render_person_layers, render_portrait
from streamwise.stages.art.studio import render_studio
from streamwise.stages.art.visemes import VISEMES, frame_visemes, phoneme_track, viseme_of
from streamwise.stages.cpu.speech import voice_for
from streamwise.workflow.cast import DEFAULT_VOICES, cast_speaker, voice_model
from streamwise.workflow.podcast import PodcastPlan

W, H = 640, 400


# ------------------------------------------------------------------------------------------ the keyword reader

@pytest.mark.parametrize("text, want", [
    ("an old bearded man with grey hair, in a white toga",
     {"gender": "male", "age": "old", "beard": True, "hair": "grey", "clothing": "white", "garment": "toga"}),
    ("A young woman with long red hair and glasses, wearing a green dress",
     {"gender": "female", "age": "young", "hair": "red", "hair_style": "long", "glasses": True,
      "clothing": "green", "garment": "vneck"}),
    ("a bald man in his sixties, clean-shaven, no glasses",
     {"gender": "male", "age": "old", "hair_style": "bald", "beard": False, "moustache": False, "glasses": False}),
    ("she is a 25-year-old student with a short blond bob",
     {"gender": "female", "age": "young", "hair": "blond", "hair_style": "bob"}),
    ("dark-skinned, with a black beard and a navy suit",
     {"gender": "male", "skin": "dark", "beard": True, "beard_colour": "black", "clothing": "navy",
      "garment": "suit"}),
    ("curly brown hair, olive complexion, a moustache, blue eyes",
     {"hair_style": "curly", "hair": "brown", "skin": "medium", "moustache": True}),
    ("the host", {}),
    ("", {}),
])
def test_the_keyword_reader_finds_the_traits_a_text_states_and_nothing_else(text, want):
    assert read_look(text) == want


def test_the_reader_reads_structured_looks_and_attributes_colours_to_their_nouns():
    assert read_look(look_text({"gender": "woman", "hair": "silver", "glasses": True, "age": 70,
                                "clothing": "purple"})) == {"gender": "female", "hair": "silver", "glasses": True,
                                                             "age": "old", "clothing": "purple"}
    # blue eyes are no blue shirt, a red scarf no red hair; "not a man" states no gender
    assert read_look("blue eyes and a red scarf") == {}
    assert "gender" not in read_look("not a man, not a woman either")
    assert read_look("a redhead")["hair"] == "red"


def test_the_traits_become_a_phrase_for_the_gpu_tiers_image_prompt():
    from streamwise.core.looks import look_phrase

    assert look_phrase(read_look("an old bearded man with grey hair, in a white toga")) == \
        "an old man with grey hair, a beard, wearing a white toga"
    assert look_phrase(read_look("a young woman with glasses")) == "a young woman with glasses"
    assert look_phrase({}) == "" and look_phrase(None) == ""


# ------------------------------------------------------------------------------------------ voices that agree

def test_default_voices_of_the_cast_are_the_speech_stages_defaults():
    assert list(DEFAULT_VOICES) == [voice_for(i).label for i in range(len(DEFAULT_VOICES))]


class _Req:
    def __init__(self, voices=None, looks=None):
        self.voices, self.looks = voices or {}, looks or {}


def test_a_described_man_gets_a_male_voice_and_nobody_shares_one():
    voices: dict[int, str] = {}
    looks = [cast_speaker(voices, i, n, _Req(), [said]) for i, (n, said) in enumerate([
        ("Socrates", "an old man"), ("Euthyphro", "a young man"), ("Xanthippe", "his wife"), ("Meno", None)])]
    spoken = [voices.get(i, DEFAULT_VOICES[i]) for i in range(4)]
    assert [voice_model(v) for v in spoken[:3]] == ["joe", "joe", "heart"]
    assert len(set(spoken)) == 4                        # all distinct
    assert [lk["gender"] for lk in looks] == ["male", "male", "female", "female"]   # Meno: his voice's timbre
    # a voice the user names is kept whatever the look; the request's look replaces the screenplay's
    voices = {}
    look = cast_speaker(voices, 0, "Ada", _Req(voices={"ada": "joe@0.9"}, looks={"ADA": "a woman with a bun"}),
                        ["an old man"])
    assert voices == {0: "joe@0.9"} and look["gender"] == "female" and look["hair_style"] == "bun"
    # with no description at all every speaker keeps the default of its index (the tts inputs do not change)
    voices = {}
    for i in range(8):
        cast_speaker(voices, i, f"S{i}", _Req(), [])
    assert voices == {}


def _script_plan(script: str) -> tuple[PodcastPlan, dict]:
    """A plan of a JSON script whose screenplay task ran the real script stage's parsing."""
    from streamwise.script import parse_script
    from streamwise.stages.cpu.screenplay import MAX_PIECE_CHARS
    from streamwise.stages.cpu.speech import FIRST_PIECE_CHARS, split_text

    play = parse_script(script, path="show.json", fmt="json")
    index = {name: i for i, name in enumerate(play.speakers)}
    out = {"title": play.title, "studio": play.studio, "speakers": list(play.speakers),
           "lines": [{"speaker": index[ln.speaker], "pieces": split_text(ln.text, MAX_PIECE_CHARS, FIRST_PIECE_CHARS)}
                     for ln in play.lines],
           "looks": [play.characters.get(n) for n in play.speakers]}
    plan = PodcastPlan(Request(request_id="r1", submitted_at=1000.0, script=script, script_format="json"),
                       load_profiles())
    node = plan.dag["screenplay"]
    node.state = NodeState.DISPATCHED
    plan.on_event(Event(task_id=plan.task_id(node), request_id="r1", node_id="screenplay", stage="screenplay",
                        instance="i", outputs=out))
    return plan, out


def test_a_json_screenplays_old_man_is_drawn_and_voiced_as_a_man():
    script = json.dumps({"title": "Euthyphro", "characters": [
        {"name": "Euthyphro", "role": "a young priest", "look": "a young man with curly black hair"},
        {"name": "Socrates", "look": {"gender": "man", "age": "old", "beard": True, "hair": "white"}}],
        "lines": [{"speaker": "Euthyphro", "text": "Why have you left the Lyceum, Socrates?"},
                  {"speaker": "Socrates", "text": "Not a suit, Euthyphro, but an indictment."}]})
    plan, out = _script_plan(script)
    assert out["looks"][1] and "beard" in out["looks"][1]
    portraits = {n.inputs["name"]: n.inputs["look"] for n in plan.dag.nodes.values() if n.node_id.startswith("portrait")}
    assert portraits["Socrates"] == {"gender": "male", "age": "old", "beard": True, "hair": "white"}
    assert portraits["Euthyphro"]["gender"] == "male" and portraits["Euthyphro"]["hair"] == "black"
    tts = {n.inputs["speaker_index"]: n.inputs.get("voice") for n in plan.dag.nodes.values() if n.stage == "tts"}
    # Socrates is speaker 1, whose default is heart (female): the old man gets joe, below Euthyphro's pitch
    assert voice_model(tts[1]) == "joe" and tts[1] != "joe" and tts[0] is None
    assert voice_for(1, voice=tts[1]).model == "joe"


# ------------------------------------------------------------------------------------------ the portrait's pixels

@pytest.fixture(scope="module")
def studio():
    return render_studio(W, H, title="Faces", seed=1)


def _face(layout) -> tuple[float, float, float]:
    """(face centre x, face centre y, face height) in frame px, from the layout (see portrait._Look: eyes at
    cy - 0.04 fh, mouth at cy + 0.255 fh)."""
    (mx, my), ey = layout.mouth_center, layout.eye_centers[0][1]
    fh = (my - ey) / 0.295
    return mx, my - 0.255 * fh, fh


def _rgb(img, x: float, y: float, r: int = 2) -> np.ndarray:
    a = np.asarray(img).astype(float)
    return a[round(y) - r:round(y) + r + 1, round(x) - r:round(x) + r + 1].reshape(-1, 3).mean(axis=0)


def _hsv(rgb) -> tuple[float, float, float]:
    return colorsys.rgb_to_hsv(*(np.asarray(rgb) / 255.0))


def test_described_traits_show_in_the_portraits_pixels(studio):
    old = read_look("an old man with a long grey beard and glasses, in a green robe")
    young = read_look("a young woman with red hair, no glasses, in a yellow shirt")
    for i in range(3):     # whatever the speaker's hash draws
        img_o, lay_o = render_portrait(studio, name=f"Plato{i}", speaker_index=i, look=old)
        img_y, lay_y = render_portrait(studio, name=f"Plato{i}", speaker_index=i, look=young)
        cx, cy, fh = _face(lay_o)
        # the beard: below the mouth opening, grey (low saturation, not the skin) where the young face is skin
        chin = (lay_o.mouth_center[0], lay_o.mouth_center[1] + (MOUTH_HOLE[2] + 0.25) * lay_o.mouth_width)
        beard, skin = _rgb(img_o, *chin), np.asarray(lay_o.skin_rgb, float)
        assert np.abs(beard - skin).sum() > 60 and _hsv(beard)[1] < 0.12, (i, beard, skin)
        assert np.abs(_rgb(img_y, *chin) - np.asarray(lay_y.skin_rgb)).sum() < 40
        # hair on top of the head: grey for the old man, red (hue near 0) for the young woman
        top = (cx, cy - 0.46 * fh)
        assert _hsv(_rgb(img_o, *top))[1] < 0.12
        h, s, _ = _hsv(_rgb(img_y, *top))
        assert s > 0.5 and (h < 0.06 or h > 0.95), (i, _rgb(img_y, *top))
        # glasses: the frame's rim beside the outer eye corner, where the same man without glasses has skin
        (ex, ey), r = lay_o.eye_centers[0], lay_o.eye_radius
        bare, lay_b = render_portrait(studio, name=f"Plato{i}", speaker_index=i, look={**old, "glasses": False})
        row = slice(round(ex - 1.8 * r), round(ex - 1.3 * r))
        diff = np.abs(np.asarray(img_o).astype(float) - np.asarray(bare).astype(float)).sum(axis=-1)
        assert diff[ey, row].max() > 80                      # the rim, at the eye's height
        assert diff[:, :round(ex - 2.5 * r)][:round(ey - 2 * r)].max() == 0   # and nothing else above-left differs
        # clothing below the shoulders: green robe vs yellow shirt
        body = (cx + 1.05 * fh * 0.8, cy + 0.85 * fh)
        assert _hsv(_rgb(img_o, *body))[0] == pytest.approx(135 / 360, abs=0.06)
        assert _hsv(_rgb(img_y, *body))[0] == pytest.approx(47 / 360, abs=0.05)


def test_a_stated_skin_tone_and_gender_change_the_drawing_and_an_empty_look_changes_nothing(studio):
    plain, _ = render_portrait(studio, name="Ann", speaker_index=0)
    assert np.array_equal(np.asarray(plain), np.asarray(render_portrait(studio, name="Ann", speaker_index=0,
                                                                        look={})[0]))
    dark, lay = render_portrait(studio, name="Ann", speaker_index=0, look=read_look("dark-skinned"))
    light, lay_l = render_portrait(studio, name="Ann", speaker_index=0, look=read_look("pale skin"))
    assert sum(lay.skin_rgb) < 400 < sum(lay_l.skin_rgb)
    # a look of unknown keys / values (another client's) is ignored, not an error
    odd, _ = render_portrait(studio, name="Ann", speaker_index=0, look={"hair": "plaid", "wings": True})
    assert np.array_equal(np.asarray(odd), np.asarray(plain))


def test_the_layers_carry_the_look_so_the_moving_head_keeps_the_beard(studio):
    look = read_look("an old man with a white beard")
    lay = render_person_layers(studio, name="Zeno", speaker_index=1, look=look)
    anim = HeadAnimator(np.asarray(lay.image), lay.layout, person=np.asarray(lay.person),
                        backdrop=np.asarray(lay.backdrop))
    frames = anim.render(np.linspace(0, 1, 30, dtype=np.float32), fps=25.0)
    chin = (lay.layout.mouth_center[0], lay.layout.mouth_center[1] + (MOUTH_HOLE[2] + 0.25) * lay.layout.mouth_width)
    for f in (0, 15, 29):    # open mouth or not, moving or not: the chin stays white beard
        assert _rgb(frames[f], *chin, 1).min() > 200


# ------------------------------------------------------------------------------------------ visemes

def test_phonemes_map_to_visemes_and_a_track_keeps_short_closures():
    assert [viseme_of(p) for p in "mbpfvouaie.t"] == ["closed"] * 3 + ["teeth"] * 2 + ["round"] * 2 + \
        ["open"] + ["wide"] * 2 + ["rest", "mid"]
    track = phoneme_track(["m", "ˈ", "ɑ", "ː", "m", "ə"], [441, 2205, 1000, 1000, 441, 882], 5969, 22050)
    assert [v for _, _, v in track] == ["closed", "open", "closed", "mid"]
    assert track[0] == (0.0, 0.02, "closed") and track[-1][1] == pytest.approx(5969 / 22050, abs=1e-3)
    # a 20 ms closure in a 40 ms frame is a third of it or more: the frame shows it
    frames = frame_visemes(track, 0.0, 7, 25.0)
    assert VISEMES[frames[0]] == "closed" and "open" in [VISEMES[v] for v in frames]


@pytest.fixture(scope="module")
def engine():
    from streamwise.stages.cpu.speech import SpeechEngine
    try:
        return SpeechEngine("piper", deterministic=True, threads=1)
    except RuntimeError as exc:
        pytest.skip(f"piper is not installed here: {exc}")


def _mouth_dark(frame: np.ndarray, layout) -> int:
    """Pixels of the open mouth's dark interior ((62, 20, 32) in draw_mouth) in the mouth region."""
    (mx, my), mw = layout.mouth_center, layout.mouth_width
    box = frame[my - mw // 2:my + mw // 2, mx - mw:mx + mw].astype(int)
    return int((np.abs(box - np.array([62, 20, 32])).sum(axis=-1) < 40).sum())


def test_mama_papa_closes_the_mouth_at_the_bilabials(engine, studio):
    from streamwise.stages.cpu.speech import energy_envelope
    from streamwise.stages.cpu.talking_head import CpuTalkingHead

    speech = engine.speak("Mama papa, mama papa.", voice_for(0))
    assert speech.mouth in ("piper-alignments", "piper-phonemes")
    assert speech.visemes and speech.visemes[-1][1] <= len(speech.audio) / 22050 + 1e-3
    kinds = [v for _, _, v in speech.visemes]
    # m a m a p a: closure and opening alternate, four closures per "mama papa"
    assert kinds.count("closed") >= 6 and kinds.count("open") >= 6
    lay = render_person_layers(studio, name="Ada", speaker_index=0)
    anim = HeadAnimator(np.asarray(lay.image), lay.layout, person=np.asarray(lay.person),
                        backdrop=np.asarray(lay.backdrop))
    fps, rate = 25.0, 22050
    inputs = {"sample_rate": rate, "sample_from": 0, "sample_to": len(speech.audio),
              "visemes": [list(v) for v in speech.visemes]}
    env = energy_envelope(speech.audio, fps)
    vis = frame_visemes(inputs["visemes"], 0.0, len(env), fps)
    frames = anim.render(env, visemes=vis, fps=fps)
    closed = [i for i, v in enumerate(vis) if VISEMES[v] == "closed"]
    opened = [i for i, v in enumerate(vis) if VISEMES[v] == "open"]
    assert len(closed) >= 6 and len(opened) >= 6
    assert all(_mouth_dark(frames[i], lay.layout) == 0 for i in closed)
    assert sum(_mouth_dark(frames[i], lay.layout) > 50 for i in opened) >= 0.8 * len(opened)
    # the loudness alone would have opened the mouth on some of those closures
    loud = anim.render(env, fps=fps)
    assert sum(_mouth_dark(loud[i], lay.layout) > 0 for i in closed) >= 2
    # the stage's own renderer reads the track from its inputs: the same frames (encoded) come out shut
    clip = CpuTalkingHead._render(anim, speech.audio, inputs, fps)
    import av, io
    with av.open(io.BytesIO(clip)) as box:
        decoded = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    assert len(decoded) == len(env)
    shut = [i for i in closed if 0 < i < len(env) - 1 and VISEMES[vis[i - 1]] == VISEMES[vis[i + 1]] == "closed"] \
        or closed
    assert all(_mouth_dark(decoded[i], lay.layout) < 15 for i in shut)


def test_hibari_gives_its_phonemes_and_espeak_falls_back_to_loudness_and_says_so(engine):
    from streamwise.stages.cpu.speech import SpeechEngine

    heart = engine.speak("Mama papa, mama papa.", voice_for(1))
    if engine.voice_model(voice_for(1)) == "hibari:heart":     # phonemes from hibari's G2P, timing estimated
        assert heart.mouth == "hibari-phonemes"
        kinds = [v for _, _, v in heart.visemes]
        assert kinds.count("closed") >= 6 and kinds.count("open") >= 4
        assert heart.visemes[-1][1] <= len(heart.audio) / 22050 + 1e-3
    else:   # no hibari here: heart is spoken by joe, with its phonemes
        assert heart.mouth.startswith("piper")
    try:
        espeak = SpeechEngine("espeak")
    except RuntimeError:
        pytest.skip("espeak-ng is not installed here")
    said = espeak.speak("Mama papa.", voice_for(0))
    assert len(said.audio) and said.visemes is None and said.mouth == "loudness"


# ------------------------------------------------------------------------------------------ a whole show

async def test_a_show_with_described_characters_shows_and_voices_them(bus, pool, tmp_path):
    """End to end on a real nats-server and real workers: a JSON screenplay describes an old bearded man with
    grey hair and a young woman with red hair; in the streamed MP4 each one's frames show it, and the report
    says the man speaks with a male-timbre voice and where each mouth's shapes came from."""
    import uuid

    import av

    from helpers import wait_ready
    from streamwise.client import generate

    await asyncio.wait_for(wait_ready(bus, pool), 90)
    script = json.dumps({"title": "Euthyphro", "characters": [
        {"name": "Euthyphro", "look": "a young woman with long red hair, no glasses, in a green dress"},
        {"name": "Socrates", "look": "an old man with a grey beard and grey hair, no glasses, in a white toga"}],
        "lines": [{"speaker": "Euthyphro", "text": "Why have you left the Lyceum, Socrates? What brings you here?"},
                  {"speaker": "Socrates", "text": "Not a suit, Euthyphro, but an indictment, my friend."}]})
    request = Request(request_id=uuid.uuid4().hex[:12], submitted_at=0.0, script=script, script_format="json",
                      script_name="euthyphro.json")
    report = await generate(bus, request, tmp_path, idle_timeout_s=90)
    assert voice_model(report.voices["Socrates"]["voice"]) == "joe"        # speaker 1: heart by default
    assert voice_model(report.voices["Euthyphro"]["voice"]) == "heart"     # speaker 0: joe by default
    assert report.voices["Socrates"]["mouth"] in ("piper-alignments", "piper-phonemes")
    assert report.voices["Euthyphro"]["mouth"] in ("hibari-phonemes", "piper-alignments", "piper-phonemes")
    with av.open(str(tmp_path / "podcast.mp4")) as box:
        frames = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    studio = render_studio(W, H, title="Euthyphro")
    fps = 25.0
    for index, (name, line) in enumerate((("Euthyphro", report.script_lines[0]), ("Socrates", report.script_lines[1]))):
        assert line["speaker"] == name
        _, lay = render_portrait(studio, name=name, speaker_index=index)    # where the face is (no motion)
        cx, cy, fh = _face(lay)
        chin = (lay.mouth_center[0], lay.mouth_center[1] + (MOUTH_HOLE[2] + 0.25) * lay.mouth_width)
        shown = frames[int(line["start_s"] * fps) + 3:int(line["end_s"] * fps) - 3:5]
        assert len(shown) >= 3
        for f in shown:
            hair = _hsv(_rgb(f, cx, cy - 0.44 * fh, 3))
            below = _rgb(f, *chin, 3)
            if name == "Socrates":
                assert hair[1] < 0.15 and _hsv(below)[1] < 0.15 and np.abs(below - lay.skin_rgb).sum() > 60
            else:
                assert hair[1] > 0.45 and (hair[0] < 0.07 or hair[0] > 0.94)
                assert np.abs(below - np.asarray(lay.skin_rgb)).sum() < 60     # no beard: skin


_WORDS = ["a", "an", "old", "young", "man", "woman", "she", "he", "no", "not", "with", "grey", "red", "blond",
          "hair", "beard", "glasses", "in", "toga", "blue", "shirt", "dark", "skinned", "bald", "curly", ",", "70",
          "years", "-", "moustache", "clean", "shaven", "eyes", "his", "her", "sixties", "bun", "robe"]


@given(st.lists(st.sampled_from(_WORDS), max_size=14).map(" ".join) | st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_any_text_reads_to_valid_traits(text):
    from streamwise.core.looks import COLOURS
    from streamwise.stages.art.portrait import _traits

    look = read_look(text)
    assert set(look) <= {"gender", "age", "hair", "hair_style", "beard", "beard_colour", "moustache", "glasses",
                         "clothing", "garment", "skin"}
    assert look.get("gender", "male") in ("male", "female") and look.get("age", "old") in ("old", "young")
    assert all(look[k] in COLOURS for k in ("hair", "beard_colour", "clothing") if k in look)
    assert set(_traits(look)) == set(look)                                               # all drawable
    assert read_look(text) == look                                                           # deterministic


def test_a_scheduler_taking_over_keeps_each_speakers_look_and_voice():
    """The screenplay checkpoint (scheduler takeover) carries the cast's voices and looks: the new plan draws and
    voices every speaker as the first did, though the LLM's resumed output no longer describes them."""
    def plan(epoch):
        return PodcastPlan(Request(request_id="r1", submitted_at=1000.0, topic="tides"), load_profiles(), epoch=epoch)

    first = plan(1)
    node = first.dag["screenplay"]
    node.state = NodeState.DISPATCHED
    first.on_partial(Event(task_id=first.task_id(node), request_id="r1", node_id="screenplay", stage="screenplay",
                           instance="llm-1", partial=True, outputs={
                               "title": "Tides", "studio": "a beach", "speakers": ["Maya", "Leo", "Ann"],
                               "voices": ["heart", None, None],
                               "looks": ["a young woman", "an old man with a white beard", None],
                               "lines": [{"index": i, "speaker": i, "text": "Hi.", "pieces": ["Hi."]}
                                         for i in range(3)]}))

    def cast(p):
        return ({n.inputs["name"]: n.inputs["look"] for n in p.dag.nodes.values() if n.node_id.startswith("portrait")},
                {n.inputs["speaker_index"]: n.inputs.get("voice") for n in p.dag.nodes.values() if n.stage == "tts"})

    looks, voices = cast(first)
    assert looks["Leo"]["beard"] and voice_model(voices[2] or DEFAULT_VOICES[2]) == "joe"   # plan speaker 2
    second = plan(2)
    second.restore_screenplay(first.screenplay_checkpoint())
    assert cast(second) == (looks, voices)


def test_without_alignments_piper_phonemes_are_spread_over_the_sound(engine):
    """Where the onnx package is missing piper gives phonemes without alignments: the estimate still closes the
    mouth at each bilabial, in order, inside the audio."""
    aligned = engine._aligned
    try:
        engine._aligned = False             # what a piper loaded without onnx does
        speech = engine.speak("Mama papa.", voice_for(0))
    finally:
        engine._aligned = aligned
    assert speech.mouth == "piper-phonemes"
    kinds = [v for _, _, v in speech.visemes]
    assert kinds[:8] == ["closed", "open", "closed", "open", "closed", "open", "closed", "mid"][:len(kinds[:8])]
    assert kinds.count("closed") == 4
    assert 0 <= speech.visemes[0][0] and speech.visemes[-1][1] <= len(speech.audio) / 22050 + 1e-3


def test_a_script_is_cast_by_how_much_each_speaker_says():
    """A minor part that speaks first (the porter who opens the play) does not take the lead's timbre: a
    script is cast in order of words spoken, so the two who say most get the two voice models; with no
    looks, every voice is still distinct, and a speaker order that is already by words keeps its defaults."""
    from streamwise.workflow.cast import cast_show, words_per_speaker

    lines = [{"speaker": 0, "pieces": ["Sixpence."]}, {"speaker": 1, "pieces": ["Hide the tree, Helen.", "Now."]},
             {"speaker": 2, "pieces": ["Is that my little lark twittering out there?"]},
             {"speaker": 1, "pieces": ["Yes, it is!"]}]
    words = words_per_speaker(lines, 3)
    assert words == [1, 8, 8]
    voices: dict[int, str] = {}
    looks = cast_show(voices, ["Porter", "Nora", "Helmer"], _Req(), [[None], [None], [None]], words)
    spoken = [voices.get(i, DEFAULT_VOICES[i]) for i in range(3)]
    assert {voice_model(spoken[1]), voice_model(spoken[2])} == {"joe", "heart"}     # the leads differ in timbre
    assert len(set(spoken)) == 3
    assert [lk["gender"] for lk in looks] == [{"joe": "male", "heart": "female"}[voice_model(v)] for v in spoken]
    in_order: dict[int, str] = {}
    cast_show(in_order, ["A", "B", "C"], _Req(), [[None]] * 3, [9, 5, 1])
    assert in_order == {}                                                           # the defaults of the index
    named = {0: "heart@1.1"}                                                        # a named voice is kept
    cast_show(named, ["A", "B"], _Req(), [[None], [None]], [1, 9])
    assert named[0] == "heart@1.1" and voice_model(named[1]) == "joe"


def test_a_title_in_the_name_gives_the_gender_a_description_leaves_open():
    """``Lady Bracknell`` spoke with the male timbre (session 8's try of Wilde): a name's title (Lady, Mrs.,
    Miss, Lord, Mr., Sir, Madame, ...) states a gender; a first name alone does not, and a description wins."""
    from streamwise.core.looks import title_gender
    from streamwise.workflow.cast import cast_show

    assert [title_gender(n) for n in ("Lady Bracknell", "MRS. HIGGINS", "Miss Prism", "The Duchess of Berwick",
                                      "Madame Pernelle", "Lord Darlington", "Mr. Worthing", "Sir Robert Chiltern",
                                      "M. Jourdain", "Ada", "Jack", "Lady", "Dr. Chasuble", "Speaker 1")] == [
        "female", "female", "female", "female", "female", "male", "male", "male", "male", None, None, None, None, None]
    names = ["Lady Bracknell", "Algernon", "Mr. Worthing", "Miss Fairfax"]
    voices: dict[int, str] = {}
    looks = cast_show(voices, names, _Req(), [[None]] * 4, [40, 30, 20, 10])
    spoken = [voices.get(i, DEFAULT_VOICES[i]) for i in range(4)]
    assert [voice_model(v) for v in (spoken[0], spoken[2], spoken[3])] == ["heart", "joe", "heart"]
    assert [lk["gender"] for lk in looks] == ["female", {"joe": "male", "heart": "female"}[voice_model(spoken[1])],
                                              "male", "female"]
    assert len(set(spoken)) == 4
    voices = {}
    assert cast_show(voices, ["Lady Ada"], _Req(), [["a bearded old man"]], [5])[0]["gender"] == "male"
