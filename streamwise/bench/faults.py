"""``streamwise faults``: the fault matrix of issue 9, against real processes and a real nats-server.

Every scenario starts its own embedded nats-server (or a three-node cluster) and a pool of
scheduler and worker processes, submits one podcast (examples/short_chat.txt unless it says
otherwise), injects its fault at a given segment and reports one row: the fault, the requests,
the segments expected and delivered, the duplicates the viewer dropped, the gaps, and the
outcome. The bad-input scenario sends every kind of bad request beside a normal one. The same
faults are automated tests (tests/test_faults.py, tests/test_pipeline.py); this command runs
them all in one go and prints the table that docs/reliability.md keeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Awaitable, Callable

import msgpack

from ..bus import registry, subjects
from ..bus.client import Bus, connect
from ..bus.messages import Request
from ..bus.server import EmbeddedServer, LocalCluster
from ..client import GenerateError, Report, generate
from . import SHORT_SCRIPT
from ..service.pool import DEFAULT_WORKERS, Pool

SCRIPT = SHORT_SCRIPT


@dataclass
class FaultRow:
    """One scenario's result: ``expected`` and ``delivered`` count segments over all its
    requests (delivered: distinct, in order); ``duplicates``: segment messages the viewer
    dropped as repeats; ``gaps``: expected segments never delivered; ``seconds``: wall time."""

    fault: str
    requests: int
    expected: int
    delivered: int
    duplicates: int
    gaps: int
    outcome: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class _Ctx:
    bus: Bus
    pool: Pool
    server: EmbeddedServer | LocalCluster
    workdir: Path


Strike = Callable[[_Ctx], Awaitable[None]]


def _request(text: str | None = None, **kw) -> Request:
    return Request(request_id=uuid.uuid4().hex[:12], submitted_at=0.0,
                   script=SCRIPT.read_text() if text is None else text, script_name="script.txt", **kw)


async def _ready(bus: Bus, pool: Pool, stages: int = 0, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        pool.check()
        try:
            await registry.wait_for_stages(bus.instances, pool.stages(), 0.5)
            if len([h for h in await registry.list_instances(bus.instances) if h.stage == "video"]) >= stages:
                return
        except TimeoutError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the pool did not become ready")


def _row(fault: str, reports: list[Report], started: float, outcome: str = "ok", requests: int = 1) -> FaultRow:
    """``expected``: the segment counts the scheduler reported (``segments_total`` of its last
    status), independent of what the viewer received; a report without one (the request
    failed before the show's length was known) expects one more than it got."""
    delivered = sum(len({s.index for s in r.segments}) for r in reports)
    expected = sum(r.segments_total if r.segments_total is not None else len(r.segments) + 1 for r in reports)
    ordered = all([s.index for s in r.segments] == list(range(len(r.segments))) for r in reports)
    if outcome == "ok" and not ordered:
        outcome = "segments out of order"
    if outcome == "ok" and delivered != expected:
        outcome = f"{expected - delivered} segment(s) missing"
    return FaultRow(fault, requests, expected, delivered,
                    sum(r.duplicates for r in reports), max(0, expected - delivered), outcome,
                    round(time.monotonic() - started, 1))


async def _one_show(ctx: _Ctx, strike: Strike | None, at_segment: int, *, progress_delay_s: float = 0.0,
                    request: Request | None = None) -> Report:
    hit = asyncio.Event()

    def on_progress(kind, info):
        if kind == "segment":
            if info["index"] == at_segment:
                hit.set()
            if progress_delay_s:
                time.sleep(progress_delay_s)   # a slow viewer: its loop is blocked

    async def fire():
        await hit.wait()
        await strike(ctx)

    task = asyncio.create_task(fire()) if strike else None
    try:
        return await generate(ctx.bus, request or _request(), ctx.workdir / "out", progress=on_progress,
                              idle_timeout_s=150)
    finally:
        if task:
            await asyncio.wait_for(task, 90) if hit.is_set() else task.cancel()


def _proc(ctx: _Ctx, name: str):
    return dict(ctx.pool.processes)[name]


async def _victim_instance(ctx: _Ctx, name: str) -> str:
    pid = _proc(ctx, name).pid
    return next(h.instance for h in await registry.list_instances(ctx.bus.instances) if h.pid == pid)


# ----------------------------------------------------------------------------- the strikes
async def _sigkill_video(ctx: _Ctx) -> None:
    _proc(ctx, "video-0").kill()


async def _evict_video(ctx: _Ctx) -> None:
    await ctx.bus.nc.publish(subjects.evict(await _victim_instance(ctx, "video-0")), b"0.2")


async def _sigterm_video(ctx: _Ctx) -> None:
    _proc(ctx, "video-0").send_signal(signal.SIGTERM)


async def _sigkill_owner_scheduler(ctx: _Ctx) -> None:
    """SIGKILL the scheduler process that accepted the request (its log says so)."""
    for name in ("scheduler", "scheduler-2"):
        if "accepted" in (ctx.workdir / "logs" / f"{name}.log").read_text(errors="replace"):
            _proc(ctx, name).kill()
            return


async def _freeze(proc, seconds: float) -> None:
    """SIGSTOP ``proc`` (a ``subprocess.Popen``) for ``seconds``, then SIGCONT it (also when cancelled)."""
    proc.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        proc.send_signal(signal.SIGCONT)


def _frozen_for(name: str | None, seconds: float) -> Strike:
    """SIGSTOP a process (``None``: the scheduler that accepted the request) for ``seconds``, longer than its
    heartbeat or keep-alive lasts, then SIGCONT it: the others must have taken its work over, and what it does
    when it wakes (stale tasks, a request it no longer owns) must neither duplicate nor lose a segment."""
    async def strike(ctx: _Ctx) -> None:
        victim = name
        if victim is None:
            victim = next((n for n in ("scheduler", "scheduler-2")
                           if "accepted" in (ctx.workdir / "logs" / f"{n}.log").read_text(errors="replace")),
                          "scheduler")
        await _freeze(_proc(ctx, victim), seconds)
    return strike


def _bus_frozen_for(seconds: float) -> Strike:
    """SIGSTOP the nats-server for ``seconds`` (connections stay open, nothing answers), then SIGCONT it."""
    async def strike(ctx: _Ctx) -> None:
        await _freeze(ctx.server.process, seconds)
    return strike


def _bus_down_for(seconds: float) -> Strike:
    async def strike(ctx: _Ctx) -> None:
        ctx.server.kill()
        await asyncio.sleep(seconds)
        await asyncio.to_thread(ctx.server.start)
    return strike


async def _kill_cluster_node(ctx: _Ctx) -> None:
    ctx.server.nodes[1].kill()


# ----------------------------------------------------------------------------- scenarios
async def _scenario(fault: str, workdir: Path, strike: Strike | None, *, at_segment: int = 1,
                    workers: dict[str, int] | None = None, extra=None, cluster: bool = False,
                    max_payload_mb: int = 8, progress_delay_s: float = 0.0, video_instances: int = 0,
                    request: Callable[[_Ctx], Awaitable[Request]] | None = None,
                    must_exit: set[str] = frozenset()) -> FaultRow:
    started = time.monotonic()
    server = (LocalCluster(3, str(workdir / "cluster")) if cluster
              else EmbeddedServer(store_dir=str(workdir / "js"), max_payload_mb=max_payload_mb)).start()
    pool = Pool(server.url, workers, log_dir=workdir / "logs", extra=extra).start()
    try:
        bus = await connect(server.url)
        ctx = _Ctx(bus, pool, server, workdir)
        try:
            await _ready(bus, pool, video_instances)
            if cluster:
                await server.replicated(bus)    # every stream on all three nodes before one is lost
            req = await request(ctx) if request else None
            report = await _one_show(ctx, strike, at_segment, progress_delay_s=progress_delay_s, request=req)
        except (GenerateError, TimeoutError) as exc:
            return _row(fault, [], started, f"failed: {exc}")
        finally:
            await bus.close()
        exited = [name for name, proc in pool.processes if proc.poll() is not None and name not in must_exit]
        return _row(fault, [report], started, "ok" if not exited else f"process exited: {', '.join(exited)}")
    finally:
        pool.stop()
        server.stop()


async def _by_reference(ctx: _Ctx) -> Request:
    request = _request()
    request.script, request.script_ref = None, await ctx.bus.put_upload("default", request.request_id,
                                                                     SCRIPT.read_bytes())
    return request


def bad_requests() -> list[tuple[str, dict, str]]:
    """(request id, plain MessagePack map, text its failed status must contain) for every bad
    input of issue 9: non-finite, negative and huge numbers in every numeric field, missing and
    wrong-typed fields, an unknown schema version, absurd SLOs, and scripts that are empty,
    binary, 100,000 lines, one 50,000-character line, without speakers or 10 hours long."""
    n = iter(range(100_000))
    cases: list[tuple[str, dict, str]] = []

    def add(why: str, **fields) -> None:
        rid = f"bad{next(n)}"
        raw = {"request_id": rid, "submitted_at": 0.0, "script": "Ada: Hi.\nBob: Hello.\n", **fields}
        cases.append((rid, {k: v for k, v in raw.items() if v is not _DROP}, why))

    for name in ("ttff_s", "fps", "segment_s", "first_segment_s", "max_clip_s", "submitted_at"):
        for value in (float("nan"), float("inf"), float("-inf"), -1.0, 1e300):
            add(name, **{name: value})
    for name in ("width", "height"):
        for value in (-8, 0, 10**12, float("nan"), "640"):
            add(name, **{name: value})
    add("submitted_at", submitted_at=_DROP)
    add("submitted_at", submitted_at="yesterday")
    add("ttff_s", ttff_s=True)
    add("newer than supported", v=99)
    add("ttff_s", ttff_s=0.0)
    add("give exactly one of", script="")
    add("binary data", script="Ada: hi\x00\x01\x02")
    add("spoken lines, over the limit", script="Ada: hi.\n" * 100_000)
    add("characters, over the limit", script="Ada: " + "word " * 10_000 + "\nBob: ok\n")
    add("no dialogue found", script="[Theme music]\n(A long pause.)\n")   # no labels at all is narration now
    add("h of speech, over the limit of 4 h", script=("Ada: " + "so many words to say here " * 30 + "\n") * 700)
    return cases


_DROP = object()


async def send_bad_requests(bus: Bus, timeout_s: float = 120.0) -> tuple[dict[str, str], dict[str, str]]:
    """Publish malformed MessagePack and every :func:`bad_requests` map to ``sw.requests.default``
    and collect the failed statuses. Returns ``(wanted, seen)``: request id -> the text its
    error must contain, and request id -> the error it got."""
    cases = bad_requests()
    want = {rid: why for rid, _, why in cases}
    seen: dict[str, str] = {}
    from nats.js import api

    sub = await bus.js.subscribe(subjects.status_all(), stream=subjects.STREAM_STATUS, ordered_consumer=True,
                                 deliver_policy=api.DeliverPolicy.NEW)
    try:
        await bus.js.publish(subjects.requests("default"), b"\xc1\xff\x00not msgpack")
        for _, raw, _ in cases:
            await bus.js.publish(subjects.requests("default"), msgpack.packb(raw))
        deadline = time.monotonic() + timeout_s
        while set(want) - set(seen) and time.monotonic() < deadline:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except Exception:
                continue
            status = msgpack.unpackb(msg.data)
            if status.get("request_id") in want and status.get("state") == "failed":
                seen[status["request_id"]] = status.get("error") or ""
    finally:
        await sub.unsubscribe()
    return want, seen


async def _bad_inputs(workdir: Path) -> FaultRow:
    started = time.monotonic()
    with EmbeddedServer() as server, Pool(server.url, log_dir=workdir / "logs") as pool:
        bus = await connect(server.url)
        try:
            await _ready(bus, pool)
            good = asyncio.create_task(generate(bus, _request(), workdir / "out", idle_timeout_s=150))
            want, seen = await send_bad_requests(bus)
            report = await good
        finally:
            await bus.close()
    wrong = [rid for rid in want if want[rid] not in seen.get(rid, "")]
    outcome = "ok" if not wrong else f"{len(wrong)} of {len(want)} without the right reason: {wrong[:5]}"
    row = _row(f"bad inputs: {len(want) + 1} refused with the reason, beside a normal request", [report], started,
               outcome)
    row.requests = len(want) + 2
    return row


def scenarios() -> dict[str, Callable[[Path], Awaitable[FaultRow]]]:
    """Name -> coroutine function running that scenario in a work directory."""
    two_videos = dict(DEFAULT_WORKERS, video=2)
    gpu_only = dict(DEFAULT_WORKERS, video=0)
    emulated = [("video-fantasytalking-0", ["worker", "--stage", "video", "--model", "fantasytalking",
                                            "--hardware", "gb200", "--gpus", "8", "--emulate"])]
    return {
        "worker-sigkill": lambda d: _scenario("worker SIGKILLed mid-task", d, _sigkill_video, at_segment=0,
                                              workers=two_videos, video_instances=2, must_exit={"video-0"}),
        "eviction": lambda d: _scenario("eviction notice with work queued", d, _evict_video, at_segment=0,
                                        workers=two_videos, video_instances=2, must_exit={"video-0"}),
        "scheduler-sigkill": lambda d: _scenario("scheduler SIGKILLed mid-request", d, _sigkill_owner_scheduler,
                                                 extra=[("scheduler-2", ["scheduler"])],
                                                 must_exit={"scheduler", "scheduler-2"}),
        "bus-restart": lambda d: _scenario("nats-server killed, back after 4 s", d, _bus_down_for(4)),
        "bus-outage-60s": lambda d: _scenario("nats-server down for 60 s", d, _bus_down_for(60)),
        "cluster-node": lambda d: _scenario("one node of a 3-node cluster killed", d, _kill_cluster_node,
                                            cluster=True),
        "gpu-queue": lambda d: _scenario("GPU-length clips queued on one instance (emulated, ack wait 2 s)", d,
                                         None, workers=gpu_only, extra=emulated, video_instances=1),
        "bus-sigstop": lambda d: _scenario("nats-server SIGSTOPped 20 s (frozen, connections open), then resumed",
                                           d, _bus_frozen_for(20)),
        "scheduler-sigstop": lambda d: _scenario("scheduler SIGSTOPped 20 s mid-request, then resumed", d,
                                                 _frozen_for(None, 20), extra=[("scheduler-2", ["scheduler"])]),
        "worker-sigstop": lambda d: _scenario("video worker SIGSTOPped 20 s mid-task, then resumed", d,
                                              _frozen_for("video-0", 20), at_segment=0, workers=two_videos,
                                              video_instances=2),
        "worker-sigterm": lambda d: _scenario("worker SIGTERMed mid-task", d, _sigterm_video, at_segment=0,
                                              workers=two_videos, video_instances=2, must_exit={"video-0"}),
        "slow-viewer": lambda d: _scenario("slow viewer (0.4 s per segment)", d, None, progress_delay_s=0.4),
        "script-by-reference": lambda d: _scenario("script by object-store reference, 1 MB server", d, None,
                                                   max_payload_mb=1, request=_by_reference),
        "bad-inputs": _bad_inputs,
    }


def run_faults(names: list[str] | None = None, workdir: Path | None = None,
               on_row: Callable[[FaultRow], None] | None = None) -> list[FaultRow]:
    """Run the named scenarios (all by default), each in ``workdir/<name>``; returns their rows.

    Raises:
        ValueError: an unknown scenario name.
    """
    table = scenarios()
    unknown = set(names or []) - set(table)
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(sorted(unknown))}; known: {', '.join(table)}")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="streamwise-faults-"))
    rows = []
    for name in names or list(table):
        env = SCENARIO_ENV.get(name, {})
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)             # inherited by the scenario's pool processes
        try:
            row = asyncio.run(table[name](workdir / name))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


