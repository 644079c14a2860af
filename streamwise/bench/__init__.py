"""``streamwise bench``: time to first frame, realtime factor and peak memory of one podcast.

Runs the whole pipeline exactly as ``streamwise generate`` does (embedded nats-server,
scheduler and one worker process per stage) on a script (default: the repository's
two-minute example), while a sampler adds up the resident memory (RSS) of every process
involved (this one, nats-server and all workers) every 50 ms. RSS counts shared
libraries once per process, so the sum is an upper bound. Targets from issue 2: TTFF
under 1.5 s after the bus is up, realtime factor under 0.5 at 640x400 / 25 fps, peak
memory of all processes under 2 GB.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil

from ..bus.client import connect
from ..bus.messages import Request
from ..bus.server import EmbeddedServer
from ..client import generate
from ..service.pool import UP_WORKERS, Pool, emulated_workers

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"   # the repository's examples/ (a source checkout)
DEFAULT_SCRIPT = EXAMPLES / "two_minutes.txt"


class MemorySampler(threading.Thread):
    """Samples the summed RSS (bytes) of a set of processes every ``interval_s`` seconds; keeps the peak."""

    def __init__(self, pids: list[int], interval_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.procs = [psutil.Process(p) for p in pids]
        self.interval_s = interval_s
        self.peak = 0
        self.peak_by_pid: dict[int, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            total = 0
            for proc in self.procs:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peak_by_pid[proc.pid] = max(self.peak_by_pid.get(proc.pid, 0), rss)
            self.peak = max(self.peak, total)
            self._halt.wait(self.interval_s)

    def stop(self) -> None:
        self._halt.set()
        self.join()


async def _run(url: str, request: Request, out: Path):
    bus = await connect(url, name="streamwise-bench")
    try:
        return await generate(bus, request, out, idle_timeout_s=120)
    finally:
        await bus.close()


def run_bench(script: Path, out: Path, *, size: tuple[int, int] = (640, 400), fps: float = 25.0,
              ttff_s: float = 1.5, topic: str | None = None, llm_args: list[str] | None = None) -> dict:
    """Run one podcast and return the figures (also written to ``out/bench.json``). With
    ``topic``, an LLM screenplay worker (``llm_args``: its ``--llm`` options) writes the show
    instead of ``script``, and the figures add the LLM's first-line and screenplay-done times.

    Raises:
        RuntimeError / TimeoutError / streamwise.client.GenerateError: the pipeline failed.
    """
    from ..cli import _run as run_loop, _wait_ready

    source = (dict(topic=topic) if topic else dict(script=script.read_text(encoding="utf-8"), script_name=str(script)))
    request = Request(request_id=uuid.uuid4().hex[:16], submitted_at=0.0, width=size[0], height=size[1], fps=fps,
                      ttff_s=ttff_s, **source)
    workers, extra = None, None
    if topic:   # the screenplay worker is the LLM, as `streamwise generate --topic` runs it
        from ..service.pool import DEFAULT_WORKERS

        workers = {**DEFAULT_WORKERS, "screenplay": 0}
        extra = [("screenplay-llm", ["worker", "--stage", "screenplay", "--model", "llm", *(llm_args or [])])]
    t0 = time.time()
    with EmbeddedServer() as server, Pool(server.url, workers, log_dir=Path(tempfile.mkdtemp(prefix="sw-bench-")),
                                          extra=extra) as pool:
        names = {os.getpid(): "client", server.process.pid: "nats-server",
                 **{proc.pid: name for name, proc in pool.processes}}
        sampler = MemorySampler(list(names))
        sampler.start()
        try:
            run_loop(_wait_ready(server.url, pool, 300.0 if topic else 120.0,
                                 pool.stages() | {"screenplay"} if topic else None))
            startup = time.time() - t0
            report = run_loop(_run(server.url, request, out))
        finally:
            sampler.stop()
    figures = {
        "script": None if topic else str(script), "topic": topic,
        "first_line_s": report.first_line_s, "screenplay_done_s": report.screenplay_done_s,
        "speakers": report.speakers, "lines": report.lines,
        "video_duration_s": report.video_duration_s, "size": f"{size[0]}x{size[1]}", "fps": fps,
        "startup_s": round(startup, 2), "ttff_s": report.ttff_s, "wall_s": report.wall_s,
        "realtime_factor": report.realtime_factor, "stall_s": report.stall_s,
        "peak_memory_mb": round(sampler.peak / 2**20, 1),
        "peak_memory_mb_by_process": {names[pid]: round(rss / 2**20, 1) for pid, rss in sampler.peak_by_pid.items()},
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
                   f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}",
    }
    (out / "bench.json").write_text(json.dumps(figures, indent=2))
    return figures


def print_figures(figures: dict) -> None:
    """Print the figures against the issue-2 targets."""
    rows = [("TTFF (request published -> first segment)", f"{figures['ttff_s']:.3f} s", "< 1.5 s",
             figures["ttff_s"] < 1.5),
            ("realtime factor (wall / video length)", f"{figures['realtime_factor']:.3f}", "< 0.5",
             figures["realtime_factor"] < 0.5),
            ("peak memory, all processes (sum of RSS)", f"{figures['peak_memory_mb']:.0f} MB", "< 2048 MB",
             figures["peak_memory_mb"] < 2048),
            ("playback stall", f"{figures['stall_s']:.2f} s", "0 s", figures["stall_s"] == 0)]
    print(f"{'topic' if figures.get('topic') else 'script'} {figures.get('topic') or figures['script']}: "
          f"{figures['video_duration_s']:.1f} s of video at {figures['size']} / "
          f"{figures['fps']:g} fps, {figures['lines']} lines, speakers {', '.join(figures['speakers'])}")
    print(f"machine: {figures['machine']}; bus + workers up in {figures['startup_s']:.2f} s; "
          f"generation wall time {figures['wall_s']:.2f} s")
    for name, value, target, ok in rows:
        print(f"  {name:<44} {value:>10}   target {target:<10} {'ok' if ok else 'MISSED'}")
    if figures.get("topic"):
        first, done = figures.get("first_line_s"), figures.get("screenplay_done_s")
        print(f"  LLM: first line at {first if first is None else round(first, 2)} s, screenplay done at "
              f"{done if done is None else round(done, 2)} s (the opening plays meanwhile)")
    print("  peak RSS by process (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in
                                                     figures["peak_memory_mb_by_process"].items()))


# --------------------------------------------------------------------------- scheduler benchmark
SHORT_SCRIPT = EXAMPLES / "short_chat.txt"


async def _many(url: str, script: Path, n: int, out: Path, ttff_s: float) -> list:
    """N concurrent requests, submitted at once."""
    bus = await connect(url, name="streamwise-bench-scheduler")
    try:
        text = script.read_text(encoding="utf-8")
        requests = [Request(request_id=uuid.uuid4().hex[:16], submitted_at=0.0, script=text, script_name=str(script),
                            ttff_s=ttff_s) for _ in range(n)]
        return list(await asyncio.gather(*(generate(bus, r, out / f"{n}-{i}", idle_timeout_s=300)
                                           for i, r in enumerate(requests)), return_exceptions=True))
    finally:
        await bus.close()


def cpu_seconds(processes: list[tuple[str, int]]) -> dict[str, float]:
    """CPU seconds (user + system, from psutil) used so far by each ``(name, pid)``, summed by
    name with the trailing ``-<index>`` of a pool's worker names dropped (``tts-0`` -> ``tts``);
    a process that is gone counts 0."""
    out: dict[str, float] = {}
    for name, pid in processes:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        key = name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name
        out[key] = out.get(key, 0.0) + t.user + t.system
    return out


def overhead_stats(samples_s: list[float]) -> dict[str, float]:
    """Per-task scheduler overhead samples (seconds) -> ``p50``, ``p99``, ``max`` (ms) and
    ``per_s``, the dispatches one scheduler process sustains per second of its own time
    (the inverse of the mean overhead)."""
    ms = sorted(o * 1000 for o in samples_s) or [0.0]
    return {"p50": ms[len(ms) // 2], "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))], "max": ms[-1],
            "per_s": len(ms) / (sum(ms) / 1000) if sum(ms) else 0.0}


def _misses(report, ttff_s: float) -> int:
    """Segments that arrived after their deadline (submit + TTFF + playback offset)."""
    return sum(1 for s in report.segments if s.arrived_s > ttff_s + s.start_s + 1e-3)


def run_scheduler_bench(counts: list[int], policies: list[str], *, script: Path = SHORT_SCRIPT,
                        emulate: list[str] | None = None, ttff_s: float = 1.5) -> list[dict]:
    """For each policy and N: N concurrent requests on a fresh pool (a scheduler process with
    that policy, the CPU workers ``streamwise up`` starts (:data:`~streamwise.service.pool.UP_WORKERS`),
    and the ``emulate`` GPU stand-ins, each ``model:hardware:gpus``); one row per (policy, N)."""
    from ..cli import _run as run_loop, _wait_ready

    extra = emulated_workers(emulate or [])
    rows = []
    out = Path(tempfile.mkdtemp(prefix="sw-bench-sched-"))
    os.environ["STREAMWISE_QUOTAS"] = "off"   # N requests of one tenant at once: no tenant quota
    for policy in policies:
        for n in counts:
            # a fresh bus and pool per run; the scheduler in its own process, as in production,
            # with the result cache off (identical requests would be served from it)
            stats = out / f"{policy}-{n}.json"
            options = ["--policy", policy, "--no-cache", "--stats", str(stats)]
            with EmbeddedServer() as server:
                with Pool(server.url, UP_WORKERS, log_dir=out / f"logs-{policy}-{n}", scheduler=options,
                          extra=extra) as pool:
                    run_loop(_wait_ready(server.url, pool, 120.0))
                    memory = MemorySampler([os.getpid(), server.process.pid, *pool.pids()], interval_s=0.2)
                    names = [("nats-server", server.process.pid), *((name, proc.pid) for name, proc in pool.processes)]
                    cpu0, load0 = cpu_seconds(names), os.getloadavg()
                    memory.start()
                    try:
                        results = run_loop(_many(server.url, script, n, out / policy, ttff_s))
                    finally:
                        memory.stop()
                    cpu = {k: round(v - cpu0.get(k, 0.0), 1) for k, v in cpu_seconds(names).items()}
            reports = [r for r in results if not isinstance(r, BaseException)]
            failures = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
            overhead = json.loads(stats.read_text())["overhead_s"]
            rungs: dict[str, int] = {}
            for r in reports:
                for s in r.segments:
                    rungs[s.quality["rung"]] = rungs.get(s.quality["rung"], 0) + 1
            stats_ms = overhead_stats(overhead)
            rows.append({
                "policy": policy, "requests": n, "completed": len(reports), "failures": failures[:3],
                "peak_mb": round(memory.peak / 2**20),
                "late_segments": sum(len(r.late_segments) for r in reports),
                "ttff_s": [r.ttff_s for r in reports], "stall_s": [r.stall_s for r in reports],
                "deadline_misses": [_misses(r, ttff_s) for r in reports],
                "segments": sum(len(r.segments) for r in reports), "rungs": rungs,
                "overhead_ms_p50": stats_ms["p50"], "overhead_ms_p99": stats_ms["p99"],
                "dispatches_per_s": stats_ms["per_s"], "cpu_s": cpu,
                "load_before": [round(x, 2) for x in load0], "load_after": [round(x, 2) for x in os.getloadavg()],
            })
    return rows


def print_scheduler_rows(rows: list[dict]) -> None:
    """A table: per (policy, N) the requests completed, the worst and median TTFF, the total
    and worst stall, the deadline misses, the rung mix, the peak memory and the overhead."""
    print("| policy | N | completed | TTFF median / max (s) | stall total / max (s) | missed segments | rungs | "
          "peak memory (MB) | overhead p50 / p99 (ms per task) | dispatches/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        med = lambda xs: sorted(xs)[len(xs) // 2] if xs else float("nan")   # noqa: E731
        top = lambda xs: max(xs) if xs else float("nan")                    # noqa: E731
        rungs = ", ".join(f"{k} {v}" for k, v in sorted(r["rungs"].items()))
        print(f"| {r['policy']} | {r['requests']} | {r['completed']} | {med(r['ttff_s']):.2f} / {top(r['ttff_s']):.2f} | "
              f"{sum(r['stall_s']):.2f} / {top(r['stall_s']):.2f} | {sum(r['deadline_misses'])} of {r['segments']} | "
              f"{rungs} | {r['peak_mb']} | {r['overhead_ms_p50']:.2f} / {r['overhead_ms_p99']:.2f} | "
              f"{r['dispatches_per_s']:.0f} |")
        if r.get("cpu_s"):
            print(f"  CPU s: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(r["cpu_s"].items(), key=lambda kv: -kv[1]))
                  + f"; load average before {' '.join(f'{x:.2f}' for x in r.get('load_before', []))}, "
                  f"after {' '.join(f'{x:.2f}' for x in r.get('load_after', []))}")
        for failure in r["failures"]:
            print(f"  failed: {failure}")
