"""The schedulers' OpenTelemetry metrics (issue 13, item 6): recorded into the SDK's in-memory
reader, and scraped in the Prometheus text format from a real scheduler process's /metrics
after a real show."""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from pathlib import Path

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client.parser import text_string_to_metric_families

from streamwise.bus.client import connect
from streamwise.bus.messages import Request
from streamwise.bus.server import EmbeddedServer, free_port
from streamwise.client import generate
from streamwise.core.placement import InstanceView
from streamwise.service.pool import Pool
from streamwise.telemetry.metrics import SchedulerMetrics, metric_readers

DATA = Path(__file__).parent / "data" / "scripts"


def _points(reader: InMemoryMetricReader) -> dict[str, list]:
    out: dict[str, list] = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def test_scheduler_metrics_record_slack_misses_rungs_ttff_and_instance_load():
    reader = InMemoryMetricReader()
    views = [InstanceView("video-0", "video", "cpu-head", 2), InstanceView("mux-0", "mux", "pyav-fmp4", 0)]
    m = SchedulerMetrics([reader], lambda: views, lambda: {"video-0": 4, "mux-0": 4})
    m.task_done("video", deadline=10.0, finished_at=9.0, rung="static")
    m.task_done("video", deadline=10.0, finished_at=10.5, rung="still")
    m.task_done("mux", deadline=10.0, finished_at=12.0)
    m.first_frame("acme", 0.8)
    m.cache_hit("tts")
    p = _points(reader)
    assert [(d.attributes["stage"], d.sum) for d in p["streamwise.task.slack"]] == [("video", 1.0)]
    assert {d.attributes["stage"]: d.sum for d in p["streamwise.task.lateness"]} == {"video": 0.5, "mux": 2.0}
    assert {d.attributes["stage"]: d.value for d in p["streamwise.task.deadline_misses"]} == {"video": 1, "mux": 1}
    assert [d.value for d in p["streamwise.segment.late"]] == [2.0]
    assert {d.attributes["rung"]: d.value for d in p["streamwise.clip.rung"]} == {"static": 1, "still": 1}
    assert [(d.attributes["tenant"], d.sum, d.count) for d in p["streamwise.request.ttff"]] == [("acme", 0.8, 1)]
    assert {d.attributes["instance"]: d.value for d in p["streamwise.instance.queue"]} == {"video-0": 2, "mux-0": 0}
    assert {d.attributes["instance"]: d.value for d in p["streamwise.instance.utilisation"]} == {"video-0": 0.5,
                                                                                                 "mux-0": 0.0}
    m.shutdown()


def test_metric_exporters_are_chosen_by_name():
    assert metric_readers(kinds="off") == [] and metric_readers(kinds="prometheus") == []   # no endpoint here
    assert len(metric_readers(kinds="console")) == 1
    try:
        metric_readers(kinds="statsd")
    except ValueError as exc:
        assert "unknown exporter 'statsd'" in str(exc)
    else:
        raise AssertionError("an unknown exporter was accepted")


async def test_a_scheduler_process_serves_its_metrics_to_a_prometheus_scrape(tmp_path):
    port = free_port()
    with EmbeddedServer() as server, Pool(server.url, log_dir=tmp_path / "logs",
                                          scheduler=["--health-port", str(port)]) as pool:
        bus = await connect(server.url)
        try:
            from helpers import wait_ready
            await asyncio.wait_for(wait_ready(bus, pool), 90)
            request = Request(request_id=uuid.uuid4().hex[:12], tenant="acme", submitted_at=0.0,
                              script=(DATA / "two_speakers.txt").read_text(encoding="utf-8"))
            report = await generate(bus, request, tmp_path / "out", idle_timeout_s=60)
        finally:
            await bus.close()
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode())
    samples = [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text)
               for s in family.samples]

    def total(name: str, **labels) -> float:
        return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items()))

    assert total("streamwise_request_ttff_seconds_count", tenant="acme") == 1
    assert 0 < total("streamwise_request_ttff_seconds_sum", tenant="acme") < 60
    clips = total("streamwise_clip_rung_total")
    assert clips >= 1 and clips == total("streamwise_clip_rung_total", rung="static") + total(
        "streamwise_clip_rung_total", rung="still")
    assert total("streamwise_task_slack_seconds_count", stage="mux") + total(
        "streamwise_task_lateness_seconds_count", stage="mux") == len(report.segments)   # every segment
    assert {lab["stage"] for n, lab, _ in samples if n == "streamwise_instance_queue"} == {
        "screenplay", "image", "tts", "video", "mux"}
    # the same endpoint keeps serving the autoscaling signal (issue 14) beside these metrics
    assert any(n == "streamwise_demand_unserved_tasks" for n, _, _ in samples)
