"""The per-process health endpoint (``--health-port``) of real worker and scheduler processes on a
real nats-server: 200 when connected and ready, 503 while the bus is down (the server killed),
200 again once it is back; the scheduler's /metrics carries the demand signal of its pools.

Waits are bounded polls on the endpoint's answers, not timings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from streamwise.bus.server import EmbeddedServer, free_port


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, ""


def _until(port: int, path: str, status: int, proc: subprocess.Popen, limit_s: float = 120.0) -> str:
    """Poll ``path`` until it answers ``status``; fail if the process exits or ``limit_s`` passes."""
    end = time.monotonic() + limit_s
    last = (0, "")
    while time.monotonic() < end:
        assert proc.poll() is None, f"the process exited with {proc.returncode}"
        last = _get(port, path)
        if last[0] == status:
            return last[1]
        time.sleep(0.2)
    raise AssertionError(f"{path} never answered {status} (last: {last})")


def _start(args: list[str], env: dict | None = None) -> subprocess.Popen:
    log = tempfile.TemporaryFile()
    return subprocess.Popen([sys.executable, "-m", "streamwise", *args], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_worker_health_follows_the_bus():
    store = tempfile.mkdtemp(prefix="sw-health-")
    server = EmbeddedServer(store_dir=store).start()
    port = free_port()
    worker = _start(["worker", "--stage", "mux", "--nats", server.url, "--health-port", str(port)])
    try:
        assert _until(port, "/readyz", 200, worker).strip() == "ok"
        assert _get(port, "/healthz") == (200, "ok\n")
        status, metrics = _get(port, "/metrics")
        assert status == 200 and "process_cpu_seconds_total" in metrics
        server.process.kill()            # the bus goes away: a real fault, not a mock
        server.process.wait()
        _until(port, "/healthz", 503, worker, 60.0)
        assert _get(port, "/readyz")[0] == 503
        server = EmbeddedServer(port=server.port, store_dir=store).start()   # back on the same port and store
        _until(port, "/healthz", 200, worker, 60.0)
        _until(port, "/readyz", 200, worker, 60.0)
    finally:
        _stop(worker)
        server.stop()
    assert worker.returncode == 0      # SIGTERM drained and exited cleanly


def test_health_port_is_off_by_default():
    from streamwise.cli import _parser

    args = _parser().parse_args(["worker", "--stage", "mux", "--nats", "nats://x:1"])
    assert args.health_port is None
    args = _parser().parse_args(["scheduler", "--nats", "nats://x:1"])
    assert args.health_port is None


def test_scheduler_health_and_demand_metrics(nats_url):
    port = free_port()
    pools = "video:fantasytalking:h100:1,mux:pyav-fmp4:cpu:0"
    sched = _start(["scheduler", "--nats", nats_url, "--health-port", str(port)], env={"STREAMWISE_POOLS": pools})
    try:
        _until(port, "/readyz", 200, sched)
        assert _get(port, "/healthz")[0] == 200
        status, metrics = _get(port, "/metrics")
        assert status == 200
        lines = set(metrics.splitlines())
        for p in ('gpus="1",hardware="h100",model="fantasytalking",stage="video"',
                  'gpus="0",hardware="cpu",model="pyav-fmp4",stage="mux"'):
            assert f"streamwise_demand_instances{{{p}}} 0.0" in lines
            assert f"streamwise_demand_unmet_seconds{{{p}}} 0.0" in lines
        sched.send_signal(signal.SIGTERM)
        sched.wait(timeout=40)
        assert sched.returncode == 0
    finally:
        _stop(sched)


@pytest.mark.asyncio
async def test_a_failing_check_answers_503_with_its_reason():
    import aiohttp

    from streamwise.telemetry.health import HealthServer

    def broken() -> bool:
        raise RuntimeError("no bus object yet")

    server = await HealthServer(0, live=lambda: (False, "bus down"), ready=broken, host="127.0.0.1").start()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{server.port}/healthz") as r:
                assert r.status == 503 and (await r.text()).strip() == "bus down"
            async with s.get(f"http://127.0.0.1:{server.port}/readyz") as r:
                assert r.status == 503 and "no bus object yet" in await r.text()
        with pytest.raises(OSError):   # a taken port is an error, not a silent second server
            await HealthServer(server.port, live=lambda: True, ready=lambda: True, host="127.0.0.1").start()
    finally:
        await server.stop()
