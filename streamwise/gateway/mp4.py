"""What a browser needs to know about an fMP4 init segment: its RFC 6381 ``codecs`` string.

Media Source Extensions take a MIME type such as ``video/mp4; codecs="avc1.64001e, mp4a.40.2"``
(``MediaSource.isTypeSupported``, ``SourceBuffer.changeType``). The string is read from the init
segment's sample entries (ISO/IEC 14496-12 boxes): for H.264, ``avc1.PPCCLL`` from the ``avcC``
box (profile, constraint flags, level: ISO/IEC 14496-15 §5.3.3.1, RFC 6381 §3.3); for AAC,
``mp4a.40.<audio object type>`` from the ``esds`` box's DecoderSpecificInfo (ISO/IEC 14496-1
§7.2.6, 14496-3 §1.6.2.1).
"""

from __future__ import annotations

import struct

__all__ = ["codecs_of", "mime_of"]

# boxes whose payload is a list of boxes; value = bytes to skip before the children
_CONTAINERS = {b"moov": 0, b"trak": 0, b"mdia": 0, b"minf": 0, b"stbl": 0, b"stsd": 8,
               b"avc1": 78, b"avc3": 78, b"mp4a": 28}


def _walk(data: bytes, start: int, end: int):
    """Yield ``(type, payload_start, payload_end)`` of every box in ``data[start:end]``, depth first."""
    off = start
    while off + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, off)
        header = 8
        if size == 1:
            if off + 16 > end:
                return
            size = struct.unpack_from(">Q", data, off + 8)[0]
            header = 16
        elif size == 0:
            size = end - off
        if size < header or off + size > end:
            return
        yield kind, off + header, off + size
        if kind in _CONTAINERS:
            yield from _walk(data, off + header + _CONTAINERS[kind], off + size)
        off += size


def _descriptor(data: bytes, off: int, end: int) -> tuple[int, int, int]:
    """One MPEG-4 descriptor at ``off``: ``(tag, payload_start, payload_end)`` (length is 1-4
    bytes of 7 bits each, high bit = more)."""
    tag, off = data[off], off + 1
    length = 0
    for _ in range(4):
        b, off = data[off], off + 1
        length = (length << 7) | (b & 0x7F)
        if not b & 0x80:
            break
    return tag, off, min(off + length, end)


def _aac_object_type(data: bytes, start: int, end: int) -> int | None:
    """Audio object type from an ``esds`` payload (2 = AAC LC), or None if not found."""
    off = start + 4                       # full box: version + flags
    tag, off, stop = _descriptor(data, off, end)
    if tag != 0x03:                       # ES_Descriptor
        return None
    flags = data[off + 2]
    off += 3 + (2 if flags & 0x80 else 0)
    if flags & 0x40:
        off += 1 + data[off]
    if flags & 0x20:
        off += 2
    tag, off, stop = _descriptor(data, off, stop)
    if tag != 0x04:                       # DecoderConfigDescriptor
        return None
    if data[off] != 0x40:                 # objectTypeIndication 0x40 = MPEG-4 audio
        return None
    off += 13
    if off >= stop:
        return None
    tag, off, _ = _descriptor(data, off, stop)
    if tag != 0x05:                       # DecoderSpecificInfo (AudioSpecificConfig)
        return None
    aot = data[off] >> 3
    if aot == 31:                         # escape: 6 more bits
        aot = 32 + (((data[off] & 0x07) << 3) | (data[off + 1] >> 5))
    return aot


def codecs_of(init: bytes) -> str:
    """The RFC 6381 codecs list of an fMP4 init segment (``ftyp + moov``), e.g.
    ``"avc1.64001e, mp4a.40.2"``, one entry per track in track order.

    Raises:
        ValueError: no H.264 or AAC sample entry found (not an init segment this project writes).
    """
    out = []
    try:
        for kind, start, end in _walk(init, 0, len(init)):
            if kind == b"avcC" and end - start >= 4:
                out.append(f"avc1.{init[start + 1]:02x}{init[start + 2]:02x}{init[start + 3]:02x}")
            elif kind == b"esds":
                aot = _aac_object_type(init, start, end)
                if aot is not None:
                    out.append(f"mp4a.40.{aot}")
    except IndexError:
        raise ValueError("init segment: truncated avcC or esds box") from None
    if not out:
        raise ValueError("init segment: no H.264 (avcC) or AAC (esds) sample entry")
    return ", ".join(out)


def mime_of(init: bytes) -> str:
    """``video/mp4; codecs="..."`` for :func:`codecs_of` ``(init)`` (the MSE / HLS type)."""
    return f'video/mp4; codecs="{codecs_of(init)}"'
