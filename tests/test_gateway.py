"""The HTTP gateway (streamwise.gateway) on a real nats-server: its errors, its OpenAPI document,
the codecs string, the playlist, and one show end to end through a real worker pool, read over
the WebSocket by a slow viewer and over HLS.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import aiohttp
import av
import pytest
from aiohttp.test_utils import TestClient, TestServer

from helpers import wait_ready
from streamwise.bus import registry, subjects
from streamwise.bus.limits import LIMITS
from streamwise.client.hls import media_playlist
from streamwise.gateway import make_app
from streamwise.gateway.mp4 import codecs_of
from streamwise.gateway.openapi import OPENAPI
from streamwise.service.pool import Pool
from streamwise.stages.cpu.media import split_init

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "examples" / "short_chat.txt"


@pytest.fixture
async def api(bus):
    """A test client of a gateway app on the session's real nats-server (no workers)."""
    async with TestClient(TestServer(make_app(bus, segment_wait_s=0.5))) as client:
        yield client


async def _error(resp, status: int) -> str:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and body["error"]
    return body["error"]


async def test_bad_json_and_wrong_content_type(api):
    assert "invalid JSON" in await _error(await api.post("/v1/podcasts", data=b"{not json",
                                                         headers={"Content-Type": "application/json"}), 400)
    assert "object" in await _error(await api.post("/v1/podcasts", json=["Ada: hi"]), 400)
    assert "content type" in await _error(await api.post("/v1/podcasts", data=b"Ada: hi",
                                                         headers={"Content-Type": "text/plain"}), 415)


@pytest.mark.parametrize("fields, reason", [
    ({"script": "Ada: hi", "colour": "red"}, "unknown field 'colour'"),
    ({"script": "Ada: hi", "request_id": "mine"}, "'request_id' is set by the gateway"),
    ({"script": "Ada: hi", "ttff_s": -1}, "ttff_s"),
    ({"script": "Ada: hi", "ttff_s": "soon"}, "ttff_s"),
    ({"script": "Ada: hi", "width": 100}, "width"),
    ({"script": "Ada: hi", "fps": 29.97}, "29.97"),
    ({"script": "Ada: hi", "width": 4096, "height": 4096, "fps": 60}, "pixels per second"),
    ({"script": "Ada: hi", "script_format": "docx"}, "script_format"),
    ({"script": "Ada: hi", "topic": "space"}, "exactly one"),
    ({}, "exactly one"),
    ({"script": "   \n"}, "script is empty"),
    ({"script": "just some words with no speaker at all"}, "no dialogue"),
    ({"script": "Ada: hi", "segment_s": 10 ** 30}, "segment_s"),
])
async def test_bad_field_values_are_400_with_the_field(api, fields, reason):
    assert reason in await _error(await api.post("/v1/podcasts", json=fields), 400)


