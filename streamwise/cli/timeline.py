"""``streamwise timeline REQUEST_ID --nats URL -o timeline.png``: a request's DAG execution as a
Gantt chart per instance (:mod:`streamwise.client.timeline`)."""

from __future__ import annotations

import sys


def cmd_timeline(args) -> int:
    from ..bus.client import connect
    from ..client.timeline import draw_timeline, request_timeline
    from . import _run

    async def go():
        bus = await connect(args.nats, name="streamwise-timeline")
        try:
            return await request_timeline(bus, args.request_id, args.tenant)
        finally:
            await bus.close()

    try:
        bars = _run(go())
    except (LookupError, ConnectionError) as exc:
        print(f"streamwise timeline: {exc}", file=sys.stderr)
        return 1
    path = draw_timeline(bars, args.out, title=args.title or "")
    late = sum(1 for b in bars if b.slack_s is not None and b.slack_s < 0)
    print(f"{path}: {len(bars)} tasks on {len({b.instance for b in bars})} instances, {late} past their deadline")
    return 0


def add_parser(sub) -> None:
    t = sub.add_parser("timeline", help="draw a request's tasks as a Gantt chart per instance (deadlines, rungs)")
    t.add_argument("request_id")
    t.add_argument("--nats", required=True, help="the bus the request ran on")
    t.add_argument("--tenant", default="default")
    t.add_argument("-o", "--out", default="timeline.png", help="output image (PNG, SVG or PDF by its suffix)")
    t.add_argument("--title", help="chart title (default: counts of tasks, instances and missed deadlines)")
    t.set_defaults(handler=cmd_timeline)
