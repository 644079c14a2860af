"""Media I/O for StreamWise: intermediate clips, fMP4 stream segments, concatenation, probing.

All work happens in memory with PyAV (FFmpeg: libx264 + the native AAC encoder).

Stream continuity (why segments encoded by independent tasks concatenate into ONE stream):

* Video: every segment is a fresh libx264 encoder with identical settings (fixed keyint, no scene cut, no
  B-frames, SPS/PPS in avcC) so it starts with an IDR and all init segments are byte-identical. Frame pts are
  absolute; the mp4 muxer keeps them with ``movflags=+frag_discont``, ``use_editlist=0`` and
  ``avoid_negative_ts=disabled``, so the first ``tfdt`` of each segment is ``start_s`` in a fixed 90 kHz timescale.
* Audio: AAC packets live on one global grid (packet pts = multiple of 1024 samples at the output rate,
  absolute from stream time 0). The native encoder's packet at pts P depends on input up to P + 2560
  (2048-sample MDCT window + 512 lookahead). A segment owning audio up to sample E therefore keeps exactly the
  packets with P <= E - 2560 - margin (margin = resampler filter reach); the next segment encodes its preroll +
  audio and keeps the packets after that threshold. Each boundary packet is thus encoded from real signal on both
  sides, MDCT aliasing cancels across segments, and no click or gap appears. Audio timestamps equal the real time
  of the samples (packets with pts < 0, i.e. the encoder priming, are dropped), so A/V sync is exact and does not
  drift. Consequence: a segment's audio track ends ~60-80 ms before its video; pass ``final=True`` for the last
  segment of the show to flush the tail.
* Resampling (e.g. 22050 -> 44100 Hz) is a stateless windowed-sinc evaluated at absolute sample positions, so
  two segments compute identical samples around their common boundary.
"""

from __future__ import annotations

import functools
import io
import math
import os
import shutil
import struct
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = [
    "AUDIO_PREROLL_S",
    "StreamPackets",
    "VIDEO_TIMESCALE",
    "concat_files",
    "concat_segments",
    "decode_clip",
    "encode_clip",
    "encode_segment",
    "probe",
    "split_init",
]

VIDEO_TIMESCALE = 90000  # mp4 video track timescale, identical for every segment (ticks per second)
AAC_FRAME = 1024  # samples per AAC-LC frame
AAC_BITRATE = 96000  # bit/s, mono
# the native encoder's quantiser search: "fast" (constant quantiser; FFmpeg's docs: "better and much
# faster at higher bitrates", and 96 kbit/s mono is one) costs 13 ms of CPU per 2 s at 44.1 kHz on the
# development VM where the default "twoloop" costs 65 ms: most of a still-rung segment's encode
AAC_CODER = "fast"
AUDIO_PREROLL_S = 0.2  # recommended audio_preroll length in seconds (>= 2048 samples at 22050 Hz works)
_AAC_REACH = 2560  # packet at pts P depends on encoder input up to P + 2560 (window 2048 + lookahead 512)
_AAC_WARM_FRAMES = 4  # frames fed before the first kept packet; the first of them is silent (see encode_segment)
_RS_HALF = 16  # resampler half-length in input samples (when upsampling)
_RS_BETA = 8.0  # Kaiser window shape
_RS_CUTOFF = 0.95  # fraction of the lower Nyquist frequency

_CLIP_X264 = {"preset": "ultrafast", "tune": "zerolatency", "crf": "16", "bf": "0"}
SEGMENT_PRESET = "superfast"  # x264 preset for stream segments (veryfast: ~25% smaller, ~1.5x slower)
_SEG_X264 = {
    "preset": SEGMENT_PRESET,
    "tune": "zerolatency",
    "crf": "23",
    "profile": "high",
    "bf": "0",
    "g": "1000",  # fixed (not per segment) so every SPS is identical; each segment starts a fresh IDR anyway
    "keyint_min": "1000",
    "sc_threshold": "0",
    "x264-params": "scenecut=0:repeat-headers=0:colorprim=smpte170m:transfer=smpte170m:colormatrix=smpte170m",
}
_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+frag_discont+skip_trailer"


