"""Screenplay stage, script path: parse the user's script into speakers and lines.

The LLM path (a topic in, a screenplay streamed out) plugs in behind the same stage
boundary in a later issue. Each line is split into speakable pieces here, so the DAG can
speak and render a long line in pieces and the first segment never waits for it whole.
"""

from __future__ import annotations

from typing import Any

from ...bus.limits import LIMITS, Limits
from ...bus.messages import Task
from ...core.deadlines import sketch_duration_s
from ...core.quotas import load_quotas
from ...script import Screenplay, ScriptError, decode_script, parse_script
from ..runtime.base import TaskContext, TaskError
from .speech import FIRST_PIECE_CHARS, parse_voice, split_opening, split_text

MAX_PIECE_CHARS = 180


def check_script_limits(play: Screenplay, path: str, limits: Limits = LIMITS) -> None:
    """Refuse a parsed script over a limit of ``configs/limits.yaml`` (``script:``): spoken
    turns, speakers, characters in one turn, estimated speech (2.5 words/s) of the show; and
    a voice the cast names that is not one of the offline voices (:func:`~.speech.parse_voice`).

    Raises:
        ScriptError: the first limit exceeded, with ``path:line`` where one line is to blame.
    """
    if len(play.lines) > limits.script_lines:
        raise ScriptError(path, play.lines[limits.script_lines].source_line,
                          f"{len(play.lines):,} spoken lines, over the limit of {limits.script_lines:,}")
    if len(play.speakers) > limits.script_speakers:
        first = next(line for line in play.lines if line.speaker == play.speakers[limits.script_speakers])
        raise ScriptError(path, first.source_line, f"{len(play.speakers)} speakers, over the limit of "
                                                   f"{limits.script_speakers}")
    for line in play.lines:
        if len(line.text) > limits.script_line_chars:
            raise ScriptError(path, line.source_line, f"a line of {len(line.text):,} characters, over the limit "
                                                      f"of {limits.script_line_chars:,} (split it into turns)")
    for speaker, voice in play.voices.items():
        try:
            parse_voice(voice)
        except ValueError as exc:
            first = next((line.source_line for line in play.lines if line.speaker == speaker), 0)
            raise ScriptError(path, first, f"{speaker}: {exc}") from None
    spoken = sum(sketch_duration_s(line.text) for line in play.lines)
    if spoken > limits.script_spoken_s:
        raise ScriptError(path, 0, f"about {spoken / 3600:.1f} h of speech, over the limit of "
                                   f"{limits.script_spoken_s / 3600:g} h")


def screenplay_outputs(screenplay: Screenplay) -> dict[str, Any]:
    """The screenplay stage's outputs for a parsed script: ``title``, ``studio``, ``speakers``
    (names in order of appearance), ``looks`` (per speaker, what the cast says of them, when it
    says anything), ``lines`` (``[{"speaker": index, "pieces": [text, ...]}]``,
    each line split into speakable pieces of at most :data:`MAX_PIECE_CHARS` characters, the
    first piece shorter, the show's very first one a sentence or clause when it can be, see
    :func:`~.speech.split_opening`) and ``voices`` when the cast names any. The simulator
    (:mod:`streamwise.sim.plans`) builds its screenplays with this too."""
    index = {name: i for i, name in enumerate(screenplay.speakers)}
    lines = [{"speaker": index[line.speaker],
              "pieces": (split_opening if i == 0 else split_text)(line.text, MAX_PIECE_CHARS, FIRST_PIECE_CHARS)}
             for i, line in enumerate(screenplay.lines)]
    out = {"title": screenplay.title, "studio": screenplay.studio, "speakers": list(screenplay.speakers),
           "lines": lines}
    if screenplay.voices:   # the voice a speaker is given by name in the script's cast
        out["voices"] = [screenplay.voices.get(name) for name in screenplay.speakers]
    if screenplay.characters:   # what the cast says of a speaker: their look (streamwise.core.looks)
        out["looks"] = [screenplay.characters.get(name) for name in screenplay.speakers]
    return out


class ScriptScreenplay:
    """Stage ``screenplay``, model ``script-parser``: plain text, WebVTT, SRT or JSON screenplay.

    Task inputs: ``script`` (text) or ``script_ref`` (name in the tenant's upload store ``sw_uploads_<tenant>``), ``format`` (or
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
                # the tenant's own upload store: the tenant is the one the scheduler read from
                # the request's subject, so a request cannot name another tenant's upload
                data = await ctx.bus.get_upload(task.tenant, inputs["script_ref"])
            except KeyError as exc:
                raise TaskError(str(exc), retryable=False) from None
            if len(data) > LIMITS.script_bytes:
                raise TaskError(f"script: {len(data):,} bytes, over the limit of {LIMITS.script_bytes:,} bytes",
                                retryable=False)
            largest = load_quotas().of(task.tenant).script_bytes   # the tenant's quota (an inline
            if 0 < largest < len(data):                            # script is checked at admission)
                raise TaskError(f"quota: script of {len(data):,} bytes is over tenant {task.tenant}'s largest "
                                f"script of {largest:,} bytes", retryable=False)
        name = inputs.get("name") or "script"
        try:
            if text is None:
                text = decode_script(data, name)
            screenplay = await ctx.in_thread(parse_script, text, path=name, fmt=inputs.get("format"))
            check_script_limits(screenplay, name)
        except ScriptError as exc:
            raise TaskError(str(exc), retryable=False) from None
        return screenplay_outputs(screenplay)