async def test_oversized_script_and_body(api):
    big = "Ada: " + "word " * (LIMITS.script_bytes // 5)          # just over the script limit
    assert "script" in await _error(await api.post("/v1/podcasts", json={"script": big}), 400)
    huge = b'{"script": "' + b"x" * (LIMITS.script_bytes + LIMITS.document_bytes + 1024 * 1024) + b'"}'
    reason = await _error(await api.post("/v1/podcasts", data=huge, headers={"Content-Type": "application/json"}),
                          413)
    assert "over the limit" in reason


async def test_multipart_errors(api):
    form = aiohttp.FormData()
    form.add_field("file", b"Ada: hello\nBen: hi\n", filename="s.txt")
    form.add_field("ttff_s", "abc")
    assert "ttff_s: expected a number" in await _error(await api.post("/v1/podcasts", data=form), 400)
    form = aiohttp.FormData()
    form.add_field("file", bytes(range(256)) * 4, filename="s.srt")     # binary: no text encoding reads it
    assert "s.srt" in await _error(await api.post("/v1/podcasts", data=form), 400)
    form = aiohttp.FormData()
    form.add_field("file", "not a file")
    assert "must be a file upload" in await _error(await api.post("/v1/podcasts", data=form), 400)


async def test_topic_without_an_llm_worker_is_503(api, bus):
    assert not any(h.model == "llm" for h in await registry.list_instances(bus.instances))
    assert "LLM screenplay worker" in await _error(await api.post("/v1/podcasts", json={"topic": "bridges"}), 503)


@pytest.mark.parametrize("path", ["/v1/podcasts/nosuchshow", "/v1/podcasts/nosuchshow/index.m3u8",
                                  "/v1/podcasts/nosuchshow/seg_00000.m4s", "/v1/podcasts/nosuchshow/events",
                                  "/v1/podcasts/bad.id", "/v1/podcasts/nosuchshow/live"])
async def test_unknown_id_is_404(api, path):
    assert "no podcast" in await _error(await api.get(path), 404)


async def _poll(client, rid: str, state: str) -> dict:
    """The status of ``rid`` once its state is ``state`` (the gateway reads the bus asynchronously)."""
    deadline = time.monotonic() + 30
    while True:
        resp = await client.get(f"/v1/podcasts/{rid}")
        body = await resp.json()
        assert resp.status == 200, body
        if body["state"] == state:
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


async def test_the_gateway_follows_a_bounded_number_of_shows(bus):
    """Requests submitted elsewhere (their status published on the bus, as a scheduler does) are
    followed on demand; at the bound a new one is refused until an ended one can be let go."""
    from streamwise.bus.messages import Status

    rids = [f"bounded-{i}-{time.time_ns()}" for i in range(2)]
    for rid in rids:
        await bus.publish(subjects.status("default", rid), Status(request_id=rid, state="running", at=time.time()))
    async with TestClient(TestServer(make_app(bus, max_feeds=1))) as client:
        assert (await client.get(f"/v1/podcasts/{rids[0]}")).status == 200
        assert "already follows 1" in await _error(await client.get(f"/v1/podcasts/{rids[1]}"), 503)
        await bus.publish(subjects.status("default", rids[0]),
                          Status(request_id=rids[0], state="failed", error="scheduler: gave up", at=time.time()))
        body = await _poll(client, rids[0], "failed")
        assert body["error"] == "scheduler: gave up" and body["ended"]
        # a segment of the failed show is a 404 that names the reason
        assert "gave up" in await _error(await client.get(f"/v1/podcasts/{rids[0]}/seg_00000.m4s"), 404)
        # the ended show is let go for the new one
        assert (await _poll(client, rids[1], "running"))["ended"] is False
        assert "already follows 1" in await _error(await client.get(f"/v1/podcasts/{rids[0]}"), 503)


async def test_unknown_route_and_method_are_json(api):
    await _error(await api.get("/v2/nothing"), 404)
    await _error(await api.delete("/v1/podcasts"), 405)


def _app_paths(app) -> set[str]:
    paths = set()
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or (info.get("prefix", "").rstrip("/") + "/{filename}")
        paths.add(path)
    return paths


async def test_openapi_describes_exactly_the_routes(api):
    served = await (await api.get("/openapi.json")).json()
    assert served == json.loads(json.dumps(OPENAPI))
    assert set(served["paths"]) == _app_paths(api.server.app)
    methods = {(p, m.upper()) for p, ops in served["paths"].items() for m in ops}
    routes = {(_app_paths_one(r), r.method) for r in api.server.app.router.routes() if r.method != "HEAD"}
    assert methods == routes
    # every request field the gateway accepts is described, with the limits' ranges
    fields = served["components"]["schemas"]["PodcastRequest"]["properties"]
    from streamwise.gateway.app import USER_FIELDS
    assert set(fields) == set(USER_FIELDS)
    assert fields["ttff_s"]["minimum"] == LIMITS.ttff_s[0]


def _app_paths_one(route) -> str:
    info = route.resource.get_info()
    return info.get("path") or info.get("formatter") or (info.get("prefix", "").rstrip("/") + "/{filename}")


async def test_page_and_static_files_are_served(api):
    page = await api.get("/")
    assert page.status == 200 and "text/html" in page.content_type
    html = await page.text()
    for ref in ("/static/player.js", "/static/style.css", 'id="video"', 'id="script"', 'id="file"', 'id="topic"'):
        assert ref in html
    js = await api.get("/static/player.js")
    assert js.status == 200 and "MediaSource" in await js.text() and "cdn" not in (await js.text()).lower()


def test_codecs_of_reads_the_encoders_profile_and_level():
    import numpy as np
    from streamwise.stages.cpu import media

    seg = media.encode_segment(np.zeros((5, 400, 640, 3), np.uint8), np.zeros(4410, np.int16), fps=25,
                               sample_rate=22050, start_s=0.0)
    codecs = codecs_of(split_init(seg)[0])
    with av.open(io.BytesIO(seg)) as c:
        v = c.streams.video[0].codec_context
        profile = {"Baseline": 0x42, "Constrained Baseline": 0x42, "Main": 0x4D, "High": 0x64}[v.profile]
        assert codecs.startswith(f"avc1.{profile:02x}")
        assert codecs.split(",")[0].endswith(f"{v.level:02x}")
    assert codecs.endswith("mp4a.40.2")
    with pytest.raises(ValueError):
        codecs_of(b"\x00\x00\x00\x08free")


def test_playlist_marks_an_encoding_change():
    text = media_playlist([("a.m4s", 1.0, "init.mp4"), ("b.m4s", 2.0, "init.mp4"), ("c.m4s", 2.5, "init_1.mp4")],
                          target_duration_s=2.0, ended=True)
    lines = text.splitlines()
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in lines and lines[-1] == "#EXT-X-ENDLIST"
    assert "#EXT-X-TARGETDURATION:3" in lines
    i = lines.index("c.m4s")
    assert lines[i - 3:i - 1] == ["#EXT-X-DISCONTINUITY", '#EXT-X-MAP:URI="init_1.mp4"']
    assert lines.count("#EXT-X-DISCONTINUITY") == 1 and lines.count('#EXT-X-MAP:URI="init.mp4"') == 1


# -- one show end to end ----------------------------------------------------------------------


async def test_a_show_over_the_websocket_and_hls(bus, pool, tmp_path):
    """Upload a script file (Windows-1252, CRLF) as multipart; a slow WebSocket viewer and an HLS
    reader get the same segments; the cache is tiny, so segments are read back from JetStream."""
    await wait_ready(bus, pool)
    app = make_app(bus, cache_bytes=200_000)
    async with TestClient(TestServer(app)) as client:
        text = SCRIPT.read_text(encoding="utf-8").replace("\n", "\r\n") + "Nora: Caf\u00e9 time, \u201cgoodbye\u201d.\r\n"
        form = aiohttp.FormData()
        form.add_field("file", text.encode("cp1252"), filename="chat.txt")
        form.add_field("first_segment_s", "1.0")
        resp = await client.post("/v1/podcasts", data=form)
        assert resp.status == 201, await resp.text()
        created = await resp.json()
        rid, urls = created["id"], created["urls"]
        assert resp.headers["Location"] == urls["status"] == f"/v1/podcasts/{rid}"

        ws_segments, inits, header, end = [], [], None, None
        async with client.ws_connect(urls["live"]) as ws:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    m = json.loads(msg.data)
                    if m["type"] == "end":
                        end = m
                        break
                    header = m
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    (inits if header["type"] == "init" else ws_segments).append((header, msg.data))
                    await asyncio.sleep(0.3)          # a slow viewer: it still gets everything
        assert end is not None and end["state"] in ("running", "done") and end["error"] is None
        assert [h["index"] for h, _ in ws_segments] == list(range(len(ws_segments))) and ws_segments[-1][0]["final"]
        assert len(inits) == 1 and inits[0][0]["mime"].startswith('video/mp4; codecs="avc1.')

        status = await (await client.get(urls["status"])).json()
        assert status["segments_delivered"] == len(ws_segments) == status["segments_total"]
        assert status["ttff_s"] is not None and 0 < status["ttff_s"] <= status["segments"][1]["arrived_s"]
        assert status["dag"]["segments"] == len(ws_segments) and status["dag"]["speech"] >= status["lines"] >= 6
        assert status["rungs"] == [s["rung"] for s in status["segments"]]
        assert status["speakers"] == ["Nora", "Sam"]

        playlist = await (await client.get(urls["hls"])).text()
        names = [line for line in playlist.splitlines() if line.startswith("seg_")]
        assert len(names) == len(ws_segments) and playlist.rstrip().endswith("#EXT-X-ENDLIST")
        init = await (await client.get(f"/v1/podcasts/{rid}/init.mp4")).read()
        assert init == inits[0][1]
        hls = [await (await client.get(f"/v1/podcasts/{rid}/{name}")).read() for name in names]
        assert hls == [data for _, data in ws_segments]
        assert (await client.get(f"/v1/podcasts/{rid}/seg_{len(names):05d}.m4s")).status == 404
        # the 200 kB cache kept at most one segment: the others were read again from JetStream
        assert (await (await client.get(urls["status"])).json())["rereads"] >= len(names) - 1

        # the concatenation is one playable show of the status's length
        show = tmp_path / "show.mp4"
        show.write_bytes(init + b"".join(hls))
        with av.open(str(show)) as c:
            frames = sum(1 for _ in c.decode(video=0))
        assert frames / 25 == pytest.approx(status["video_duration_s"], abs=0.1)

        # a viewer that reconnects resumes where it stopped: the init, then segment 3 on
        async with client.ws_connect(urls["live"] + "?from=3") as ws:
            first = [await ws.receive() for _ in range(4)]
        assert json.loads(first[0].data)["type"] == "init" and first[1].data == init
        assert json.loads(first[2].data)["index"] == 3 and first[3].data == ws_segments[3][1]

        # the SSE stream replays the show and ends
        events, tasks = [], []
        async with client.get(urls["events"]) as sse:
            async for line in sse.content:
                if line.startswith(b"event: "):
                    events.append(line[7:].strip().decode())
                elif line.startswith(b"data: ") and events[-1] == "task":
                    tasks.append(json.loads(line[6:]))
        assert events.count("segment") == len(ws_segments) and events[-1] == "end" and "status" in events
        # every task once, for the page's Gantt chart per instance: each stage, on its one instance, in time
        final = await (await client.get(urls["status"])).json()
        assert len(tasks) == final["tasks"] == events.count("task") > 0
        assert {t["stage"] for t in tasks} == {"screenplay", "tts", "image", "video", "mux"}
        assert all(len({t["instance"] for t in tasks if t["stage"] == st}) == 1 for st in {t["stage"] for t in tasks})
        assert sum(t["stage"] == "mux" for t in tasks) >= len(ws_segments)
        assert all(0 <= t["start_s"] <= t["end_s"] and t["deadline_s"] is not None for t in tasks)

        # the gateway's metrics (GET /metrics): each segment once, the TTFF the status gives, no viewer left
        text = await (await client.get("/metrics")).text()
        assert _metric(text, "streamwise_gateway_segments_total") == len(ws_segments)
        assert _metric(text, "streamwise_gateway_segment_bytes_total") == sum(len(d) for _, d in ws_segments)
        assert _metric(text, "streamwise_gateway_ttff_seconds_count") == 1
        assert _metric(text, "streamwise_gateway_ttff_seconds_sum") == pytest.approx(status["ttff_s"], abs=0.01)
        assert _metric(text, "streamwise_gateway_shows") == 1
        assert _metric(text, "streamwise_gateway_viewers", kind="live") == 0 == _metric(
            text, "streamwise_gateway_viewers", kind="events")
        assert _metric(text, "streamwise_gateway_responses_total", route="/v1/podcasts/{id}/live", status="101") == 2


def test_serve_says_when_its_port_is_taken(nats_url):
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "streamwise", "serve", "--nats", nats_url, "--port", str(port)],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "address already in use" in proc.stderr and "--port" in proc.stderr


