"""The HTTP gateway (aiohttp): submit a podcast, watch it as HLS or over a WebSocket, read its status.

Routes (the OpenAPI document, :data:`streamwise.gateway.openapi.OPENAPI`, describes each):

- ``POST /v1/podcasts``: JSON or ``multipart/form-data`` -> 201 ``{"id", "tenant", "urls"}``
- ``GET /v1/podcasts/{id}``: status JSON; ``GET /v1/podcasts/{id}/events``: the same as SSE
- ``GET /v1/podcasts/{id}/index.m3u8``, ``init.mp4`` (``init_<n>.mp4`` after an encoding change),
  ``seg_<k>.m4s``: live HLS
- ``GET /v1/podcasts/{id}/live``: WebSocket, segments pushed as they arrive (for MSE)
- ``GET /`` (the page), ``/static/...``, ``GET /openapi.json``, ``GET /metrics`` (Prometheus text, :mod:`.metrics`)

Every error is JSON ``{"error": "one-line reason"}`` with a 4xx (bad input, unknown id) or 5xx
(the bus is unreachable) status (:class:`streamwise.gateway.errors.ApiError`). A submitted request's
fields are read and checked in :mod:`.submit`; the shows the gateway follows are :mod:`.feed`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path

import nats.errors
from aiohttp import web

from ..bus import registry, subjects
from ..bus.client import Bus
from ..bus.codec import MessageError, decode, encode
from ..bus.limits import LIMITS
from ..bus.messages import Steer, SteerReply
from ..client import upload_large_script
from ..client.hls import media_playlist
from .errors import ApiError
from .feed import TERMINAL, Feed, Feeds, SegmentCache
from .metrics import GatewayMetrics
from .openapi import OPENAPI
from .submit import USER_FIELDS, _build_request, _check_script, _fields_from_json, _fields_from_multipart

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"

BODY_MARGIN = 256 * 1024
"""Bytes a request body may have beyond the script and document limits (JSON escapes, other
fields, multipart headers)."""

SEGMENT_WAIT_S = 10.0
"""How long a GET of a segment (or init.mp4) not produced yet waits for it before a 404 (s)."""

KEEPALIVE_S = 15.0
"""Seconds between SSE keep-alive comments when nothing changes."""

BUS = web.AppKey("bus", Bus)
TENANT = web.AppKey("tenant", str)
MAX_BODY = web.AppKey("max_body", int)
WAIT_S = web.AppKey("segment_wait_s", float)


def _json(data, status: int = 200, **kw) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, allow_nan=False), **kw)


METRICS = web.AppKey("metrics", GatewayMetrics)
COUNTED = web.RequestKey("counted", bool)   # set on a request whose response is already counted


@web.middleware
async def count_responses(request: web.Request, handler):
    """Count every response (``streamwise.gateway.responses``) by method, route pattern and status."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        resp = await handler(request)
    except web.HTTPException as exc:    # 3xx the error middleware lets through
        request.app[METRICS].response(request.method, route, exc.status)
        raise
    if not request.get(COUNTED):        # a WebSocket counts its 101 when it opens (its handler may be cancelled)
        request.app[METRICS].response(request.method, route, resp.status)
    return resp


