"""Issue 11: the authenticated bus. A real nats-server runs with the configuration that
``streamwise auth init`` writes; every refusal asserted here is the server's own
"Permissions Violation" (received by the connection's async error callback), never our log text.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
from nats.js import api

from streamwise.bus import subjects as S
from streamwise.bus.auth import init_auth, password_conf, read_creds_jwt, role_permissions
from streamwise.bus.client import LayoutError, PullConsumer, connect, ensure_layout
from streamwise.bus.codec import encode
from streamwise.bus.messages import Request, Task
from streamwise.bus.server import EmbeddedServer
from streamwise.cli.auth import registry_models

ROOT = Path(__file__).resolve().parents[1]
VIOLATION = re.compile(r"permissions violation", re.I)


class Refusals:
    """The server's permission errors as the connection's async error callback receives them."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._new = asyncio.Event()

    async def __call__(self, exc: Exception) -> None:
        self.errors.append(str(exc))
        self._new.set()

    async def expect(self, subject: str, timeout_s: float = 30.0) -> str:
        """Wait for a permissions violation that names ``subject`` (a ``*`` token matches any
        token, e.g. a consumer name nats-py picks); return its text.

        Raises:
            AssertionError: none came (the server allowed it).
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            for text in self.errors:
                # nats-py lower-cases the server's message
                quoted = re.escape(f'"{subject.lower()}"').replace(r"\*", r"[^.\"]+")
                if VIOLATION.search(text) and re.search(quoted, text.lower()):
                    return text
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no permissions violation for {subject!r}; errors: {self.errors}")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), timeout=left)
            except asyncio.TimeoutError:
                pass

    def none_for(self, subject: str) -> bool:
        return not any(VIOLATION.search(t) and f'"{subject.lower()}"' in t.lower() for t in self.errors)


@pytest.fixture(scope="module")
def authdir(tmp_path_factory):
    from streamwise.cli.auth import registry_models

    return init_auth(tmp_path_factory.mktemp("auth"), ["a", "b"], models=registry_models())


@pytest.fixture(scope="module")
def auth_server(authdir):
    with EmbeddedServer(extra_conf=authdir.conf.read_text()) as server:
        async def layout():
            admin = await connect(server.url, creds=str(authdir.creds("admin")))
            await ensure_layout(admin.js, tenants=authdir.tenants, models=tuple(authdir.models))
            await admin.close()
        asyncio.run(layout())
        yield server


async def _as(server, authdir, role, tenant=None, model=None, **kw):
    refusals = Refusals()
    bus = await connect(server.url, creds=str(authdir.creds(role, tenant, model)), error_cb=refusals, **kw)
    bus.js = bus.nc.jetstream(timeout=3.0)   # a refused API request times out: keep it short
    return bus, refusals


async def _refused(refusals: Refusals, coro, subject: str) -> str:
    """Start a request the server must refuse and wait for its permissions violation naming
    ``subject`` (a refused request is never answered: nats-py would only time out), then cancel it."""
    task = asyncio.ensure_future(coro)
    try:
        return await refusals.expect(subject)
    finally:
        task.cancel()
        try:
            await task
        except BaseException:   # cancelled, or its own timeout / no-responders error
            pass


def _request(tenant: str, rid: str) -> Request:
    return Request(request_id=rid, tenant=tenant, submitted_at=time.time(), script="Ada: Hello there.\n")


# --- the generated files ---------------------------------------------------------------------------

def test_auth_init_writes_conf_and_one_creds_file_per_role_mode_0600(tmp_path):
    d = tmp_path / "auth"
    out = subprocess.run([sys.executable, "-m", "streamwise", "auth", "init", str(d), "--tenants", "a,b"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    names = ["admin", "scheduler", "worker", "tenant-a", "tenant-b", "viewer-a", "viewer-b"]
    for name in names:
        creds = d / f"{name}.creds"
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        claims = read_creds_jwt(creds)
        assert claims["name"] == name and claims["sub"].startswith("U")
        assert "-----BEGIN USER NKEY SEED-----\nSU" in creds.read_text()
    for seed in ("operator.nk", "account.nk", "system.nk"):
        assert stat.S_IMODE((d / seed).stat().st_mode) == 0o600
    conf = (d / "nats.conf").read_text()
    assert "resolver: MEMORY" in conf and "operator: " in conf
    assert not re.search(r"\bS[UAO][A-Z2-7]{50,}", conf)      # public JWTs only: no seed in the server's file
    # the tenant JWT's permissions are the ones role_permissions computes
    perms = role_permissions("tenant", tenant="a")
    assert read_creds_jwt(d / "tenant-a.creds")["nats"]["pub"]["allow"] == list(perms.pub_allow)
    # one worker user per model of the stage registry, its consumers only on its model's tasks
    from streamwise.stages.registry import ADAPTERS
    for _, model in ADAPTERS:
        allow = read_creds_jwt(d / f"worker-{model}.creds")["nats"]["pub"]["allow"]
        assert S.js_api("CONSUMER", "CREATE", S.tasks_stream(model), "*", S.tasks(model, "*")) in allow
        # every right on a task stream names the model's own stream (create, info, next, ack)
        tasks = [a for a in allow if "SW_TASKS" in a]
        assert len(tasks) == 5 and all(S.tasks_stream(model) in a.split(".") for a in tasks), (model, tasks)
    # adding a tenant keeps the others' credentials and issues the new one's; users whose permissions
    # name the tenants' upload stores (the scheduler, the screenplay workers) are issued anew
    kept = {n: (d / f"{n}.creds").read_text() for n in ("tenant-a", "worker-piper", "worker-pyav-fmp4", "admin")}
    changed = {n: (d / f"{n}.creds").read_text() for n in ("scheduler", "worker-script-parser", "worker-llm", "worker")}
    before = (d / "tenant-a.creds").read_text()
    out = subprocess.run([sys.executable, "-m", "streamwise", "auth", "init", str(d), "--tenants", "c"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (d / "tenant-a.creds").read_text() == before and (d / "tenant-c.creds").exists()
    assert all((d / f"{n}.creds").read_text() == text for n, text in kept.items())
    assert all((d / f"{n}.creds").read_text() != text for n, text in changed.items())
    assert S.uploads("c") in " ".join(read_creds_jwt(d / "worker-script-parser.creds")["nats"]["pub"]["allow"])
    assert json.loads((d / "auth.json").read_text())["tenants"] == ["a", "b", "c"]


# --- refusals ---------------------------------------------------------------------------------------

async def test_tenant_cannot_read_another_tenants_segments_or_status(auth_server, authdir):
    bus, refused = await _as(auth_server, authdir, "tenant", "a")
    try:
        for subject in (S.segments("b", "r1"), S.status("b", "r1"), S.segments("b", ">"), "sw.>", ">"):
            await bus.nc.subscribe(subject)
            await refused.expect(subject)
        # JetStream consumers: the extended create subject names the filter, the short one any filter
        for stream, subject in ((S.STREAM_SEGMENTS, S.segments("b", "r1")), (S.STREAM_STATUS, S.status("b", "r1"))):
            await _refused(refused, bus.js.subscribe(subject, stream=stream, ordered_consumer=True,
                                                     config=api.ConsumerConfig(name="peek")),
                           S.js_api("CONSUMER", "CREATE", stream, "peek", subject))
            await _refused(refused, bus.js.subscribe(subject, stream=stream, ordered_consumer=True),   # unnamed
                           S.js_api("CONSUMER", "CREATE", stream))
        await _refused(refused, bus.js.get_last_msg(S.STREAM_STATUS, S.status("b", "r1"), direct=True),
                       S.js_api("DIRECT", "GET", S.STREAM_STATUS, S.status("b", "r1")))
        await _refused(refused, bus.js.get_last_msg(S.STREAM_STATUS, S.status("b", "r1")),   # body names the subject
                       S.js_api("STREAM", "MSG", "GET", S.STREAM_STATUS))
        await _refused(refused, bus.js.stream_info(S.STREAM_SEGMENTS),   # would list subjects, i.e. request ids
                       S.js_api("STREAM", "INFO", S.STREAM_SEGMENTS))
        # another tenant's uploads, and the shared artifact store
        await _refused(refused, bus.js.object_store(S.uploads("b")),
                       S.js_api("STREAM", "INFO", S.obj_stream(S.uploads("b"))))
        await bus.nc.publish(f"$O.{S.uploads('b')}.M.x", b"x")
        await refused.expect(f"$O.{S.uploads('b')}.M.x")
        await _refused(refused, bus.js.object_store(S.OBJECT_STORE),
                       S.js_api("STREAM", "INFO", S.obj_stream(S.OBJECT_STORE)))
        # another user's replies: the inbox of tenant b
        await bus.nc.subscribe(S.inbox_prefix("tenant-b") + ".>")
        await refused.expect(S.inbox_prefix("tenant-b") + ".>")
    finally:
        await bus.close()


async def test_a_consumer_filter_cannot_differ_from_the_permitted_create_subject(auth_server, authdir):
    """The server checks the filter in the request against the one in the create subject, so the
    permission on the subject fixes what a consumer reads (nats-server 2.10+)."""
    bus, refused = await _as(auth_server, authdir, "tenant", "a")
    try:
        for body in ({"filter_subject": S.segments("b", ">")}, {"filter_subjects": [S.segments("b", ">")]}):
            config = {"name": "sneak", "deliver_subject": bus.nc.new_inbox(), "ack_policy": "none", **body}
            req = json.dumps({"stream_name": S.STREAM_SEGMENTS, "config": config}).encode()
            reply = await bus.nc.request(S.js_api("CONSUMER", "CREATE", S.STREAM_SEGMENTS, "sneak",
                                                  S.segments("a", ">")), req, timeout=10)
            answer = json.loads(reply.data)
            assert "error" in answer, answer
    finally:
        await bus.close()


async def test_tenant_cannot_publish_to_another_tenants_requests_or_to_tasks(auth_server, authdir):
    bus, refused = await _as(auth_server, authdir, "tenant", "a")
    try:
        for subject in (S.requests("b"), S.tasks("piper", "tts-1"), S.status("a", "r1"), S.segments("a", "r1"),
                        S.events("a", "r1"), S.evict("tts-1"), f"$KV.{S.KV_INSTANCES}.x", f"$KV.{S.KV_CACHE}.x",
                        S.steer("b", "r1"), f"$KV.{S.KV_TENANTS}.a"):
            await bus.nc.publish(subject, b"x")
            await refused.expect(subject)
        await _refused(refused, bus.js.publish(S.requests("b"), encode(_request("b", "forged"))),
                       S.requests("b"))
    finally:
        await bus.close()


async def test_worker_cannot_read_requests(auth_server, authdir):
    bus, refused = await _as(auth_server, authdir, "worker")
    try:
        await bus.nc.subscribe(S.requests("a"))
        await refused.expect(S.requests("a"))
        await bus.nc.subscribe(S.requests_all())
        await refused.expect(S.requests_all())
        await _refused(refused, bus.js.pull_subscribe(S.requests_all(), durable=S.SCHEDULER_CONSUMER,
                                                      stream=S.STREAM_REQUESTS),
                       S.js_api("CONSUMER", "INFO", S.STREAM_REQUESTS, S.SCHEDULER_CONSUMER))
        await _refused(refused, bus.js.pull_subscribe(S.requests_all(), stream=S.STREAM_REQUESTS),   # an ephemeral one
                       S.js_api("CONSUMER", "CREATE", S.STREAM_REQUESTS, "*", S.requests_all()))
        await _refused(refused, bus.js.add_consumer(S.STREAM_REQUESTS, api.ConsumerConfig(durable_name="sneak2")),
                       S.js_api("CONSUMER", "DURABLE", "CREATE", S.STREAM_REQUESTS, "sneak2"))
        await bus.nc.publish(S.requests("a"), b"x")
        await refused.expect(S.requests("a"))
        await bus.nc.publish(S.status("a", "r1"), b"x")
        await refused.expect(S.status("a", "r1"))
    finally:
        await bus.close()


async def test_viewer_cannot_publish_anything(auth_server, authdir):
    bus, refused = await _as(auth_server, authdir, "viewer", "a")
    try:
        for subject in (S.requests("a"), S.segments("a", "r1"), S.status("a", "r1"), S.events("a", "r1"),
                        S.tasks("piper", "x"), S.deadletter("requests"), S.evict("x"), f"$KV.{S.KV_INSTANCES}.x",
                        f"$O.{S.uploads('a')}.M.x", "anything"):
            await bus.nc.publish(subject, b"x")
            await refused.expect(subject)
    finally:
        await bus.close()


@pytest.mark.parametrize("role,tenant", [("scheduler", None), ("worker", None), ("tenant", "a"), ("viewer", "a")])
async def test_non_admin_cannot_create_or_change_a_stream(auth_server, authdir, role, tenant):
    bus, refused = await _as(auth_server, authdir, role, tenant)
    try:
        await _refused(refused, bus.js.add_stream(name="ROGUE", subjects=["rogue.>"]),
                       S.js_api("STREAM", "CREATE", "ROGUE"))
        changed = api.StreamConfig(name=S.tasks_stream("piper"), subjects=[S.tasks_of_model("piper")], max_age=1)
        await _refused(refused, bus.js.update_stream(changed), S.js_api("STREAM", "UPDATE", S.tasks_stream("piper")))
        await _refused(refused, bus.js.delete_stream(S.STREAM_SEGMENTS),
                       S.js_api("STREAM", "DELETE", S.STREAM_SEGMENTS))
        await _refused(refused, bus.js.create_key_value(api.KeyValueConfig(bucket="rogue")),
                       S.js_api("STREAM", "CREATE", S.kv_stream("rogue")))
        await _refused(refused, bus.js.create_object_store("rogue"),
                       S.js_api("STREAM", "CREATE", S.obj_stream("rogue")))
        await _refused(refused, bus.js.purge_stream(S.STREAM_SEGMENTS), S.js_api("STREAM", "PURGE", S.STREAM_SEGMENTS))
    finally:
        await bus.close()
    admin = await connect(auth_server.url, creds=str(authdir.creds("admin")))
    try:
        info = await admin.js.stream_info(S.tasks_stream("piper"))
        assert info.config.max_age != 1
        assert S.STREAM_SEGMENTS in [s.config.name for s in await admin.js.streams_info()]
        assert "ROGUE" not in [s.config.name for s in await admin.js.streams_info()]
    finally:
        await admin.close()


async def test_non_admin_roles_on_a_bus_without_layout_fail_with_one_line(authdir):
    with EmbeddedServer(extra_conf=authdir.conf.read_text()) as server:
        with pytest.raises(LayoutError, match=r"^bus layout missing on nats://127\.0\.0\.1:\d+: no KV bucket "
                                              r"sw_instances; .*streamwise layout") as err:
            await connect(server.url, creds=str(authdir.creds("worker")))
        assert "\n" not in str(err.value)
        out = subprocess.run([sys.executable, "-m", "streamwise", "scheduler", "--nats", server.url,
                              "--creds", str(authdir.creds("scheduler"))], capture_output=True, text=True, timeout=120)
        assert out.returncode == 1 and "bus layout missing" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        # `streamwise layout` with a tenant's credentials is refused; with the admin's it makes the layout
        out = subprocess.run([sys.executable, "-m", "streamwise", "layout", "--nats", server.url,
                              "--creds", str(authdir.creds("tenant", "a")), "--tenants", "a"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 1 and re.search(r"(?i)refused tenant-a: .*permissions violation", out.stderr)
        out = subprocess.run([sys.executable, "-m", "streamwise", "layout", "--nats", server.url,
                              "--auth", str(authdir.path)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        worker = await connect(server.url, creds=str(authdir.creds("worker")))
        assert worker.layout == "bind" and worker.instances is not None and worker.cache is None
        await worker.close()
        tenant = await connect(server.url, creds=str(authdir.creds("tenant", "b")))
        await tenant.put_upload("b", "x", b"uploaded")     # the upload store of b exists now
        await tenant.close()


# --- each role does its own job ---------------------------------------------------------------------

async def test_tenant_submits_and_reads_its_own_segments_and_status(auth_server, authdir):
    from streamwise.client import _last_status, _pump

    tenant, _ = await _as(auth_server, authdir, "tenant", "a")
    sched, _ = await _as(auth_server, authdir, "scheduler")
    worker, _ = await _as(auth_server, authdir, "worker")
    try:
        rid = "own-1"
        await tenant.publish(S.requests("a"), _request("a", rid), msg_id=rid)   # acked by SW_REQUESTS
        consumer = PullConsumer(sched, S.requests_all(), durable=S.SCHEDULER_CONSUMER, stream=S.STREAM_REQUESTS)
        got = []
        for _ in range(30):
            got = [m for m in await consumer.fetch(10, timeout=1.0) if m.subject == S.requests("a")]
            if got:
                break
        assert got and msgpack.unpackb(got[0].data)["request_id"] == rid
        await got[0].ack()
        await consumer.unsubscribe()
        await sched.js.publish(S.status("a", rid), msgpack.packb({"v": 1, "request_id": rid, "state": "running"}))
        await worker.js.publish(S.segments("a", rid), b"segment-0")
        await worker.js.publish(S.segments("b", rid), b"not yours")
        queue, stop = asyncio.Queue(), asyncio.Event()
        pump = asyncio.create_task(_pump(tenant, S.segments("a", rid), S.STREAM_SEGMENTS, "segment", queue, stop))
        kind, msg, _ = await asyncio.wait_for(queue.get(), timeout=30)
        stop.set()
        await pump
        assert (kind, msg.data, msg.subject) == ("segment", b"segment-0", S.segments("a", rid))
        last = await _last_status(tenant, "a", rid)
        assert msgpack.unpackb(last.data)["state"] == "running"
        # a large script goes to the tenant's own upload store; the worker reads it from there
        await tenant.put_upload("a", rid, b"Ada: a long script\n")
        assert await worker.get_upload("a", rid) == b"Ada: a long script\n"
    finally:
        for b in (tenant, sched, worker):
            await b.close()


async def test_worker_pulls_its_tasks_heartbeats_and_reports(auth_server, authdir):
    from streamwise.bus import registry
    from streamwise.bus.messages import Event, Heartbeat

    sched, _ = await _as(auth_server, authdir, "scheduler")
    worker, refused = await _as(auth_server, authdir, "worker")
    try:
        instance = "tts-authtest"
        task = Task(task_id="r9.n1.0-1", request_id="r9", tenant="a", node_id="n1", stage="tts", model="piper",
                    deadline=time.time() + 60, attempt=1, inputs={}, dispatched_at=time.time())
        consumer = PullConsumer(worker, S.tasks("piper", instance), durable=instance, stream=S.tasks_stream("piper"))
        assert await consumer.fetch(1, timeout=0.5) == []       # creates the durable consumer
        await sched.publish(S.tasks("piper", instance), task, msg_id=task.task_id)
        msgs = []
        for _ in range(30):
            msgs = await consumer.fetch(1, timeout=1.0)
            if msgs:
                break
        assert msgs and msgpack.unpackb(msgs[0].data)["task_id"] == task.task_id
        await msgs[0].ack()
        await consumer.unsubscribe()
        await registry.beat(worker.instances, Heartbeat(instance=instance, stage="tts", model="piper",
                                                        state="ready", at=time.time()))
        assert (await sched.instances.get(instance)).value
        await worker.publish(S.events("a", "r9"), Event(task_id=task.task_id, request_id="r9", node_id="n1", stage="tts",
                                                   instance=instance, ok=True))
        await worker.put_blob("r9/n1/1/audio", b"pcm")
        assert await sched.get_blob("r9/n1/1/audio") == b"pcm"
        assert not refused.errors, refused.errors
    finally:
        await sched.close()
        await worker.close()


# --- one worker user per model ---------------------------------------------------------------------

async def test_a_models_worker_user_cannot_pull_other_models_tasks_nor_publish_a_request(auth_server, authdir):
    """worker-piper: consumers only on sw.tasks.piper.*; no core subscription to any task subject,
    no request, no segment (it is no mux), no upload (it is no screenplay stage)."""
    bus, refused = await _as(auth_server, authdir, "worker", model="piper")
    try:
        assert bus.user == "worker-piper"
        other = S.tasks("script-parser", "sp-1")
        stream = S.tasks_stream("script-parser")
        await _refused(refused, bus.js.add_consumer(stream, api.ConsumerConfig(name="steal", durable_name="steal", filter_subject=other)),
                       S.js_api("CONSUMER", "CREATE", stream, "steal", other))
        wide = S.tasks_all()
        mine = S.tasks_stream("piper")
        await _refused(refused, bus.js.add_consumer(mine, api.ConsumerConfig(name="steal2", durable_name="steal2", filter_subject=wide)),
                       S.js_api("CONSUMER", "CREATE", mine, "steal2", wide))
        for subject in (other, S.tasks("piper", "tts-1"), wide):
            await bus.nc.subscribe(subject)
            await refused.expect(subject)
        for subject in (S.requests("a"), S.segments("a", "r1"), S.status("a", "r1"), S.tasks("piper", "tts-1")):
            await bus.nc.publish(subject, b"x")
            await refused.expect(subject)
        await _refused(refused, bus.js.object_store(S.uploads("a")),
                       S.js_api("STREAM", "INFO", S.obj_stream(S.uploads("a"))))
        # its own model's consumer is allowed
        own = PullConsumer(bus, S.tasks("piper", "tts-own"), durable="tts-own", stream=mine)
        assert await own.fetch(1, timeout=0.5) == []
        assert refused.none_for(S.js_api("CONSUMER", "CREATE", mine, "tts-own", S.tasks("piper", "tts-own")))
        await own.unsubscribe()
    finally:
        await bus.close()


async def test_a_models_worker_cannot_pull_from_another_models_existing_consumer(auth_server, authdir):
    """The hole closed by one task stream per model: worker-piper knows the instance id of a
    script-parser worker (every worker reads KV sw_instances) whose consumer exists with a task
    queued. Pulling from it (``$JS.API.CONSUMER.MSG.NEXT.SW_TASKS_script-parser.<instance>``), its
    info and an ack on that stream are refused by the server, the task is not delivered to the
    thief, and its own worker still gets it. (With one stream for all models, the pull subject
    was ``...MSG.NEXT.SW_TASKS.<instance>`` for every model, which worker-piper was granted.)"""
    victim, _ = await _as(auth_server, authdir, "worker", model="script-parser")
    thief, refused = await _as(auth_server, authdir, "worker", model="piper")
    sched, _ = await _as(auth_server, authdir, "scheduler")
    try:
        instance, stream = "sp-victim", S.tasks_stream("script-parser")
        assert await victim.task_stream("script-parser") == stream
        own = PullConsumer(victim, S.tasks("script-parser", instance), durable=instance, stream=stream)
        assert await own.fetch(1, timeout=0.5) == []                  # its durable consumer exists
        task = Task(task_id="a.steal-1.screenplay.0-1", request_id="steal-1", tenant="a", node_id="screenplay",
                    stage="screenplay", model="script-parser", deadline=time.time() + 60, attempt=1,
                    inputs={"script": "Ada: a secret line.\n"}, dispatched_at=time.time())
        await sched.publish(S.tasks("script-parser", instance), task, msg_id=task.task_id)
        got = []
        inbox = thief.nc.new_inbox()

        async def on_msg(m):
            got.append(m)
        sub = await thief.nc.subscribe(inbox, cb=on_msg)              # its own inbox: allowed
        nxt = S.js_api("CONSUMER", "MSG", "NEXT", stream, instance)
        await thief.nc.publish(nxt, json.dumps({"batch": 1, "expires": 2_000_000_000}).encode(), reply=inbox)
        await refused.expect(nxt)
        await _refused(refused, thief.js.consumer_info(stream, instance), S.js_api("CONSUMER", "INFO", stream, instance))
        ack = f"$JS.ACK.{stream}.{instance}.1.1.1.0.0"
        await thief.nc.publish(ack, b"+ACK")
        await refused.expect(ack)
        await asyncio.sleep(2.5)
        assert got == []                                              # nothing delivered to the thief
        await sub.unsubscribe()
        msgs = []
        for _ in range(30):
            if msgs := await own.fetch(1, timeout=1.0):
                break
        assert msgs and msgpack.unpackb(msgs[0].data)["task_id"] == task.task_id
        await msgs[0].ack()
        await own.unsubscribe()
    finally:
        for b in (victim, thief, sched):
            await b.close()


async def test_the_scheduler_cleans_up_a_gone_instance_on_its_models_stream(auth_server, authdir):
    """The scheduler's clean-up of a dead instance (purge its queued tasks, delete its consumer)
    is allowed on each model's task stream."""
    worker, _ = await _as(auth_server, authdir, "worker", model="piper")
    sched, refused = await _as(auth_server, authdir, "scheduler")
    try:
        stream = S.tasks_stream("piper")
        dead = PullConsumer(worker, S.tasks("piper", "tts-dead"), durable="tts-dead", stream=stream)
        assert await dead.fetch(1, timeout=0.5) == []
        await dead.unsubscribe()
        task = Task(task_id="a.gone-1.tts:0.0-1", request_id="gone-1", tenant="a", node_id="tts:0", stage="tts",
                    model="piper", deadline=time.time() + 60, attempt=1, inputs={}, dispatched_at=time.time())
        await sched.publish(S.tasks("piper", "tts-dead"), task, msg_id=task.task_id)
        await sched.js.purge_stream(stream, subject=S.tasks("piper", "tts-dead"))
        assert await sched.js.delete_consumer(stream, "tts-dead")
        info = await worker.js.stream_info(stream, subjects_filter=S.tasks("piper", "tts-dead"))
        assert (info.state.subjects or {}).get(S.tasks("piper", "tts-dead"), 0) == 0
        assert not refused.errors, refused.errors
    finally:
        await sched.close()
        await worker.close()


