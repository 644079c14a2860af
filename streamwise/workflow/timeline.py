"""A podcast plan's playback timeline: segments, steering, mux inputs and deadlines.

:class:`Timeline` is the part of :class:`~streamwise.workflow.podcast.PodcastPlan` that lays the
pieces whose audio length is known end to end (counted in video frames), adds a segment node
once the timeline covers it, re-lays the segments not yet dispatched when a viewer steers the
show (end after the line playing, skip ahead), builds a segment's mux inputs, and propagates
the deadlines from the SLO back through the DAG (one propagation, :mod:`streamwise.core.deadlines`,
the GPU chain's nodes included: :mod:`streamwise.workflow.chain`). It holds no state of its own:
the attributes it reads are the plan's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..core.dag import Node, NodeState
from ..core.deadlines import segment_deadline, upstream_deadline
from . import chain as gpu

AUDIO_PREROLL_S = 0.2         # audio before a segment given to the mux so the AAC encoder is warm (media.py)


class PlanError(Exception):
    """The request cannot be completed; ``str()`` is the one-line reason for the user."""


@dataclass
class Piece:
    """A piece of a line, spoken by one TTS task; timeline fields are filled by its completion."""

    index: int
    line: int
    speaker: int
    text: str
    last_of_line: bool
    est_s: float
    frames: int | None = None
    clips: list[tuple[int, int]] = field(default_factory=list)   # sample ranges
    audio_ref: str | None = None
    offset: int | None = None                                     # first frame in the show

    @property
    def node_id(self) -> str:
        return f"tts:{self.index}"


def _voice_of(tts_outputs: dict[str, Any]) -> str:
    """``"hibari:heart|heart|loudness"``: a speech task's model, voice label and mouth source ("" from older ones)."""
    model, label, mouth = tts_outputs.get("voice_model"), tts_outputs.get("voice"), tts_outputs.get("mouth")
    return f"{model}|{label}" + (f"|{mouth}" if mouth else "") if model and label else ""