def _rate(fps: float) -> Fraction:
    if not fps or fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    return Fraction(fps).limit_denominator(1001)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"frames must be (N,H,W,3) with N >= 1, got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    return frames


# --------------------------------------------------------------------------- intermediate clips


def encode_clip(frames: np.ndarray, fps: float) -> bytes:
    """Encode an intermediate clip (no audio): near-lossless, fast H.264 in MP4.

    frames: uint8 (N, H, W, 3) RGB, N >= 1. fps: frames per second (> 0).
    Uses libx264 ultrafast, crf 16, yuv420p (yuv444p when H or W is odd). Returns the MP4 file bytes.
    Raises ValueError on a bad shape/dtype or fps.
    """
    frames = _check_frames(frames)
    n, h, w, _ = frames.shape
    rate = _rate(fps)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=rate, options=dict(_CLIP_X264))
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv420p" if (w % 2 == 0 and h % 2 == 0) else "yuv444p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return buf.getvalue()


@dataclass(frozen=True)
class StreamPackets:
    """H.264 access units (MP4 sample bytes, length-prefixed NAL units) that are each an IDR
    frame encoded with the stream's own settings and size (:func:`~.passthrough.encode_stream_clip`), so
    :func:`encode_segment` can mux them as they are instead of encoding frames."""

    packets: list
    width: int
    height: int


def decode_clip(data: bytes) -> np.ndarray:
    """Decode a clip made by :func:`encode_clip` into uint8 (N, H, W, 3) RGB with exactly the N encoded frames.

    Raises ValueError when the data holds no video frames (av.error.InvalidDataError on unreadable data)."""
    with av.open(io.BytesIO(data), "r") as inp:
        if not inp.streams.video:
            raise ValueError("clip has no video stream")
        vs = inp.streams.video[0]
        vs.thread_type = "AUTO"
        out = [f.to_ndarray(format="rgb24") for f in inp.decode(vs)]
    if not out:
        raise ValueError("clip has no video frames")
    return np.stack(out)


