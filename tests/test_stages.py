"""Stage adapters on their own, with the real bus for artifacts: screenplay pieces, speech clips."""

from __future__ import annotations

import numpy as np
import pytest

from streamwise.bus.messages import Task
from streamwise.stages.runtime.base import TaskContext, TaskError
from streamwise.stages.cpu.screenplay import FIRST_PIECE_CHARS, MAX_PIECE_CHARS, ScriptScreenplay
from streamwise.stages.cpu.speech import SAMPLE_RATE, WIDE_RATE, show_audio_rate
from streamwise.stages.cpu.tts import CpuSpeech, clip_ranges, pad_to_frames


def _task(node: str, **inputs) -> Task:
    return Task(task_id=f"r.{node}.1-0", request_id="r", tenant="t", node_id=node, stage="x", model="m",
                deadline=0.0, inputs=inputs)


async def test_a_long_first_line_is_spoken_in_short_pieces(bus):
    long_line = " ".join(f"This is sentence number {i}, and it goes on for a while." for i in range(120))
    script = f"Host: {long_line}\nGuest: Short answer."
    out = await ScriptScreenplay().run(_task("screenplay", script=script, name="long.txt"),
                                       TaskContext(bus=bus, instance="t"))
    pieces = out["lines"][0]["pieces"]
    assert len(long_line) > 5000 and len(pieces) > 30
    assert len(pieces[0]) <= FIRST_PIECE_CHARS and all(len(p) <= MAX_PIECE_CHARS for p in pieces)
    assert " ".join(pieces).split() == long_line.split()
    assert out["speakers"] == ["Host", "Guest"]


async def test_an_unreadable_script_is_a_non_retryable_error_naming_file_and_line(bus):
    with pytest.raises(TaskError) as info:
        # (prose with no speakers is read as narration now: binary data is what cannot be read)
        await ScriptScreenplay().run(_task("screenplay", script="Ada: hi\nBen: \x00 oops", name="prose.txt"),
                                     TaskContext(bus=bus, instance="t"))
    assert str(info.value).startswith("prose.txt:2:") and not info.value.retryable


@pytest.fixture(scope="module")
def speech():
    stage = CpuSpeech()
    stage.load()
    return stage


async def test_speech_is_padded_to_frames_and_cut_into_bounded_clips(bus, speech):
    text = ("Well, that depends on the day. Some mornings the whole cluster is quiet, and then at nine "
            "everyone arrives at once, and the queues fill up faster than you can read the graphs.")
    out = await speech.run(_task("tts:0", text=text, speaker_index=1, fps=25.0, max_clip_s=3.5,
                                 first_clip_s=1.0, pause_after_s=0.35), TaskContext(bus=bus, instance="t"))
    assert out["sample_rate"] == SAMPLE_RATE and out["samples"] % 882 == 0
    clips = out["clips"]
    assert clips[0][0] == 0 and clips[-1][1] == out["samples"]
    assert all(b == c for (_, b), (c, _) in zip(clips, clips[1:]))          # contiguous
    assert clips[0][1] <= 1.0 * SAMPLE_RATE                                 # the short first clip
    assert all(b - a <= 3.5 * SAMPLE_RATE and a % 882 == 0 for a, b in clips)
    pcm = np.frombuffer(await bus.get_blob(out["audio"]), dtype="<i2")
    assert len(pcm) == out["samples"] and np.abs(pcm).max() > 1000
    assert np.abs(pcm[-int(0.3 * SAMPLE_RATE):]).max() == 0                # the pause after the line