class Timeline:
    """Mixin of :class:`~streamwise.workflow.podcast.PodcastPlan`: the timeline, steering, mux
    inputs and deadlines (see the module docstring)."""

    # ---------------------------------------------------------------- segments
    def segment_start(self, k: int) -> int:
        """First frame of segment ``k``: segment 0 is ``first_segment_s`` long, the others ``segment_s``."""
        return 0 if k <= 0 else self.first_segment_frames + (k - 1) * self.frames_per_segment

    def segment_at(self, frame: int) -> int:
        """Index of the segment that contains ``frame``."""
        if frame < self.first_segment_frames:
            return 0
        return 1 + (frame - self.first_segment_frames) // self.frames_per_segment

    # ---------------------------------------------------------------- timeline
    def _extend_timeline(self) -> None:
        offset = 0
        kept = [p for p in self.pieces if self._kept(p)]
        for piece in self.pieces:
            if not self._kept(piece):
                piece.offset = None
        for piece in kept:
            if piece.frames is None:
                break
            piece.offset = offset
            offset += piece.frames
        else:
            if self.screenplay_done or self.cut_line is not None:
                self.total_frames = offset
        self.covered = offset
        while True:
            start = self.segment_start(self.next_segment)
            end = self.segment_start(self.next_segment + 1)
            if self.total_frames is not None:
                if start >= self.total_frames:
                    break
                end = min(end, self.total_frames)
            elif end > self.covered or (end == self.covered and not self.screenplay_done):
                break     # (while the screenplay streams, the segment ending here may turn out to be the last)
            self._add_segment(self.next_segment, start, end)
            self.next_segment += 1

    def _kept(self, piece: Piece) -> bool:
        """Whether ``piece`` is still in the show (not steered away)."""
        return piece.line not in self.skipped and (self.cut_line is None or piece.line <= self.cut_line)

    def _steer_point(self) -> tuple[int, int | None]:
        """``(k, line)``: the first segment not yet handed to the mux, and the line playing at its
        start (or the first line whose speech is not known yet); ``line`` is None with no line."""
        k = 0
        while f"seg:{k}" in self.dag and self.dag[f"seg:{k}"].state is not NodeState.PENDING:
            k += 1
        f0 = self.segment_start(k)
        for piece in self.pieces:
            if not self._kept(piece):
                continue
            if piece.frames is None or piece.offset is None or f0 < piece.offset + piece.frames:
                return k, piece.line
        return k, None

    def _replan_from(self, k: int) -> None:
        """Lay out segments ``k`` onwards anew (none of them is dispatched) after the kept lines
        changed: their nodes are removed and added again over the new timeline; the speech and
        shots of lines no longer kept are skipped unless already dispatched."""
        for piece in self.pieces:
            if not self._kept(piece):
                for node_id in [piece.node_id] + [n for c in range(len(piece.clips))
                                                  for n in gpu.all_ids(f"{piece.index}:{c}")]:
                    node = self.dag.nodes.get(node_id)
                    if node is not None and node.state is NodeState.PENDING:
                        node.state = NodeState.DONE   # never run: nothing depends on it any more
        for j in reversed(range(k, self.next_segment)):
            self.dag.remove(f"seg:{j}")
        self.next_segment = k
        self.total_frames = None
        self._extend_timeline()
        self.refresh_deadlines()

    def _later_lines(self, line: int) -> list[int]:
        last = self.cut_line if self.cut_line is not None else self.lines - 1
        return [i for i in range(line + 1, last + 1) if i not in self.skipped]

    def end_after_current_line(self) -> int:
        """Steer the show to end early: after the line playing at the start of the first segment
        not yet handed to the mux (what the mux has is never changed, so playback does not
        stall). Later lines are dropped (their speech and shots not yet dispatched are skipped)
        and the segments from there on are laid out again, the last one final. Returns the index
        of the last line kept.

        Raises:
            PlanError: the show already ends there (the line playing is the last), or it has
                no line yet.
        """
        k, line = self._steer_point()
        if line is None or (not self._later_lines(line) and (self.screenplay_done or self.cut_line is not None)):
            raise PlanError("the show already ends after the line now playing" if self.pieces
                            else "no line to end after yet")
        self.cut_line = line
        self._replan_from(k)
        return line

    def skip_ahead(self, lines: int = 1) -> list[int]:
        """Steer the show to skip the next ``lines`` lines after the one playing at the start of
        the first segment not yet handed to the mux: they are never spoken, and the show goes on
        with the line after them. Returns the indices of the lines skipped.

        Raises:
            PlanError: ``lines`` < 1, or no later line is known to skip (the line playing is the
                last one written so far).
        """
        if lines < 1:
            raise PlanError(f"lines: expected at least 1, got {lines}")
        k, line = self._steer_point()
        later = self._later_lines(line) if line is not None else []
        if not later:
            raise PlanError("no later line to skip: the line now playing is the last one written so far")
        skip = later[:lines]
        if len(skip) == len(later) and (self.screenplay_done or self.cut_line is not None):
            self.cut_line = line               # skipping every later line = ending after this one
        self.skipped.update(skip)
        self._replan_from(k)
        return skip

    def _clips_between(self, start: int, end: int) -> list[tuple[str, int, int, Piece, int, int]]:
        spf = self._spf
        found = []
        for piece in self.pieces:
            if not self._kept(piece):
                continue
            if piece.offset is None or piece.offset >= end:
                break
            for c, (a, b) in enumerate(piece.clips):
                g0, g1 = piece.offset + a // spf, piece.offset + b // spf
                if g1 > start and g0 < end:
                    found.append((f"clip:{piece.index}:{c}", g0, g1, piece, a, b))
        return found

    def _add_segment(self, k: int, start: int, end: int) -> None:
        clips = self._clips_between(start, end)
        deps = tuple(gpu.shown(self.dag, c[0]) for c in clips) + ((f"seg:{k - 1}",) if k else ())
        fps = self.request.fps
        self.dag.add(Node(f"seg:{k}", "mux", deps=deps, runtime_s=self._rt("mux", end - start), inputs={
            "index": k, "start_s": start / fps, "duration_s": (end - start) / fps, "frame_from": start,
            "frame_to": end, "final": self.total_frames is not None and end >= self.total_frames}))

    def _audio_parts(self, s0: int, s1: int) -> list[list[Any]]:
        spf = self._spf
        parts = []
        for piece in self.pieces:
            if not self._kept(piece):
                continue
            if piece.offset is None:
                break
            p0 = piece.offset * spf
            p1 = p0 + piece.frames * spf
            if p1 > s0 and p0 < s1:
                parts.append([piece.audio_ref, max(s0, p0) - p0, min(s1, p1) - p0])
        return parts

    def _mux_inputs(self, node: Node) -> dict[str, Any]:
        start, end = node.inputs["frame_from"], node.inputs["frame_to"]
        # [clip, first frame, end frame] (+ frames held per drawn frame, for a rung that draws fewer)
        video = [[self.dag[gpu.shown(self.dag, cid)].outputs["clip"], max(start, g0) - g0, min(end, g1) - g0]
                 + ([hold] if (hold := int(self.dag[cid].outputs.get("hold", 1))) > 1 else [])
                 for cid, g0, g1, *_ in self._clips_between(start, end)]
        spf = self._spf
        preroll = min(start * spf, int(AUDIO_PREROLL_S * self.sample_rate))
        fps = self.request.fps
        # subtitles: each clip's words over the frames its speech covers, given to the segment it starts in
        cues = [{"start_s": g0 / fps, "end_s": g1 / fps, "speaker": self.speakers[piece.speaker],
                 "text": text, "line": piece.line, "voice": _voice_of(self.dag[piece.node_id].outputs)}
                for cid, g0, g1, piece, *_ in self._clips_between(start, end)
                if start <= g0 < end and (text := self.dag[cid].inputs.get("subtitle", "").strip())]
        return {"video": video, "audio": self._audio_parts(start * spf - preroll, end * spf), "cues": cues,
                "preroll_samples": preroll, "sample_rate": self.sample_rate, "fps": self.request.fps,
                "tenant": self.request.tenant, "width": self.request.width, "height": self.request.height}

    # ---------------------------------------------------------------- deadlines
    def segment_due(self, k: int) -> float:
        """Deadline (Unix s) of segment ``k``: ``t_submit + TTFF + start_k`` until the first segment is
        published; after that, when the viewer's playback clock reaches it (:attr:`playback_at` +
        ``start_k``: the first segment's publication, plus the stalls so far). A request whose first
        frame came late is then not treated as behind for the rest of its show (its viewer started
        late), and one whose first frame came early must keep up with a clock that started early."""
        start = self.segment_start(k) / self.request.fps
        if self.playback_at is None:
            return segment_deadline(self.request.submitted_at, self.request.ttff_s, start)
        return self.playback_at + start

    def refresh_deadlines(self) -> None:
        """Recompute every unfinished node's deadline from the SLO and the current timeline.

        Segment k: ``t_submit + TTFF + start_k``, or the viewer's playback clock once the first
        segment is out (:meth:`segment_due`); upstream: child's deadline minus the child's expected
        runtime (deadline rule from the StreamWise scheduler design).
        Pieces whose timing is not known yet are placed by the sketch (2.5 words/s).
        """
        r = self.request
        mux_rt = self._rt("mux", self.frames_per_segment)

        def seg_deadline(k: int) -> float:
            return self.segment_due(k)

        def clip_deadline(start_s: float) -> float:
            return upstream_deadline(seg_deadline(self.segment_at(int(start_s * r.fps))), mux_rt)

        dag = self.dag
        for k in range(self.next_segment):
            dag[f"seg:{k}"].deadline = seg_deadline(k)
        speaker_first: dict[int, float] = {}
        running = 0.0
        for piece in self.pieces:
            start = piece.offset / r.fps if piece.offset is not None else running
            length = piece.frames / r.fps if piece.frames is not None else piece.est_s
            running = start + length
            first_clip_frames = min(length, r.max_clip_s) * r.fps
            d_clip = clip_deadline(start)
            for c, (a, b) in enumerate(piece.clips):
                if self.chain:
                    gpu.set_deadlines(dag, self.chain, f"{piece.index}:{c}", clip_deadline(start + a / self.sample_rate))
                else:
                    dag[f"clip:{piece.index}:{c}"].deadline = clip_deadline(start + a / self.sample_rate)
            d_tts = upstream_deadline(d_clip, self._clip_rt(first_clip_frames))
            dag[piece.node_id].deadline = d_tts
            speaker_first[piece.speaker] = min(speaker_first.get(piece.speaker, math.inf), d_tts)
        d_studio = math.inf
        # a speaker with no line yet (the LLM named them first) speaks after the known lines at the earliest
        not_yet = upstream_deadline(clip_deadline(running), self._clip_rt(r.max_clip_s * r.fps)
                                    + self._rt("tts", r.max_clip_s))
        for s in range(len(self.speakers)):
            node = dag[f"portrait:{s}"]
            node.deadline = speaker_first.get(s, not_yet)
            d_studio = min(d_studio, upstream_deadline(node.deadline, node.runtime_s))
        if "studio" in dag:
            if d_studio == math.inf:   # the studio is known before any speaker
                d_studio = upstream_deadline(not_yet, self._rt("image.portrait"))
            dag["studio"].deadline = d_studio
        if self.opening_lines:   # due by its own first line's speech, after the opening: the LLM yields meanwhile
            own = self.pieces[self.opening_pieces:]
            d_screenplay = (upstream_deadline(dag[own[0].node_id].deadline, self._rt("tts", 3.0)) if own else
                            upstream_deadline(clip_deadline(running), self._clip_rt(r.max_clip_s * r.fps)))
        elif self.pieces:
            d_screenplay = min(upstream_deadline(d_studio, dag["studio"].runtime_s),
                               upstream_deadline(dag[self.pieces[0].node_id].deadline, self._rt("tts", 3.0)))
        else:
            d_screenplay = upstream_deadline(clip_deadline(0.0), self._clip_rt(r.max_clip_s * r.fps)
                                             + self._rt("tts", r.max_clip_s) + self._rt("image.portrait")
                                             + self._rt("image.studio"))
        dag["screenplay"].deadline = d_screenplay
