"""Tenancy decided by the server side, and per-tenant quotas (issue 11, items 3 and 4).

On a real nats-server with a real scheduler and worker processes: the tenant is the one whose
request subject a request arrived on, whatever its body says; its deadlines count from the
time the bus stored it, not from the client's ``submitted_at``; two tenants can use the same
request id at once; a tenant over a quota is refused with the quota's name and when to retry
while another tenant's request streams. The quota ledger itself is tested on the bus's real KV
with two ledgers (two scheduler processes' worth) admitting at once.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import msgpack
import pytest

from streamwise.bus import subjects
from streamwise.bus.client import connect
from streamwise.bus.codec import decode
from streamwise.bus.messages import Request, Status, Task
from streamwise.client import GenerateError, generate
from streamwise.service.pool import Pool
from streamwise.core.quotas import Quota, Quotas, load_quotas
from streamwise.service.quota import QuotaExceeded, TenantLedger

DATA = Path(__file__).parent / "data" / "scripts"
ROOT = Path(__file__).parent.parent
TWO = "Ann: Hello there, and welcome.\nBo: Thank you, Ann. It is good to be here.\n"
OTHER = "Cy: A different show.\nDee: With different people in it.\n"


def _id() -> str:
    return uuid.uuid4().hex[:12]


# ---------------------------------------------------------------------------- the ledger
def _ledger(bus, **quota) -> TenantLedger:
    return TenantLedger(bus, Quotas(default=Quota(**quota), tenants={}))


def _req(tenant: str, script: str = TWO) -> Request:
    return Request(request_id=_id(), tenant=tenant, submitted_at=time.time(), script=script)


async def test_two_schedulers_never_admit_more_than_the_concurrency_quota_together(nats_url):
    tenant = "t" + _id()
    a, b = await connect(nats_url, name="ledger-a"), await connect(nats_url, name="ledger-b")
    try:
        ledgers = [_ledger(a, concurrent_requests=3), _ledger(b, concurrent_requests=3)]
        requests = [_req(tenant) for _ in range(10)]

        async def admit(i: int, r: Request):
            try:
                await ledgers[i % 2].admit(r, subjects.scoped(tenant, r.request_id))
                return "ok"
            except QuotaExceeded as exc:
                return exc

        results = await asyncio.gather(*(admit(i, r) for i, r in enumerate(requests)))
        admitted = [r for r, res in zip(requests, results) if res == "ok"]
        refused = [res for res in results if res != "ok"]
        assert len(admitted) == 3 and len(refused) == 7
        assert {e.quota for e in refused} == {"concurrent_requests"}
        assert all(e.retry_after_s and e.retry_after_s > 0 for e in refused)
        # a takeover of an admitted request is not refused (same scoped id, already charged)
        await ledgers[1].admit(admitted[0], subjects.scoped(tenant, admitted[0].request_id))
        # one ends: a new one fits, on either scheduler
        await ledgers[0].release(tenant, subjects.scoped(tenant, admitted[0].request_id))
        late = _req(tenant)
        await ledgers[1].admit(late, subjects.scoped(tenant, late.request_id))
        with pytest.raises(QuotaExceeded):
            extra = _req(tenant)
            await ledgers[0].admit(extra, subjects.scoped(tenant, extra.request_id))
        # another tenant is not affected by this one's usage
        other = _req("u" + _id())
        await ledgers[0].admit(other, subjects.scoped(other.tenant, other.request_id))
    finally:
        await a.close()
        await b.close()


async def test_rate_spoken_minutes_and_script_size_quotas(bus):
    tenant = "r" + _id()
    rate = _ledger(bus, requests_per_minute=2)
    for _ in range(2):
        r = _req(tenant)
        await rate.admit(r, subjects.scoped(tenant, r.request_id))
        await rate.release(tenant, subjects.scoped(tenant, r.request_id))   # not concurrency: the rate
    r = _req(tenant)
    with pytest.raises(QuotaExceeded) as over:
        await rate.admit(r, subjects.scoped(tenant, r.request_id))
    assert over.value.quota == "requests_per_minute" and 0 < over.value.retry_after_s <= 60

    tenant = "s" + _id()
    spoken = _ledger(bus, spoken_minutes_per_day=1.0)          # 60 s of speech a day
    forty = "Ann: " + " ".join(["word"] * 100)                  # 100 words at 2.5 words/s: 40 s
    first = _req(tenant, forty)
    await spoken.admit(first, subjects.scoped(tenant, first.request_id))
    second = _req(tenant, forty)
    with pytest.raises(QuotaExceeded) as over:
        await spoken.admit(second, subjects.scoped(tenant, second.request_id))
    assert over.value.quota == "spoken_minutes_per_day" and 0 < over.value.retry_after_s <= 86400
    # the first show turned out to be 10 s long: the correction frees the rest of its charge
    await spoken.release(tenant, subjects.scoped(tenant, first.request_id), spoken_s=10.0)
    await spoken.admit(second, subjects.scoped(tenant, second.request_id))
    huge = _req(tenant, "Ann: " + " ".join(["word"] * 400))    # 160 s: never fits a 60 s day
    with pytest.raises(QuotaExceeded) as over:
        await spoken.admit(huge, subjects.scoped(tenant, huge.request_id))
    assert over.value.retry_after_s is None

    small = _ledger(bus, script_bytes=100)
    big = _req("b" + _id(), "Ann: " + "x" * 200)
    with pytest.raises(QuotaExceeded) as over:
        await small.admit(big, subjects.scoped(big.tenant, big.request_id))
    assert over.value.quota == "script_bytes" and over.value.retry_after_s is None


def test_quota_file_errors_name_the_quota(tmp_path):
    bad = tmp_path / "q.yaml"
    bad.write_text("default: {concurrent: 3}\n")
    with pytest.raises(ValueError, match="unknown quota 'concurrent'"):
        load_quotas(str(bad))
    bad.write_text("default: {requests_per_minute: .nan}\n")
    with pytest.raises(ValueError, match="requests_per_minute must be a finite number"):
        load_quotas(str(bad))
    good = tmp_path / "ok.yaml"
    good.write_text("default: {concurrent_requests: 5}\ntenants: {acme: {requests_per_minute: 7}}\n")
    q = load_quotas(str(good))
    assert q.of("acme").requests_per_minute == 7 and q.of("acme").concurrent_requests == 5
    assert q.of("other").requests_per_minute == 60


# ---------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def pool(nats_url, tmp_path_factory):
    """Scheduler + one worker per stage; tenant ``solo`` may run one request at a time."""
    quotas = tmp_path_factory.mktemp("quotas") / "quotas.yaml"
    quotas.write_text("default: {concurrent_requests: 8}\ntenants: {solo: {concurrent_requests: 1}}\n")
    before = os.environ.get("STREAMWISE_QUOTAS")
    os.environ["STREAMWISE_QUOTAS"] = str(quotas)     # read by the scheduler process at start
    try:
        p = Pool(nats_url, log_dir=tmp_path_factory.mktemp("logs")).start()
    finally:
        if before is None:
            os.environ.pop("STREAMWISE_QUOTAS", None)
        else:
            os.environ["STREAMWISE_QUOTAS"] = before
    yield p
    p.stop()


@pytest.fixture
async def ready(bus, pool):
    from helpers import wait_ready
    await asyncio.wait_for(wait_ready(bus, pool), 90)
    return bus


async def _statuses(bus, tenant: str, rid: str, until=("done", "failed"), timeout_s: float = 120.0) -> list[Status]:
    sub = await bus.js.subscribe(subjects.status(tenant, rid), stream=subjects.STREAM_STATUS, ordered_consumer=True)
    out: list[Status] = []
    try:
        deadline = time.monotonic() + timeout_s
        while not out or out[-1].state not in until:
            out.append(decode((await sub.next_msg(timeout=max(0.1, deadline - time.monotonic()))).data, Status))
    finally:
        await sub.unsubscribe()
    return out


async def _stored(bus, subject: str, stream: str) -> int:
    """How many messages ``stream`` holds on ``subject``."""
    info = await bus.js.stream_info(stream, subjects_filter=subject)
    return (info.state.subjects or {}).get(subject, 0)


async def test_a_forged_tenant_and_an_old_submitted_at_are_served_as_the_real_tenant_on_bus_time(ready):
    bus = ready
    rid = _id()
    tasks: list[Task] = []

    async def on_task(msg):
        task = decode(msg.data, Task)
        if task.request_id == rid:
            tasks.append(task)

    tap = await bus.nc.subscribe(subjects.tasks_all(), cb=on_task)   # a core-NATS copy of every task
    before = time.time()
    # tenant "mallory" publishes on its own subject, claiming to be "victim", submitted in 1970
    await bus.js.publish(subjects.requests("mallory"), msgpack.packb(
        {"request_id": rid, "tenant": "victim", "submitted_at": 0.0, "script": TWO, "width": 320, "height": 200}))
    after = time.time()
    statuses = await _statuses(bus, "mallory", rid)
    await tap.unsubscribe()
    assert statuses[-1].state == "done", statuses[-1].error
    accepted = next(s for s in statuses if s.state == "accepted")
    assert before - 1.0 <= accepted.received_at <= after + 1.0       # the server's clock, not 0.0
    assert tasks and {t.tenant for t in tasks} == {"mallory"}
    assert min(t.deadline for t in tasks) > before - 600               # EDF saw a fresh request, not a 1970 one
    assert all(t.task_id.startswith(f"mallory.{rid}.") for t in tasks)
    assert await _stored(bus, subjects.segments("mallory", rid), subjects.STREAM_SEGMENTS) >= 1
    assert await _stored(bus, subjects.segments("victim", rid), subjects.STREAM_SEGMENTS) == 0
    assert await _stored(bus, subjects.status("victim", rid), subjects.STREAM_STATUS) == 0


async def test_two_tenants_use_the_same_request_id_at_once(ready, tmp_path):
    rid = _id()
    a, b = await asyncio.gather(
        generate(ready, Request(request_id=rid, tenant="alpha", submitted_at=0.0, script=TWO), tmp_path / "a",
                 idle_timeout_s=120),
        generate(ready, Request(request_id=rid, tenant="beta", submitted_at=0.0, script=OTHER), tmp_path / "b",
                 idle_timeout_s=120))
    assert a.speakers == ["Ann", "Bo"] and b.speakers == ["Cy", "Dee"]
    assert (tmp_path / "a" / "podcast.mp4").read_bytes() != (tmp_path / "b" / "podcast.mp4").read_bytes()


async def test_a_tenant_over_its_quota_is_refused_while_another_tenant_streams(ready, tmp_path):
    bus = ready
    long_rid = _id()
    first = asyncio.create_task(generate(bus, Request(
        request_id=long_rid, tenant="solo", submitted_at=0.0,
        script=(ROOT / "examples" / "podcast.txt").read_text(encoding="utf-8")), tmp_path / "long", idle_timeout_s=180))
    accepted = await _statuses(bus, "solo", long_rid, until=("accepted", "failed"))
    assert accepted[-1].state == "accepted"
    with pytest.raises(GenerateError, match="concurrent_requests|running, its limit is 1"):
        await generate(bus, Request(request_id=_id(), tenant="solo", submitted_at=0.0, script=TWO),
                       tmp_path / "refused", idle_timeout_s=60)
    other = await generate(bus, Request(request_id=_id(), tenant="other", submitted_at=0.0, script=OTHER),
                           tmp_path / "other", idle_timeout_s=120)
    assert other.segments and other.speakers == ["Cy", "Dee"]
    done = await first
    assert done.segments
    # the refusal said which quota and when to retry
    refused = [s for s in await _statuses_all(bus, "solo") if s.quota]
    assert refused and refused[0].quota == "concurrent_requests" and refused[0].retry_after_s > 0


async def test_another_tenants_msg_id_does_not_stop_a_request_being_served(ready, tmp_path):
    """Tenant b publishes first with the de-duplication ids tenant a's request could use
    (``alpha.<id>``, the scoped id, and the bare id): a's request is still served, and b's
    request with a header outside its own namespace is refused with that reason."""
    bus = ready
    rid = _id()
    forged = []
    for msg_id in (subjects.scoped("alpha", rid), rid):
        await bus.js.publish(subjects.requests("beta"), msgpack.packb(
            {"request_id": rid, "tenant": "alpha", "submitted_at": time.time(), "script": OTHER}),
            headers={"Nats-Msg-Id": msg_id})
        forged.append(msg_id)
    done = await generate(bus, Request(request_id=rid, tenant="alpha", submitted_at=0.0, script=TWO), tmp_path / "a",
                          idle_timeout_s=120)
    assert done.speakers == ["Ann", "Bo"] and done.segments
    b = await _statuses(bus, "beta", rid)
    assert b[-1].state == "failed" and "Nats-Msg-Id" in b[-1].error and "beta." in b[-1].error, b[-1]
    # b's forged requests were not served as a's, nor as b's
    assert await _stored(bus, subjects.segments("beta", rid), subjects.STREAM_SEGMENTS) == 0


def test_dedup_ids_are_unguessable_and_scoped():
    a1, a2 = subjects.request_dedup_id("a", "r1"), subjects.request_dedup_id("a", "r1")
    assert a1 != a2 and a1.startswith("a.r1.") and len(a1.split(".")[2]) == 32
    assert subjects.dedup_id_matches(a1, "a", "r1") and subjects.dedup_id_matches("a.r1", "a", "r1")
    assert not subjects.dedup_id_matches(a1, "b", "r1") and not subjects.dedup_id_matches("a.r10.x", "a", "r1")
    assert not subjects.dedup_id_matches("r1", "a", "r1")


async def _statuses_all(bus, tenant: str) -> list[Status]:
    sub = await bus.js.subscribe(subjects.status(tenant, "*"), stream=subjects.STREAM_STATUS, ordered_consumer=True)
    out = []
    try:
        while True:
            out.append(decode((await sub.next_msg(timeout=2.0)).data, Status))
    except Exception:   # no more within 2 s
        pass
    finally:
        await sub.unsubscribe()
    return out
