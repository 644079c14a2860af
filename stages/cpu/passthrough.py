"""Still-rung clips passed through the mux: clips encoded with the stream segments' own H.264 settings,
every frame an IDR (:func:`encode_stream_clip`), read back without decoding (:func:`clip_packets`), and
the all-skip P frames that hold a picture for more stream frames (:func:`repeat_frames`), so the mux
copies such a clip's frames into a segment instead of decoding and re-encoding them
(:class:`~.media.StreamPackets` for :func:`~.media.encode_segment`). Moved from :mod:`.media`.
"""

from __future__ import annotations

import functools
import io
import struct

import av
import numpy as np

from .media import _SEG_X264, _check_frames, _rate, encode_segment

__all__ = ["encode_stream_clip", "repeat_frames", "stream_avcc", "clip_packets"]


def encode_stream_clip(frames: np.ndarray, fps: float, hold: int = 1) -> bytes:
    """Encode an intermediate clip (no audio) with the stream segments' own H.264 settings, every
    frame an IDR, frame ``i`` at ``i * hold`` / ``fps`` s: the mux can then pass its frames into
    the stream without decoding or encoding them (:func:`clip_packets`). Meant for a rung that
    draws few frames a second (``hold`` > 1), where intra-only costs little: an IDR of a
    640x400 talking head is ~10 KB at the segments' CRF 23, about what x264's ultrafast CRF 16
    intermediate spends on a P-frame.

    frames: uint8 (N, H, W, 3) RGB, H and W even. Returns the MP4 file bytes.
    Raises ValueError on a bad shape/dtype, odd sizes or fps.
    """
    return _stream_clip(frames, fps, hold, intra_only=True)


def _stream_clip(frames: np.ndarray, fps: float, hold: int, *, intra_only: bool) -> bytes:
    frames = _check_frames(frames)
    n, h, w, _ = frames.shape
    if w % 2 or h % 2:
        raise ValueError(f"frame size must be even for yuv420p, got {w}x{h}")
    rate = _rate(fps)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=rate, options=dict(_SEG_X264))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts, frame.time_base = i * max(1, int(hold)), 1 / rate
            if intra_only or i == 0:
                frame.pict_type = av.video.frame.PictureType.I   # a forced keyframe: an IDR (no open GOP)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return buf.getvalue()


@functools.lru_cache(maxsize=8)
def repeat_frames(width: int, height: int, fps: float, count: int = 63) -> tuple[bytes, ...]:
    """``count`` Annex B P access units in the stream's encoding at this size that each show the
    previous picture again (every macroblock skipped: no residual, no motion), the ``k``-th with
    the frame number of the ``k``-th frame after an IDR: after ANY IDR of the stream, the first
    ``r`` of them hold its picture for ``r`` more frames, bit for bit, at ~30 bytes a frame. So a
    frame held for several stream frames (a rung that draws two a second) stays a constant frame
    rate stream without encoding the held frames. Made once per size by encoding a black IDR
    and ``count`` black frames, and checked: a P frame with any coded residual is refused.

    Raises:
        RuntimeError: x264 coded a repeated black frame as more than skips (it never has).
    """
    clip = _stream_clip(np.zeros((count + 1, height, width, 3), np.uint8), fps, 1, intra_only=False)
    with av.open(io.BytesIO(clip), "r") as inp:
        packets = [pkt for pkt in inp.demux(inp.streams.video[0]) if pkt.size]
    if len(packets) != count + 1 or any(p.is_keyframe for p in packets[1:]):
        raise RuntimeError("repeat_frames: x264 did not code the repeated frames as P frames")
    skips = tuple(_annex_b(bytes(p)) for p in packets[1:])
    if max(map(len, skips)) > 64 + (width * height) // 2048:
        raise RuntimeError("repeat_frames: a repeated frame carries more than skipped macroblocks")
    return skips


@functools.lru_cache(maxsize=8)
def stream_avcc(width: int, height: int, fps: float) -> bytes:
    """The avcC (SPS and PPS, as an MP4 carries them) of the stream segments that
    :func:`encode_segment` makes at this size and frame rate: what a clip's must equal for the mux
    to pass its frames through. Computed once per size by encoding one black frame."""
    seg = encode_segment(np.zeros((1, height, width, 3), np.uint8), np.zeros(0, np.int16), fps=fps,
                         sample_rate=22050, start_s=0.0)
    with av.open(io.BytesIO(seg), "r") as inp:
        return bytes(inp.streams.video[0].codec_context.extradata or b"")


def clip_packets(data: bytes) -> tuple[bytes, list[bytes]] | None:
    """``(avcC, access units)`` of a clip whose every video frame is a keyframe (as
    :func:`encode_stream_clip` makes them), read without decoding; ``None`` for any other clip
    (not H.264, inter frames, no frames or unreadable), which the mux decodes instead."""
    try:
        with av.open(io.BytesIO(data), "r") as inp:
            if not inp.streams.video or inp.streams.video[0].codec_context.name != "h264":
                return None
            vs = inp.streams.video[0]
            avcc = bytes(vs.codec_context.extradata or b"")
            if len(avcc) < 5 or avcc[0] != 1 or avcc[4] & 3 != 3:   # avcC with 4-byte NAL lengths
                return None
            packets = []
            for pkt in inp.demux(vs):
                if not pkt.size:
                    continue
                if not pkt.is_keyframe:
                    return None
                packets.append(_annex_b(bytes(pkt)))
    except (av.error.FFmpegError, ValueError):
        return None
    return (avcc, packets) if packets else None


def _annex_b(sample: bytes) -> bytes:
    """An MP4 H.264 sample (NAL units each after a 4-byte big-endian length) as an Annex B access
    unit (each after a 00 00 00 01 start code): what libx264 gives the mp4 muxer, which turns it
    back into the same sample. Raises ValueError on a length that runs past the sample."""
    out, off = bytearray(), 0
    while off < len(sample):
        if off + 4 > len(sample):
            raise ValueError("truncated NAL length")
        n = struct.unpack_from(">I", sample, off)[0]
        if off + 4 + n > len(sample):
            raise ValueError("NAL unit runs past the sample")
        out += b"\x00\x00\x00\x01" + sample[off + 4:off + 4 + n]
        off += 4 + n
    return bytes(out)
