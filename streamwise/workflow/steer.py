"""Steering a topic or document request: the viewer's direction ("go deeper on X", "a listener
asks: ...") and the LLM continuing the screenplay with it (issue 13 item 3).

The rule that keeps playback from stalling: the lines kept are every line up to the one playing
at the start of the first segment not yet handed to the mux (what the mux has is never changed)
**and every later line that starts within the lead** after that segment's start, where the lead
is the time the continuation's first line needs to reach the screen: the LLM's expected
first-line time (profile key ``llm.first_line``; :data:`~streamwise.workflow.podcast.OPENING_S`
without one, as for a topic's opening: SmolLM2-135M on two cores) plus :data:`RENDER_S` for its
speech, clip and mux; an operator whose LLM is much faster or slower sets the lead instead
(``$STREAMWISE_STEER_LEAD_S`` on the scheduler, read by the steering mixin). Those
lines are probably being rendered already and play while the LLM writes; the lines after them
are replaced: they are skipped (their speech and shots not yet dispatched are never run; those
already dispatched are cancelled on their workers and marked done, so a late event of theirs is
ignored), the segments not yet dispatched are laid out again, and
the screenplay node is dispatched once more (a new attempt, so a late event of the old one is
ignored) with the direction and the kept lines as its resume state: the LLM continues after the
last kept line. The plan records each steer (:class:`~streamwise.bus.messages.SteerRecord`) and,
when the first segment showing the first steered line is published, the steer-to-screen time.

A scheduler taking a steered request over continues the steered show: the scheduler persists
:func:`checkpoint` (the screenplay's lines, the steers and their effect) and the next one
:func:`restore` s it.

Pure: no I/O; the scheduler's steering mixin cancels the old LLM task on its worker.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..bus.messages import SteerRecord
from ..bus.names import content_name
from ..core.dag import Node, NodeState
from .podcast import CACHE_VERSION, OPENING_S, PlanError, PodcastPlan

RENDER_S = 1.5   # speech + clip + mux of a line's first segment on the CPU rung (as for the opening, podcast.py)
MAX_DIRECTION_CHARS = 500


def lead_s(plan: PodcastPlan, override: float | None = None) -> float:
    """Seconds of show kept past the first segment not yet dispatched (see the module's rule);
    ``override``: the operator's lead (s) instead."""
    if override is not None:
        return max(0.0, override)
    return (plan._rt("llm.first_line") if "llm.first_line" in plan.profiles else OPENING_S) + RENDER_S


def _line_starts(plan: PodcastPlan) -> dict[int, float]:
    """Show time (s) at which each kept line starts: its first piece's known offset, or the
    sketch (2.5 words/s) after the pieces before it where the speech is not known yet."""
    fps, starts, running = plan.request.fps, {}, 0.0
    for piece in plan.pieces:
        if not plan._kept(piece):
            continue
        start = piece.offset / fps if piece.offset is not None else running
        starts.setdefault(piece.line, start)
        running = start + (piece.frames / fps if piece.frames is not None else piece.est_s)
    return starts


def direct(plan: PodcastPlan, direction: str, at: float, *, lead: float | None = None
           ) -> tuple[SteerRecord, list[tuple[str, str]]]:
    """Apply a viewer's ``direction`` to a topic or document request at Unix time ``at``
    (``lead``: seconds kept past the first segment not yet dispatched; default :func:`lead_s`).

    Returns ``(record, cancel)``: the steer as recorded in ``plan.steers``, and the dispatched
    tasks whose outputs are no longer wanted, as ``(task id, instance)``, to be cancelled on their
    instances: the LLM task still writing (none when the screenplay was complete or not yet
    dispatched) and the speech and shots of the replaced lines.

    Raises:
        PlanError: a script request (it can be ended or skipped, not directed), an empty or
            overlong direction, or a show already complete on screen.
    """
    if not plan.is_topic:
        raise PlanError("a direction steers only a topic or document request (the LLM writes it); "
                        "a script can be ended ('end') or skipped ('skip')")
    direction = " ".join((direction or "").split())
    if not direction:
        raise PlanError("direction: expected some text, e.g. 'go deeper on the history'")
    if len(direction) > MAX_DIRECTION_CHARS:
        raise PlanError(f"direction: {len(direction)} characters, over the limit of {MAX_DIRECTION_CHARS}")
    k, playing = plan._steer_point()
    if plan.total_frames is not None and plan.segment_start(k) >= plan.total_frames:
        raise PlanError("the show has been handed to the mux to its end: nothing left to steer")
    starts = _line_starts(plan)
    horizon = plan.segment_start(k) / plan.request.fps + lead_s(plan, lead)
    kept = [line for line, start in starts.items() if start < horizon or (playing is not None and line <= playing)]
    kept_through = max(kept, default=plan.opening_lines - 1)
    replaced = sorted(line for line in starts if line > kept_through)
    node = plan.dag["screenplay"]
    cancel = [(plan.task_id(node), node.instance)] if node.state is NodeState.DISPATCHED else []
    for piece in plan.pieces:
        if piece.line in replaced:
            for nid in [piece.node_id] + [f"clip:{piece.index}:{c}" for c in range(len(piece.clips))]:
                n = plan.dag.nodes.get(nid)
                if n is not None and n.state is NodeState.DISPATCHED:
                    cancel.append((plan.task_id(n), n.instance))
                    n.state = NodeState.DONE     # never shown; nothing depends on it any more
    plan.skipped.update(replaced)
    plan.cut_line = None            # a direction extends the show, even one steered to end
    plan.screenplay_done = False
    _reopen(plan, node, direction, kept_through)
    plan._replan_from(k)
    record = SteerRecord(at=at, direction=direction, kept_through=kept_through, replaced=replaced,
                         first_line=plan.lines, task_id=plan.task_id(node))
    plan.steers.append(record)
    return record, cancel


def _reopen(plan: PodcastPlan, node: Node, direction: str, kept_through: int) -> None:
    """Make the screenplay node pending again under a new attempt, with the direction in its inputs
    (:meth:`PodcastPlan.task_inputs` adds the kept lines as its resume state)."""
    if node.state is not NodeState.PENDING:
        node.attempt += 1
        node.state, node.instance, node.outputs = NodeState.PENDING, None, {}
    node.failures = 0
    node.inputs.update(direction=direction, after_line=kept_through)


def on_segment(plan: PodcastPlan, node: Node, at: float) -> list[SteerRecord]:
    """A segment was published at Unix time ``at``: complete the steers whose first steered line
    it is the first to show. Returns the records completed (each with ``steer_to_screen_s``)."""
    done = []
    lines = _segment_lines(plan, node)
    for record in plan.steers:
        if record.on_screen_at is None and record.first_line in lines:
            record.segment, record.on_screen_at = int(node.inputs["index"]), at
            record.steer_to_screen_s = round(at - record.at, 3)
            done.append(record)
    return done


def _segment_lines(plan: PodcastPlan, node: Node) -> set[int]:
    """The screenplay lines whose speech a segment node shows."""
    start, end = node.inputs["frame_from"], node.inputs["frame_to"]
    return {piece.line for *_, piece, _a, _b in plan._clips_between(start, end)}


# ---------------------------------------------------------------- takeover (issue 13)

def state_key(plan: PodcastPlan) -> str:
    """KV ``sw_cache`` key of what a takeover needs of ``plan`` (:func:`checkpoint`): its
    screenplay checkpoint's (:attr:`PodcastPlan.checkpoint_key`) for an LLM screenplay, a key of
    its own for a script (written only once it is steered: a script is parsed again identically)."""
    return plan.checkpoint_key or content_name(CACHE_VERSION, "steering", plan.key.encode())


def persisted(plan: PodcastPlan) -> bool:
    """Whether ``plan`` has a takeover state to write: an LLM screenplay, or a steered script."""
    return bool(plan.checkpoint_key or plan.steers or plan.skipped or plan.cut_line is not None)


def checkpoint(plan: PodcastPlan) -> dict[str, Any]:
    """What the scheduler persists for a scheduler taking the request over (at
    :func:`state_key`). For an LLM screenplay, :meth:`PodcastPlan.screenplay_checkpoint` and,
    once the show was steered, ``steering``: every line of the plan past the opening, the ones
    steered away included (so the plan's line numbers, which the steer records and the segments
    already watched use, stay the same), the lines ``skipped``, the ``cut_line``, the ``steers``
    (:class:`~streamwise.bus.messages.SteerRecord` as maps) and the ``direction`` and
    ``after_line`` the screenplay node continues with. For a script (parsed again identically),
    ``steering`` without the lines. Restored by :func:`restore`."""
    out = plan.screenplay_checkpoint() if plan.is_topic else {}
    if plan.steers or plan.skipped or plan.cut_line is not None:
        node = plan.dag["screenplay"]
        out["steering"] = {"skipped": sorted(plan.skipped), "cut_line": plan.cut_line,
                           "steers": msgspec.to_builtins(plan.steers), "direction": node.inputs.get("direction"),
                           "after_line": node.inputs.get("after_line")}
        if plan.is_topic:
            lines: dict[int, dict[str, Any]] = {}
            for p in plan.pieces:
                if p.line >= plan.opening_lines:
                    lines.setdefault(p.line, {"index": p.line - plan.opening_lines, "pieces": [],
                                              "speaker": p.speaker - plan.opening_speakers})["pieces"].append(p.text)
            out["steering"]["lines"] = list(lines.values())
    return out


def restore(plan: PodcastPlan, saved: dict[str, Any]) -> None:
    """Continue a fresh plan of a taken-over request from a :func:`checkpoint` of its earlier
    run: without ``steering`` as :meth:`PodcastPlan.restore_screenplay`; with it, the plan gets
    every line under its old number, the lines steered away stay away (their speech and shots
    are never run), the steer records are kept (a steer already on screen keeps its
    steer-to-screen time; one not yet is completed by the first segment that shows its line)
    and an unfinished screenplay is dispatched with the steer's direction, so the LLM goes on
    writing the steered show after the lines kept. A script's plan (its screenplay not parsed
    yet) gets the lines skipped and the end, which its parsed lines then follow.

    Raises:
        PlanError: the checkpoint makes the request impossible (no dialogue), or its
            ``steering`` is malformed.
    """
    steering = saved.get("steering")
    if not steering:
        if plan.is_topic:
            plan.restore_screenplay(saved)
        return
    node = plan.dag["screenplay"]
    if node.state is not NodeState.PENDING:
        return
    try:
        out = {**saved, "lines": list(steering.get("lines") or ())}
        if plan.is_topic:
            plan._expand_screenplay(out)
        plan.skipped = {int(i) for i in steering.get("skipped") or ()}
        plan.cut_line = None if steering.get("cut_line") is None else int(steering["cut_line"])
        plan.steers = [msgspec.convert(r, SteerRecord) for r in steering.get("steers") or ()]
    except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
        raise PlanError(f"checkpoint: unusable steering state ({type(exc).__name__}: {exc})") from None
    if not plan.is_topic:
        return
    if steering.get("direction"):
        node.inputs.update(direction=str(steering["direction"]), after_line=steering.get("after_line"))
    if saved.get("complete"):
        plan._complete(node, out)
    plan._replan_from(0)


def on_screenplay(plan: PodcastPlan) -> None:
    """The screenplay node completed: the speech and shots of lines already steered away (a
    script restored after a takeover: :func:`restore` set its skipped lines before the script was
    parsed again) are marked done, so they are never run."""
    if plan.skipped or plan.cut_line is not None:
        plan._replan_from(plan.next_segment)