async def test_the_worker_process_of_a_model_serves_a_task_with_its_own_creds(auth_server, authdir):
    """A real ``streamwise worker --stage screenplay`` with worker-script-parser.creds serves an
    inline script and one uploaded to the tenant's store (the screenplay stage's upload right)."""
    from streamwise.bus import registry

    admin = await connect(auth_server.url, creds=str(authdir.creds("admin")))
    tenant = await connect(auth_server.url, creds=str(authdir.creds("tenant", "a")))
    proc = subprocess.Popen([sys.executable, "-m", "streamwise", "worker", "--stage", "screenplay",
                             "--nats", auth_server.url, "--creds", str(authdir.creds("worker", model="script-parser"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        beats = await registry.wait_for_stages(admin.instances, {"screenplay"}, 120)
        instance = next(b.instance for b in beats if b.pid == proc.pid)
        events = asyncio.Queue()

        async def on_event(m):
            events.put_nowait(m)
        sub = await admin.nc.subscribe(S.events("a", ">"), cb=on_event)
        await tenant.put_upload("a", "m-2", b"Bo: Uploaded words.\n")
        for rid, inputs in (("m-1", {"script": "Ada: Hello there.\n"}), ("m-2", {"script_ref": "m-2"})):
            task = Task(task_id=f"a.{rid}.screenplay.0-1", request_id=rid, tenant="a", node_id="screenplay",
                        stage="screenplay", model="script-parser", deadline=time.time() + 60, attempt=1,
                        inputs=inputs, dispatched_at=time.time())
            await admin.publish(S.tasks("script-parser", instance), task, msg_id=task.task_id)
        got = {}
        while len(got) < 2:
            m = await asyncio.wait_for(events.get(), timeout=120)
            ev = msgpack.unpackb(m.data)
            if not ev.get("partial"):
                got[ev["request_id"]] = ev
        await sub.unsubscribe()
        assert got["m-1"]["ok"] and got["m-1"]["outputs"]["speakers"] == ["Ada"], got["m-1"]
        assert got["m-2"]["ok"] and got["m-2"]["outputs"]["speakers"] == ["Bo"], got["m-2"]
        assert got["m-1"]["instance"] == instance
    finally:
        proc.terminate()
        try:
            err = proc.communicate(timeout=60)[1].decode(errors="replace")
        except subprocess.TimeoutExpired:
            proc.kill()
            err = proc.communicate()[1].decode(errors="replace")
        await tenant.close()
        await admin.close()
    assert "permissions violation" not in err.lower(), err[-2000:]


def test_up_auth_gives_each_worker_its_models_creds(authdir):
    from streamwise.cli.auth import pool_creds
    from streamwise.service.pool import Pool

    pool = Pool("nats://127.0.0.1:4222", creds=pool_creds(authdir),
                extra=[("video-ft-0", ["worker", "--stage", "video", "--model", "fantasytalking", "--hardware", "h100",
                                       "--gpus", "1", "--emulate"])])
    cmds = dict(pool.commands())
    assert cmds["scheduler"][-1] == str(authdir.creds("scheduler"))
    for name, cmd in cmds.items():
        if name == "scheduler":
            continue
        model = cmd[cmd.index("--model") + 1] if "--model" in cmd else {
            "screenplay": "script-parser", "tts": "piper", "image": "cpu-art", "video": "cpu-head",
            "mux": "pyav-fmp4"}[cmd[cmd.index("--stage") + 1]]
        assert cmd[-2:] == ["--creds", str(authdir.creds("worker", model=model))], (name, cmd)
        assert read_creds_jwt(cmd[-1])["name"] == f"worker-{model}"


# --- the simple form and TLS ------------------------------------------------------------------------

async def test_user_password_in_the_url_with_the_same_permissions():
    tenants = ("a", "b")
    users = ["admin", "scheduler", "worker"] + [f"{r}-{t}" for t in tenants for r in ("tenant", "viewer")]
    passwords = {u: f"pw-{u}-{os.urandom(6).hex()}" for u in users}
    with EmbeddedServer(extra_conf=password_conf(tenants, passwords)) as server:
        host = server.url.removeprefix("nats://")
        admin = await connect(f"nats://admin:{passwords['admin']}@{host}")
        await admin.close()
        refused = Refusals()
        url = f"nats://tenant-a:{passwords['tenant-a']}@{host}"
        bus = await connect(url, error_cb=refused)
        try:
            assert bus.layout == "none" and bus.safe_url == f"nats://tenant-a:***@{host}"
            await bus.publish(S.requests("a"), _request("a", "pw-1"), msg_id="pw-1")
            await bus.nc.publish(S.requests("b"), b"x",
                           S.requests("b"))
        finally:
            await bus.close()
        with pytest.raises(ConnectionError) as err:
            await connect(f"nats://tenant-a:wrong-{passwords['tenant-a']}@{host}", connect_timeout_s=3)
        assert "wrong-" not in str(err.value) and passwords["tenant-a"] not in str(err.value)
        assert "***" in str(err.value)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with ``cryptography`` (no files from outside)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "streamwise-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "server.pem", tmp / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_with_a_certificate_made_in_the_test(tmp_path, authdir, monkeypatch):
    cert, key = _self_signed(tmp_path)
    tls = f'tls {{ cert_file: "{cert}", key_file: "{key}" }}\n'
    with EmbeddedServer(extra_conf=tls + authdir.conf.read_text()) as server:
        url = server.url.replace("nats://", "tls://")
        admin = await connect(url, creds=str(authdir.creds("admin")), tls_ca=str(cert))
        try:
            assert admin.nc.connected_url.scheme == "tls"
            await admin.publish(S.requests("a"), _request("a", "tls-1"), msg_id="tls-1")
            assert (await admin.js.stream_info(S.STREAM_REQUESTS)).state.messages == 1
        finally:
            await admin.close()
        monkeypatch.setenv("STREAMWISE_TLS_CA", str(cert))   # the environment form
        monkeypatch.setenv("STREAMWISE_CREDS", str(authdir.creds("tenant", "a")))
        bus = await connect(url)
        assert bus.user == "tenant-a"
        await bus.close()
        monkeypatch.delenv("STREAMWISE_TLS_CA")
        with pytest.raises(ConnectionError, match="cannot connect to NATS"):   # an unknown CA: refused
            await connect(url, connect_timeout_s=3)


# --- the whole pool, authenticated ------------------------------------------------------------------

def _gateway_with_tenant_creds(url: str, auth: Path, tmp_path: Path) -> None:
    """``streamwise serve --creds DIR/tenant-a.creds --tenant a`` serves a show end to end with the tenant's
    permissions only (submit, status, segments, the live playlist): a show posted to its API is done and its
    playlist ends with every segment."""
    import urllib.request

    from streamwise.bus.server import free_port

    port = free_port()
    log = open(tmp_path / "gateway.log", "w")
    gw = subprocess.Popen([sys.executable, "-m", "streamwise", "serve", "--nats", url, "--port", str(port),
                           "--creds", str(auth / "tenant-a.creds"), "--tenant", "a"], stdout=log,
                          stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> bytes:
        with urllib.request.urlopen(base + path, timeout=10) as resp:
            return resp.read()

    try:
        deadline = time.monotonic() + 60
        while True:
            assert gw.poll() is None, (tmp_path / "gateway.log").read_text()
            try:
                get("/openapi.json")
                break
            except OSError:
                assert time.monotonic() < deadline, "the gateway did not start listening"
                time.sleep(0.3)
        body = json.dumps({"script": (ROOT / "examples" / "short_chat.txt").read_text()}).encode()
        post = urllib.request.Request(base + "/v1/podcasts", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(post, timeout=30) as resp:
            assert resp.status == 201
            rid = json.loads(resp.read())["id"]
        deadline = time.monotonic() + 240
        while (status := json.loads(get(f"/v1/podcasts/{rid}")))["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        assert status["state"] == "done", status
        playlist = get(f"/v1/podcasts/{rid}/index.m3u8").decode()
        segments = [ln for ln in playlist.splitlines() if ln and not ln.startswith("#")]
        assert playlist.rstrip().endswith("#EXT-X-ENDLIST") and len(segments) >= 5
        assert get(f"/v1/podcasts/{rid}/{segments[0]}")[4:8] in (b"moof", b"styp")
    finally:
        gw.terminate()
        gw.wait(timeout=30)
        log.close()


def test_example_podcast_end_to_end_with_up_auth_and_a_tenant_creds(tmp_path):
    """``streamwise up --auth DIR`` (embedded server with DIR/nats.conf, the layout made with the
    admin's credentials, each pool process with its role's) and ``streamwise generate --creds
    DIR/tenant-a.creds`` streaming the example podcast; tenant b cannot watch it."""
    auth = tmp_path / "auth"
    init_auth(auth, ["a", "b"], models=registry_models())   # as `streamwise auth init` does
    up = subprocess.Popen([sys.executable, "-m", "streamwise", "up", "--auth", str(auth)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        url = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            if not line:
                break
            lines.append(line)
            if url is None and line.startswith("nats://"):
                url = line.strip()
            if line.startswith("ready:"):
                break
        assert url and lines[-1].startswith("ready:"), "".join(lines)
        out = tmp_path / "out"
        gen = subprocess.run([sys.executable, "-m", "streamwise", "generate", "--script",
                              str(ROOT / "examples" / "podcast.txt"), "--out", str(out), "--nats", url,
                              "--creds", str(auth / "tenant-a.creds"), "--tenant", "a", "--quiet", "--timeout", "180"],
                             capture_output=True, text=True, timeout=600)
        assert gen.returncode == 0, gen.stderr
        report = json.loads((out / "report.json").read_text())
        assert len(report["segments"]) >= 2 and (out / "podcast.mp4").stat().st_size > 10_000
        rid = report["request_id"]
        # tenant b may not watch tenant a's show: the CLI says so at once, and the server refuses
        # a client that tries anyway
        watch = subprocess.run([sys.executable, "-m", "streamwise", "watch", rid, "--nats", url, "--tenant", "a",
                                "--creds", str(auth / "tenant-b.creds"), "--out", str(tmp_path / "b"), "--quiet",
                                "--timeout", "5"], capture_output=True, text=True, timeout=120)
        assert watch.returncode == 2 and "tenant-b's, for tenant b" in watch.stderr

        async def b_watches_a():
            from streamwise.client import GenerateError, watch

            bus = await connect(url, creds=str(auth / "tenant-b.creds"))
            try:
                refused = r"(?i)refused: .*permissions violation.*sw_status\.sw\.status\.a\."
                with pytest.raises(GenerateError, match=refused):
                    await watch(bus, rid, tmp_path / "b", tenant="a", idle_timeout_s=5)
            finally:
                await bus.close()
        asyncio.run(b_watches_a())
        # ... and viewer a may
        watch = subprocess.run([sys.executable, "-m", "streamwise", "watch", rid, "--nats", url, "--tenant", "a",
                                "--creds", str(auth / "viewer-a.creds"), "--out", str(tmp_path / "va"), "--quiet"],
                               capture_output=True, text=True, timeout=300)
        assert watch.returncode == 0, watch.stderr
        assert (tmp_path / "va" / "podcast.mp4").read_bytes() == (out / "podcast.mp4").read_bytes()
        _gateway_with_tenant_creds(url, auth, tmp_path)
    finally:
        up.terminate()
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
    text = "".join(lines) + (up.stdout.read() or "")
    seeds = [ln for p in auth.glob("*.creds") for ln in p.read_text().splitlines() if ln.startswith("SU")]
    assert seeds and not any(seed in text for seed in seeds)


# --- nothing secret in logs or command lines --------------------------------------------------------

def test_urls_with_passwords_are_redacted_and_kept_out_of_command_lines():
    from streamwise.bus.client import redact
    from streamwise.llm.backends import OpenAIBackend
    from streamwise.service.pool import Pool

    assert redact("nats://w:s3cret@h1:4222,tls://h2:4222") == "nats://w:***@h1:4222,tls://h2:4222"
    pool = Pool("nats://worker:s3cret@127.0.0.1:4222", creds={"worker": "/x/worker.creds"})
    for _, cmd in pool.commands():
        assert not any("s3cret" in arg for arg in cmd) and "--nats" not in cmd   # the children get $STREAMWISE_NATS
    plain = Pool("nats://127.0.0.1:4222", creds={"scheduler": "/x/scheduler.creds", "worker": "/x/worker.creds"})
    cmds = dict(plain.commands())
    assert cmds["scheduler"][-2:] == ["--creds", "/x/scheduler.creds"] and "--nats" in cmds["scheduler"]
    assert all(cmd[-2:] == ["--creds", "/x/worker.creds"] for name, cmd in cmds.items() if name != "scheduler")
    assert OpenAIBackend("http://me:s3cret@127.0.0.1:1/v1").safe_url == "http://me:***@127.0.0.1:1/v1"


async def test_rotated_credentials_are_refused_after_the_server_reloads(tmp_path):
    """``auth init --rotate`` issues new keys and revokes the old ones in the account JWT: once
    the server runs the new nats.conf, the old tenant credentials are refused."""
    auth = init_auth(tmp_path / "auth", ["a"])
    old = tmp_path / "old-tenant-a.creds"
    old.write_text(auth.creds("tenant", "a").read_text())
    store = tmp_path / "store"
    server = EmbeddedServer(extra_conf=auth.conf.read_text(), store_dir=str(store)).start()
    try:
        bus = await connect(server.url, creds=str(old))
        await bus.close()
        init_auth(tmp_path / "auth", ["a"], rotate=True)
        assert auth.creds("tenant", "a").read_text() != old.read_text()
        server.stop()
        server = EmbeddedServer(port=server.port, extra_conf=auth.conf.read_text(), store_dir=str(store)).start()
        with pytest.raises(ConnectionError, match=r"(?i)authorization"):
            await connect(server.url, creds=str(old), connect_timeout_s=3)
        bus = await connect(server.url, creds=str(auth.creds("tenant", "a")))
        assert bus.user == "tenant-a"
        await bus.close()
    finally:
        server.stop()


async def test_a_tenant_cannot_evict_a_worker_by_redirecting_its_consumer(auth_server, authdir, tmp_path):
    """A push consumer's deliver subject is in the request body, out of reach of permissions:
    tenant a points deliveries of its own status at a real worker's eviction subject. The
    worker ignores JetStream deliveries there (its heartbeats stay ``ready``); the admin's plain
    notice still drains it."""
    from streamwise.bus import registry

    admin = await connect(auth_server.url, creds=str(authdir.creds("admin")))
    log = open(tmp_path / "worker.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamwise", "worker", "--stage", "screenplay",
                             "--nats", auth_server.url, "--creds", str(authdir.creds("worker"))],
                            stdout=log, stderr=subprocess.STDOUT)
    tenant = None
    try:
        beats = await registry.wait_for_stages(admin.instances, {"screenplay"}, 120)
        mine = [b for b in beats if b.pid == proc.pid]
        assert mine, beats
        instance = mine[0].instance
        seen = asyncio.Queue()

        async def on_evict(msg):
            seen.put_nowait(msg)
        await admin.nc.subscribe(S.evict(instance), cb=on_evict)
        await admin.js.publish(S.status("a", "evict-1"), b"30")
        tenant = await connect(auth_server.url, creds=str(authdir.creds("tenant", "a")))
        config = {"name": "redirect", "deliver_subject": S.evict(instance), "ack_policy": "none",
                  "filter_subject": S.status("a", "evict-1"), "deliver_policy": "all"}
        reply = await tenant.nc.request(S.js_api("CONSUMER", "CREATE", S.STREAM_STATUS, "redirect",
                                                 S.status("a", "evict-1")),
                                        json.dumps({"stream_name": S.STREAM_STATUS, "config": config}).encode(),
                                        timeout=10)
        assert "error" not in json.loads(reply.data)        # the server allows it: the worker must not trust it
        delivered = await asyncio.wait_for(seen.get(), timeout=30)
        assert delivered.reply.startswith("$JS.ACK.")
        after = time.time()
        states = []
        while len(states) < 2:                                # two heartbeats written after the delivery
            entry = await admin.instances.get(instance)
            beat = msgpack.unpackb(entry.value)
            if beat["at"] > after and beat["at"] not in [a for a, _ in states]:
                states.append((beat["at"], beat["state"]))
            await asyncio.sleep(0.2)
        assert [s for _, s in states] == ["ready", "ready"] and proc.poll() is None
        await admin.nc.publish(S.evict(instance), b"1")       # the real notice (core NATS, the admin)
        assert await asyncio.get_running_loop().run_in_executor(None, lambda: proc.wait(120)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        if tenant:
            await tenant.close()
        await admin.close()


def test_the_permission_table_in_docs_security_is_the_generated_one():
    from streamwise.bus.auth import permissions_markdown

    doc = (ROOT / "docs" / "security.md").read_text()
    block = doc.split("<!-- permissions table: generated by bus.auth.permissions_markdown() -->\n")[1]
    assert block.split("<!-- end of permissions table -->")[0] == permissions_markdown()


def test_generate_with_another_tenants_name_fails_at_once_with_one_line(auth_server, authdir, tmp_path):
    """``--tenant b`` with tenant a's credentials: refused before anything is sent; a publish the
    server refuses fails at once with its reason instead of retrying for minutes."""
    cmd = [sys.executable, "-m", "streamwise", "generate", "--script", str(ROOT / "examples" / "short_chat.txt"),
           "--out", str(tmp_path / "out"), "--nats", auth_server.url, "--creds", str(authdir.creds("tenant", "a"))]
    out = subprocess.run(cmd + ["--tenant", "b"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "tenant-a's, for tenant a" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


async def test_a_refused_publish_raises_permission_error_without_retrying(auth_server, authdir):
    bus, refused = await _as(auth_server, authdir, "tenant", "a")
    try:
        with pytest.raises(PermissionError, match=r"(?i)tenant-a: .*permissions violation.*sw\.requests\.b"):
            await bus.publish(S.requests("b"), _request("b", "forged-2"), msg_id="forged-2")
    finally:
        await bus.close()


# --- the largest-script quota of an upload, at admission --------------------------------------------

async def test_an_upload_over_the_largest_script_is_refused_at_admission(auth_server, authdir, tmp_path):
    """A real scheduler with the scheduler role's credentials reads an upload's size from its
    object-store metadata (not its text: the upload store itself stays closed to it) and refuses
    a script over tenant a's largest at once: its first status is the quota refusal, never
    ``accepted``, so nothing of it is spoken; a small upload of the same tenant is accepted."""
    from streamwise.bus.codec import decode
    from streamwise.bus.messages import Status

    quotas = tmp_path / "quotas.yaml"
    quotas.write_text("default: {}\ntenants: {a: {script_bytes: 200}}\n")
    admin = await connect(auth_server.url, creds=str(authdir.creds("admin")))
    tenant = await connect(auth_server.url, creds=str(authdir.creds("tenant", "a")))
    sched_bus, refused = await _as(auth_server, authdir, "scheduler")
    tasks = []

    async def on_task(m):
        tasks.append(msgpack.unpackb(m.data)["request_id"])
    tap = await admin.nc.subscribe(S.tasks_all(), cb=on_task)
    proc = subprocess.Popen([sys.executable, "-m", "streamwise", "scheduler", "--nats", auth_server.url,
                             "--creds", str(authdir.creds("scheduler"))], env={**os.environ, "STREAMWISE_QUOTAS": str(quotas)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        big, small = "quota-big-" + os.urandom(3).hex(), "quota-small-" + os.urandom(3).hex()
        await tenant.put_upload("a", big, ("Ada: " + "many words " * 40 + "\n").encode())   # ~450 bytes
        await tenant.put_upload("a", small, b"Ada: Few words.\n")
        assert await sched_bus.upload_size("a", big) > 200          # the metadata, by the scheduler role
        await _refused(refused, sched_bus.js.object_store(S.uploads("a")),   # ... but not the upload store
                       S.js_api("STREAM", "INFO", S.obj_stream(S.uploads("a"))))
        for rid in (big, small):
            await tenant.publish(S.requests("a"), Request(request_id=rid, tenant="a", submitted_at=time.time(),
                                                          script_ref=rid), msg_id=S.request_dedup_id("a", rid))

        async def last(rid, states):
            sub = await admin.js.subscribe(S.status("a", rid), stream=S.STREAM_STATUS, ordered_consumer=True)
            try:
                while True:
                    st = decode((await sub.next_msg(timeout=120)).data, Status)
                    if st.state in states:
                        return st
            finally:
                await sub.unsubscribe()
        refusal = await last(big, ("failed", "accepted", "running"))   # its first status
        assert refusal.state == "failed" and refusal.quota == "script_bytes", refusal
        assert "largest script of 200 bytes" in refusal.error and refusal.retry_after_s is None
        assert (await last(small, ("accepted", "failed"))).state == "accepted"
        assert big not in tasks      # refused before anything was dispatched (its first status is the refusal)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        await tap.unsubscribe()
        for b in (admin, tenant, sched_bus):
            await b.close()
