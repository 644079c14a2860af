"""The bus layer against a real nats-server: layout, codec, registry, object store, dead letters."""

from __future__ import annotations

import time

import msgpack
import pytest
from nats.js import api

from streamwise.bus import registry, subjects
from streamwise.bus.client import connect, ensure_layout
from streamwise.bus.codec import MessageError, decode, encode
from streamwise.bus.messages import Heartbeat, Quality, Request, Segment, Task
from streamwise.bus.server import EmbeddedServer, ServerError


def test_request_from_a_plain_msgpack_map_decodes_with_defaults():
    raw = msgpack.packb({"request_id": "abc", "submitted_at": 1.5, "script": "A: hi"})
    req = decode(raw, Request)
    assert (req.request_id, req.tenant, req.ttff_s, req.width, req.height, req.fps) == ("abc", "default", 1.5, 640, 400, 25.0)


def test_decode_rejects_wrong_types_missing_fields_and_newer_versions():
    with pytest.raises(MessageError, match="request_id"):
        decode(msgpack.packb({"submitted_at": 1.0}), Request)
    with pytest.raises(MessageError, match="ttff_s"):
        decode(msgpack.packb({"request_id": "a", "submitted_at": 1.0, "ttff_s": "soon"}), Request)
    with pytest.raises(MessageError, match="newer"):
        decode(msgpack.packb({"v": 99, "request_id": "a", "submitted_at": 1.0}), Request)
    with pytest.raises(MessageError):
        decode(b"\xc1 not msgpack", Task)


def test_messages_round_trip_and_ignore_unknown_fields():
    seg = Segment(request_id="r", tenant="t", index=3, start_s=6.0, duration_s=2.0, quality=Quality(), data=b"x")
    assert decode(encode(seg), Segment) == seg
    raw = msgpack.unpackb(encode(seg))
    raw["added_in_v2"] = [1, 2]
    assert decode(msgpack.packb(raw), Segment).index == 3


def test_subject_tokens_are_checked():
    assert subjects.tasks("piper", "tts-host-1") == "sw.tasks.piper.tts-host-1"
    for bad in ("", "a.b", "a b", "*", ">"):
        with pytest.raises(ValueError):
            subjects.token(bad)


def test_embedded_server_starts_on_a_free_port_and_removes_its_store():
    with EmbeddedServer() as s:
        store = s.store_dir
        assert s.url.startswith("nats://127.0.0.1:")
        assert s.process.poll() is None
    assert s.process is None
    import os
    assert not os.path.exists(store)


def test_embedded_server_reports_a_port_in_use(nats_server):
    with pytest.raises(ServerError, match="exited|did not listen"):
        EmbeddedServer(port=nats_server.port).start(timeout_s=3)


async def test_layout_is_idempotent_and_has_the_documented_streams(bus):
    await ensure_layout(bus.js)     # a second process creating the same layout
    names = {s.config.name for s in await bus.js.streams_info()}
    for stream in (subjects.STREAM_REQUESTS, subjects.STREAM_EVENTS,
                   subjects.STREAM_SEGMENTS, subjects.STREAM_STATUS, subjects.STREAM_DEADLETTER):
        assert stream in names
    assert subjects.LEGACY_STREAM_TASKS not in names      # tasks: one stream per model (issue 11)
    assert await bus.task_stream("piper") == "SW_TASKS_piper"
    await ensure_layout(bus.js, models=("piper", "llm"))   # the admin's `streamwise layout`: idempotent too
    info = await bus.js.stream_info(subjects.tasks_stream("piper"))
    assert info.config.retention == api.RetentionPolicy.WORK_QUEUE
    assert info.config.subjects == ["sw.tasks.piper.*"]
    assert (await bus.js.stream_info(subjects.tasks_stream("llm"))).config.subjects == ["sw.tasks.llm.*"]
    assert bus.max_payload == 8 * 1024 * 1024


