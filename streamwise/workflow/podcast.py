"""The podcast workflow: how a request's DAG starts, grows and feeds each stage.

Shape (StreamWise design notes, section 2)::

    screenplay ─► studio ─► portrait:<speaker>
               └► tts:<piece> (a line is spoken in pieces) ─► clip:<piece>:<c> (≤ max clip length)
                                                              └► seg:<k> (fMP4, playback order)

The DAG starts as the screenplay node. Its completion adds the studio, one portrait per
speaker and one speech node per piece of each line (long lines are spoken in pieces, so
the first segment never waits for a whole line). A speech completion gives exact
durations and the pause-aligned clip cuts, which add that piece's clip nodes and, once the
playback timeline is known far enough, the segment nodes. Deadlines are recomputed on
every expansion (:meth:`PodcastPlan.refresh_deadlines`).

When the pool provisions the GPU chain (FramePack instances; :mod:`streamwise.workflow.chain`),
a clip is ``sketch`` (FramePack) -> [``vae``] -> ``clip`` (talking head) -> [``up`` (Real-ESRGAN)]
before its segment. The playback timeline, steering, the mux inputs and the deadline
propagation are in :mod:`streamwise.workflow.timeline` (a mixin of the plan).

The plan is a plain object with no I/O: the scheduler's service loop feeds it events and
asks it for ready nodes and task inputs, so the same code runs live and in a simulator.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..bus import subjects
from ..bus.names import content_name
from ..bus.messages import Event, Quality, Request
from ..core.dag import Dag, Node, NodeState
from ..core.deadlines import StageProfile, sketch_duration_s
from ..core.quality import Ladder, Rung
from . import chain as gpu
from .cast import cast_show, cast_speaker, words_per_speaker
from .timeline import Piece, PlanError, Timeline

MAX_ATTEMPTS = 3
LATE_S = 0.25   # a segment published this much (s) after its deadline puts the request on its cheapest rung
# Part of every cache key: bump when a CPU-rung renderer or voice changes its output for the same inputs.
CACHE_VERSION = "cpu-rung-4"   # 4: portraits follow the screenplay's look, mouths its visemes (issue 12)
PAUSE_AFTER_LINE_S = 0.35    # silence after each line (the turn-taking gap)
PAUSE_BETWEEN_PIECES_S = 0.1
# A topic's opening (issue 12 item 6; the paper's "static slide"): while the LLM writes, the show
# opens with the studio's title card and the host's greeting, which need no LLM. It is sized to
# last until the LLM's first line can be on screen: the LLM's expected first-line time (profile
# key ``llm.first_line``; OPENING_S when there is none: SmolLM2-135M's first line came at 8-9 s
# on the 2-core VM, docs/llm.md) plus that line's speech, clip and mux (~1.5 s).
OPENING_S = 10.0
OPENING_HOST = "Host"
OPENING_MAX_PAUSE_S = 3.0     # silence the opening may end with, when its words fall short of its length


class PodcastPlan(Timeline):
    """State of one podcast request: its DAG, pieces, playback timeline and deadlines.

    ``profiles`` maps profile keys (``screenplay``, ``image.studio``, ``image.portrait``,
    ``tts``, ``video``, ``mux``) to expected runtimes. ``chain``: the GPU chain each clip takes
    (:mod:`streamwise.workflow.chain`; ``None``: a clip is one talking-head node).
    """

    def __init__(self, request: Request, profiles: dict[str, StageProfile], *, epoch: int = 1,
                 opening: bool = True, chain: gpu.GpuChain | None = None) -> None:
        self.request = request
        self.chain = chain
        self.upscaled: dict[str, bool] = {}   # clip id -> whether its rung is upscaled by its own node
        self.epoch = epoch          # how many times this request was delivered: keeps task ids of a re-run distinct
        self.profiles = profiles
        self.dag = Dag()
        self.quality = Quality(rung="static", width=request.width, height=request.height, fps=request.fps)
        self.frames_per_segment = max(1, round(request.segment_s * request.fps))
        # a short first segment: time to first frame then depends on ~1 s of video, not a whole segment
        self.first_segment_frames = max(1, min(self.frames_per_segment, round(request.first_segment_s * request.fps)))
        self.title: str = request.title or "StreamWise"
        self.speakers: list[str] = []
        self.voices: dict[int, str] = {}   # speaker index -> the voice the screenplay named for it
        self.lines = 0
        self.pieces: list[Piece] = []
        self.sample_rate: int | None = None
        self.covered = 0            # frames of the contiguous known timeline
        self.total_frames: int | None = None
        self.next_segment = 0
        self.segments_done = 0
        self.cache_hits = 0
        self.screenplay_done = False          # the last screenplay line is in (an LLM streams them)
        self.late_s = 0.0                     # how late (s) the last segment was published
        # the viewer's playback clock (Unix s at which the show's time 0 plays): None until the first
        # segment is published, then when it was, pushed later by every stall (a segment published after
        # its time on that clock); segment deadlines follow it (see Timeline.segment_due)
        self.playback_at: float | None = None
        self.screenplay_done_at: float | None = None
        self.cut_line: int | None = None      # steered to end after this line (None: the screenplay's end)
        self.skipped: set[int] = set()        # lines steered away (skip ahead, or replaced by a direction)
        self.steers: list = []                # the directions applied (SteerRecord, streamwise.workflow.steer)
        self.dag.add(Node("screenplay", "screenplay", runtime_s=self._rt("screenplay")))
        # speakers and lines of the opening, before the LLM's own; line_shift + an LLM line's index = the plan's
        self.opening_speakers = self.opening_lines = self.opening_pieces = self.line_shift = 0
        self._opening_pause_s: float | None = None    # set only while the opening's line is added
        self.llm_studio: str | None = None            # the screenplay's studio description
        if self.is_topic and opening:   # ``opening=False``: the LLM's lines alone (tests of the streaming)
            self._open_show()
        self.refresh_deadlines()

    def _open_show(self) -> None:
        """Start a topic's show at once (see :data:`OPENING_S`): the studio with the title card,
        the host's portrait and a greeting whose length covers the LLM's first line."""
        r = self.request
        subject = " ".join((r.topic or r.document_name or "today's document").split())
        words = subject.split()
        short = " ".join(words[:14]) + ("..." if len(words) > 14 else "")
        title = r.title or (short[:1].upper() + short[1:] if len(words) <= 8 else "StreamWise")
        target = self._rt("llm.first_line") + 1.5 if "llm.first_line" in self.profiles else OPENING_S
        sentences = [f"Hello, and welcome to {title}." if title != "StreamWise" else "Hello, and welcome.",
                     f"Today we are talking about {short.rstrip('.')}.",
                     "This conversation is being written as you watch, so settle in.",
                     "Our guests are taking their seats now.", "Here we go."]
        pieces, spoken = [], 0.0
        for sentence in sentences:
            if pieces and spoken >= target:
                break
            pieces.append(sentence)
            spoken += sketch_duration_s(sentence)
        self._opening_pause_s = PAUSE_AFTER_LINE_S + min(OPENING_MAX_PAUSE_S, max(0.0, target - spoken))
        self._expand_screenplay({"title": title, "studio": f"a podcast studio; the show is about {short}",
                                 "speakers": [OPENING_HOST], "lines": [{"index": 0, "speaker": 0, "pieces": pieces}]})
        self._opening_pause_s = None
        self.opening_speakers, self.opening_lines, self.opening_pieces = len(self.speakers), self.lines, len(self.pieces)
        self.line_shift = self.lines
        self.dag["screenplay"].not_before = r.submitted_at + r.ttff_s   # the LLM starts once the first frame is due

    # ---------------------------------------------------------------- queries
    @property
    def finished(self) -> bool:
        return self.total_frames is not None and self.segments_done == self.segments_total

    @property
    def segments_total(self) -> int | None:
        if self.total_frames is None:
            return None
        return self.segment_at(max(0, self.total_frames - 1)) + 1

    @property
    def video_duration_s(self) -> float | None:
        return None if self.total_frames is None else self.total_frames / self.request.fps

    @property
    def _spf(self) -> int:
        """Audio samples per video frame (the plan checks it is whole when speech arrives)."""
        return int(self.sample_rate / self.request.fps)

    def _clip_rt(self, frames: float) -> float:
        """Expected seconds of a clip of ``frames`` frames: the talking head, plus its GPU chain's nodes."""
        chain = self.chain.upstream_s(frames / self.request.fps) if self.chain else 0.0
        return self._rt("video", frames) + chain

    def _rt(self, key: str, units: float = 0.0) -> float:
        profile = self.profiles.get(key)
        return profile.runtime_s(units) if profile else 0.0

    # ---------------------------------------------------------------- events
    def on_event(self, event: Event) -> Node | None:
        """Apply a completion event; returns the node it completed (``None`` if stale or duplicate).

        Raises:
            PlanError: the task failed for good (not retryable, or out of attempts), or its
                outputs make the request impossible (e.g. a script with no dialogue).
        """
        node = self.dag.nodes.get(event.node_id)
        if node is None or node.state is not NodeState.DISPATCHED or event.task_id != self.task_id(node):
            return None  # a late duplicate or an older attempt: results are idempotent, ignore
        if not event.ok:
            if not event.handed_back:
                node.failures += 1
                if not event.retryable or node.failures >= MAX_ATTEMPTS:
                    node.state = NodeState.FAILED
                    raise PlanError(event.error or f"{node.node_id} failed")
            self.requeue(node)
            return None
        moved = False
        if node.stage == "mux" and event.finished_at:
            self.late_s = max(0.0, event.finished_at - node.deadline)
            moved = self._played(node, event.finished_at)
        self._complete(node, event.outputs)
        if moved:
            self.refresh_deadlines()   # the later segments are due on the moved playback clock
        if node.stage == "screenplay":
            self.screenplay_done_at = event.finished_at or None
        return node

    def _played(self, node: Node, published_at: float) -> bool:
        """Segment ``node`` was published at ``published_at`` (Unix s): move the viewer's playback
        clock (:attr:`playback_at`) as a viewer that starts at the first segment and waits for each
        late one does (``streamwise.client.stall_seconds``): the first segment starts it, a later one
        published after its time pushes it by the stall. Returns whether the clock moved."""
        start = float(node.inputs.get("start_s", 0.0))
        origin = published_at - start
        before = self.playback_at
        if self.playback_at is None or int(node.inputs.get("index", 0)) == 0:
            self.playback_at = origin
        else:
            self.playback_at = max(self.playback_at, origin)
        return self.playback_at != before

    @property
    def running_late(self) -> bool:
        """The last segment was published more than :data:`LATE_S` after its deadline: until one
        is on time again, the scheduler holds this request's clips to the cheapest rung, so
        quality gives way before playback does (the viewer would otherwise stall)."""
        return self.late_s > LATE_S

    # ---------------------------------------------------------------- checkpoint
    @property
    def checkpoint_key(self) -> str | None:
        """KV key of this request's screenplay checkpoint: only an LLM screenplay needs one
        (it is not reproducible; a script is parsed again identically). ``None`` otherwise."""
        if not self.is_topic:
            return None
        return content_name(CACHE_VERSION, "screenplay-checkpoint", self.key.encode())

    def screenplay_checkpoint(self) -> dict[str, Any]:
        """The screenplay as received so far, in the screenplay outputs' shape (every line with
        its ``index`` and ``pieces``), with ``complete`` once the final event is in. Written
        by the scheduler on every screenplay event so another scheduler taking the request
        over continues the same show (:meth:`restore_screenplay`)."""
        lines: dict[int, dict[str, Any]] = {}
        for p in self.pieces:   # the opening (the plan's: rebuilt, not resumed) and lines steered away are left out
            if p.line < self.opening_lines or not self._kept(p):
                continue
            lines.setdefault(p.line, {"index": len(lines), "speaker": p.speaker - self.opening_speakers,
                                      "pieces": []})["pieces"].append(p.text)
        studio = (self.llm_studio if self.opening_lines else
                  self.dag["studio"].inputs.get("description") if "studio" in self.dag else None)
        cast = range(self.opening_speakers, len(self.speakers))   # each speaker's voice and look stay theirs
        return {"title": self.title, "studio": studio, "voices": [self.voices.get(s) for s in cast],
                "speakers": list(self.speakers[self.opening_speakers:]), "lines": list(lines.values()),
                "looks": [self.dag[f"portrait:{s}"].inputs["look"] for s in cast], "complete": self.screenplay_done}

    def restore_screenplay(self, checkpoint: dict[str, Any]) -> None:
        """Continue from a :meth:`screenplay_checkpoint` of an earlier run of this request (a
        scheduler takeover): the DAG grows by the lines already written; a complete one
        completes the screenplay node, an incomplete one leaves it to be dispatched with
        those lines as its resume state, so the LLM continues after them.

        Raises:
            PlanError: the checkpoint makes the request impossible (no dialogue).
        """
        node = self.dag["screenplay"]
        if node.state is not NodeState.PENDING:
            return
        if checkpoint.get("complete"):
            self._complete(node, checkpoint)
            return
        self._expand_screenplay(checkpoint)
        self.refresh_deadlines()

    def on_partial(self, event: Event) -> bool:
        """Apply a partial screenplay event (lines an LLM has written so far): add the studio,
        the new speakers' portraits and the new lines' speech nodes. Lines are keyed by
        index, so a repeated line is ignored. Returns whether it applied (``False`` for a
        stale attempt or a node that is not streaming).

        Raises:
            PlanError: the outputs make the request impossible.
        """
        node = self.dag.nodes.get(event.node_id)
        if (node is None or node.stage != "screenplay" or node.state is not NodeState.DISPATCHED
                or event.task_id != self.task_id(node)):
            return False
        self._expand_screenplay(event.outputs)
        self.refresh_deadlines()
        return True

    def requeue(self, node: Node) -> None:
        """A dispatched node (failed, handed back, its instance gone) ready again under a new task id."""
        node.attempt += 1
        node.state, node.instance = NodeState.PENDING, None

    def complete_from_cache(self, node: Node, outputs: dict[str, Any]) -> None:
        """A cache hit: complete a ready node with an identical node's outputs (expanding as after its event)."""
        self.cache_hits += 1
        self._complete(node, outputs)

    def _complete(self, node: Node, outputs: dict[str, Any]) -> None:
        node.state, node.outputs = NodeState.DONE, dict(outputs)
        expand = {"screenplay": self._on_screenplay, "tts": self._on_speech, "mux": self._on_segment,
                  "video": lambda n: gpu.on_clip(self.dag, n, self.upscaled.get(n.node_id, False))}
        handler = expand.get(node.stage)
        if handler:
            handler(node)
        if node.stage in ("screenplay", "tts"):   # only these change the pieces, the timeline or the nodes
            self.refresh_deadlines()              # (and a segment that moves the playback clock: on_event)

    def _key(self, node: Node, *parts: Any) -> str:
        """Content key of ``node``: its stage, the cache version, the keys of its dependencies
        and ``parts`` (its own content inputs), hashed (see :func:`streamwise.bus.client.content_name`)."""
        deps = [self.dag[d].cache_key or d for d in node.deps]
        return content_name(CACHE_VERSION, node.stage, msgspec.msgpack.encode([deps, list(parts)]))

    @property
    def key(self) -> str:
        """The request's id scoped to its tenant, ``<tenant>.<request>`` (see
        :func:`streamwise.bus.subjects.scoped`): what the scheduler keys the request by."""
        return subjects.scoped(self.request.tenant, self.request.request_id)

    def task_id(self, node: Node) -> str:
        """``<tenant>.<request>.<node>.<epoch>-<attempt>``: unique across tenants, requests,
        scheduler takeovers (epoch) and attempts; also the task's de-duplication id."""
        return f"{self.key}.{node.node_id}.{self.epoch}-{node.attempt}"

    def _on_screenplay(self, node: Node) -> None:
        """The screenplay is complete: add what the lines not yet streamed need, then fix the
        show's length (the final segment can only be known now)."""
        out = node.outputs
        self._expand_screenplay(out)
        if self.lines <= self.opening_lines:
            raise PlanError(f"{self.request.script_name if not self.is_topic else 'the LLM screenplay'}: "
                            "no dialogue found")
        self.screenplay_done = True
        self._extend_timeline()

    @property
    def is_topic(self) -> bool:
        """Whether an LLM writes this request's screenplay (a topic or document, not a script)."""
        return bool(self.request.topic or self.request.document)

    def required_model(self, node: Node) -> str | None:
        """The model a node must run on, if its stage has several kinds: a topic request's
        screenplay needs the LLM (``llm``); anything else runs on any model of its stage."""
        return "llm" if node.stage == "screenplay" and self.is_topic else None

    def _expand_screenplay(self, out: dict[str, Any]) -> None:
        """Grow the DAG by screenplay outputs, complete or partial: the studio once its
        description (or the first speaker or line) is known, a portrait per new speaker,
        speech nodes per new line. Lines carry ``index`` when streamed; a line whose index is
        already in is skipped, so partial and final events may overlap."""
        lines = out.get("lines") or []
        r = self.request
        if self._opening_pause_s is None and not self.llm_studio:
            self.llm_studio = out.get("studio")   # drawn only when there is no opening (a script)
        if "studio" not in self.dag and (out.get("studio") or out.get("speakers") or lines):
            self.title = self.request.title or out.get("title") or self.title
            studio = self.dag.add(Node("studio", "image", runtime_s=self._rt("image.studio"),
                                       inputs={"kind": "studio", "title": self.title,
                                               "description": out.get("studio"), "width": r.width,
                                               "height": r.height}))
            studio.cache_key = self._key(studio, sorted(studio.inputs.items()))
        for s, voice in enumerate(out.get("voices") or ()):
            s += self.opening_speakers      # the plan's index (after the opening's host, for a topic)
            if voice and s not in self.voices:
                self.voices[s] = str(voice)   # named in the screenplay; fixed for the whole show
        new = range(len(self.speakers) - self.opening_speakers, len(out.get("speakers") or []))
        cast = (cast_show(self.voices, out["speakers"], r, [(out.get("looks") or [])[s:s + 1] for s in new],
                          words_per_speaker(lines, len(new))) if not self.is_topic and not self.speakers else None)
        for s in new:
            name, said = out["speakers"][s], (out.get("looks") or [])[s:s + 1]   # (a look the screenplay gives)
            s = len(self.speakers)      # the plan's index (after the opening's host, for a topic)
            self.speakers.append(name)
            look = cast[s] if cast else cast_speaker(self.voices, s, name, r, said)   # a look, a voice agreeing
            portrait = self.dag.add(Node(f"portrait:{s}", "image", deps=("studio",),
                                         runtime_s=self._rt("image.portrait"),
                                         inputs={"kind": "portrait", "name": name, "speaker_index": s, "look": look}))
            portrait.cache_key = self._key(portrait, name, s, sorted(look.items()))
        for pos, line in enumerate(lines):
            li = int(line.get("index", pos)) + self.line_shift
            if li != self.lines:          # already in (a repeat), or a gap: keep the lines contiguous
                continue
            if self.cut_line is not None and li > self.cut_line:
                break                     # steered to end earlier: later lines are not spoken
            self.lines += 1
            texts = line["pieces"]
            speaker = int(line["speaker"]) + self.opening_speakers
            for pi, text in enumerate(texts):
                piece = Piece(index=len(self.pieces), line=li, speaker=speaker, text=text,
                              last_of_line=pi == len(texts) - 1, est_s=sketch_duration_s(text))
                self.pieces.append(piece)
                # the show's first clip is no longer than the first segment: it alone decides TTFF
                first_clip = min(r.max_clip_s, max(r.first_segment_s, 0.5)) if piece.index == 0 else None
                node = self.dag.add(Node(piece.node_id, "tts", runtime_s=self._rt("tts", piece.est_s), inputs={
                    "text": text, "speaker_index": piece.speaker, "fps": r.fps, "max_clip_s": r.max_clip_s,
                    "first_clip_s": first_clip,
                    "pause_after_s": (PAUSE_BETWEEN_PIECES_S if not piece.last_of_line else
                                      self._opening_pause_s or PAUSE_AFTER_LINE_S),
                    **({"voice": self.voices[piece.speaker]} if piece.speaker in self.voices else {})}))
                node.cache_key = self._key(node, sorted(node.inputs.items()))

    def _resume_state(self) -> dict[str, Any] | None:
        """What a retried or steered LLM screenplay task continues from: the lines received and kept, each as one
        text (``None`` when none arrived). Sets ``line_shift``: the task's new lines follow the plan's last line."""
        done = self.screenplay_checkpoint()
        self.line_shift = self.lines - len(done["lines"])
        if self.lines <= self.opening_lines:
            return None
        return {"title": done["title"], "studio": done["studio"], "speakers": done["speakers"], "host": None,
                "lines": [{"speaker": line["speaker"], "text": " ".join(line["pieces"])} for line in done["lines"]]}

    def _on_speech(self, node: Node) -> None:
        piece = self.pieces[int(node.node_id.split(":")[1])]
        out = node.outputs
        rate = int(out["sample_rate"])
        spf = rate / self.request.fps
        if spf != int(spf):
            raise PlanError(f"fps {self.request.fps} does not divide the audio rate {rate} Hz")
        self.sample_rate, spf = rate, int(spf)
        piece.audio_ref, piece.frames = out["audio"], int(out["samples"]) // spf
        piece.clips = [(int(a), int(b)) for a, b in out["clips"]]
        if not self._kept(piece):
            piece.clips = []              # spoken before the show was steered past it: not shown
            return
        words = piece.text.split()
        for c, (a, b) in enumerate(piece.clips):
            w0, w1 = (round(len(words) * x / out["samples"]) for x in (a, b))
            inputs = {
                                         "audio": piece.audio_ref, "sample_from": a, "sample_to": b,
                                         "sample_rate": rate, "subtitle": " ".join(words[w0:w1]),
                                         "speaker": self.speakers[piece.speaker], "start_frame": a // spf,
                                         "blink_seed": piece.speaker * 7919 + piece.index,
                                         **({"visemes": out["visemes"]} if out.get("visemes") else {}),
                                         "fps": self.request.fps, "width": self.request.width,
                                         "height": self.request.height}
            tail, deps = f"{piece.index}:{c}", (f"portrait:{piece.speaker}", piece.node_id)
            if self.chain:   # FramePack's sketch (and its VAE) first; Real-ESRGAN after, in nodes of their own
                deps = gpu.add_before(self.dag, self.chain, tail, deps, inputs, (b - a) / rate, self._key)
                inputs["upscale_after"] = self.chain.upscale is not None
            clip = self.dag.add(Node(f"clip:{tail}", "video", deps=deps, runtime_s=self._rt("video", (b - a) / spf),
                                     inputs=inputs, duration_s=(b - a) / rate))
            clip.cache_key = self._key(clip, sorted((k, v) for k, v in clip.inputs.items() if k != "audio"))
            if self.chain:
                gpu.add_after(self.dag, self.chain, tail, clip, self._key)
        self._extend_timeline()

    def _on_segment(self, node: Node) -> None:
        self.segments_done += 1

    # ---------------------------------------------------------------- dispatch
    def task_inputs(self, node: Node) -> dict[str, Any]:
        """The task payload of a ready node (dependency outputs resolved to object-store names)."""
        r = self.request
        if node.stage == "screenplay":
            if self.is_topic:   # node.inputs: a steer's direction; the LLM's lines continue after ``resume``
                return {"topic": r.topic, "document": r.document, "name": r.document_name,
                        "resume": self._resume_state(), **node.inputs}
            return {"script": r.script, "script_ref": r.script_ref, "format": r.script_format, "name": r.script_name}
        inputs = dict(node.inputs)
        if node.node_id.startswith("portrait:"):
            inputs["studio"] = self.dag["studio"].outputs["image"]
        elif node.stage in (gpu.VAE, gpu.UPSCALE):
            return gpu.task_inputs(self.dag, node, self.request.width, self.request.height)
        elif node.stage in ("video", gpu.SKETCH):
            if node.stage == "video" and (sketch := gpu.sketch_video(self.dag, node)):
                inputs["sketch"] = sketch
            portrait = self.dag[node.deps[0]].outputs
            inputs["portrait"], inputs["layout"] = portrait["image"], portrait["layout"]
            for key in ("person", "backdrop"):   # the portrait's layers, for head motion
                if portrait.get(key):
                    inputs[key] = portrait[key]
        elif node.stage == "mux":
            inputs.update(self._mux_inputs(node))
        return inputs

    def set_rung(self, node: Node, rung: Rung, ladder: Ladder) -> None:
        """Record the quality rung ``node`` is dispatched at. The CPU rungs (``static`` and the
        cheaper ones below it) render at the stream's size, a rung that draws fewer frames a
        second with ``hold`` (stream frames per drawn frame) in its inputs; other rungs render at
        their own size, brought to the stream's size downstream."""
        node.rung_index = ladder.index(rung)
        self.upscaled[node.node_id] = rung.upscale and bool(node.inputs.get("upscale_after"))
        hold = rung.hold_frames(self.request.fps) if ladder.is_cpu(rung) else 1
        if hold > 1:
            node.inputs["hold"] = hold
        else:
            node.inputs.pop("hold", None)
        if ladder.is_cpu(rung):
            node.quality = msgspec.structs.replace(self.quality, rung=rung.name)
        else:
            node.quality = Quality(rung=rung.name, width=rung.width, height=rung.height, fps=self.request.fps,
                                   steps=rung.steps)

    def quality_of(self, node: Node) -> Quality:
        """The quality a task carries: its own rung; for a segment, the lowest rung among its clips."""
        if node.quality is not None:
            return node.quality
        if node.stage == "mux":
            clips = [c for d in node.deps if (c := self.dag[gpu.talking_head(d)]).stage == "video" and c.quality]
            if clips:
                return max(clips, key=lambda c: c.rung_index).quality
        return self.quality
