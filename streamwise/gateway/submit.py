"""A client's podcast request as the gateway reads it (``POST /v1/podcasts``): the fields of a JSON
body or a form (a script or document file upload decoded), checked as the scheduler would check
them (:func:`_build_request`: the Request schema, then admission) and the script parsed once, so
that a bad request is a 400 at once. The route itself is :func:`streamwise.gateway.app.create_podcast`."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

import msgspec
from aiohttp import web

from ..bus.codec import MessageError, decode, encode
from ..bus.messages import Request
from ..client import new_request_id
from ..service.admission import check_request
from .errors import ApiError


USER_FIELDS = ("script", "script_format", "script_name", "topic", "document", "document_name", "title", "ttff_s",
               "width", "height", "fps", "segment_s", "first_segment_s", "max_clip_s")
"""Request fields a client may set (``docs/protocol.md``); the gateway sets ``request_id``,
``tenant`` and ``submitted_at``, and moves a large script to the object store (``script_ref``)."""

_TYPES = {f.name: f.type for f in msgspec.structs.fields(Request)}
_NUMERIC = {name: (int if "int" in repr(_TYPES[name]) and "float" not in repr(_TYPES[name]) else float)
            for name in ("ttff_s", "width", "height", "fps", "segment_s", "first_segment_s", "max_clip_s")}


def _fields_from_json(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"JSON body must be an object of request fields, got {type(data).__name__}")
    return data


def _check_names(fields: dict) -> None:
    for name in fields:
        if name in ("request_id", "tenant", "submitted_at", "script_ref", "v"):
            raise ApiError(400, f"field {name!r} is set by the gateway, not by a client")
        if name not in USER_FIELDS:
            raise ApiError(400, f"unknown field {name!r}; fields are {', '.join(USER_FIELDS)}")


async def _fields_from_multipart(request: web.Request) -> dict:
    """Form fields as request fields: ``file`` (a script file, any supported format and encoding),
    ``document_file`` (a .txt/.md/.pdf document), and the other fields as text."""
    from ..llm.format import DocumentError, read_document
    from ..script import ScriptError, decode_script

    form = await request.post()
    fields: dict = {}
    for name, value in form.items():
        if name == "file":
            if not isinstance(value, web.FileField):
                raise ApiError(400, "field 'file' must be a file upload")
            data = value.file.read()
            if not data:
                continue   # an empty file input of a form
            filename = value.filename or "upload"
            try:
                fields["script"] = decode_script(data, filename)
            except ScriptError as exc:
                raise ApiError(400, str(exc)) from None
            fields.setdefault("script_name", filename)
        elif name == "document_file":
            if not isinstance(value, web.FileField):
                raise ApiError(400, "field 'document_file' must be a file upload")
            data = value.file.read()
            if not data:
                continue
            suffix = Path(value.filename or "document.txt").suffix or ".txt"
            with tempfile.TemporaryDirectory(prefix="streamwise-doc-") as tmp:
                path = Path(tmp) / f"document{suffix}"
                path.write_bytes(data)
                try:
                    fields["document"] = await asyncio.to_thread(read_document, path)
                except DocumentError as exc:
                    raise ApiError(400, str(exc).replace(str(path), value.filename or "document")) from None
            fields.setdefault("document_name", value.filename)
        elif isinstance(value, web.FileField):
            raise ApiError(400, f"field {name!r}: a file upload is only accepted as 'file' or 'document_file'")
        elif value.strip() == "":
            continue   # an empty form input means "default"
        elif name in _NUMERIC:
            try:
                fields[name] = _NUMERIC[name](value)
            except ValueError:
                raise ApiError(400, f"{name}: expected a number, got {value[:40]!r}") from None
        else:
            fields[name] = value
    return fields


def _build_request(fields: dict, tenant: str) -> Request:
    """A validated :class:`Request` from client fields (schema + admission checks).

    Raises:
        ApiError: 400 with the field and the limit, as the scheduler would report it.
    """
    _check_names(fields)
    if fields.get("script") is not None and not str(fields["script"]).strip():
        raise ApiError(400, "script is empty")
    data = {**fields, "request_id": new_request_id(), "tenant": tenant, "submitted_at": time.time()}
    try:
        req = decode(encode(data), Request)
    except MessageError as exc:
        raise ApiError(400, str(exc).removeprefix("invalid Request message: ")) from None
    except (TypeError, OverflowError):   # a value msgpack cannot carry (an integer over 64 bits)
        name = next((k for k, v in fields.items() if isinstance(v, int) and not -2 ** 63 <= v < 2 ** 64), "a field")
        raise ApiError(400, f"{name}: a number out of range") from None
    try:
        check_request(req)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return req


def _check_script(req: Request) -> None:
    """Parse the script as the screenplay worker will (format, limits), for an error at once."""
    from ..script import ScriptError, parse_script
    from ..stages.cpu.screenplay import check_script_limits

    try:
        check_script_limits(parse_script(req.script, path=req.script_name, fmt=req.script_format), req.script_name)
    except ScriptError as exc:
        raise ApiError(400, str(exc)) from None
