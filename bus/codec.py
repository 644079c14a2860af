"""MessagePack encoding and validated decoding of bus messages.

Decoding is strict about types (msgspec validates while it parses) and lenient about
unknown fields, so a newer producer can add fields without breaking older consumers.
A message that fails validation raises :class:`MessageError`; callers send it to the
dead-letter subject instead of retrying it.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from .messages import SCHEMA_VERSION

T = TypeVar("T", bound=msgspec.Struct)

_encoder = msgspec.msgpack.Encoder()
_decoders: dict[type, msgspec.msgpack.Decoder] = {}


class MessageError(ValueError):
    """A bus message that is not valid MessagePack for its schema, or of an unknown version."""


def encode(message: msgspec.Struct | dict[str, Any]) -> bytes:
    """Encode a message Struct (or a plain map) as MessagePack bytes."""
    return _encoder.encode(message)


def decode(data: bytes, kind: type[T]) -> T:
    """Decode and validate ``data`` as a ``kind`` message.

    Raises:
        MessageError: not MessagePack, wrong field types, missing required fields, or a
            schema version newer than this code understands.
    """
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.msgpack.Decoder(kind)
    try:
        message = decoder.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise MessageError(f"invalid {kind.__name__} message: {_reason(exc)}") from None
    version = getattr(message, "v", SCHEMA_VERSION)
    if version > SCHEMA_VERSION:
        raise MessageError(f"{kind.__name__} schema v{version} is newer than supported v{SCHEMA_VERSION}")
    return message


_AT = re.compile(r"^(?P<what>.*?) - at `\$\.(?P<field>[A-Za-z_][\w.\[\]]*)`$")


def _reason(exc: Exception) -> str:
    """msgspec's "Expected `float` <= 600.0 - at `$.ttff_s`" as "ttff_s: expected `float` <= 600.0"
    (the field first, so the one-line reason names it; NaN and infinities fail any range)."""
    text = str(exc)
    m = _AT.match(text)
    if not m:
        return text
    what = m["what"]
    if what.startswith("Expected `float`") and (">" in what or "<" in what):
        what += " (a finite number)"
    return f"{m['field']}: {what[0].lower()}{what[1:]}"


def to_builtins(message: msgspec.Struct) -> Any:
    """The message as plain dicts / lists (for JSON reports and logs)."""
    return msgspec.to_builtins(message)