@web.middleware
async def errors_as_json(request: web.Request, handler):
    """Every 4xx/5xx as ``{"error": "one-line reason"}``."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _json({"error": exc.reason}, status=exc.status)
    except web.HTTPRequestEntityTooLarge as exc:
        return _json({"error": f"request body over the limit of {request.app[MAX_BODY]:,} bytes "
                               f"(a script is at most {LIMITS.script_bytes:,} bytes)"}, status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json({"error": f"{exc.reason}: {request.method} {request.path}"}, status=exc.status)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:   # a bug or the bus away: still one line, still JSON
        log.exception("gateway: %s %s failed", request.method, request.path)
        return _json({"error": f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]}, status=500)


FEEDS = web.AppKey("feeds", Feeds)


async def create_podcast(request: web.Request) -> web.Response:
    app = request.app
    ctype = request.content_type
    if ctype == "application/json":
        fields = _fields_from_json(await request.read())
    elif ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        fields = await _fields_from_multipart(request)
    else:
        raise ApiError(415, f"content type {ctype or 'none'!r}: send application/json or multipart/form-data")
    req = _build_request(fields, app[TENANT])
    bus: Bus = app[BUS]
    if req.script is not None:
        await asyncio.to_thread(_check_script, req)
    else:
        instances = await registry.list_instances(bus.instances)
        if not any(hb.stage == "screenplay" and hb.model == "llm" and hb.state == "ready" for hb in instances):
            raise ApiError(503, "a topic or document needs an LLM screenplay worker, and none is ready on the bus "
                                "(start the gateway or the pool with --llm, or send a script)")
    feed = await app[FEEDS].create(req.request_id, submitted_at=req.submitted_at, segment_s=req.segment_s)
    try:
        await upload_large_script(bus, req)
        req.submitted_at = time.time()
        feed.submitted_at = req.submitted_at
        await bus.publish(subjects.requests(req.tenant), req,
                          msg_id=subjects.request_dedup_id(req.tenant, req.request_id))   # docs/security.md
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    except Exception as exc:
        raise ApiError(503, f"could not publish the request on {bus.safe_url}: {type(exc).__name__}: {exc}") from None
    body = {"id": req.request_id, "tenant": req.tenant, "urls": urls(req.request_id)}
    return _json(body, status=201, headers={"Location": body["urls"]["status"]})


def urls(rid: str) -> dict:
    base = f"/v1/podcasts/{rid}"
    return {"status": base, "events": f"{base}/events", "hls": f"{base}/index.m3u8", "live": f"{base}/live",
            "init": f"{base}/init.mp4"}


# -- watching -------------------------------------------------------------------------------

async def get_status(request: web.Request) -> web.Response:
    feed = await request.app[FEEDS].get(request.match_info["id"])
    return _json({**feed.snapshot(), "urls": urls(feed.request_id)})


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, allow_nan=False)}\n\n".encode()


async def status_events(request: web.Request) -> web.StreamResponse:
    """SSE: ``status`` (the status JSON without the segment list) on every change, ``segment``
    once per delivered segment, ``task`` once per task run (stage, node, instance, start, end, deadline,
    rung: the page's Gantt chart), then ``end`` when the show is over."""
    feed = await request.app[FEEDS].get(request.match_info["id"])
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    viewers = request.app[METRICS].viewers
    viewers["events"] += 1
    try:
        await _send_events(resp, feed)
    finally:
        viewers["events"] -= 1
    return resp


async def _send_events(resp: web.StreamResponse, feed: Feed) -> None:
    sent = tasks = 0
    while True:
        version = feed.version
        while tasks < len(feed.tasks):     # each task once, for the page's Gantt chart per instance
            await resp.write(_sse("task", {k: v for k, v in feed.tasks[tasks].items() if k != "t0"}))
            tasks += 1
        while sent < len(feed.segments):
            await resp.write(_sse("segment", feed.segments[sent].public(feed.submitted_at)))
            sent += 1
        await resp.write(_sse("status", feed.summary()))
        if feed.ended and feed.state in TERMINAL:
            await resp.write(_sse("end", {"state": feed.state, "error": feed.error}))
            break
        if not await feed.changed_since(version, KEEPALIVE_S):
            await resp.write(b": keep-alive\n\n")


def _init_uri(n: int) -> str:
    return "init.mp4" if n == 0 else f"init_{n}.mp4"


async def playlist(request: web.Request) -> web.Response:
    """The live EVENT playlist. ``?_HLS_msn=N`` (blocking playlist reload, RFC 8216bis §6.2.5.2)
    waits until segment N is listed or the show ended, at most 3 target durations."""
    feed = await request.app[FEEDS].get(request.match_info["id"])
    msn = request.query.get("_HLS_msn")
    if msn is not None:
        if not msn.isdigit():
            raise ApiError(400, f"_HLS_msn: expected a segment number, got {msn[:20]!r}")
        await feed.wait(lambda: len(feed.segments) > int(msn) or feed.ended, 3 * max(feed.segment_s, 1.0))
    entries = [(f"seg_{s.index:05d}.m4s", s.duration_s, _init_uri(s.init)) for s in feed.segments]
    text = media_playlist(entries, target_duration_s=feed.segment_s, ended=feed.ended)
    return web.Response(text=text, content_type="application/vnd.apple.mpegurl", headers={"Cache-Control": "no-cache"})


async def _wait_segment(request: web.Request, feed: Feed, index: int) -> None:
    ok = await feed.wait(lambda: len(feed.segments) > index or feed.ended, request.app[WAIT_S])
    if ok and len(feed.segments) > index:
        return
    if feed.error:
        raise ApiError(404, f"no segment {index}: the request failed: {feed.error}")
    if feed.ended:
        raise ApiError(404, f"no segment {index}: the show has {len(feed.segments)} segments")
    raise ApiError(404, f"segment {index} is not produced yet (waited {request.app[WAIT_S]:g} s); retry")


async def init_segment(request: web.Request) -> web.Response:
    feed = await request.app[FEEDS].get(request.match_info["id"])
    n = int(request.match_info.get("n", 0))
    if n >= len(feed.inits):
        await _wait_segment(request, feed, 0)
    if n >= len(feed.inits):
        raise ApiError(404, f"no init segment {n}: the show has {len(feed.inits)} encoding(s) so far")
    return web.Response(body=feed.inits[n], content_type="video/mp4", headers={"Cache-Control": "max-age=3600"})


async def media_segment(request: web.Request) -> web.Response:
    feed = await request.app[FEEDS].get(request.match_info["id"])
    index = int(request.match_info["n"])
    await _wait_segment(request, feed, index)
    try:
        data = await feed.media(index)
    except KeyError as exc:
        raise ApiError(410, str(exc).strip("'\"")) from None
    return web.Response(body=data, content_type="video/iso.segment", headers={"Cache-Control": "max-age=3600"})


async def live(request: web.Request) -> web.WebSocketResponse:
    """WebSocket: from segment ``?from=K`` (default 0), each segment as a JSON text frame
    ``{"type": "segment", ...}`` followed by one binary frame (``moof + mdat``); before the first
    segment of an encoding, ``{"type": "init", "init": n, "mime": ...}`` and the init bytes; at the
    end ``{"type": "end", "state", "error"}``. Each send waits for the socket to drain, so a slow
    viewer holds one segment in memory and falls behind without losing any."""
    feed = await request.app[FEEDS].get(request.match_info["id"])
    start = request.query.get("from", "0")
    if not start.isdigit():
        raise ApiError(400, f"from: expected a segment number, got {start[:20]!r}")
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    request.app[METRICS].response(request.method, request.match_info.route.resource.canonical, ws.status)
    request[COUNTED] = True
    viewers = request.app[METRICS].viewers
    viewers["live"] += 1
    try:
        return await _push(request, ws, feed, start)
    finally:
        viewers["live"] -= 1


async def _push(request: web.Request, ws: web.WebSocketResponse, feed: Feed, start: str) -> web.WebSocketResponse:

    async def send() -> None:
        k, current = int(start), None
        while True:
            await feed.wait(lambda: len(feed.segments) > k or feed.ended, None)
            if len(feed.segments) > k:
                info = feed.segments[k]
                if info.init != current:
                    await ws.send_str(json.dumps({"type": "init", "init": info.init, "mime": feed.mimes[info.init]}))
                    await ws.send_bytes(feed.inits[info.init])
                    current = info.init
                data = await feed.media(k)
                await ws.send_str(json.dumps({"type": "segment", **info.public(feed.submitted_at)}))
                await ws.send_bytes(data)
                k += 1
                continue
            await ws.send_str(json.dumps({"type": "end", "state": feed.state, "error": feed.error,
                                          "segments": len(feed.segments)}))
            return

    sender = asyncio.create_task(send())
    reader = asyncio.create_task(_drain(ws))
    try:
        await asyncio.wait([sender, reader], return_when=asyncio.FIRST_COMPLETED)
        if sender.done() and not sender.cancelled() and sender.exception() is not None:
            with contextlib.suppress(Exception):
                await ws.send_str(json.dumps({"type": "error", "error": str(sender.exception())}))
    finally:
        for t in (sender, reader):
            t.cancel()
        await asyncio.gather(sender, reader, return_exceptions=True)
        await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what the viewer sends, so close frames and pings are handled."""
    async for _ in ws:
        pass


STEER_TIMEOUT_S = 5.0
"""How long a steer waits for the scheduler running the request to answer (s)."""


async def steer(request: web.Request) -> web.Response:
    """``{"action": "end"}``: end the show after the line now playing; ``{"action": "skip",
    "lines": N}``: skip the N (default 1) lines after it (see
    :meth:`streamwise.workflow.podcast.PodcastPlan.end_after_current_line` and ``skip_ahead``);
    ``{"action": "direct", "direction": "go deeper on X"}`` (a topic or document request): the LLM
    continues the screenplay with that direction (:mod:`streamwise.workflow.steer`); through the
    scheduler that runs the request (core NATS request/reply). 200 with its answer; 409 when no
    scheduler runs it (done, failed, not yet accepted) or the steer cannot apply."""
    feed = await request.app[FEEDS].get(request.match_info["id"])
    fields = _fields_from_json(await request.read())
    action = fields.get("action")
    if set(fields) - {"action", "lines", "direction"}:
        raise ApiError(400, f"unknown field {sorted(set(fields) - {'action', 'lines', 'direction'})[0]!r}; a steer "
                            f"has 'action' and, to skip, 'lines', or to direct, 'direction'")
    if action not in ("end", "skip", "direct"):
        raise ApiError(400, f"action: expected 'end' (end after the line now playing), 'skip' (skip the next "
                            f"lines) or 'direct' (a direction for the LLM), got {str(action)[:40]!r}")
    direction = fields.get("direction")
    if (action == "direct") != ("direction" in fields):
        raise ApiError(400, "direction: required with action 'direct', and only there")
    if action == "direct" and (not isinstance(direction, str) or not direction.strip() or len(direction) > 500):
        raise ApiError(400, f"direction: expected text of 1..500 characters, got {str(direction)[:40]!r}")
    lines = fields.get("lines", 1)
    if action != "skip" and "lines" in fields:
        raise ApiError(400, "lines: only for action 'skip'")
    if not isinstance(lines, int) or isinstance(lines, bool) or not 1 <= lines <= LIMITS.script_lines:
        raise ApiError(400, f"lines: expected a whole number 1..{LIMITS.script_lines}, got {str(lines)[:40]!r}")
    bus: Bus = request.app[BUS]
    msg = Steer(request_id=feed.request_id, tenant=feed.tenant, action=action, lines=lines, direction=direction,
                at=time.time())
    try:
        answer = await bus.nc.request(subjects.steer(feed.tenant, feed.request_id), encode(msg),
                                      timeout=STEER_TIMEOUT_S)
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError, asyncio.TimeoutError):
        raise ApiError(409, f"podcast {feed.request_id!r} is not running on any scheduler (state "
                            f"{feed.state}): only a show being generated can be steered") from None
    except Exception as exc:   # the bus is away
        raise ApiError(503, f"could not reach the schedulers on {bus.safe_url}: {type(exc).__name__}") from None
    try:
        reply = decode(answer.data, SteerReply)
    except MessageError as exc:
        raise ApiError(502, f"the scheduler's answer: {exc}") from None
    if not reply.ok:
        raise ApiError(409, reply.error or "the scheduler refused the steer")
    return _json({"ok": True, "action": action, "last_line": reply.last_line, "skipped": reply.skipped,
                  "replaced": reply.replaced, "first_line": reply.first_line, "segments_total": reply.segments_total})


# -- the page and the description ---------------------------------------------------------------

async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def openapi(request: web.Request) -> web.Response:
    return _json(OPENAPI)


async def metrics(request: web.Request) -> web.Response:
    """The gateway's metrics as Prometheus text (:mod:`.metrics`), for a scrape."""
    return web.Response(body=request.app[METRICS].text(), headers={"Content-Type": "text/plain; version=0.0.4"})


def make_app(bus: Bus, *, tenant: str = "default", cache_bytes: int = 64 * 1024 * 1024,
             segment_wait_s: float = SEGMENT_WAIT_S, max_feeds: int = 256,
             metrics_kinds: str | None = None) -> web.Application:
    """The gateway application on an open bus connection (which it does not close).

    ``tenant``: the tenant every request is submitted under and read from; ``cache_bytes``: the
    shared segment cache's bound (bytes); ``segment_wait_s``: how long a GET of a segment not yet
    produced waits before a 404; ``max_feeds``: podcasts followed at once; ``metrics_kinds``: the
    metric exporters (default ``$STREAMWISE_METRICS``, else the ``/metrics`` scrape endpoint).
    """
    subjects.token(tenant)
    max_body = LIMITS.script_bytes + LIMITS.document_bytes + BODY_MARGIN
    app = web.Application(middlewares=[count_responses, errors_as_json], client_max_size=max_body)
    app[BUS], app[TENANT], app[MAX_BODY], app[WAIT_S] = bus, tenant, max_body, float(segment_wait_s)
    feeds: list[Feeds] = []
    app[METRICS] = GatewayMetrics(lambda: len(feeds[0]) if feeds else 0, kinds=metrics_kinds)
    app[FEEDS] = Feeds(bus, tenant, SegmentCache(cache_bytes), max_feeds=max_feeds, on_segment=app[METRICS].segment)
    feeds.append(app[FEEDS])

    async def close_feeds(app: web.Application) -> None:
        await app[FEEDS].close()
        app[METRICS].close()

    app.on_cleanup.append(close_feeds)
    r = app.router
    r.add_get("/", page)
    r.add_static("/static/", STATIC)
    r.add_get("/openapi.json", openapi)
    r.add_get("/metrics", metrics)
    r.add_post("/v1/podcasts", create_podcast)
    r.add_get("/v1/podcasts/{id}", get_status)
    r.add_get("/v1/podcasts/{id}/events", status_events)
    r.add_get("/v1/podcasts/{id}/index.m3u8", playlist)
    r.add_get("/v1/podcasts/{id}/init.mp4", init_segment)
    r.add_get(r"/v1/podcasts/{id}/init_{n:\d+}.mp4", init_segment)
    r.add_get(r"/v1/podcasts/{id}/seg_{n:\d+}.m4s", media_segment)
    r.add_get("/v1/podcasts/{id}/live", live)
    r.add_post("/v1/podcasts/{id}/steer", steer)
    return app


async def serve(bus: Bus, *, host: str = "127.0.0.1", port: int = 8080, tenant: str = "default",
                ready=None, stop: asyncio.Event | None = None) -> None:
    """Run the gateway on ``host:port`` until ``stop`` is set (or forever). ``ready(url)`` is
    called once it listens.

    Raises:
        OSError: the port is taken.
    """
    runner = web.AppRunner(make_app(bus, tenant=tenant), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        if ready:
            ready(f"http://{host}:{port}/")
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()


__all__ = ["ApiError", "make_app", "serve", "USER_FIELDS", "SEGMENT_WAIT_S"]
