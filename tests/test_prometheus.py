"""A real Prometheus server scraping a run (issue 13 item 6): Debian's ``prometheus`` binary,
started here on a free port with a generated config that scrapes a real scheduler process's
``--health-port`` /metrics every second while a real show is generated; the test then asks
Prometheus's HTTP API (``/api/v1/query``) for the TTFF and deadline metrics the scrapes stored."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from streamwise.bus.client import connect
from streamwise.bus.messages import Request
from streamwise.bus.server import EmbeddedServer, free_port
from streamwise.client import generate
from streamwise.service.pool import Pool

DATA = Path(__file__).parent / "data" / "scripts"
PROMETHEUS = shutil.which("prometheus")

pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary (Debian: apt-get install "
                                                             "prometheus; .ci/run installs it)")


def _query(port: int, expr: str) -> list[dict]:
    """The result vector of an instant PromQL query (``[{"metric": {...}, "value": [t, "v"]}]``).

    Raises:
        AssertionError: Prometheus answered with an error status.
    """
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    body = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def _value(port: int, expr: str) -> float:
    """The sum of an instant query's sample values (0 for an empty result)."""
    return sum(float(r["value"][1]) for r in _query(port, expr))


def _start_prometheus(tmp_path: Path, target_port: int, job: str = "streamwise-scheduler") -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: {job}\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
    return proc, port


def _stop(prom: subprocess.Popen) -> None:
    """End the Prometheus server: SIGTERM, then SIGKILL after 10 s."""
    prom.terminate()
    try:
        prom.wait(10)
    except subprocess.TimeoutExpired:
        prom.kill()
        prom.wait(5)


async def _until(what: str, check, proc: subprocess.Popen, log: Path, timeout_s: float = 120.0):
    """Poll ``check()`` (in a thread) until it returns a truthy value; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            got = await asyncio.to_thread(check)
        except OSError:      # not listening yet
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen by Prometheus within {timeout_s:.0f} s: {log.read_text()[-2000:]}")
        await asyncio.sleep(0.5)


async def test_a_real_prometheus_scrapes_the_schedulers_ttff_and_deadline_metrics(tmp_path):
    health = free_port()
    with EmbeddedServer() as server, Pool(server.url, log_dir=tmp_path / "logs",
                                          scheduler=["--health-port", str(health)]) as pool:
        prom, port = _start_prometheus(tmp_path, health)
        try:
            bus = await connect(server.url)
            try:
                from helpers import wait_ready
                await asyncio.wait_for(wait_ready(bus, pool), 90)
                # the target is up before the show starts: Prometheus scrapes the scheduler during the run
                await _until("target up", lambda: _value(port, 'up{job="streamwise-scheduler"}') == 1,
                             prom, tmp_path / "prometheus.log")
                request = Request(request_id=uuid.uuid4().hex[:12], tenant="acme", submitted_at=0.0,
                                  script=(DATA / "two_speakers.txt").read_text(encoding="utf-8"))
                report = await generate(bus, request, tmp_path / "out", idle_timeout_s=60)
            finally:
                await bus.close()
            log = tmp_path / "prometheus.log"
            # TTFF: one request of tenant acme, its time to first frame stored by a scrape
            await _until("the TTFF histogram", lambda: _value(
                port, 'streamwise_request_ttff_seconds_count{tenant="acme"}') == 1, prom, log)
            ttff = _value(port, 'streamwise_request_ttff_seconds_sum{tenant="acme"}')
            assert 0 < ttff < 120
            # deadlines: every segment was counted as on time (slack) or late, once
            muxed = lambda: _value(port, 'streamwise_task_slack_seconds_count{stage="mux"}') + _value(  # noqa: E731
                port, 'streamwise_task_lateness_seconds_count{stage="mux"}')
            assert await _until("every segment's deadline outcome", lambda: muxed() == len(report.segments),
                                prom, log)
            # a deadline miss is a late task: the counter and the lateness histogram agree, stage by stage
            misses = {r["metric"]["stage"]: float(r["value"][1]) for r in _query(
                port, "sum by (stage) (streamwise_task_deadline_misses_total)")}
            late = {r["metric"]["stage"]: float(r["value"][1]) for r in _query(
                port, "sum by (stage) (streamwise_task_lateness_seconds_count)")}
            assert misses == late
            assert {r["metric"]["stage"] for r in _query(port, "streamwise_instance_queue")} == {
                "screenplay", "image", "tts", "video", "mux"}
        finally:
            _stop(prom)


async def test_a_real_prometheus_scrapes_the_gateways_metrics(bus, pool, tmp_path):
    """The gateway's ``/metrics`` (``streamwise serve``'s app on a real port) scraped by a real Prometheus while a
    show posted to the gateway is generated by the session's worker pool: its segments, its TTFF at the gateway
    and the POST's 201 are in Prometheus's store."""
    from aiohttp import ClientSession
    from aiohttp.test_utils import TestServer

    from helpers import wait_ready
    from streamwise.gateway import make_app

    await asyncio.wait_for(wait_ready(bus, pool), 90)
    server = TestServer(make_app(bus), host="127.0.0.1", port=free_port())
    await server.start_server()
    prom, port = _start_prometheus(tmp_path, server.port, job="streamwise-gateway")
    log = tmp_path / "prometheus.log"
    try:
        await _until("target up", lambda: _value(port, 'up{job="streamwise-gateway"}') == 1, prom, log)
        async with ClientSession() as http:
            script = (DATA / "two_speakers.txt").read_text(encoding="utf-8")
            async with http.post(f"http://127.0.0.1:{server.port}/v1/podcasts", json={"script": script}) as resp:
                assert resp.status == 201, await resp.text()
                rid = (await resp.json())["id"]
            deadline = time.monotonic() + 120
            while True:
                async with http.get(f"http://127.0.0.1:{server.port}/v1/podcasts/{rid}") as resp:
                    status = await resp.json()
                if status["ended"] or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        assert status["state"] == "done", status
        segments = status["segments_delivered"]
        await _until("every segment", lambda: _value(port, "streamwise_gateway_segments_total") == segments, prom, log)
        await _until("the TTFF at the gateway", lambda: _value(port, "streamwise_gateway_ttff_seconds_count") == 1,
                     prom, log)
        assert _value(port, "streamwise_gateway_ttff_seconds_sum") == pytest.approx(status["ttff_s"], abs=0.01)
        assert _value(port, 'streamwise_gateway_responses_total{route="/v1/podcasts",status="201"}') == 1
    finally:
        _stop(prom)
        await server.close()