SCENARIO_ENV = {
    "gpu-queue": {"STREAMWISE_ACK_WAIT_S": "2"},     # queued clips outwait the ack wait
    "cluster-node": {"STREAMWISE_REPLICAS": "3"},    # streams, buckets and the object store on all three nodes
}


HEADER = ("| fault | requests | segments expected | delivered | duplicates dropped | gaps | outcome | s |\n"
          "|---|---|---|---|---|---|---|---|")


def format_row(row: FaultRow) -> str:
    return (f"| {row.fault} | {row.requests} | {row.expected} | {row.delivered} | {row.duplicates} | {row.gaps} | "
            f"{row.outcome} | {row.seconds:.0f} |")


def cmd_faults(args) -> int:
    """``streamwise faults [--only a,b] [--json]``: exit 0 when every row is ok, 1 otherwise."""
    names = [n for n in (args.only or "").split(",") if n] or None
    if not args.json:
        print(HEADER, flush=True)
    rows = run_faults(names, Path(args.workdir) if args.workdir else None,
                      on_row=None if args.json else lambda r: print(format_row(r), flush=True))
    if args.json:
        json.dump([asdict(r) for r in rows], sys.stdout, indent=1)
        print()
    return 0 if all(r.ok for r in rows) else 1


def add_parser(sub) -> None:
    f = sub.add_parser("faults", help="run the fault matrix (real processes, real nats-server) and print a row each")
    f.add_argument("--only", help=f"comma-separated scenarios: {', '.join(scenarios())}")
    f.add_argument("--workdir", help="keep logs and outputs here (default: a temporary directory)")
    f.add_argument("--json", action="store_true", help="print the rows as JSON")
    f.set_defaults(handler=cmd_faults)
