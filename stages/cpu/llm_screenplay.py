"""Screenplay stage, LLM path: a topic or document in, a screenplay streamed out line by line.

The LLM's text is parsed as it streams (:class:`~streamwise.llm.format.ScreenplayStream`),
and every batch of finished lines leaves as a partial event at once, so the scheduler
starts speech and video for the first line while the model is still writing the rest
(StreamWise design notes, section 2). Script tasks (``script`` / ``script_ref``) that reach
this worker are parsed as by the ``script-parser`` model, so an LLM instance can serve both.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any, AsyncIterator

from ...bus.messages import Task
from ...llm.backends import GenerationStats, LlmBackend, LlmError, MissingCheckpoint, make_backend
from ...llm.format import ScreenplayStream, build_messages, resume_prefix, screenplay_schema
from ..runtime.base import Partial, TaskContext, TaskError
from .screenplay import MAX_PIECE_CHARS, ScriptScreenplay
from .speech import FIRST_PIECE_CHARS, split_text

log = logging.getLogger(__name__)

MIN_LINES = 2               # fewer usable dialogue lines than this fails the task (clearly)
RETRY_TEMPERATURE = 0.7     # a retried task samples, so it does not repeat a failed greedy run
CONTINUATION_LINES = (2, 5)   # (fewest, most) new lines a steered continuation writes after the kept ones


class LlmScreenplay:
    """Stage ``screenplay``, model ``llm``: writes a podcast screenplay with an LLM.

    ``backend``: ``vllm`` | ``openai`` | ``transformers`` (default: ``$STREAMWISE_LLM``, else
    vLLM when importable, else transformers); ``llm_model``: checkpoint name, directory or
    GGUF file (default ``$STREAMWISE_LLM_MODEL``, else ``llm.default`` of
    ``configs/models.yaml``), or the server's model id for ``openai``; ``url``: the
    OpenAI-compatible endpoint (``$STREAMWISE_LLM_URL``). ``max_tokens`` caps one generation
    (keeps a CPU run to ~6-12 lines); ``lines``: (fewest, most) dialogue lines asked for.

    Task inputs: ``topic`` and/or ``document`` (text), ``resume`` (the screenplay already
    received from an earlier attempt, see :func:`~streamwise.llm.format.resume_prefix`),
    ``direction`` and ``after_line`` (a viewer's steer, :mod:`streamwise.workflow.steer`: the
    direction goes into the prompt and the LLM writes :data:`CONTINUATION_LINES` more lines
    after ``resume``; both are echoed in the final ``llm`` record).
    Yields :class:`Partial` outputs ``{"title", "studio", "speakers", "host", "lines":
    [{"index", "speaker", "pieces"}]}`` (new lines only; the rest cumulative), then the final
    outputs: the same with ``complete: True`` and ``llm`` (backend, model, tokens,
    tokens_per_s, first_line_s, malformed ...).
    Raises :class:`TaskError`: no checkpoint (not retryable), backend failure or fewer than
    ``MIN_LINES`` usable lines (retryable; a retry samples).
    """

    stage = "screenplay"
    model = "llm"

    def __init__(self, backend: str | None = None, llm_model: str | None = None, url: str | None = None,
                 max_tokens: int | None = None, lines: tuple[int, int] = (6, 10)) -> None:
        self.backend_name = backend or os.environ.get("STREAMWISE_LLM") or None
        self.llm_model = llm_model or os.environ.get("STREAMWISE_LLM_MODEL") or None
        self.url = url or os.environ.get("STREAMWISE_LLM_URL") or None
        self.max_tokens = max_tokens or int(os.environ.get("STREAMWISE_LLM_MAX_TOKENS", "700"))
        self.lines = lines
        self.backend: LlmBackend | None = None
        self._script = ScriptScreenplay()

    def load(self) -> None:
        """Find and load the checkpoint (or reach the server).

        Raises:
            MissingCheckpoint: the checkpoint is not on this machine (the worker exits with it).
            LlmError: the OpenAI-compatible server does not answer.
        """
        self.backend = make_backend(self.backend_name, model=self.llm_model, url=self.url,
                                    progress=lambda msg: log.warning("%s", msg))
        started = time.monotonic()
        self.backend.load()
        log.info("LLM %s (%s) loaded in %.1f s", self.backend.name, type(self.backend).__name__,
                 time.monotonic() - started)

    async def run(self, task: Task, ctx: TaskContext) -> AsyncIterator[Any]:
        inputs = task.inputs
        if not (inputs.get("topic") or inputs.get("document")):
            yield await self._script.run(task, ctx)
            return
        if self.backend is None:
            try:
                await ctx.in_thread(self.load)
            except MissingCheckpoint as exc:
                raise TaskError(str(exc), retryable=False) from None
        async for item in self._write(task, inputs):
            yield item

    async def _write(self, task: Task, inputs: dict) -> AsyncIterator[Any]:
        backend = self.backend
        resume = inputs.get("resume")
        jsonl = getattr(backend, "jsonl", False)        # constrains to JSON Lines (transformers scaffold)
        structured = backend.structured and (jsonl or not resume)
        parser = ScreenplayStream.resumed(resume)
        sent = len(parser.lines)
        direction = inputs.get("direction")
        # a steered continuation writes a few lines after the kept ones; the schema counts the resumed lines too
        lines = (sent + CONTINUATION_LINES[0], sent + CONTINUATION_LINES[1]) if direction else self.lines
        messages = build_messages(inputs.get("topic"), inputs.get("document"), structured=structured and not jsonl,
                                  min_lines=lines[0], max_lines=lines[1], direction=direction)
        # a retry continues the screenplay after the lines already received, as JSON Lines
        prefix = resume_prefix(resume) if resume else ""
        schema = screenplay_schema(lines[0], lines[1]) if structured else None
        temperature = RETRY_TEMPERATURE if task.attempt > 0 and not direction else 0.0
        stats = GenerationStats()
        started = time.monotonic()
        first_line_s = None
        published = (None, None, 0)
        async for chunk in _in_thread(lambda: backend.stream(messages, max_tokens=self.max_tokens,
                                                             temperature=temperature, json_schema=schema,
                                                             prefix=prefix, stats=stats)):
            parser.feed(chunk)
            if len(parser.lines) > sent and first_line_s is None:
                first_line_s = time.monotonic() - started
            now = (parser.studio, parser.title, len(parser.speakers))
            if len(parser.lines) > sent or now != published:
                yield Partial(_outputs(parser, sent))
                sent, published = len(parser.lines), now
        parser.close()
        if parser.malformed:
            log.warning("%s: skipped %d malformed screenplay object(s), e.g. %s", task.node_id, parser.malformed,
                        "; ".join(parser.samples[:2]))
        resumed = len((resume or {}).get("lines") or ())
        if direction and len(parser.lines) == resumed:
            raise TaskError(f"the LLM ({backend.name}) wrote no usable line continuing the show after the steer "
                            f"({parser.malformed} malformed skipped)")
        if len(parser.lines) < MIN_LINES:
            raise TaskError(f"the LLM ({backend.name}) wrote {len(parser.lines)} usable dialogue line(s), fewer than "
                            f"{MIN_LINES} ({parser.malformed} malformed skipped"
                            + (f", e.g. {parser.samples[0]}" if parser.samples else "") + ")")
        final = _outputs(parser, sent)
        final["complete"] = True
        final["llm"] = {"backend": type(backend).__name__, "model": backend.name, "tokens": stats.tokens,
                        "seconds": round(stats.seconds, 3), "tokens_per_s": round(stats.tokens_per_s, 2),
                        "first_token_s": None if stats.first_token_s is None else round(stats.first_token_s, 3),
                        "first_line_s": None if first_line_s is None else round(first_line_s, 3),
                        "lines": len(parser.lines), "malformed": parser.malformed, "structured": schema is not None,
                        "resumed_lines": resumed, "direction": direction,
                        "after_line": inputs.get("after_line")}
        log.info("screenplay %s: %s", task.request_id, final["llm"])
        yield final


def _outputs(parser: ScreenplayStream, since: int) -> dict[str, Any]:
    """The screenplay's state with the lines from index ``since`` on (each keyed by its index)."""
    out = {"title": parser.title, "studio": parser.studio, "speakers": list(parser.speakers), "host": parser.host,
           "lines": [{"index": i, "speaker": s, "text": t, "pieces": split_text(t, MAX_PIECE_CHARS, FIRST_PIECE_CHARS)}
                     for i, (s, t) in enumerate(parser.lines) if i >= since]}
    if parser.voices:   # the voice the LLM gave a character, per speaker (None where it gave none)
        out["voices"] = [parser.voices.get(name) for name in parser.speakers]
    if parser.looks:    # the look the LLM gave a character, per speaker (None where it gave none)
        out["looks"] = [parser.looks.get(name) for name in parser.speakers]
    return out


async def _in_thread(make_iter) -> AsyncIterator[str]:
    """Iterate a blocking iterator (``make_iter()``) in a thread, yielding its items here as
    they come. Closing this generator early stops the iterator at its next item."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()
    done = object()

    def pump() -> None:
        try:
            it = make_iter()
            for item in it:
                loop.call_soon_threadsafe(queue.put_nowait, item)
                if stop.is_set():
                    it.close()
                    break
            loop.call_soon_threadsafe(queue.put_nowait, done)
        except BaseException as exc:   # handed to the consumer
            loop.call_soon_threadsafe(queue.put_nowait, exc)

    threading.Thread(target=pump, name="sw-llm-stream", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            if item is done:
                return
            if isinstance(item, LlmError):
                raise TaskError(str(item)) from None
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
