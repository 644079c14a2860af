"""A multi-node rehearsal without Kubernetes (issue 14, item 5): ``deploy/local/rehearse.py``.

Three nats-server processes clustered on loopback (every stream, bucket and the object store
with 3 replicas) stand for three nodes; two scheduler processes and the worker processes are
spread over them as separate "nodes" (each process is given the cluster's URLs starting with
its own node's, so each talks to a different server first). Several podcasts run at once while
the pool changes under them:

- a video worker **joins** (a new process) once the first segment of the first show is out;
- a worker **leaves** gracefully (SIGTERM: it drains, hands back what it holds, exits 0);
- one worker is **stopped** hard (SIGKILL: its heartbeats stop, its tasks are resubmitted);
- one **NATS node** is SIGKILLed (its clients fail over to the other two).

The result names every request, the segments expected (from each show's final length) and
delivered (distinct, in order), the duplicates the viewers dropped, and the faults with the
second they struck; ``lost`` is 0 only when every show arrived whole. Nothing is emulated:
real servers, real worker processes, real encoders (the CPU rung).
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..bus import registry
from ..bus.client import connect
from ..bus.messages import Request
from ..bus.server import LocalCluster, free_port
from ..client import GenerateError, Report, generate, watch
from ..service.pool import Pool
from . import SHORT_SCRIPT


@dataclass
class Rehearsal:
    """What the rehearsal saw. ``expected``/``delivered``: segments over all requests;
    ``lost``: requests that did not arrive whole (failed, a gap, or a length that disagrees);
    ``faults``: (second after the first request, what was done)."""

    requests: int
    complete: int
    expected: int
    delivered: int
    duplicates: int
    lost: int
    faults: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.complete == self.requests and len(self.faults) == 4


def _rotated(urls: list[str], first: int) -> str:
    """The cluster's URLs starting with node ``first``'s: that process's own node."""
    return ",".join(urls[first:] + urls[:first])


def _whole(report: Report) -> bool:
    ends = [s.start_s + s.duration_s for s in report.segments]
    return (bool(report.segments) and [s.index for s in report.segments] == list(range(len(report.segments)))
            and abs(ends[-1] - report.video_duration_s) < 0.05
            and all(abs(a.start_s + a.duration_s - b.start_s) < 1e-6 for a, b in zip(report.segments,
                                                                                   report.segments[1:])))


async def _ready(bus, pools: list[Pool], timeout_s: float = 150.0) -> None:
    stages = set().union(*(p.stages() for p in pools)) - {"scheduler"}
    deadline = time.monotonic() + timeout_s
    while True:
        for p in pools:
            p.check()
        try:
            await registry.wait_for_stages(bus.instances, stages, 0.5)
            beats = await registry.list_instances(bus.instances)
            if sum(h.stage == "scheduler" for h in beats) >= 2 and sum(h.stage == "video" for h in beats) >= 2:
                return
        except TimeoutError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the rehearsal's pool did not become ready")
        await asyncio.sleep(0.2)


