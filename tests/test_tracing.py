"""One request's trace (issue 13, done-when: "a trace of one request shows every stage with its instance"): a show
generated end to end on a real nats-server by a real scheduler and one real worker process per stage, all with
``$STREAMWISE_TRACE`` set to one file; the file then holds one ``request`` span and, as its children (across
processes, through the ``traceparent`` header of each task), a span for every task of every stage, each naming
the instance that ran it. Read back with ``python -m streamwise.telemetry.tracing``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from helpers import wait_ready
from streamwise.stages.registry import STAGES
from streamwise.bus.messages import Request
from streamwise.client import generate
from streamwise.service.pool import Pool
from streamwise.telemetry.tracing import read_trace

DATA = Path(__file__).parent / "data" / "scripts"


@pytest.fixture(scope="module")
def traced(nats_url, tmp_path_factory):
    out = tmp_path_factory.mktemp("trace")
    trace = out / "trace.jsonl"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STREAMWISE_TRACE", str(trace))
        # its processes inherit the environment; no result cache: the session's other tests make the same images,
        # speech and clips (two_speakers.txt), and a cached node runs no task, so it would have no span (CI run 9)
        pool = Pool(nats_url, log_dir=out / "logs", scheduler=["--no-cache"]).start()
    yield pool, trace
    pool.stop()


async def test_a_trace_of_one_request_shows_every_stage_with_its_instance(bus, traced, tmp_path):
    pool, trace = traced
    await asyncio.wait_for(wait_ready(bus, pool), 90)
    script = DATA / "two_speakers.txt"
    rid = uuid.uuid4().hex[:12]
    request = Request(request_id=rid, submitted_at=0.0, script=script.read_text(encoding="utf-8"),
                      script_name=str(script))
    report = await generate(bus, request, tmp_path, idle_timeout_s=60)
    for _ in range(100):            # the scheduler ends the request span just after the final segment
        found = read_trace(str(trace), rid) if trace.exists() else []
        if found:
            break
        await asyncio.sleep(0.1)
    (req,) = found
    tasks = req["tasks"]
    print(json.dumps(req, indent=1)[:4000])
    assert {t["stage"] for t in tasks} == set(STAGES)            # screenplay, tts, image, video, mux
    # every task span names its instance, and that instance is the one worker process of its stage
    instances: dict[str, set[str]] = {}
    for t in tasks:
        assert t["instance"] and t["node"], t
        assert t["service"] == f"streamwise-{t['stage']}"          # recorded by that stage's own process
        instances.setdefault(t["stage"], set()).add(t["instance"])
    assert all(len(ids) == 1 for ids in instances.values()), instances
    assert len({next(iter(ids)) for ids in instances.values()}) == len(STAGES)
    # one span per task: as many video spans as clips, one mux span per segment at least
    assert sum(t["stage"] == "mux" for t in tasks) >= len(report.segments)
    assert sum(t["stage"] == "screenplay" for t in tasks) == 1
    assert all(0 <= t["start_s"] <= req["duration_s"] for t in tasks)
    # the repository's command prints the same trace as a table, a row per task with its instance
    out = subprocess.run([sys.executable, "-m", "streamwise.telemetry.tracing", str(trace), rid],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rows = [row.split() for row in out.splitlines()[2:]]
    assert len(rows) == len(tasks) and {row[0] for row in rows} == set(STAGES)
    assert all(row[2] in instances[row[0]] for row in rows)
