"""HLS (fMP4) playlist writer: init.mp4 + seg_NNNNN.m4s + index.m3u8, written atomically as segments arrive,
and the show's subtitles as a WebVTT rendition of a master playlist.

The playlist is an EVENT playlist while the show is being generated (players may start and keep polling) and
becomes a VOD playlist with EXT-X-ENDLIST on close. Segments come from
:func:`streamwise.stages.cpu.media.encode_segment`; their init parts are identical, so one init.mp4 is shared.

Subtitles (RFC 8216 section 3.5 and 4.3.4.1): one WebVTT file ``sub_NNNNN.vtt`` per media segment, holding
every cue that overlaps the segment's span (a cue crossing a boundary is in both, as the RFC allows), with
``X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000`` (the segments' media time starts at 0);
``subs.m3u8``, their media playlist, with the same EXTINF durations; and ``master.m3u8``, a master playlist:
``#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",...,URI="subs.m3u8"`` and one ``#EXT-X-STREAM-INF`` (BANDWIDTH =
the peak segment bit rate so far, AVERAGE-BANDWIDTH, CODECS from the init segment's avcC, RESOLUTION,
SUBTITLES="subs") pointing at ``index.m3u8``, which stays a plain media playlist for players that already
use it. :func:`webvtt` writes a whole show's cues as one file (the viewer's ``podcast.vtt``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Protocol

from streamwise.stages.cpu.media import split_init

__all__ = ["HlsWriter", "media_playlist", "webvtt", "vtt_time"]


class CueLike(Protocol):
    start_s: float
    end_s: float
    speaker: str
    text: str


def vtt_time(seconds: float) -> str:
    """WebVTT timestamp ``HH:MM:SS.mmm`` of ``seconds`` (>= 0), rounded to the millisecond."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    sec, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{sec:02d}.{ms:03d}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(cues: Iterable[CueLike], *, header: str = "") -> str:
    """A WebVTT document (W3C WebVTT) of ``cues`` in the order given: each ``start --> end`` with the text in a
    voice span ``<v Speaker>`` (``&``, ``<``, ``>`` escaped; a ``>`` cannot be in a voice annotation and is
    dropped from the name). ``header``: lines after ``WEBVTT`` (e.g. an X-TIMESTAMP-MAP). Cues of zero or
    negative length are left out."""
    lines = ["WEBVTT"] + ([header] if header else []) + [""]
    for cue in cues:
        if cue.end_s <= cue.start_s or not cue.text.strip():
            continue
        name = " ".join(cue.speaker.replace(">", "").replace("<", "").split()) or "Speaker"
        lines += [f"{vtt_time(cue.start_s)} --> {vtt_time(cue.end_s)}", f"<v {_escape(name)}>{_escape(cue.text)}", ""]
    return "\n".join(lines)


def _avc_codecs(init: bytes) -> str:
    """RFC 6381 CODECS of the init segment: ``avc1.PPCCLL`` from its avcC box, plus AAC-LC when it has mp4a."""
    codecs = []
    at = init.find(b"avcC")
    if at >= 0 and len(init) >= at + 8:
        codecs.append(f"avc1.{init[at + 5]:02X}{init[at + 6]:02X}{init[at + 7]:02X}")
    if b"mp4a" in init:
        codecs.append("mp4a.40.2")
    return ",".join(codecs)


def _resolution(init: bytes, media: bytes) -> str | None:
    import io

    import av

    try:
        with av.open(io.BytesIO(init + media)) as container:
            stream = container.streams.video[0]
            return f"{stream.codec_context.width}x{stream.codec_context.height}"
    except (av.error.FFmpegError, IndexError):
        return None