async def test_a_24_fps_show_speaks_at_48k_in_whole_frames(bus, speech):
    """22 050 Hz has no whole number of samples per frame at 24 fps: the piece is resampled to
    48 kHz (2,000 samples a frame), and the clip bounds are still in seconds."""
    text = "Some mornings the whole cluster is quiet, and then at nine everyone arrives at once."
    out = await speech.run(_task("tts:0", text=text, speaker_index=0, fps=24.0, max_clip_s=2.0,
                                 first_clip_s=1.0, pause_after_s=0.35), TaskContext(bus=bus, instance="t"))
    assert out["sample_rate"] == WIDE_RATE == 48000 and out["samples"] % 2000 == 0
    clips = out["clips"]
    assert clips[0][0] == 0 and clips[-1][1] == out["samples"] and len(clips) >= 2
    assert clips[0][1] <= 1.0 * WIDE_RATE and all(b - a <= 2.0 * WIDE_RATE and a % 2000 == 0 for a, b in clips)
    pcm = np.frombuffer(await bus.get_blob(out["audio"]), dtype="<i2")
    assert len(pcm) == out["samples"] and np.abs(pcm).max() > 1000
    assert np.abs(pcm[-int(0.3 * WIDE_RATE):]).max() == 0                  # the pause after the line
    # the same words at 25 fps (22 050 Hz) last as long: to within piper's run-to-run variation
    # (its sampling noise: up to 0.25 s in 5 s seen in CI), far from the factor 2.18 of a
    # mislabelled rate
    ref = await speech.run(_task("tts:1", text=text, speaker_index=0, fps=25.0, max_clip_s=2.0,
                                 pause_after_s=0.35), TaskContext(bus=bus, instance="t"))
    assert out["samples"] / WIDE_RATE == pytest.approx(ref["samples"] / SAMPLE_RATE, rel=0.12)


async def test_an_fps_with_no_whole_samples_per_frame_is_rejected(bus, speech):
    with pytest.raises(TaskError, match="fps 23 is not supported") as info:
        await speech.run(_task("tts:0", text="Hi.", speaker_index=0, fps=23.0, max_clip_s=3.5),
                         TaskContext(bus=bus, instance="t"))
    assert not info.value.retryable


def test_show_audio_rate():
    assert [show_audio_rate(f) for f in (25, 30, 50, 10, 7)] == [SAMPLE_RATE] * 5
    assert [show_audio_rate(f) for f in (24, 48, 60, 40)] == [WIDE_RATE] * 4
    for bad in (23, 29.97, 23.976):
        with pytest.raises(ValueError, match="not supported"):
            show_audio_rate(bad)


def test_pad_to_frames_and_clip_ranges():
    audio = np.ones(1000, np.int16)
    padded = pad_to_frames(audio, 0.1, 882)
    assert len(padded) == 4 * 882 and padded[:1000].all() and not padded[1000:].any()   # 1000 + 2205 -> 4 frames
    ranges = clip_ranges(np.ones(20 * 882, np.int16), 0.2, 882, first_clip_s=0.08)
    assert ranges[0] == (0, 2 * 882) and ranges[-1][1] == 20 * 882
    assert all(b - a <= 5 * 882 for a, b in ranges)


def test_the_still_rung_draws_fewer_frames_and_the_mux_holds_each():
    """A clip at the `still` rung (hold 12 at 25 fps) is 1/12 of the frames drawn; the mux's
    expansion gives back exactly the clip's frame count, each drawn frame held 12 times."""
    import numpy as np

    from streamwise.stages.art.head import HeadAnimator
    from streamwise.stages.art.portrait import render_person_layers
    from streamwise.stages.art.studio import render_studio
    from streamwise.stages.cpu.media import decode_clip
    from streamwise.stages.cpu.talking_head import CpuTalkingHead

    lay = render_person_layers(render_studio(640, 400, title="T", description="d", seed=1), name="Ada",
                               speaker_index=0)
    animator = HeadAnimator(np.asarray(lay.image), lay.layout, person=np.asarray(lay.person),
                            backdrop=np.asarray(lay.backdrop))       # a moving head: the hardest case
    rate, fps = 22050, 25.0
    t = np.arange(int(rate * 2.0)) / rate
    audio = (8000 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.int16)
    inputs = {"sample_rate": rate, "sample_from": 0, "sample_to": len(audio), "subtitle": "Hello there", "speaker": "Ada"}
    full = decode_clip(CpuTalkingHead._render(animator, audio, inputs, fps))
    held = decode_clip(CpuTalkingHead._render(animator, audio, inputs, fps, hold=12))
    assert len(full) == 50 and len(held) == 5            # ceil(50 / 12) drawn frames
    expanded = np.repeat(held, 12, axis=0)[:50]
    assert expanded.shape == full.shape
    assert all((expanded[i] == expanded[i - i % 12]).all() for i in range(50))