def scale_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale RGB frames to ``width`` x ``height`` pixels with swscale's Lanczos filter (PyAV).

    frames: uint8 (N, H, W, 3). Returns uint8 (N, height, width, 3); the input itself when it
    already has that size. Used to keep one resolution per stream: a clip rendered at a lower
    quality rung is brought to the stream's size before muxing (StreamWise design, "adaptive
    quality": output upscaled so one stream keeps one resolution).
    Raises ValueError on a bad shape/dtype or a non-positive size.
    """
    frames = _check_frames(frames)
    if width <= 0 or height <= 0:
        raise ValueError(f"scale_frames: size {width}x{height} must be positive")
    if frames.shape[1:3] == (height, width):
        return frames
    out = np.empty((len(frames), height, width, 3), np.uint8)
    for i, f in enumerate(frames):
        out[i] = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(
            width=width, height=height, format="rgb24", interpolation="LANCZOS").to_ndarray()
    return out


# --------------------------------------------------------------------------- audio helpers


def _resample(x: np.ndarray, a0: int, rate_in: int, rate_out: int, j0: int, j1: int) -> np.ndarray:
    """Stateless windowed-sinc resampling at absolute positions.

    x: float32 input samples whose first sample has absolute index a0 (at rate_in); samples outside x are zero.
    Returns float32 output samples with absolute indices j0..j1-1 (at rate_out): y[j] = x(j * rate_in / rate_out).
    """
    n = j1 - j0
    if n <= 0:
        return np.zeros(0, np.float32)
    if rate_in == rate_out:
        y = np.zeros(n, np.float32)
        lo, hi = max(j0, a0), min(j1, a0 + len(x))
        if hi > lo:
            y[lo - j0 : hi - j0] = x[lo - a0 : hi - a0]
        return y
    table, half = _rs_table(rate_in, rate_out)
    g = math.gcd(rate_in, rate_out)
    j = np.arange(j0, j1, dtype=np.int64)
    num = j * rate_in
    base = num // rate_out
    phase = (num % rate_out) // g
    # rows[i] = input samples base[i]-half+1 .. base[i]+half, zero outside x
    first = int(base[0]) - half + 1
    pad = np.zeros(int(base[-1]) + half + 1 - first, np.float32)
    lo, hi = max(a0, first), min(a0 + len(x), first + len(pad))
    if hi > lo:
        pad[lo - first : hi - first] = x[lo - a0 : hi - a0]
    if rate_in == g and rate_out // g <= 8:
        # an integer upsampling factor L (22050 -> 44100 Hz: L = 2): one correlation per phase over the padded
        # input, then each output picks its phase and base (the same taps as below, ~5x less CPU)
        corr = np.stack([np.correlate(pad, table[p], mode="valid") for p in range(rate_out // g)])
        return corr[phase, base - base[0]].astype(np.float32, copy=False)
    rows = np.lib.stride_tricks.sliding_window_view(pad, 2 * half)[base - base[0]]
    return np.einsum("ij,ij->i", rows, table[phase]).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _rs_table(rate_in: int, rate_out: int) -> tuple[np.ndarray, int]:
    """Kaiser-windowed sinc kernels, one row per output phase: (rate_out/gcd, 2*half) float32, and half."""
    g = math.gcd(rate_in, rate_out)
    fc = min(1.0, rate_out / rate_in) * _RS_CUTOFF
    half = int(math.ceil(_RS_HALF / min(1.0, rate_out / rate_in)))
    m = np.arange(-half + 1, half + 1)
    frac = (np.arange(rate_out // g) * g) / rate_out
    t = frac[:, None] - m[None, :]  # u - n, in input samples
    win = np.i0(_RS_BETA * np.sqrt(np.clip(1.0 - (t / half) ** 2, 0.0, None))) / np.i0(_RS_BETA)
    return (fc * np.sinc(fc * t) * win).astype(np.float32), half


def _rs_margin(rate_in: int, rate_out: int) -> int:
    """Output samples at the end of the available input that the resampler cannot compute exactly."""
    if rate_in == rate_out:
        return 0
    half = int(math.ceil(_RS_HALF / min(1.0, rate_out / rate_in)))
    return int(math.ceil((half + 1) * rate_out / rate_in))


# --------------------------------------------------------------------------- segments


def encode_segment(
    frames: "np.ndarray | StreamPackets",
    audio: np.ndarray,
    *,
    fps: float,
    sample_rate: int,
    start_s: float,
    audio_preroll: np.ndarray | None = None,
    audio_rate_out: int = 44100,
    final: bool = False,
    repeats: "np.ndarray | list[int] | None" = None,
) -> bytes:
    """Encode one fMP4 media segment (H.264 + AAC mono) for the playback span [start_s, start_s + N/fps).

    frames: uint8 (M, H, W, 3) RGB, H and W even; the same size for every segment of a stream. Or a
        :class:`StreamPackets`: M frames already encoded as IDRs with the stream's settings and size, muxed as they
        are (no decode, no encode: the CPU `still` rung's clips).
    repeats: optional (M,) ints >= 1, how many stream frames (1/fps each) ``frames[i]`` stands for; N is
        their sum (default: each frame once, N = M). A held frame is encoded ONCE, as an IDR followed by
        ``repeats[i] - 1`` cached frames that repeat it (:func:`~.passthrough.repeat_frames`), instead of being encoded
        ``repeats[i]`` times: a rung that draws two frames a second costs the encoder two frames a second, and
        the stream keeps its constant frame rate.
    audio: int16 mono samples at sample_rate Hz covering the span: N*sample_rate/fps samples (padded with
        zeros / trimmed when off by rounding).
    fps: video frame rate (frames/s). sample_rate: input audio rate (Hz). start_s: span start (seconds, on the
        frame grid), absolute in the stream timeline.
    audio_preroll: int16 mono samples (sample_rate Hz) immediately BEFORE start_s; use >= AUDIO_PREROLL_S seconds
        (at least 2048 samples at 22050 Hz). None at the stream start (silence is assumed before 0).
    audio_rate_out: AAC sample rate (Hz). final: True for the last segment of the stream, which flushes the AAC
        encoder so the audio tail is kept; otherwise the last ~60-80 ms of audio are left to the next segment.

    Returns a complete fMP4 file (ftyp + moov + moof + mdat) that plays on its own; its init part is identical
    for all segments with the same size/fps/rates, and its timestamps are absolute (video tfdt = start_s), so
    init + the media parts of consecutive segments form one continuous fragmented MP4.
    Raises ValueError on bad shapes, dtypes, odd sizes or negative start_s.
    """
    if isinstance(frames, StreamPackets):
        m, h, w = len(frames.packets), frames.height, frames.width
        if not m:
            raise ValueError("frames: no packets")
    else:
        frames = _check_frames(frames)
        m, h, w, _ = frames.shape
    if repeats is None:
        reps = np.ones(m, np.int64)
    else:
        reps = np.asarray(repeats, np.int64).reshape(-1)
        if len(reps) != m or (reps < 1).any():
            raise ValueError(f"repeats: expected {m} counts >= 1, got {reps.tolist()[:8]}")
    n = int(reps.sum())
    if w % 2 or h % 2:
        raise ValueError(f"frame size must be even for yuv420p, got {w}x{h}")
    if start_s < 0:
        raise ValueError(f"start_s must be >= 0, got {start_s}")
    rate = _rate(fps)
    ri, ro = int(sample_rate), int(audio_rate_out)
    f0 = round(start_s * rate)

    # ---- audio: absolute sample indices, input rate
    i0 = round(start_s * ri)
    n_in = round(n * ri / rate)
    a = np.asarray(audio).reshape(-1)
    if a.dtype != np.int16:
        raise ValueError(f"audio must be int16, got {a.dtype}")
    a = a[:n_in] if len(a) >= n_in else np.concatenate([a, np.zeros(n_in - len(a), np.int16)])
    pre = np.zeros(0, np.int16) if audio_preroll is None else np.asarray(audio_preroll, np.int16).reshape(-1)
    pre = pre[len(pre) - min(len(pre), i0) :]  # nothing before stream time 0
    x = np.concatenate([pre, a]).astype(np.float32) / 32768.0
    a0 = i0 - len(pre)
    end_in = i0 + n_in

    margin = _AAC_REACH + _rs_margin(ri, ro)
    lo = (i0 * ro) // ri - margin  # keep packets with lo < pts <= hi
    hi = (end_in * ro) // ri - margin
    p_first = max(0, (lo // AAC_FRAME + 1) * AAC_FRAME)
    s_enc = p_first - _AAC_WARM_FRAMES * AAC_FRAME
    need = -(-(((i0 * ro) // ri - p_first + _rs_margin(ri, ro)) * ri) // ro)  # input samples before start_s
    if len(pre) < min(need, i0):
        warnings.warn(f"encode_segment(start_s={start_s}): audio_preroll has {len(pre)} samples, {need} needed "
                      "for a seamless boundary (pass >= AUDIO_PREROLL_S s); expect a dropout there",
                      RuntimeWarning, stacklevel=2)
    if final:
        j_end = -(-((end_in * ro) // ri + 1) // AAC_FRAME) * AAC_FRAME
    else:
        j_end = (hi // AAC_FRAME) * AAC_FRAME + 3 * AAC_FRAME  # packet P is emitted after frame P + 2048
    pcm = _resample(x, a0, ri, ro, s_enc, j_end)
    # Start the encoder on a silent frame: the native encoder's rate control ends up in a markedly worse state
    # (5-10x larger error on a sine) when its very first frame is loud. Only dropped packets see this frame.
    pcm[:AAC_FRAME] = 0.0

    buf = io.BytesIO()
    opts = {
        "movflags": _MOVFLAGS,
        "use_editlist": "0",
        "avoid_negative_ts": "disabled",
        "video_track_timescale": str(VIDEO_TIMESCALE),
        "fragment_index": str(f0 + 1),
    }
    with av.open(buf, "w", format="mp4", options=opts) as out:
        vs = out.add_stream("libx264", rate=rate, options=dict(_SEG_X264))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream("aac", rate=ro, layout="mono")
        aus.bit_rate = AAC_BITRATE
        aus.codec_context.options = {"aac_coder": AAC_CODER}
        aus.codec_context.format = "fltp"
        aus.codec_context.time_base = Fraction(1, ro)

        apk = []
        tb = Fraction(1, ro)
        for k in range(0, len(pcm), AAC_FRAME):
            fr = av.AudioFrame.from_ndarray(pcm[None, k : k + AAC_FRAME], format="fltp", layout="mono")
            fr.sample_rate, fr.pts, fr.time_base = ro, s_enc + k, tb
            apk += aus.encode(fr)
        if final:
            apk += aus.encode(None)
        apk = [p for p in apk if p.pts is not None and lo < p.pts and p.pts >= 0 and (final or p.pts <= hi)]
        # the muxer interleaves by dts; audio of this segment starts ~60-110 ms before its video
        out.mux(apk)
        starts = f0 + np.concatenate([[0], np.cumsum(reps)[:-1]])
        from .passthrough import repeat_frames   # (it encodes with this module's settings)

        skips = repeat_frames(w, h, float(fps), max(63, int(reps.max()) - 1)) if (reps > 1).any() else ()

        def put(data: bytes, pts: int, key: bool) -> None:
            pkt = av.Packet(data)
            pkt.pts = pkt.dts = pts
            pkt.duration, pkt.time_base, pkt.is_keyframe, pkt.stream = 1, 1 / rate, key, vs
            out.mux(pkt)

        def hold(i: int) -> None:   # frame i's picture again for its other reps[i] - 1 stream frames
            for k in range(int(reps[i]) - 1):
                put(skips[k], int(starts[i]) + 1 + k, False)

        if isinstance(frames, StreamPackets):
            # the clip's own IDRs, remuxed: the encoder above only gives the stream its parameters
            # (an identical init segment); one fragment per segment, as encoded ones have
            for i, data in enumerate(frames.packets):
                put(data, int(starts[i]), i == 0)
                hold(i)
        else:
            for i in range(m):
                frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
                frame.pts = int(starts[i])
                frame.time_base = 1 / rate
                if reps[i] > 1 or (i and reps[i - 1] > 1):
                    # an IDR: the repeats after it (and the encoder's next frame) start from frame number 0
                    frame.pict_type = av.video.frame.PictureType.I
                coded = vs.encode(frame)
                if reps[i] > 1 and len(coded) != 1:
                    raise RuntimeError("encode_segment: x264 delayed a frame (zerolatency expected)")
                for pkt in coded if i else ():
                    pkt.is_keyframe = False      # one fragment per segment (frag_keyframe would cut at each IDR)
                out.mux(coded)
                hold(i)
            out.mux(vs.encode(None))
    return buf.getvalue()


# --------------------------------------------------------------------------- boxes


def _boxes(data: bytes, off: int = 0, end: int | None = None):
    """Yield (type, offset, size) of the top-level ISO-BMFF boxes in data[off:end]. Raises ValueError if malformed."""
    end = len(data) if end is None else end
    while off < end:
        if off + 8 > end:
            raise ValueError(f"truncated box header at {off}")
        size, typ = struct.unpack_from(">I4s", data, off)
        if size == 1:
            if off + 16 > end:
                raise ValueError(f"truncated box header at {off}")
            size = struct.unpack_from(">Q", data, off + 8)[0]
        elif size == 0:
            size = end - off
        if size < 8 or off + size > end:
            raise ValueError(f"bad box size {size} for {typ!r} at {off}")
        yield typ, off, size
        off += size


def split_init(fmp4: bytes) -> tuple[bytes, bytes]:
    """Split an fMP4 file into (init = ftyp + moov, media = everything from the first styp/sidx/moof).

    A trailing mfra box (random-access index of the single file) is dropped from the media part.
    Raises ValueError if the bytes are not a fragmented MP4 (no moov, or no moof after it).
    """
    data = bytes(fmp4)
    boxes = list(_boxes(data))
    types = [b[0] for b in boxes]
    if b"moov" not in types:
        raise ValueError("not an MP4: no moov box")
    first = next((i for i, t in enumerate(types) if t in (b"styp", b"sidx", b"moof")), None)
    if first is None or types.index(b"moov") > first or b"moof" not in types[first:]:
        raise ValueError("not a fragmented MP4: no moof after moov")
    cut = boxes[first][1]
    end = len(data)
    if types[-1] == b"mfra":
        end = boxes[-1][1]
    return data[:cut], data[cut:end]


def concat_segments(init: bytes, media_parts: list[bytes], out_path: str | os.PathLike) -> None:
    """Remux (no re-encode) init + media_parts (in order) into a regular faststart MP4 at out_path.

    Raises ValueError on an empty media_parts list; av errors on corrupt data."""
    if not media_parts:
        raise ValueError("no media parts to concatenate")
    remux_fmp4(io.BytesIO(bytes(init) + b"".join(bytes(p) for p in media_parts)), out_path)


def concat_files(paths: list[str | os.PathLike], out_path: str | os.PathLike) -> None:
    """Remux (no re-encode) the files ``paths`` (an fMP4 init segment, then its media segments,
    in order) into a regular faststart MP4 at ``out_path``, reading them from disk: memory
    stays bounded by one packet, whatever the length of the show.

    Raises:
        ValueError: no files; av errors on corrupt data.
    """
    if len(paths) < 2:
        raise ValueError("need an init segment and at least one media segment")
    joined = Path(out_path).with_name(Path(out_path).name + ".fmp4.tmp")
    try:
        with open(joined, "wb") as dst:
            for p in paths:
                with open(p, "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
        remux_fmp4(os.fspath(joined), out_path)
    finally:
        joined.unlink(missing_ok=True)


def remux_fmp4(src, out_path: str | os.PathLike) -> None:
    """Remux a fragmented MP4 (a path or a file object) into a faststart MP4 at ``out_path``."""
    with av.open(src, "r") as inp, av.open(os.fspath(out_path), "w", format="mp4",
                                          options={"movflags": "faststart"}) as out:
        mapping = {}
        for s in inp.streams:
            if s.type in ("video", "audio"):
                mapping[s.index] = out.add_stream_from_template(s)
        for pkt in inp.demux(*[inp.streams[i] for i in mapping]):
            if pkt.dts is None:
                continue
            pkt.stream = mapping[pkt.stream.index]
            out.mux(pkt)


def probe(path_or_bytes) -> dict:
    """Describe a media file (path, bytes or file-like) by decoding it fully with PyAV.

    Returns {'duration_s': video span in seconds (audio span if no video), 'start_s': first timestamp (s),
    'width', 'height' (pixels), 'fps' (frames/s), 'video_frames' (count), 'audio_rate' (Hz),
    'audio_samples' (decoded samples per channel), 'audio_duration_s'}; video/audio keys are 0 when absent.
    """
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray, memoryview)) else path_or_bytes
    if isinstance(src, (str, os.PathLike)):
        src = os.fspath(src)
    info = {"duration_s": 0.0, "start_s": 0.0, "width": 0, "height": 0, "fps": 0.0, "video_frames": 0,
            "audio_rate": 0, "audio_samples": 0, "audio_duration_s": 0.0}
    with av.open(src, "r") as inp:
        vs = inp.streams.video[0] if inp.streams.video else None
        aus = inp.streams.audio[0] if inp.streams.audio else None
        streams = [s for s in (vs, aus) if s is not None]
        if vs is not None:
            vs.thread_type = "AUTO"
            info.update(width=vs.codec_context.width, height=vs.codec_context.height,
                        fps=float(vs.average_rate or vs.guessed_rate or 0))
        if aus is not None:
            info["audio_rate"] = aus.codec_context.sample_rate
        span = {}
        for frame in inp.decode(*streams):
            t = frame.time if frame.time is not None else 0.0
            if isinstance(frame, av.VideoFrame):
                info["video_frames"] += 1
                dur = 1.0 / info["fps"] if info["fps"] else 0.0
                key = "v"
            else:
                info["audio_samples"] += frame.samples
                dur = frame.samples / frame.sample_rate
                key = "a"
            lo, hi = span.get(key, (t, t + dur))
            span[key] = (min(lo, t), max(hi, t + dur))
    if "a" in span:
        info["audio_duration_s"] = span["a"][1] - span["a"][0]
    main = span.get("v") or span.get("a")
    if main:
        info["start_s"], info["duration_s"] = main[0], main[1] - main[0]
    return info