async def test_object_store_round_trip_and_missing_artifact(bus):
    data = bytes(range(256)) * 2000
    await bus.put_blob("test/blob", data)
    assert await bus.get_blob("test/blob") == data
    with pytest.raises(KeyError, match="not found"):
        await bus.get_blob("test/missing")


async def test_heartbeats_register_and_wait_for_stages(bus):
    hb = Heartbeat(instance="tts-test-1", stage="tts", model="piper", state="ready")
    await registry.beat(bus.instances, hb)
    found = {h.instance: h for h in await registry.list_instances(bus.instances)}
    assert found["tts-test-1"].stage == "tts" and found["tts-test-1"].at > time.time() - 5
    assert await registry.wait_for_stages(bus.instances, {"tts"}, 1.0)
    with pytest.raises(TimeoutError, match="no-such-stage"):
        await registry.wait_for_stages(bus.instances, {"tts", "no-such-stage"}, 0.2)
    await registry.forget(bus.instances, "tts-test-1")
    assert "tts-test-1" not in {h.instance for h in await registry.list_instances(bus.instances)}


async def test_listing_the_instances_leaves_no_consumer_behind(bus):
    """``list_instances`` is polled (20 Hz while a pool starts): each call's consumer on the heartbeat bucket must
    go soon after. nats-py's ``kv.keys()`` kept each for 5 minutes, and ``streamwise bench --topic`` failed with
    "maximum consumers limit reached" while its LLM worker loaded (session 8)."""
    import asyncio

    hb = Heartbeat(instance="list-probe-1", stage="tts", model="piper", hardware="cpu", gpus=0, state="ready")
    await registry.beat(bus.instances, hb)
    stream = f"KV_{subjects.KV_INSTANCES}"
    before = (await bus.js.stream_info(stream)).state.consumer_count
    for _ in range(50):
        listed = await registry.list_instances(bus.instances)
        assert "list-probe-1" in {h.instance for h in listed}
    await registry.forget(bus.instances, "list-probe-1")
    assert "list-probe-1" not in {h.instance for h in await registry.list_instances(bus.instances)}
    await asyncio.sleep(4.0)                          # registry.LIST_INACTIVE_S (2 s) and a margin
    after = (await bus.js.stream_info(stream)).state.consumer_count
    assert after <= before + 2, (before, after)       # not 51 more: each listing's consumer is gone


async def test_deadletter_keeps_the_reason_and_digest_not_the_text(bus):
    import hashlib

    import msgpack

    sub = await bus.js.subscribe(subjects.deadletter("tests"), stream=subjects.STREAM_DEADLETTER,
                                 ordered_consumer=True)
    await bus.deadletter("tests", b"Ada: my secret script", "invalid Task message: expected map")
    msg = await sub.next_msg(timeout=2)
    assert msg.data == b"" and "expected map" in msg.headers["Sw-Error"]
    assert msg.headers["Sw-Sha256"] == hashlib.sha256(b"Ada: my secret script").hexdigest()
    script = "Ada: " + "a secret line. " * 100
    data = msgpack.packb({"request_id": "r1", "tenant": "t", "script": script, "fps": "fast"})
    await bus.deadletter("tests", data, "fps: expected float")
    msg = await sub.next_msg(timeout=2)
    kept = msgpack.unpackb(msg.data)
    assert kept == {"request_id": "r1", "tenant": "t", "script": f"<{len(script)} chars>", "fps": "fast"}
    assert msg.headers["Sw-Bytes"] == str(len(data))
    await sub.unsubscribe()


async def test_connect_to_a_dead_url_fails_with_the_url():
    with pytest.raises(ConnectionError, match="127.0.0.1:1"):
        await connect("nats://127.0.0.1:1", connect_timeout_s=0.5)


