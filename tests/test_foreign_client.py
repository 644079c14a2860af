"""A client that knows only docs/protocol.md: plain nats-py and msgpack, no StreamWise import on its side
(another team's client, or one in another language, does the same). It submits a script to
``sw.requests.<tenant>`` with a ``Nats-Msg-Id`` of ``<tenant>.<request>.<nonce>``, follows the request's
status and segments, fetches a segment by ``ref`` from the object store when ``data`` is nil, and plays
the show by concatenating one init with every segment's ``moof+mdat``, as the document says a player can.
If the document and the code drift apart (a subject, a field name, the header), this test fails."""

from __future__ import annotations

import asyncio
import io
import secrets
import struct
import time
import uuid

import av
import msgpack
import nats
import pytest

from helpers import wait_ready

SCRIPT = "Ada: Welcome to a show heard by a client of another team.\nBen: It only read the protocol.\nAda: Then it works.\n"


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """Top-level ISO BMFF boxes of ``data``: (type, whole box bytes)."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        assert size >= 8, f"bad box size {size} at {pos}"
        out.append((kind, data[pos:pos + size]))
        pos += size
    assert pos == len(data)
    return out


async def _follow(js, subject: str, stream: str, until, timeout_s: float = 120.0) -> list[dict]:
    sub = await js.subscribe(subject, stream=stream, ordered_consumer=True)
    got: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not got or not until(got[-1]):
            assert time.monotonic() < deadline, f"{subject}: {got[-1:]}"
            try:
                msg = await sub.next_msg(timeout=5)
            except nats.errors.TimeoutError:
                continue
            got.append(msgpack.unpackb(msg.data, raw=False))
    finally:
        await sub.unsubscribe()
    return got


async def test_a_client_that_only_read_the_protocol_submits_and_plays_a_show(bus, pool, nats_url):
    await asyncio.wait_for(wait_ready(bus, pool), 90)
    nc = await nats.connect(nats_url, name="foreign-client")
    try:
        js = nc.jetstream()
        tenant, rid = "default", uuid.uuid4().hex[:16]
        request = {"v": 1, "request_id": rid, "submitted_at": time.time(), "script": SCRIPT,
                   "script_name": "show.txt", "ttff_s": 1.5}
        ack = await js.publish(f"sw.requests.{tenant}", msgpack.packb(request),
                               headers={"Nats-Msg-Id": f"{tenant}.{rid}.{secrets.token_hex(16)}"})
        assert ack.stream == "SW_REQUESTS"
        segments_task = asyncio.create_task(_follow(js, f"sw.segments.{tenant}.{rid}", "SW_SEGMENTS",
                                                    lambda seg: seg.get("final")))
        statuses = await _follow(js, f"sw.status.{tenant}.{rid}", "SW_STATUS",
                                 lambda st: st.get("state") in ("done", "failed"))
        segments = await segments_task
        store = await js.object_store("sw_artifacts")
        final = statuses[-1]
        assert final["state"] == "done", final
        assert final["request_id"] == rid and final["speakers"] == ["Ada", "Ben"]
        by_index: dict[int, dict] = {}
        for seg in segments:                        # "a re-run may repeat one: de-duplicate by index"
            by_index.setdefault(seg["index"], seg)
        assert sorted(by_index) == list(range(len(by_index))) and len(by_index) == final["segments_total"]
        payloads = []
        for index in sorted(by_index):
            seg = by_index[index]
            data = seg["data"] if seg.get("data") is not None else (await store.get(seg["ref"])).data
            assert set(seg["quality"]) >= {"rung", "width", "height", "fps"}
            payloads.append(data)
        init = b"".join(box for kind, box in _boxes(payloads[0]) if kind in (b"ftyp", b"moov"))
        assert all(b"".join(box for kind, box in _boxes(p) if kind in (b"ftyp", b"moov")) == init for p in payloads)
        show = init + b"".join(box for p in payloads for kind, box in _boxes(p) if kind in (b"moof", b"mdat"))
        with av.open(io.BytesIO(show)) as container:
            frames = sum(1 for _ in container.decode(video=0))
            fps = float(container.streams.video[0].average_rate or 25)
        total_s = sum(seg["duration_s"] for seg in by_index.values())
        assert frames / fps == pytest.approx(total_s, abs=0.1)
        assert total_s == pytest.approx(final["video_duration_s"], abs=0.05)
        cues = [cue for seg in by_index.values() for cue in seg.get("cues") or ()]
        assert [c["speaker"] for c in cues][:1] == ["Ada"] and {c["speaker"] for c in cues} == {"Ada", "Ben"}
    finally:
        await nc.close()
