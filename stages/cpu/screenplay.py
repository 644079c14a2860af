"""Screenplay stage, script path: parse the user's script into speakers and lines.

The LLM path (a topic in, a screenplay streamed out) plugs in behind the same stage
boundary in a later issue. Each line is split into speakable pieces here, so the DAG can
speak and render a long line in pieces and the first segment never waits for it whole.
"""

from __future__ import annotations

from typing import Any

from ...bus.messages import Task
from ...script import ScriptError, parse_script
from ..runtime.base import TaskContext, TaskError
from .speech import FIRST_PIECE_CHARS, split_text

MAX_PIECE_CHARS = 180


class ScriptScreenplay:
    """Stage ``screenplay``, model ``script-parser``: plain text, WebVTT, SRT or JSON screenplay.

    Task inputs: ``script`` (text) or ``script_ref`` (object-store name), ``format`` (or
    ``None`` to detect), ``name`` (file name used in error messages).
    Outputs: ``title``, ``studio`` (description or ``None``), ``speakers`` (names in order
    of appearance), ``lines``: ``[{"speaker": index, "pieces": [text, ...]}]``.
    Raises :class:`TaskError` (not retryable) naming file and line for a script it cannot read.
    """

    stage = "screenplay"
    model = "script-parser"

    def load(self) -> None:
        pass

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        inputs = task.inputs
        text = inputs.get("script")
        if text is None:
            try:
                text = (await ctx.bus.get_blob(inputs["script_ref"])).decode("utf-8", errors="replace")
            except KeyError as exc:
                raise TaskError(str(exc), retryable=False) from None
        try:
            screenplay = await ctx.in_thread(parse_script, text, path=inputs.get("name") or "script",
                                             fmt=inputs.get("format"))
        except ScriptError as exc:
            raise TaskError(str(exc), retryable=False) from None
        index = {name: i for i, name in enumerate(screenplay.speakers)}
        lines = [{"speaker": index[line.speaker],
                  "pieces": split_text(line.text, MAX_PIECE_CHARS, FIRST_PIECE_CHARS)} for line in screenplay.lines]
        return {"title": screenplay.title, "studio": screenplay.studio, "speakers": list(screenplay.speakers),
                "lines": lines}
