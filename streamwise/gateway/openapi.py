"""The gateway's OpenAPI 3.1 description, written by hand and served at ``/openapi.json``.

``tests/test_gateway.py`` checks that every route of :func:`streamwise.gateway.app.make_app` is
described here and every path here is a route. Field ranges are those of
``configs/limits.yaml`` (read through :data:`streamwise.bus.limits.LIMITS`).
"""

from __future__ import annotations

from ..bus.limits import LIMITS as L

_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_ID = {"name": "id", "in": "path", "required": True, "description": "the podcast's request id",
       "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}}
_N = {"name": "n", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}


def _num(kind: str, rng, default, unit: str, **extra) -> dict:
    return {"type": kind, "minimum": rng[0], "maximum": rng[1], "default": default, "description": unit, **extra}


_FIELDS = {
    "script": {"type": "string", "maxLength": L.script_bytes,
               "description": "the script: 'Speaker: line' text, WebVTT, SRT or a JSON screenplay"},
    "script_format": {"type": "string", "enum": ["text", "vtt", "srt", "json"], "description": "default: detect"},
    "script_name": {"type": "string", "description": "file name used in error messages (name:line: reason)"},
    "topic": {"type": "string", "maxLength": L.topic_chars, "description": "an LLM writes the screenplay"},
    "document": {"type": "string", "description": "source text for the LLM screenplay"},
    "document_name": {"type": "string"},
    "title": {"type": "string", "maxLength": L.title_chars},
    "ttff_s": _num("number", L.ttff_s, 1.5, "time-to-first-frame SLO, seconds"),
    "width": _num("integer", L.width, 640, "pixels, a multiple of 8", multipleOf=8),
    "height": _num("integer", L.height, 400, "pixels, a multiple of 8", multipleOf=8),
    "fps": _num("number", L.fps, 25, "frames per second with a whole number of audio samples a frame (24, 25, 30 ...)"),
    "segment_s": _num("number", L.segment_s, 2.0, "segment length, seconds"),
    "first_segment_s": _num("number", L.first_segment_s, 1.0, "first segment length, seconds"),
    "max_clip_s": _num("number", L.max_clip_s, 3.5, "longest talking-head clip, seconds"),
}

_SEGMENT = {"type": "object", "properties": {
    "index": {"type": "integer"}, "start_s": {"type": "number"}, "duration_s": {"type": "number"},
    "rung": {"type": "string", "description": "quality rung ('static' = the CPU rung)"},
    "width": {"type": "integer"}, "height": {"type": "integer"}, "fps": {"type": "number"},
    "steps": {"type": ["integer", "null"]}, "bytes": {"type": "integer"},
    "init": {"type": "integer", "description": "which init segment (encoding) it uses: init.mp4, init_1.mp4, ..."},
    "final": {"type": "boolean"},
    "arrived_s": {"type": ["number", "null"], "description": "seconds after submission it reached the gateway"}}}

_STATUS = {"type": "object", "properties": {
    "id": {"type": "string"}, "tenant": {"type": "string"},
    "state": {"type": "string", "enum": ["submitted", "accepted", "running", "done", "failed"]},
    "message": {"type": "string"}, "error": {"type": ["string", "null"]},
    "errors": {"type": "array", "items": {"type": "string"}, "description": "problems the gateway saw"},
    "speakers": {"type": "array", "items": {"type": "string"}}, "lines": {"type": "integer"},
    "screenplay_done": {"type": "boolean"},
    "dag": {"type": "object", "description": "DAG nodes completed per stage (cache hits not included)",
            "properties": {k: {"type": "integer"} for k in ("screenplay", "images", "speech", "shots", "segments")}},
    "segments_done": {"type": "integer"}, "segments_total": {"type": ["integer", "null"]},
    "segments_delivered": {"type": "integer"}, "delivered_s": {"type": "number"},
    "video_duration_s": {"type": ["number", "null"]}, "cache_hits": {"type": "integer"},
    "ttff_s": {"type": ["number", "null"], "description": "submission -> first segment at the gateway (s)"},
    "ttff_produced_s": {"type": ["number", "null"], "description": "submission -> first segment published (s)"},
    "stall_s": {"type": "number"}, "late_segments": {"type": "array"}, "duplicates": {"type": "integer"},
    "rereads": {"type": "integer", "description": "segments a viewer needed after the gateway's cache let them go, "
                                                  "read again from the segment stream"},
    "mime": {"type": ["string", "null"], "description": "MSE type of the first encoding"},
    "rungs": {"type": "array", "items": {"type": "string"}}, "ended": {"type": "boolean"},
    "submitted_at": {"type": ["number", "null"]},
    "segments": {"type": "array", "items": {"$ref": "#/components/schemas/Segment"}},
    "urls": {"$ref": "#/components/schemas/Urls"}}}

_URLS = {"type": "object", "properties": {k: {"type": "string"} for k in ("status", "events", "hls", "live", "init")}}


def _get(summary: str, content: dict, *, params=(_ID,), errors=("404",), **extra) -> dict:
    return {"get": {"summary": summary, "parameters": list(params),
                    "responses": {"200": {"description": "ok", "content": content}, **{e: _ERROR for e in errors}},
                    **extra}}


OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "StreamWise gateway", "version": "1",
             "description": "Submit a podcast and watch it while it is generated (docs/gateway.md)."},
    "paths": {
        "/": _get("the web page", {"text/html": {}}, params=(), errors=()),
        "/openapi.json": _get("this document", {"application/json": {}}, params=(), errors=()),
        "/metrics": _get("the gateway's metrics for a Prometheus scrape (responses, TTFF at the gateway, segments, "
                         "shows and viewers)", {"text/plain": {}}, params=(), errors=()),
        "/static/{filename}": _get("the page's scripts and styles", {"*/*": {}},
                                   params=({"name": "filename", "in": "path", "required": True,
                                            "schema": {"type": "string"}},)),
        "/v1/podcasts": {"post": {
            "summary": "submit a podcast: a script (text or a file), or a topic and/or document",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PodcastRequest"}},
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "file": {"type": "string", "format": "binary",
                             "description": "a script file in any supported format and encoding"},
                    "document_file": {"type": "string", "format": "binary", "description": ".txt, .md or .pdf"},
                    **_FIELDS}}}}},
            "responses": {
                "201": {"description": "accepted and published on the bus",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": {"type": "object", "properties": {
                            "id": {"type": "string"}, "tenant": {"type": "string"},
                            "urls": {"$ref": "#/components/schemas/Urls"}}}}}},
                "400": _ERROR, "413": _ERROR, "415": _ERROR, "503": _ERROR}}},
        "/v1/podcasts/{id}": _get("status: DAG progress, rung per segment, TTFF, stalls, errors",
                                  {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}),
        "/v1/podcasts/{id}/events": _get(
            "the status as server-sent events: 'status' (the status without 'segments') on every change, "
            "'segment' once per delivered segment, then 'end'", {"text/event-stream": {}}),
        "/v1/podcasts/{id}/index.m3u8": _get(
            "live HLS playlist (EVENT; EXT-X-ENDLIST at the end; DISCONTINUITY + MAP where the encoding changes)",
            {"application/vnd.apple.mpegurl": {}},
            params=(_ID, {"name": "_HLS_msn", "in": "query", "required": False, "schema": {"type": "integer"},
                          "description": "blocking reload: wait (up to 3 target durations) until this segment is "
                                         "listed"}), errors=("400", "404")),
        "/v1/podcasts/{id}/init.mp4": _get("the first encoding's init segment (ftyp + moov); waits up to 10 s",
                                           {"video/mp4": {}}),
        "/v1/podcasts/{id}/init_{n}.mp4": _get("init segment of encoding n (after an encoding change)",
                                               {"video/mp4": {}}, params=(_ID, _N)),
        "/v1/podcasts/{id}/seg_{n}.m4s": _get(
            "media segment n (moof + mdat); one not produced yet is waited for up to 10 s, then 404",
            {"video/iso.segment": {}}, params=(_ID, _N), errors=("404", "410")),
        "/v1/podcasts/{id}/steer": {"post": {
            "summary": "steer the show while it plays: 'end' ends it after the line now playing, 'skip' skips "
                       "the next lines, 'direct' (a topic or document) has the LLM continue with a direction",
            "parameters": [_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["action"], "additionalProperties": False,
                "properties": {"action": {"type": "string", "enum": ["end", "skip", "direct"]},
                               "lines": {"type": "integer", "minimum": 1, "maximum": L.script_lines, "default": 1,
                                         "description": "for 'skip': how many lines"},
                               "direction": {"type": "string", "minLength": 1, "maxLength": 500,
                                             "description": "for 'direct' (required there): e.g. 'go deeper on X' "
                                                            "or 'a listener asks: ...'"}}}}}},
            "responses": {"200": {"description": "the scheduler applied it", "content": {"application/json": {
                "schema": {"type": "object", "properties": {
                    "ok": {"type": "boolean"}, "action": {"type": "string"},
                    "last_line": {"type": ["integer", "null"]},
                    "skipped": {"type": "array", "items": {"type": "integer"}},
                    "replaced": {"type": "array", "items": {"type": "integer"}},
                    "first_line": {"type": ["integer", "null"]},
                    "segments_total": {"type": ["integer", "null"]}}}}}},
                "400": _ERROR, "404": _ERROR, "409": _ERROR, "502": _ERROR, "503": _ERROR}}},
        "/v1/podcasts/{id}/live": _get(
            "WebSocket (upgrade): segments pushed as they arrive, for Media Source Extensions: text frame "
            "{type: init, init, mime} + binary init, text frame {type: segment, ...} + binary moof+mdat, "
            "finally {type: end, state, error}",
            {"application/octet-stream": {}},
            params=(_ID, {"name": "from", "in": "query", "required": False, "schema": {"type": "integer"},
                          "description": "first segment to send (resume after a reconnect)"}),
            errors=("400", "404")),
    },
    "components": {"schemas": {
        "Error": {"type": "object", "required": ["error"],
                  "properties": {"error": {"type": "string", "description": "one-line reason"}}},
        "PodcastRequest": {"type": "object", "additionalProperties": False, "properties": _FIELDS,
                           "description": "exactly one of script, or topic and/or document"},
        "Segment": _SEGMENT, "Status": _STATUS, "Urls": _URLS}},
}
