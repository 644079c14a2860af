"""The autoscaling signal (issue 14, item 2): :func:`streamwise.service.demand.demand` on known
cases, and a real scheduler's /metrics under a burst of requests on emulated GPU instances
(``streamwise worker --emulate``): the signal rises with the burst and falls back to zero after.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from streamwise.core.placement import InstanceView
from streamwise.service.demand import Pool, Work, demand, format_pools, parse_pools

GPU = Pool("video", "fantasytalking", "h100", 1)
CPU = Pool("video", "cpu-head", "cpu", 0)
LLM = Pool("screenplay", "llm", "h100", 1)


def _inst(pool: Pool, name: str, queued_s: float = 0.0, accepting: bool = True) -> InstanceView:
    return InstanceView(name, pool.stage, pool.model, 1 if queued_s else 0, accepting=accepting,
                        hardware=pool.hardware, gpus=pool.gpus, queued_s=queued_s)


def _runtime(seconds: dict[Pool, float]):
    return lambda w, p: seconds[p]


def test_ready_work_with_no_instance_is_unserved_and_unmet():
    ready = [Work("video", 100.0), Work("video", 500.0)]          # one due soon, one far off
    d = demand(ready, [], [GPU, CPU], now=90.0, horizon_s=30.0, runtime_s=_runtime({GPU: 20.0, CPU: 4.0}))
    assert d[GPU].unserved == 2 and d[GPU].unmet_s == 40.0 and d[GPU].needed == 2 and d[GPU].live == 0
    assert d[CPU].unserved == 0 and d[CPU].needed == 0          # the preferred pool is the one to start


def test_a_live_instance_takes_what_fits_in_the_horizon():
    ready = [Work("video", 100.0 + i) for i in range(5)] + [Work("video", 1000.0)]
    views = [_inst(GPU, "g1", queued_s=10.0)]
    d = demand(ready, views, [GPU, CPU], now=90.0, horizon_s=30.0, runtime_s=_runtime({GPU: 8.0, CPU: 1.0}))
    # 5 due x 8 s = 40 s; one instance has 30 - 10 s of room in the horizon
    assert d[GPU].unserved == 0 and d[GPU].due_s == 40.0 and d[GPU].unmet_s == 20.0 and d[GPU].needed == 2
    views.append(_inst(GPU, "g2"))
    d = demand(ready, views, [GPU, CPU], now=90.0, horizon_s=30.0, runtime_s=_runtime({GPU: 8.0, CPU: 1.0}))
    assert d[GPU].unmet_s == 0.0 and d[GPU].live == 2 and d[GPU].needed == 2


def test_work_goes_to_a_live_pool_before_the_preferred_one_and_a_required_model_is_respected():
    ready = [Work("video", 100.0), Work("screenplay", 100.0, model="llm")]
    views = [_inst(CPU, "c1"), _inst(Pool("screenplay", "script-parser"), "s1")]
    d = demand(ready, views, [GPU, CPU, LLM], now=99.0, horizon_s=30.0,
               runtime_s=_runtime({GPU: 8.0, CPU: 1.0, LLM: 12.0}))
    assert d[CPU].due_s == 1.0 and d[GPU].needed == 0       # the CPU rung serves it now
    assert d[LLM].unserved == 1 and d[LLM].needed == 1      # only an llm instance may write a topic's screenplay
    assert d[Pool("screenplay", "script-parser")].due_s == 0.0


def test_draining_instances_are_not_capacity_and_bad_input_is_refused():
    views = [_inst(GPU, "g1", accepting=False)]
    d = demand([Work("video", 0.0)], views, [GPU], now=0.0, runtime_s=lambda w, p: 5.0)
    assert d[GPU].live == 0 and d[GPU].unserved == 1
    with pytest.raises(ValueError, match="horizon"):
        demand([], [], [GPU], now=0.0, horizon_s=0.0, runtime_s=lambda w, p: 1.0)
    assert parse_pools(format_pools([GPU, CPU])) == [GPU, CPU]
    with pytest.raises(ValueError, match="stage:model:hardware:gpus"):
        parse_pools("video:fantasytalking:h100")


def _replay(n_instances: int, cap: int = 3, run_s: float = 4.0, horizon: float = 10.0) -> list:
    """Emulated instances (cap outstanding tasks, a fixed runtime, one second of work per step)
    draining a burst of 24 ready tasks (deadlines every 0.5 s from t=2) in EDF order; the signal of
    every step."""
    backlog = [Work("video", 2.0 + 0.5 * i) for i in range(24)]
    instances: dict[str, list[float]] = {f"g{k}": [] for k in range(n_instances)}
    series = []
    for now in range(120):
        for q in instances.values():
            while len(q) < cap and backlog:
                backlog.pop(0)
                q.append(run_s)
        views = [_inst(GPU, n, sum(q)) for n, q in instances.items()]
        series.append(demand(backlog, views, [GPU], now=float(now), horizon_s=horizon, runtime_s=lambda w, p: run_s)[GPU])
        for q in instances.values():
            if q:
                q[0] -= 1.0
                if q[0] <= 0:
                    q.pop(0)
    return series


def test_a_burst_on_emulated_instances_rises_and_falls():
    two = _replay(2)
    assert two[0].unmet_s > 0 and two[0].needed > 2          # the burst: more than two instances' worth
    assert all(d.unmet_s == 0 and d.needed == 0 for d in two[-20:])   # done: back to zero
    fell = [i for i in range(1, len(two)) if two[i - 1].unmet_s > 0 and two[i].unmet_s == 0]
    assert fell                                              # it falls while the instances work it off
    six = _replay(6)                                         # what the signal asked for: less unmet demand
    assert sum(d.unmet_s for d in six) < sum(d.unmet_s for d in two)
    assert max(d.needed for d in two) > 2 and max(d.needed for d in six) <= 8


# ------------------------------------------------------------------------------------------ live


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.startswith("streamwise_demand"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _pool_key(p: Pool) -> tuple:
    return tuple(sorted(p.labels().items()))


@pytest.mark.timeout(400)
def test_a_real_schedulers_signal_rises_under_a_burst_and_falls_after(tmp_path, monkeypatch):
    from streamwise.bus.client import connect
    from streamwise.bus.messages import Request
    from streamwise.bus.server import EmbeddedServer, free_port
    from streamwise.client import generate
    from streamwise.cli import _run, _wait_ready
    from streamwise.service.pool import Pool as ProcessPool, emulated_workers

    ft = Pool("video", "fantasytalking", "gb200", 40)
    llm = Pool("screenplay", "llm", "h100", 1)       # listed, never started: a pool at zero
    pools = [llm, ft, Pool("video", "cpu-head"), Pool("tts", "piper"), Pool("image", "cpu-art"),
             Pool("screenplay", "script-parser"), Pool("mux", "pyav-fmp4")]
    monkeypatch.setenv("STREAMWISE_POOLS", format_pools(pools))
    monkeypatch.setenv("STREAMWISE_DEMAND_HORIZON_S", "2")
    monkeypatch.setenv("STREAMWISE_MISSING_MODEL_WAIT_S", "8")
    port = free_port()
    script = (Path(__file__).resolve().parent.parent / "examples" / "short_chat.txt").read_text()
    samples: list[tuple[float, dict]] = []
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            try:
                samples.append((time.monotonic(), _scrape(port)))
            except OSError:
                pass
            stop.wait(0.25)

    async def burst(url: str):
        bus = await connect(url, name="pytest-burst")
        try:
            reqs = [Request(request_id=f"burst{i}", submitted_at=0.0, script=script, script_name="short_chat.txt",
                            ttff_s=1.5) for i in range(3)]
            topic = Request(request_id="topic0", submitted_at=0.0, topic="why video calls freeze", ttff_s=1.5)
            return await asyncio.gather(*(generate(bus, r, tmp_path / r.request_id, idle_timeout_s=300)
                                          for r in [*reqs, topic]), return_exceptions=True)
        finally:
            await bus.close()

    with EmbeddedServer() as server:
        extra = emulated_workers([f"{ft.model}:{ft.hardware}:{ft.gpus}"])
        with ProcessPool(server.url, log_dir=tmp_path / "logs", extra=extra,
                         scheduler=["--no-cache", "--health-port", str(port)]) as pool:
            _run(_wait_ready(server.url, pool, 120.0))
            before = _scrape(port)
            thread = threading.Thread(target=sampler, daemon=True)
            thread.start()
            try:
                results = _run(burst(server.url))
                end = time.monotonic() + 60
                while time.monotonic() < end:       # the last completions reach the scheduler
                    after = _scrape(port)
                    if not any(v for (name, _), v in after.items()):
                        break
                    time.sleep(0.25)
            finally:
                stop.set()
                thread.join(5)
    scripted = [r for r in results[:3] if not isinstance(r, BaseException)]
    assert len(scripted) == 3, results
    assert isinstance(results[3], BaseException) and "llm" in str(results[3])   # no llm instance: it fails
    assert all(v == 0 for v in before.values()) and before
    fk, lk = _pool_key(ft), _pool_key(llm)
    def peak(metric: str, key: tuple | None = None) -> float:
        return max((v for _, s in samples for (name, k), v in s.items() if name == metric and key in (None, k)),
                   default=0.0)

    # the scripted shows: work beyond the live instances' room at some point, on some pool
    # (which one depends on where placement puts the clips: the emulated GPU or the CPU rung)
    assert peak("streamwise_demand_unmet_seconds") > 0, samples[-3:]
    assert max(sum(v for (name, k), v in s.items() if name == "streamwise_demand_instances" and k != lk)
               for _, s in samples) >= 2
    assert ("streamwise_demand_instances", fk) in before
    assert peak("streamwise_demand_unserved_tasks", lk) == 1       # a pool at zero asks to start
    assert peak("streamwise_demand_instances", lk) >= 1
    assert all(v == 0 for v in after.values()), after                              # and back down