def _atomic_write(path: Path, data: bytes | str) -> None:
    """Write data to path via a temporary file + rename, so readers never see a partial file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(tmp, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": "\n"})) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def media_playlist(segments: list[tuple[str, float, str]], *, target_duration_s: float, ended: bool,
                   playlist_type: str = "EVENT") -> str:
    """An HLS media playlist (RFC 8216) of fMP4 segments.

    ``segments``: ``(uri, duration_s, init_uri)`` in playback order. The first segment's
    ``init_uri`` is the playlist's ``EXT-X-MAP``; wherever it changes (a new encoding: another
    resolution or codec setup) an ``EXT-X-DISCONTINUITY`` and a new ``EXT-X-MAP`` precede the
    segment (RFC 8216 §4.3.2.5, §4.3.2.3). ``EXT-X-TARGETDURATION`` is the ceiling of the longest
    segment, at least ``target_duration_s``; ``EXTINF`` is each real duration. ``ended`` appends
    ``EXT-X-ENDLIST``; ``playlist_type`` is ``EVENT`` (grows, players keep polling) or ``VOD``.
    """
    longest = max([d for _, d, _ in segments] + [target_duration_s])
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{math.ceil(round(longest, 6))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        f"#EXT-X-PLAYLIST-TYPE:{playlist_type}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    current = None
    for uri, dur, init_uri in segments:
        if init_uri != current:
            if current is not None:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f'#EXT-X-MAP:URI="{init_uri}"')
            current = init_uri
        lines += [f"#EXTINF:{dur:.6f},", uri]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


class HlsWriter:
    """Writes an HLS (fMP4) playlist into a directory as segments arrive, in order.

    Files: init.mp4 (ftyp + moov of the first segment), seg_00000.m4s, seg_00001.m4s, ... (media parts only) and
    index.m3u8, rewritten after every segment: EXT-X-VERSION 7, EXT-X-MAP:URI="init.mp4",
    EXT-X-TARGETDURATION = ceil(max segment duration, s), EXTINF = real duration (s);
    EXT-X-PLAYLIST-TYPE:EVENT while open, VOD + EXT-X-ENDLIST after close(). All writes are atomic.
    """

    PLAYLIST = "index.m3u8"
    INIT = "init.mp4"
    MASTER = "master.m3u8"
    SUBTITLES = "subs.m3u8"

    def __init__(self, directory: str | os.PathLike, *, target_duration_s: float) -> None:
        """directory: created if missing. target_duration_s: nominal segment length (s, > 0), a lower bound for
        EXT-X-TARGETDURATION. Raises ValueError if target_duration_s <= 0."""
        if not target_duration_s or target_duration_s <= 0:
            raise ValueError(f"target_duration_s must be > 0, got {target_duration_s!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.target_duration_s = float(target_duration_s)
        self._segments: list[tuple[str, float]] = []
        self._init: bytes | None = None
        self._closed = False
        self._cues: list = []              # every cue so far, in the order received
        self._seen: set = set()
        self._subs: list[tuple[str, float]] = []
        self._peak_bps = 0.0
        self._bits = 0
        self._resolution: str | None = None

    @property
    def segments(self) -> list[tuple[str, float]]:
        """(filename, duration_s) of the segments written so far, in order."""
        return list(self._segments)

    @property
    def cues(self) -> list:
        """Every subtitle cue given so far (de-duplicated), in the order received."""
        return list(self._cues)

    def add(self, index: int, fmp4: bytes, duration_s: float, cues: Iterable[CueLike] = ()) -> str:
        """Add segment `index` (must be the next one: 0, 1, 2, ...), a complete fMP4 file from encode_segment,
        lasting duration_s seconds (> 0), with the subtitle ``cues`` that start in it. Writes init.mp4 on the
        first segment, the media part as seg_{index:05d}.m4s, sub_{index:05d}.vtt, then rewrites index.m3u8,
        subs.m3u8 and master.m3u8. Returns the segment filename.
        Raises ValueError on an out-of-order index, a bad duration, non-fMP4 data, or an init part that differs
        from the first one (a different resolution/codec setup cannot join the stream); RuntimeError if closed."""
        if self._closed:
            raise RuntimeError("HlsWriter is closed")
        if index != len(self._segments):
            raise ValueError(f"segment {index} out of order: expected {len(self._segments)}")
        if not duration_s or duration_s <= 0:
            raise ValueError(f"duration_s must be > 0, got {duration_s!r}")
        init, media = split_init(fmp4)
        if self._init is None:
            _atomic_write(self.directory / self.INIT, init)
            self._init = init
        elif init != self._init:
            raise ValueError(f"segment {index}: init (codec setup/resolution) differs from segment 0")
        name = f"seg_{index:05d}.m4s"
        _atomic_write(self.directory / name, media)
        start = sum(d for _, d in self._segments)
        self._segments.append((name, float(duration_s)))
        self._write_playlist()
        self._add_subtitles(index, start, start + float(duration_s), cues)
        self._bits += 8 * len(media)
        self._peak_bps = max(self._peak_bps, 8 * len(media) / float(duration_s))
        if self._resolution is None:
            self._resolution = _resolution(init, media)
        self._write_master()
        return name

    def _add_subtitles(self, index: int, start: float, end: float, cues: Iterable[CueLike]) -> None:
        for cue in cues:
            key = (round(cue.start_s, 3), round(cue.end_s, 3), cue.speaker, cue.text)
            if key not in self._seen:
                self._seen.add(key)
                self._cues.append(cue)
        here = [c for c in self._cues if c.start_s < end and c.end_s > start]
        name = f"sub_{index:05d}.vtt"
        _atomic_write(self.directory / name, webvtt(here, header="X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"))
        self._subs.append((name, end - start))
        _atomic_write(self.directory / self.SUBTITLES, self._media_playlist(self._subs, init=False))

    def master_text(self) -> str:
        """The current master.m3u8: the video rendition (index.m3u8) with its WebVTT subtitles group."""
        attrs = [f"BANDWIDTH={max(1, math.ceil(self._peak_bps))}"]
        total = sum(d for _, d in self._segments)
        if total:
            attrs.append(f"AVERAGE-BANDWIDTH={max(1, math.ceil(self._bits / total))}")
        if self._init is not None and (codecs := _avc_codecs(self._init)):
            attrs.append(f'CODECS="{codecs}"')
        if self._resolution:
            attrs.append(f"RESOLUTION={self._resolution}")
        attrs.append('SUBTITLES="subs"')
        return "\n".join([
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Subtitles",DEFAULT=YES,AUTOSELECT=YES,'
            f'URI="{self.SUBTITLES}"',
            "#EXT-X-STREAM-INF:" + ",".join(attrs),
            self.PLAYLIST,
        ]) + "\n"

    def _write_master(self) -> None:
        _atomic_write(self.directory / self.MASTER, self.master_text())

    def close(self) -> None:
        """Finish the playlist (VOD + EXT-X-ENDLIST). Idempotent."""
        if not self._closed:
            self._closed = True
            self._write_playlist()
            if self._subs:
                _atomic_write(self.directory / self.SUBTITLES, self._media_playlist(self._subs, init=False))

    def playlist_text(self) -> str:
        """The current index.m3u8 contents."""
        return media_playlist([(name, dur, self.INIT) for name, dur in self._segments],
                              target_duration_s=self.target_duration_s, ended=self._closed,
                              playlist_type="VOD" if self._closed else "EVENT")

    def _media_playlist(self, segments: list[tuple[str, float]], *, init: bool) -> str:
        """A media playlist of ``segments`` (the subtitles' WebVTT files: ``init`` False, no EXT-X-MAP)."""
        longest = max([d for _, d in segments] + [self.target_duration_s])
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            f"#EXT-X-TARGETDURATION:{math.ceil(round(longest, 6))}",
            "#EXT-X-MEDIA-SEQUENCE:0",
            f"#EXT-X-PLAYLIST-TYPE:{'VOD' if self._closed else 'EVENT'}",
            "#EXT-X-INDEPENDENT-SEGMENTS",
        ] + ([f'#EXT-X-MAP:URI="{self.INIT}"'] if init else [])
        for name, dur in segments:
            lines += [f"#EXTINF:{dur:.6f},", name]
        if self._closed:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    def _write_playlist(self) -> None:
        _atomic_write(self.directory / self.PLAYLIST, self.playlist_text())
