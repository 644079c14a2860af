"""Steer-to-screen of a topic request: ``python -m streamwise.bench.steer``.

Starts an embedded nats-server and a worker pool whose screenplay worker is the LLM (transformers;
the default checkpoint of ``configs/models.yaml``, SmolLM2-135M-Instruct, or ``--llm-model``),
submits a topic, and once the show plays and the LLM has written ``--after-lines`` lines (the
opening's greeting counts as one) sends a direction (``Steer`` action ``direct``, as the gateway
does). Each run reports the scheduler's record of the steer: the lines kept and replaced, the
first steered line, ``steer_to_screen_s`` (the steer applied -> the first segment showing that
line published) and ``received_s`` (-> that segment received by this viewer), with the run's TTFF
and stall. Runs one after the other; ``--lead`` sets ``$STREAMWISE_STEER_LEAD_S`` for the scheduler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ..bus import registry, subjects
from ..bus.client import connect
from ..bus.codec import decode, encode
from ..bus.messages import Request, Steer, SteerReply
from ..bus.server import EmbeddedServer
from ..client import generate
from ..service.pool import DEFAULT_WORKERS, Pool


async def _ready(bus, pool: Pool, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        pool.check()
        live = [h for h in await registry.list_instances(bus.instances) if h.state == "ready"]
        if any(h.model == "llm" for h in live) and {"scheduler", "tts", "image", "video", "mux"} <= {
                h.stage for h in live}:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the pool was not ready within {timeout_s:.0f} s")
        await asyncio.sleep(0.2)


async def _one(bus, out: Path, topic: str, direction: str, after_lines: int) -> dict:
    rid = uuid.uuid4().hex[:12]
    sent: list[asyncio.Task] = []

    async def steer() -> SteerReply:
        msg = Steer(request_id=rid, action="direct", direction=direction)
        return decode((await bus.nc.request(subjects.steer("default", rid), encode(msg), timeout=10)).data,
                      SteerReply)

    def on_progress(kind, info):
        if kind == "status" and info.get("lines", 0) >= after_lines and not sent:
            sent.append(asyncio.ensure_future(steer()))

    report = await generate(bus, Request(request_id=rid, submitted_at=0.0, topic=topic), out,
                            progress=on_progress, idle_timeout_s=600)
    if not sent:
        raise RuntimeError(f"run {rid}: the LLM wrote fewer than {after_lines} lines; nothing was steered")
    reply = await sent[0]
    if not reply.ok:
        raise RuntimeError(f"run {rid}: the steer was refused: {reply.error}")
    [record] = report.steers
    return {"request": rid, "kept_through": record["kept_through"], "replaced": record["replaced"],
            "first_line": record["first_line"], "steer_to_screen_s": record["steer_to_screen_s"],
            "received_s": record["received_s"], "ttff_s": report.ttff_s, "stall_s": report.stall_s,
            "video_s": report.video_duration_s}


async def _run(args) -> list[dict]:
    log_dir = Path(tempfile.mkdtemp(prefix="sw-bench-steer-"))
    llm = ["worker", "--stage", "screenplay", "--model", "llm", "--llm", "transformers",
           "--llm-max-tokens", str(args.llm_max_tokens)] + (["--llm-model", args.llm_model] if args.llm_model else [])
    if args.lead is not None:
        os.environ["STREAMWISE_STEER_LEAD_S"] = str(args.lead)   # inherited by the scheduler process
    rows = []
    with EmbeddedServer() as server, Pool(server.url, {**DEFAULT_WORKERS, "screenplay": 0}, log_dir=log_dir,
                                          scheduler=["--no-cache"], extra=[("screenplay-llm", llm)]) as pool:
        bus = await connect(server.url, name="bench-steer")
        try:
            await _ready(bus, pool)
            for run in range(args.runs):
                rows.append({"run": run, **await _one(bus, log_dir / f"run-{run}", args.topic, args.direction,
                                                      args.after_lines)})
        finally:
            await bus.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m streamwise.bench.steer", description=__doc__.splitlines()[0])
    ap.add_argument("--topic", default="the colour of the sky")
    ap.add_argument("--direction", default="a listener asks: why are sunsets red?")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--after-lines", type=int, default=3, help="steer once this many lines are written (default 3)")
    ap.add_argument("--llm-model", help="LLM checkpoint (default: configs/models.yaml's, SmolLM2-135M-Instruct)")
    ap.add_argument("--llm-max-tokens", type=int, default=400)
    ap.add_argument("--lead", type=float, help="seconds of show kept past the first segment not yet muxed "
                                               "($STREAMWISE_STEER_LEAD_S; default: the plan's rule)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.after_lines < 1:
        ap.error("--runs and --after-lines: at least 1")
    t0 = time.time()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # so the pool and the bus are stopped on the way out
    rows = asyncio.run(_run(args))
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'run':>3}  {'kept':>4}  {'replaced':>10}  {'first':>5}  {'steer->screen':>13}  {'->viewer':>8}  "
          f"{'TTFF':>6}  {'stall':>6}")
    for r in rows:
        print(f"{r['run']:>3}  {r['kept_through']:>4}  {str(r['replaced']):>10}  {r['first_line']:>5}  "
              f"{r['steer_to_screen_s']:>11.2f} s  {r['received_s']:>6.2f} s  {r['ttff_s']:>4.2f} s  {r['stall_s']:>4.2f} s")
    print(f"median steer to screen {statistics.median(r['steer_to_screen_s'] for r in rows):.2f} s over {len(rows)} "
          f"run(s) ({time.time() - t0:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