async def test_an_ephemeral_pull_consumer_comes_back_after_its_consumer_and_a_failed_re_create_are_lost(bus):
    """A consumer that vanishes (an R1 consumer on a killed cluster node answers every pull with
    503) is re-created; when that re-create fails too (here: its stream is missing for a while,
    as a stream is leaderless after a node loss), the next fetches try again instead of pulling
    forever on the unsubscribed subscription. Nothing published after the stream is back is lost."""
    from streamwise.bus.client import PullConsumer

    stream = f"T_PULL_{time.time_ns()}"
    subject = f"pulltest.{time.time_ns()}"
    await bus.js.add_stream(name=stream, subjects=[subject])
    try:
        consumer = PullConsumer(bus, subject, stream=stream, config=api.ConsumerConfig(inactive_threshold=60.0))
        await bus.js.publish(subject, b"before")
        assert [m.data for m in await consumer.fetch(5, timeout=2.0)] == [b"before"]
        await bus.js.delete_stream(stream)        # the consumer goes with it; re-creating it fails
        for _ in range(8):                        # 503s, then a re-create refused (no such stream)
            assert await consumer.fetch(5, timeout=0.5) == []
        assert consumer.recreated == 0
        await bus.js.add_stream(name=stream, subjects=[subject])
        # the new stream numbers from 1 again, and the consumer resumes after the sequence it last
        # returned (1): the first message here stands for the one it already had
        await bus.js.publish(subject, b"seen")
        await bus.js.publish(subject, b"after")
        got = []
        for _ in range(20):
            got += [m.data for m in await consumer.fetch(5, timeout=0.5)]
            if got:
                break
        assert got == [b"after"]
        assert consumer.recreated == 1
    finally:
        await consumer.unsubscribe()
        await bus.js.delete_stream(stream)


async def test_a_viewer_whose_ordered_consumer_s_node_is_killed_gets_every_message_once(tmp_path, monkeypatch):
    """A three-node cluster; the viewer's connection stays up (its node lives) but the R1 ordered
    consumer of one of its subjects is on the node that is SIGKILLed. Every message published
    after the kill arrives, once and in order (nats.py's own reset re-created the consumer under
    its old name and never succeeded: the viewer received nothing more)."""
    import asyncio

    from streamwise.bus.client import retrying
    from streamwise.bus.server import LocalCluster
    from streamwise.client import _pump

    monkeypatch.setenv("STREAMWISE_REPLICAS", "3")
    with LocalCluster(3, str(tmp_path / "cluster")) as cluster:
        ports = [node.port for node in cluster.nodes]
        bus = await connect(cluster.url, name="viewer", dont_randomize=True)
        stop = asyncio.Event()
        pumps = []
        try:
            await cluster.replicated(bus)
            mine = f"sw{ports.index(bus.nc.connected_url.port)}"
            victim = subject = queue = None
            for i in range(12):    # until one consumer is on another node than the viewer's
                s, q = f"sw.segments.t.pump{i}", asyncio.Queue()
                pumps.append(asyncio.create_task(_pump(bus, s, subjects.STREAM_SEGMENTS, "segment", q, stop)))
                for _ in range(100):
                    leaders = {c.config.filter_subject: c.cluster.leader
                               for c in await bus.js.consumers_info(subjects.STREAM_SEGMENTS)}
                    if s in leaders:
                        break
                    await asyncio.sleep(0.1)
                if leaders.get(s) not in (None, mine):
                    victim, subject, queue = leaders[s], s, q
                    break
            assert victim is not None, "every ordered consumer was placed on the viewer's own node"
            cluster.nodes[int(victim[2:])].kill()
            sent = [f"m{n}".encode() for n in range(10)]
            for data in sent:
                await retrying("publish", lambda data=data: bus.js.publish(subject, data))
            got = []
            while len(got) < len(sent):
                _, msg, _ = await asyncio.wait_for(queue.get(), timeout=90)
                got.append(msg.data)
            await asyncio.sleep(1.0)
            assert got == sent and queue.empty()
        finally:
            stop.set()
            await asyncio.gather(*pumps, return_exceptions=True)
            await bus.close()