async def rehearse(workdir: Path, *, requests: int = 3, script: Path = SHORT_SCRIPT) -> Rehearsal:
    """Run the rehearsal in ``workdir`` (cluster stores, logs, each show's output).

    Raises:
        TimeoutError: the cluster or the pool did not come up.
    """
    started = time.monotonic()
    replicas = os.environ.get("STREAMWISE_REPLICAS")
    os.environ["STREAMWISE_REPLICAS"] = "3"        # inherited by every process: layouts on all 3 nodes
    cluster = LocalCluster(3, str(workdir / "cluster")).start()
    urls = [node.url for node in cluster.nodes]
    # node 0: a scheduler and one worker per stage; node 1: a second scheduler and a second video
    # worker; node 2: the gateway (`streamwise serve`), the viewers and the worker that joins later
    node_a = Pool(_rotated(urls, 0), log_dir=workdir / "logs" / "node-a")
    node_b = Pool(_rotated(urls, 1), {"video": 1}, log_dir=workdir / "logs" / "node-b")
    pools = [node_a, node_b]
    joined = gateway = None
    result = Rehearsal(requests=requests, complete=0, expected=0, delivered=0, duplicates=0, lost=requests)
    try:
        bus = await connect(_rotated(urls, 2), name="rehearsal-viewer")
        try:
            await cluster.replicated(bus)
            for p in pools:
                p.start()
            port = free_port()
            gateway = _process(["serve", "--nats", _rotated(urls, 2), "--port", str(port)],
                               workdir / "logs" / "node-c-gateway.log")
            await _ready(bus, pools)
            base = f"http://127.0.0.1:{port}"
            await _http_ready(base, gateway)
            await cluster.replicated(bus)
            t0 = time.monotonic()
            first_segment = asyncio.Event()

            def on_first(kind, info):
                if kind == "segment" and info["index"] >= 1:
                    first_segment.set()

            async def faults():
                nonlocal joined
                await first_segment.wait()
                joined = _process(["worker", "--stage", "video", "--nats", _rotated(urls, 2)],
                                  workdir / "logs" / "node-c-video.log")
                result.faults.append((round(time.monotonic() - t0, 2), "a video worker joined (node c)"))
                dict(node_b.processes)["video-0"].send_signal(signal.SIGTERM)
                result.faults.append((round(time.monotonic() - t0, 2), "node b's video worker left (SIGTERM, drains)"))
                await asyncio.sleep(0.5)
                cluster.nodes[1].kill()
                result.faults.append((round(time.monotonic() - t0, 2), "NATS node sw1 SIGKILLed"))
                await asyncio.sleep(0.5)
                dict(node_a.processes)["tts-0"].kill()
                result.faults.append((round(time.monotonic() - t0, 2), "node a's tts worker SIGKILLed"))
                # the pool's supervisor (as `streamwise up` runs it) restarts the killed worker
                for _ in range(200):
                    if "tts-0" in node_a.supervise(log=lambda line: None):
                        break
                    await asyncio.sleep(0.1)

            text = script.read_text(encoding="utf-8")
            shows = [Request(request_id=uuid.uuid4().hex[:12], submitted_at=0.0, script=text,
                             script_name=script.name, title=f"Rehearsal {i + 1}") for i in range(requests)]
            striking = asyncio.create_task(faults())
            # the last show goes in through the gateway's HTTP API (as a browser would) and is
            # watched on the bus; the others are published by the Python client
            outcomes = await asyncio.gather(*(
                generate(bus, r, workdir / "out" / r.request_id, idle_timeout_s=180,
                         progress=on_first if i == 0 else None) for i, r in enumerate(shows[:-1])),
                _through_gateway(base, bus, shows[-1], workdir / "out" / "gateway"),
                return_exceptions=True)
            await asyncio.wait_for(striking, 60)
        finally:
            await bus.close()
        reports = [o for o in outcomes if isinstance(o, Report)]
        result.errors = [f"{type(o).__name__}: {o}" for o in outcomes if not isinstance(o, Report)]
        whole = [r for r in reports if _whole(r)]
        result.complete = len(reports)
        result.lost = requests - len(whole)
        result.delivered = sum(len(r.segments) for r in reports)
        # a show that is not whole misses at least one segment (its true count is unknown)
        result.expected = sum(len(r.segments) + (0 if r in whole else 1) for r in reports)
        result.duplicates = sum(r.duplicates for r in reports)
        left = {id(node_b): {"video-0"}}          # the worker that left on purpose
        exited = [f"{name} (exit {proc.returncode})" for p in pools for name, proc in p.processes
                  if proc.poll() is not None and name not in left.get(id(p), set())]
        if exited:
            result.errors.append("processes exited: " + ", ".join(exited))
    finally:
        result.seconds = round(time.monotonic() - started, 1)
        for p in pools:
            p.stop()
        for proc in (joined, gateway):
            if proc is not None:
                proc.terminate()
                proc.wait(30)
        cluster.stop()
        if replicas is None:
            os.environ.pop("STREAMWISE_REPLICAS", None)
        else:
            os.environ["STREAMWISE_REPLICAS"] = replicas
    return result


def _process(args: list[str], log: Path):
    """Start ``streamwise ARGS`` as its own process, its output in ``log``."""
    import subprocess

    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "streamwise", *args],
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"))


async def _http_ready(base: str, proc, timeout_s: float = 60.0) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the gateway exited ({proc.returncode})")
            try:
                async with http.get(f"{base}/openapi.json") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the gateway did not start listening")
            await asyncio.sleep(0.3)


async def _through_gateway(base: str, bus, show: Request, out: Path) -> Report:
    """POST ``show``'s script to the gateway, then watch its segments on the bus; the gateway's
    status must say done (raises RuntimeError otherwise)."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/v1/podcasts", json={"script": show.script, "title": show.title}) as resp:
            body = await resp.json()
            if resp.status != 201:
                raise RuntimeError(f"gateway refused the show: {body}")
        for attempt in range(60):   # until a scheduler has accepted it (its first status is on the bus)
            try:
                report = await watch(bus, body["id"], out, tenant=body.get("tenant", "default"), idle_timeout_s=180)
                break
            except GenerateError as exc:
                if not str(exc).startswith("no request") or attempt == 59:
                    raise
                await asyncio.sleep(0.5)
        for _ in range(50):   # the scheduler's done status follows the final segment
            async with http.get(f"{base}/v1/podcasts/{body['id']}") as resp:
                state = (await resp.json()).get("state")
            if state == "done":
                return report
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the gateway's status of {body['id']} is {state!r} after the final segment")


def format_result(r: Rehearsal) -> str:
    """The rehearsal as a few lines of text (what ``deploy/local/rehearse.py`` prints)."""
    lines = [f"rehearsal: {r.requests} requests (one through the gateway) on a 3-node NATS cluster, "
             f"2 schedulers, workers on 3 nodes "
             f"({r.seconds:.0f} s)",
             f"  complete {r.complete}/{r.requests}, segments delivered {r.delivered} of {r.expected} expected, "
             f"duplicates dropped {r.duplicates}, shows lost {r.lost}"]
    lines += [f"  +{t:6.2f} s  {what}" for t, what in r.faults]
    lines += [f"  error: {e}" for e in r.errors]
    lines.append("  result: " + ("ok, nothing lost" if r.ok else "FAILED"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python deploy/local/rehearse.py [--requests N] [--workdir DIR] [--json]``: exit 0 when
    nothing was lost."""
    import argparse

    from ..cli import _run

    p = argparse.ArgumentParser(prog="rehearse", description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=3)
    p.add_argument("--workdir", help="where stores, logs and shows go (default: a temporary directory)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="streamwise-rehearsal-"))
    result = _run(rehearse(workdir, requests=args.requests))
    print(json.dumps(asdict(result)) if args.json else format_result(result))
    return 0 if result.ok else 1
