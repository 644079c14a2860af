"""Tests for streamwise.stages.cpu.media and streamwise.client.hls with real encoders (PyAV: libx264 + native AAC).

Segments are built the way the mux stage builds them: a synthetic moving video at 25 fps and a continuous
440 Hz sine at 22050 Hz, cut into 2 s spans, each encoded independently with the previous 0.2 s as preroll.
"""

from __future__ import annotations

import io
import math
import struct
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from streamwise.client.hls import HlsWriter
from streamwise.stages.cpu import media, passthrough

FPS = 25
SR = 22050
OUT_SR = 44100
AMP = 0.3  # sine amplitude, full scale


# ----------------------------------------------------------------------------- helpers


def moving_video(f0: int, n: int, w: int = 640, h: int = 400) -> np.ndarray:
    """uint8 (n, h, w, 3): gradients moving with the absolute frame index f0 + i."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        f = f0 + i
        out[i, ..., 0] = (xx + 4 * f) % 256
        out[i, ..., 1] = (yy + 2 * f) % 256
        out[i, ..., 2] = (xx // 2 + yy // 2 + 3 * f) % 256
    return out


def sine(n: int, sr: int = SR) -> np.ndarray:
    """int16 (n,): 440 Hz at ``sr`` Hz, absolute from sample 0."""
    t = np.arange(n) / sr
    return np.round(AMP * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def build_segments(frames_per_seg: list[int], w: int = 640, h: int = 400, out_sr: int = OUT_SR,
                   fps: int = FPS, sr: int = SR) -> tuple[list[bytes], list[float]]:
    """Encode consecutive segments (frame counts given) independently, as separate mux tasks would
    (``fps`` video, ``sr`` Hz input audio)."""
    total = sum(frames_per_seg)
    audio = sine(total * sr // fps, sr)
    preroll = int(media.AUDIO_PREROLL_S * sr)
    segs, durs, f0 = [], [], 0
    for k, n in enumerate(frames_per_seg):
        s0, s1 = f0 * sr // fps, (f0 + n) * sr // fps
        frames = moving_video(f0, n, w, h)
        t0 = time.perf_counter()
        seg = media.encode_segment(
            frames, audio[s0:s1], fps=fps, sample_rate=sr, start_s=f0 / fps,
            audio_preroll=audio[max(0, s0 - preroll):s0] if s0 else None, audio_rate_out=out_sr,
            final=k == len(frames_per_seg) - 1)
        print(f"encode_segment {w}x{h} {n} frames: {time.perf_counter() - t0:.3f} s, {len(seg)} bytes")
        segs.append(seg)
        durs.append(n / fps)
        f0 += n
    return segs, durs


CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"moof", b"traf", b"mvex"}


def walk(data: bytes, off: int = 0, end: int | None = None, path: str = ""):
    """Yield (path, body) for every ISO-BMFF box, descending into container boxes."""
    end = len(data) if end is None else end
    while off + 8 <= end:
        size, typ = struct.unpack_from(">I4s", data, off)
        hdr = 8
        if size == 1:
            size, hdr = struct.unpack_from(">Q", data, off + 8)[0], 16
        assert size >= 8 and off + size <= end, "malformed box"
        p = f"{path}/{typ.decode()}"
        yield p, data[off + hdr:off + size]
        if typ in CONTAINERS:
            yield from walk(data, off + hdr, off + size, p)
        off += size


def full_box(body: bytes) -> tuple[int, int, bytes]:
    return body[0], int.from_bytes(body[1:4], "big"), body[4:]


def timescales(init: bytes) -> list[int]:
    out = []
    for p, body in walk(init):
        if p.endswith("/mdhd"):
            v, _, b = full_box(body)
            out.append(struct.unpack_from(">I", b, 16 if v == 1 else 8)[0])
    return out


def fragments(media_part: bytes) -> dict[int, list[tuple[int, int]]]:
    """track_id -> [(tfdt, summed sample durations)] per traf (durations from trun, else tfhd default)."""
    res: dict[int, list[tuple[int, int]]] = {}
    for p, body in walk(media_part):
        if not p.endswith("/traf"):
            continue
        track = tfdt = default_dur = None
        total = 0
        for q, b in walk(body):
            v, flags, rest = full_box(b)
            if q == "/tfhd":
                track = struct.unpack_from(">I", rest, 0)[0]
                o = 4 + (8 if flags & 1 else 0) + (4 if flags & 2 else 0)
                if flags & 8:
                    default_dur = struct.unpack_from(">I", rest, o)[0]
            elif q == "/tfdt":
                tfdt = struct.unpack_from(">Q" if v == 1 else ">I", rest, 0)[0]
            elif q == "/trun":
                count = struct.unpack_from(">I", rest, 0)[0]
                o = 4 + (4 if flags & 1 else 0) + (4 if flags & 4 else 0)
                per = sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
                for i in range(count):
                    total += struct.unpack_from(">I", rest, o + i * per)[0] if flags & 0x100 else default_dur
        res.setdefault(track, []).append((tfdt, total))
    return res


def decode_all(data: bytes, out_sr: int = OUT_SR) -> tuple[list[int], np.ndarray, list[tuple[int, int]]]:
    """Decode an MP4: video pts (90 kHz ticks), audio float32 samples, audio (pts, samples) per frame."""
    vpts, audio, aframes = [], [], []
    with av.open(io.BytesIO(data)) as c:
        for frame in c.decode(c.streams.video[0], c.streams.audio[0]):
            if isinstance(frame, av.VideoFrame):
                assert frame.time_base == Fraction(1, media.VIDEO_TIMESCALE)
                vpts.append(frame.pts)
            else:
                assert frame.time_base == Fraction(1, out_sr)
                aframes.append((frame.pts, frame.samples))
                audio.append(frame.to_ndarray()[0])
    return vpts, np.concatenate(audio), aframes


def check_continuous_stream(segs: list[bytes], durs: list[float], out_sr: int = OUT_SR, fps: int = FPS,
                            tail: int = 64) -> None:
    """Container, timestamps, A/V sync and the sine's fidelity across segment boundaries; the last
    ``tail`` output samples (where the loud sine stops abruptly) are left out of the fidelity check."""
    parts = [media.split_init(s) for s in segs]
    inits = {p[0] for p in parts}
    assert len(inits) == 1, "init (ftyp+moov) differs between segments"
    init = parts[0][0]
    assert timescales(init) == [media.VIDEO_TIMESCALE, out_sr]

    # container level: video tfdt == start_s; each track continues exactly where the previous segment ended
    expect = {1: 0, 2: None}
    for (_, part), start in zip(parts, np.cumsum([0.0] + durs[:-1])):
        frags = fragments(part)
        assert frags[1][0][0] == round(start * media.VIDEO_TIMESCALE)
        for track in (1, 2):
            for tfdt, dur in frags[track]:
                if expect[track] is not None:
                    assert tfdt == expect[track], f"track {track} gap/overlap at {start} s"
                expect[track] = tfdt + dur

    # decoder level
    whole = init + b"".join(p[1] for p in parts)
    vpts, audio, aframes = decode_all(whole, out_sr)
    n_frames = round(sum(durs) * fps)
    step = media.VIDEO_TIMESCALE // fps
    assert len(vpts) == n_frames
    assert vpts == [i * step for i in range(n_frames)]
    for (p0, n0), (p1, _) in zip(aframes, aframes[1:]):
        assert p1 == p0 + n0, "audio timestamps not contiguous"
    assert aframes[0][0] == 0
    video_s = n_frames / fps
    audio_s = (aframes[-1][0] + aframes[-1][1]) / out_sr
    assert abs(audio_s - video_s) < 0.05, (audio_s, video_s)

    # A/V sync + clicks: decoded sample at pts t must be the sine at time t (a 1024-sample shift would fail)
    t = np.arange(len(audio)) / out_sr
    ideal = AMP * np.sin(2 * np.pi * 440 * t)
    end = int(video_s * out_sr) - tail
    err = np.abs(audio - ideal)[2048:end]  # the first AAC frame has no priming frame before it
    assert err.max() < 0.02, f"max deviation from the sine {err.max():.4f}"
    normal_step = AMP * 2 * np.pi * 440 / out_sr
    jumps = np.abs(np.diff(audio[2048:end]))
    assert jumps.max() < 1.3 * normal_step, (jumps.max(), normal_step)
    boundaries = (np.cumsum(durs[:-1]) * out_sr).astype(int) - 2048
    near = np.concatenate([err[max(0, b - 4096):b + 4096] for b in boundaries])
    print(f"audio: max err {err.max():.4f} overall, {near.max():.4f} near boundaries; "
          f"max step {jumps.max():.4f} (sine {normal_step:.4f}); audio {audio_s:.3f} s vs video {video_s:.3f} s")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ten_segments() -> tuple[list[bytes], list[float]]:
    return build_segments([50] * 10)


@pytest.fixture(scope="module")
def short_tail_segments() -> tuple[list[bytes], list[float]]:
    return build_segments([50, 50, 18], w=320, h=200)


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("w,h", [(640, 400), (320, 200), (321, 201)])
def test_clip_roundtrip(w: int, h: int) -> None:
    frames = moving_video(0, 30, w, h)
    t0 = time.perf_counter()
    data = media.encode_clip(frames, FPS)
    dt = time.perf_counter() - t0
    out = media.decode_clip(data)
    print(f"encode_clip {w}x{h}: {len(frames) / dt:.0f} fps, {len(data)} bytes")
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.abs(out.astype(np.int16) - frames).mean() < 3


def test_clip_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        media.encode_clip(np.zeros((4, 8, 8), np.uint8), FPS)
    with pytest.raises(ValueError):
        media.encode_clip(np.zeros((4, 8, 8, 3), np.float32), FPS)


def test_segments_play_alone(ten_segments) -> None:
    segs, durs = ten_segments
    for k, seg in enumerate(segs):
        info = media.probe(seg)
        assert info["video_frames"] == 50 and info["fps"] == FPS
        assert (info["width"], info["height"]) == (640, 400)
        assert info["audio_rate"] == OUT_SR and info["audio_samples"] > 1.9 * OUT_SR
        assert info["start_s"] == pytest.approx(2.0 * k, abs=1e-6)
        assert info["duration_s"] == pytest.approx(2.0, abs=1e-6)


def test_segments_form_one_continuous_stream(ten_segments) -> None:
    check_continuous_stream(*ten_segments)


def test_short_last_segment_small_size(short_tail_segments) -> None:
    segs, durs = short_tail_segments
    assert media.probe(segs[-1])["video_frames"] == 18
    assert media.probe(segs[-1])["duration_s"] == pytest.approx(0.72, abs=1e-6)
    check_continuous_stream(segs, durs)


def test_48k_output_rate() -> None:
    segs, durs = build_segments([50, 37, 13], w=320, h=200, out_sr=48000)
    check_continuous_stream(segs, durs, out_sr=48000)


def test_24_fps_show_with_48k_audio_is_one_continuous_stream() -> None:
    """A 24 fps show's speech is at 48 kHz (a frame is 2,000 samples; 22 050 Hz has no whole
    number per frame): resampled down to the AAC rate, the segments still join without gap or click."""
    segs, durs = build_segments([48, 37, 11], w=320, h=200, fps=24, sr=48000)
    # the abrupt end of the full-band 48 kHz sine rings over the last AAC frame (measured: up to
    # 0.03 within 512 samples of the end, vs < 0.002 elsewhere); boundaries are checked as usual
    check_continuous_stream(segs, durs, fps=24, tail=media.AAC_FRAME)


def test_split_init_rejects_non_fmp4() -> None:
    with pytest.raises(ValueError):
        media.split_init(b"not an mp4 at all")
    with pytest.raises(ValueError):
        media.split_init(media.encode_clip(moving_video(0, 2, 64, 64), FPS))  # regular, non-fragmented MP4


def test_concat_segments(ten_segments, tmp_path: Path) -> None:
    segs, _ = ten_segments
    init = media.split_init(segs[0])[0]
    out = tmp_path / "podcast.mp4"
    media.concat_segments(init, [media.split_init(s)[1] for s in segs], out)
    info = media.probe(out)
    assert info["duration_s"] == pytest.approx(20.0, abs=0.01)
    assert info["video_frames"] == 500 and info["audio_rate"] == OUT_SR
    assert info["audio_duration_s"] == pytest.approx(20.0, abs=0.05)
    top = [p for p, _ in walk(out.read_bytes()) if p.count("/") == 1]
    assert "/moof" not in top and top.index("/moov") < top.index("/mdat"), top  # regular + faststart


def parse_playlist(text: str) -> tuple[dict[str, str], list[tuple[float, str]], bool]:
    lines = text.strip().splitlines()
    assert lines[0] == "#EXTM3U"
    tags, segs, ended, dur = {}, [], False, None
    for line in lines[1:]:
        if line.startswith("#EXTINF:"):
            dur = float(line[8:].split(",")[0])
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif line.startswith("#"):
            key, _, val = line[1:].partition(":")
            tags[key] = val
        else:
            assert dur is not None
            segs.append((dur, line))
            dur = None
    return tags, segs, ended


@pytest.mark.parametrize("which", ["ten", "tail"])
def test_hls_writer(which, ten_segments, short_tail_segments, tmp_path: Path) -> None:
    segs, durs = ten_segments if which == "ten" else short_tail_segments
    hls = HlsWriter(tmp_path / "hls", target_duration_s=2.0)
    for k, (seg, d) in enumerate(zip(segs, durs)):
        name = hls.add(k, seg, d)
        tags, listed, ended = parse_playlist((tmp_path / "hls" / "index.m3u8").read_text())
        assert tags["EXT-X-PLAYLIST-TYPE"] == "EVENT" and not ended
        assert listed[-1][1] == name and len(listed) == k + 1
    with pytest.raises(ValueError):
        hls.add(len(segs) + 3, segs[0], 2.0)
    hls.close()
    tags, listed, ended = parse_playlist((tmp_path / "hls" / "index.m3u8").read_text())
    assert ended and tags["EXT-X-PLAYLIST-TYPE"] == "VOD"
    assert tags["EXT-X-VERSION"] == "7" and tags["EXT-X-MAP"] == 'URI="init.mp4"'
    assert int(tags["EXT-X-TARGETDURATION"]) == math.ceil(max(durs))
    assert sum(d for d, _ in listed) == pytest.approx(sum(durs), abs=1e-6)
    d = tmp_path / "hls"
    assert (d / "init.mp4").read_bytes() == media.split_init(segs[0])[0]
    assert all((d / name).stat().st_size > 0 for _, name in listed)
    assert not [p for p in d.iterdir() if p.name.startswith(".")], "temporary files left behind"
    # what a player fetches (init + segments) decodes as one continuous stream
    whole = (d / "init.mp4").read_bytes() + b"".join((d / n).read_bytes() for _, n in listed)
    assert media.probe(whole)["video_frames"] == round(sum(durs) * FPS)


def test_encode_segment_rejects_odd_size() -> None:
    with pytest.raises(ValueError):
        media.encode_segment(np.zeros((2, 201, 320, 3), np.uint8), np.zeros(1764, np.int16), fps=FPS,
                             sample_rate=SR, start_s=0.0)


def test_encode_segment_warns_without_preroll() -> None:
    with pytest.warns(RuntimeWarning, match="audio_preroll"):
        media.encode_segment(np.zeros((5, 64, 64, 3), np.uint8), np.zeros(5 * SR // FPS, np.int16), fps=FPS,
                             sample_rate=SR, start_s=2.0)


def test_held_frames_are_encoded_once_and_repeated_bit_for_bit() -> None:
    """A frame held for several stream frames (``repeats``) is encoded once, as an IDR, then
    repeated by cached skip frames: the segment keeps 25 fps, N frames starting at start_s, the
    same init as a plain one, and every repeat decodes to exactly its held frame."""
    drawn = moving_video(0, 5)
    audio = sine(2 * SR)
    held = media.encode_segment(drawn, audio[SR:], fps=FPS, sample_rate=SR, start_s=1.0, audio_preroll=audio[:SR],
                                repeats=[12, 12, 12, 12, 2])
    plain = media.encode_segment(np.repeat(drawn, [12, 12, 12, 12, 2], axis=0), audio[SR:], fps=FPS, sample_rate=SR,
                                 start_s=1.0, audio_preroll=audio[:SR])
    (i_held, m_held), (i_plain, m_plain) = media.split_init(held), media.split_init(plain)
    assert i_held == i_plain
    assert fragments(m_held)[1] == fragments(m_plain)[1] == [(90000, 90000 * 50 // FPS)]
    info = media.probe(held)
    assert (info["video_frames"], info["fps"], info["duration_s"]) == (50, FPS, pytest.approx(2.0))
    decoded = media.decode_clip(held)
    assert all((decoded[i] == decoded[12 * (i // 12)]).all() for i in range(50))
    assert np.abs(decoded[::12].astype(int) - drawn).mean() < 4     # the held pictures themselves
    assert len(held) < len(plain)
    assert all(len(p) < 64 for p in passthrough.repeat_frames(640, 400, float(FPS), 11))
    with pytest.raises(ValueError):
        media.encode_segment(drawn, audio, fps=FPS, sample_rate=SR, start_s=0.0, repeats=[12, 12, 0, 12, 2])


def test_still_rung_clips_pass_into_the_stream_unchanged(tmp_path: Path) -> None:
    """A clip encoded with the stream's own settings, every frame an IDR (the `still` rung's), has
    the segments' avcC; its access units muxed as they are make segments with the same init, the
    right tfdt and durations, and frames bit-identical to the clip's (held by repeat frames), which
    join into one 25 fps file.
    An ultrafast intermediate clip (P-frames, other parameters) cannot be passed through."""
    drawn = moving_video(0, 9)
    clip = passthrough.encode_stream_clip(drawn, FPS, hold=12)
    avcc, packets = passthrough.clip_packets(clip)
    assert avcc == passthrough.stream_avcc(640, 400, float(FPS)) and len(packets) == 9
    assert passthrough.clip_packets(media.encode_clip(drawn, 2.0)) is None
    assert passthrough.clip_packets(b"not a clip") is None
    audio = sine(5 * SR)
    preroll = int(media.AUDIO_PREROLL_S * SR)
    # segments of 25, 50 and 33 stream frames over the 9 drawn frames held 12 (108 frames)
    bounds, segs, f0 = [25, 50, 33], [], 0
    for k, n in enumerate(bounds):
        first, last = f0 // 12, (f0 + n - 1) // 12
        starts = np.arange(first, last + 1) * 12
        reps = np.minimum(starts + 12, f0 + n) - np.maximum(starts, f0)
        s0 = f0 * SR // FPS
        segs.append(media.encode_segment(
            media.StreamPackets(packets[first:last + 1], 640, 400), audio[s0:s0 + n * SR // FPS], fps=FPS,
            sample_rate=SR, start_s=f0 / FPS, audio_preroll=audio[max(0, s0 - preroll):s0] if s0 else None,
            repeats=reps, final=k == len(bounds) - 1))
        f0 += n
    reference = media.encode_segment(drawn[:1], audio[:SR], fps=FPS, sample_rate=SR, start_s=0.0)
    inits = {media.split_init(s)[0] for s in segs} | {media.split_init(reference)[0]}
    assert len(inits) == 1
    f0 = 0
    for seg, n in zip(segs, bounds):
        assert fragments(media.split_init(seg)[1])[1] == [(f0 * 90000 // FPS, n * 90000 // FPS)]
        f0 += n
    out = tmp_path / "still.mp4"
    media.concat_segments(inits.pop(), [media.split_init(s)[1] for s in segs], out)
    frames = media.decode_clip(out.read_bytes())
    expected = np.repeat(media.decode_clip(clip), 12, axis=0)     # the clip's own pictures, each 12 times
    assert frames.shape == expected.shape and (frames == expected).all()
    info = media.probe(out)
    assert info["start_s"] == 0.0 and info["audio_duration_s"] == pytest.approx(108 / FPS, abs=0.05)
