"""``streamwise timeline``: a request's DAG execution as a Gantt chart per instance (issue 13,
item 7), like the StreamWise paper's scheduler figure.

The completion events of a request (stream ``SW_EVENTS``, kept 1 h; each carries the task's
instance, start and finish times, deadline and, for talking-head clips, the quality rung) become
one bar per task on its instance's row: coloured by stage, hatched for clips at the cheapest CPU
rung (``still``, where quality gave way), with the deadline as a tick and the slack (deadline - finish, seconds) in the data.
Times are seconds from when the bus stored the request (the ``accepted`` status's
``received_at``), or from the first task's start when that status is gone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import nats.errors

from ..bus import subjects
from ..bus.client import Bus
from ..bus.codec import MessageError, decode
from ..bus.messages import Event, Status

STAGE_COLOURS = {"screenplay": "#6a3d9a", "image": "#1f78b4", "tts": "#33a02c", "video": "#ff7f00",
                 "mux": "#e31a1c"}


@dataclass(frozen=True)
class Bar:
    """One task attempt on one instance. Times in seconds from the request's arrival;
    ``slack_s`` = deadline - finish (negative: late; ``None`` without a deadline)."""

    instance: str
    node_id: str
    stage: str
    start_s: float
    end_s: float
    deadline_s: float | None
    rung: str | None
    ok: bool
    handed_back: bool

    @property
    def slack_s(self) -> float | None:
        return None if self.deadline_s is None else self.deadline_s - self.end_s


async def _read_all(bus: Bus, subject: str, stream: str, decoder, idle_s: float) -> list:
    sub = await bus.js.subscribe(subject, stream=stream, ordered_consumer=True)
    out = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle_s)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                return out
            try:
                out.append(decode(msg.data, decoder))
            except MessageError:
                continue
    finally:
        await sub.unsubscribe()


async def request_timeline(bus: Bus, request_id: str, tenant: str = "default", idle_s: float = 1.5) -> list[Bar]:
    """The bars of every finished task attempt of a request (partial screenplay events are not
    tasks and are skipped).

    Raises:
        LookupError: the bus keeps no event of this request (unknown, or older than 1 h).
    """
    events: list[Event] = await _read_all(bus, subjects.events(tenant, request_id), subjects.STREAM_EVENTS,
                                          Event, idle_s)
    statuses: list[Status] = await _read_all(bus, subjects.status(tenant, request_id), subjects.STREAM_STATUS,
                                             Status, 0.5)
    finished = [e for e in events if not e.partial and e.finished_at > 0]
    if not finished:
        raise LookupError(f"no events of request {request_id} (tenant {tenant}) on the bus: unknown, or over 1 h old")
    received = next((s.received_at for s in statuses if s.received_at), None)
    t0 = received or min(e.started_at for e in finished)
    seen: set[str] = set()
    bars = []
    for e in sorted(finished, key=lambda e: e.started_at):
        if e.task_id in seen:     # a redelivered event
            continue
        seen.add(e.task_id)
        bars.append(Bar(e.instance, e.node_id, e.stage, e.started_at - t0, e.finished_at - t0,
                        None if e.deadline is None else e.deadline - t0, e.rung, e.ok, e.handed_back))
    return bars


def draw_timeline(bars: list[Bar], path: str | Path, *, title: str = "") -> Path:
    """Draw ``bars`` as a Gantt chart (one row per instance, grouped by stage) into ``path``
    (PNG, or any format matplotlib writes by its suffix). Returns the path.

    Raises:
        ValueError: no bars.
    """
    if not bars:
        raise ValueError("nothing to draw: no task ran")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    order = sorted({b.instance for b in bars}, key=lambda i: (
        list(STAGE_COLOURS).index(next(b.stage for b in bars if b.instance == i))
        if next(b.stage for b in bars if b.instance == i) in STAGE_COLOURS else 99, i))
    row = {inst: n for n, inst in enumerate(order)}
    fig, ax = plt.subplots(figsize=(12, 0.6 * len(order) + 1.8))
    for b in bars:
        y = row[b.instance]
        ax.barh(y, max(b.end_s - b.start_s, 0.01), left=b.start_s, height=0.6,
                color=STAGE_COLOURS.get(b.stage, "#999999"), alpha=0.9 if b.ok else 0.35,
                hatch="//" if b.rung == "still" else None, edgecolor="black", linewidth=0.3)
        if b.deadline_s is not None:
            late = b.slack_s is not None and b.slack_s < 0
            ax.plot([b.deadline_s, b.deadline_s], [y - 0.35, y + 0.35], color="red" if late else "black",
                    linewidth=0.8)
    ax.set_yticks(range(len(order)), order, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the request arrived")
    late = sum(1 for b in bars if b.slack_s is not None and b.slack_s < 0)
    ax.set_title(title or f"{len(bars)} tasks on {len(order)} instances; ticks: deadlines ({late} missed, red)")
    ax.legend(handles=[Patch(color=c, label=s) for s, c in STAGE_COLOURS.items()]
              + [Patch(facecolor="white", edgecolor="black", hatch="//", label="clip at the 'still' rung")],
              loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