async def test_a_viewer_keeps_its_show_through_a_bus_restart(tmp_path):
    """The nats-server (file store) is SIGKILLed after the viewer's second segment and started again
    4 s later: the gateway's consumers re-subscribe from the last stream sequence they saw, and the
    WebSocket viewer still gets every segment once, in order, to the final one."""
    from streamwise.bus.client import connect
    from streamwise.bus.server import EmbeddedServer

    server = EmbeddedServer(store_dir=str(tmp_path / "js")).start()
    pool = Pool(server.url, log_dir=tmp_path / "logs").start()
    try:
        bus = await connect(server.url)
        try:
            await wait_ready(bus, pool)
            async with TestClient(TestServer(make_app(bus))) as client:
                created = await (await client.post("/v1/podcasts", json={"script": SCRIPT.read_text()})).json()
                indices, restarted = [], None
                async with client.ws_connect(created["urls"]["live"]) as ws:
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            continue
                        m = json.loads(msg.data)
                        if m["type"] == "end":
                            assert m["error"] is None
                            break
                        if m["type"] == "segment":
                            indices.append(m["index"])
                            if m["index"] == 1 and restarted is None:
                                server.kill()
                                await asyncio.sleep(4)
                                restarted = asyncio.create_task(asyncio.to_thread(server.start))
                await restarted
                assert indices == list(range(len(indices))) and len(indices) >= 10
                status = await (await client.get(created["urls"]["status"])).json()
                assert status["segments_delivered"] == len(indices) and status["segments"][-1]["final"]
        finally:
            await bus.close()
        pool.check()
    finally:
        pool.stop()
        server.stop()


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with ``labels`` (a subset) in a Prometheus text page; 0 when absent."""
    total = 0.0
    for row in text.splitlines():
        if row.startswith(name + "{") or row.startswith(name + " "):
            head, _, value = row.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
    return total


async def test_the_gateway_counts_its_answers_and_errors_for_a_prometheus_scrape(api):
    """``GET /metrics`` (issue 13 item 6: a scrape endpoint on the gateway too): every response, by route pattern
    (never the id) and status, errors included."""
    await _error(await api.post("/v1/podcasts", data=b"{not json", headers={"Content-Type": "application/json"}), 400)
    await _error(await api.get("/v1/podcasts/nosuchid"), 404)
    await _error(await api.get("/v2/nothing"), 404)
    resp = await api.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    assert _metric(text, "streamwise_gateway_responses_total", route="/v1/podcasts", status="400", method="POST") == 1
    assert _metric(text, "streamwise_gateway_responses_total", route="/v1/podcasts/{id}", status="404") == 1
    assert _metric(text, "streamwise_gateway_responses_total", route="unmatched", status="404") == 1
    assert "nosuchid" not in text
    assert _metric(text, "streamwise_gateway_shows") == 0 and "streamwise_gateway_viewers" in text
    assert _metric(text, "streamwise_gateway_segments_total") == 0
