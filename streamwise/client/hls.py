"""HLS (fMP4) playlist writer: init.mp4 + seg_NNNNN.m4s + index.m3u8, written atomically as segments arrive.

The playlist is an EVENT playlist while the show is being generated (players may start and keep polling) and
becomes a VOD playlist with EXT-X-ENDLIST on close. Segments come from
:func:`streamwise.stages.cpu.media.encode_segment`; their init parts are identical, so one init.mp4 is shared.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from streamwise.stages.cpu.media import split_init

__all__ = ["HlsWriter", "media_playlist"]


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

    @property
    def segments(self) -> list[tuple[str, float]]:
        """(filename, duration_s) of the segments written so far, in order."""
        return list(self._segments)

    def add(self, index: int, fmp4: bytes, duration_s: float) -> str:
        """Add segment `index` (must be the next one: 0, 1, 2, ...), a complete fMP4 file from encode_segment,
        lasting duration_s seconds (> 0). Writes init.mp4 on the first segment, the media part as
        seg_{index:05d}.m4s, then rewrites index.m3u8. Returns the segment filename.
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
        self._segments.append((name, float(duration_s)))
        self._write_playlist()
        return name

    def close(self) -> None:
        """Finish the playlist (VOD + EXT-X-ENDLIST). Idempotent."""
        if not self._closed:
            self._closed = True
            self._write_playlist()

    def playlist_text(self) -> str:
        """The current index.m3u8 contents."""
        return media_playlist([(name, dur, self.INIT) for name, dur in self._segments],
                              target_duration_s=self.target_duration_s, ended=self._closed,
                              playlist_type="VOD" if self._closed else "EVENT")

    def _write_playlist(self) -> None:
        _atomic_write(self.directory / self.PLAYLIST, self.playlist_text())