async def test_the_mux_passes_still_clips_through_and_encodes_any_other_again(bus):
    """The mux stage on the real bus: a segment made only of `still` clips (IDRs in the stream's
    encoding) carries their frames bit for bit, held by repeat frames; a segment that also
    takes an ultrafast intermediate clip (the static rung's) is decoded and encoded again, and
    both keep the stream's init and timing."""
    import uuid

    from streamwise.bus import subjects
    from streamwise.bus.codec import decode
    from streamwise.bus.messages import Segment
    from streamwise.stages.cpu import media, passthrough
    from streamwise.stages.cpu.mux import PyavMux

    yy, xx = np.mgrid[0:400, 0:640]
    drawn = np.stack([np.dstack([(xx + 9 * i) % 256, (yy + 5 * i) % 256, (xx // 2 + 3 * i) % 256]).astype(np.uint8)
                      for i in range(5)])
    still = await bus.put_blob(f"t/{uuid.uuid4().hex}/still.mp4", passthrough.encode_stream_clip(drawn, 25.0, 12))
    plain = await bus.put_blob(f"t/{uuid.uuid4().hex}/plain.mp4", media.encode_clip(np.repeat(drawn, 4, axis=0), 25.0))
    t = np.arange(3 * 22050) / 22050
    pcm = await bus.put_blob(f"t/{uuid.uuid4().hex}/a.pcm", (8000 * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes())
    mux = PyavMux()
    request = f"mux{uuid.uuid4().hex[:8]}"
    common = {"start_s": 0.4, "duration_s": 2.0, "final": False, "fps": 25.0, "sample_rate": 22050, "tenant": "t",
              "width": 640, "height": 400, "preroll_samples": 4410,
              "audio": [[pcm, 8820 - 4410, 8820 + 44100]]}
    ctx = TaskContext(bus=bus, instance="t")
    for index, video in ((0, [[still, 10, 60, 12]]), (1, [[still, 10, 40, 12], [plain, 0, 20]])):
        task = Task(task_id=f"{request}.seg:{index}.1-0", request_id=request, tenant="t", node_id=f"seg:{index}",
                    stage="mux", model="pyav-fmp4", deadline=0.0, inputs={**common, "index": index, "video": video})
        await mux.run(task, ctx)
    sub = await bus.js.subscribe(subjects.segments("t", request), stream=subjects.STREAM_SEGMENTS, ordered_consumer=True)
    segs = [decode((await sub.next_msg(timeout=5)).data, Segment) for _ in range(2)]
    await sub.unsubscribe()
    reference = media.decode_clip(passthrough.encode_stream_clip(drawn, 25.0, 12))
    passed, mixed = (media.decode_clip(s.data) for s in segs)
    held = np.repeat(reference, 12, axis=0)
    assert passed.shape == (50, 400, 640, 3) and (passed == held[10:60]).all()   # the clip's own pictures
    assert mixed.shape == (30 + 20, 400, 640, 3)           # 30 held frames then the 20 plain ones, encoded again
    assert not (mixed[0] == held[10]).all() and np.abs(mixed[:30].astype(int) - held[10:40]).mean() < 8
    inits = {media.split_init(s.data)[0] for s in segs}
    assert len(inits) == 1
    for s in segs:
        assert fragments_video(media.split_init(s.data)[1]) == (int(0.4 * 90000), 2 * 90000)


def fragments_video(media_part: bytes) -> tuple[int, int]:
    """(tfdt, summed sample durations) of the video track (id 1) of a one-fragment media part."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_media import fragments

    (only,) = fragments(media_part)[1]
    return only
