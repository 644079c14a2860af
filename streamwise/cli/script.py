"""``streamwise script FILE``: show how a script is read before a show is generated (issue 12).

Prints who says what: for every spoken turn its speaker, the source line it starts on, its first
words and an estimate of its spoken duration; then each speaker's share, and every notice of the
reader (a paragraph it could not give to a speaker, front matter it skipped, a text read as
one-speaker narration), each as ``file:line: ...``. Each speaker's line gives the voice it will
have on the CPU tier (the cast's ``voice:``, else the default by order of appearance). The durations are the scheduler's own sketch
before TTS has run (:func:`streamwise.core.deadlines.sketch_duration_s`, 2.5 words/s), so they are
estimates, not the TTS's timing.

Exit status: 0 when the script reads (notices do not fail it, unless ``--strict``), 1 when it does
not (:class:`streamwise.script.ScriptError`: no dialogue, not text, over a limit of
``configs/limits.yaml``), with the one-line reason on stderr; 3 with ``--strict`` and any notice.
``--json`` prints the same as one JSON object (``turns``: speaker, line, text, est_s).
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``script`` on the ``streamwise`` sub-command parser."""
    from ..script import FORMATS

    p = sub.add_parser("script", help="show how a script is read: who says what, and lines it could not place")
    p.add_argument("file", help="script file: 'Speaker: line' text, a printed play, WebVTT, SRT or JSON")
    p.add_argument("--format", choices=FORMATS, help="script format (default: detect)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--strict", action="store_true", help="exit 3 when the reader has any notice")
    p.add_argument("--width", type=int, default=60, help="characters of each turn's first words (default 60)")
    p.set_defaults(handler=cmd_script)
    return p


def read_checked(path: str, fmt: str | None = None):
    """Read, decode, parse and check ``path`` against the script limits: the same checks
    ``streamwise generate`` makes before it starts a bus or a worker.

    Returns: ``(text, screenplay)``. Raises: :class:`streamwise.script.ScriptError` naming
    ``path`` (and the line where one line is to blame).
    """
    from ..bus.limits import LIMITS
    from ..script import ScriptError, decode_script, parse_script, read_script_file
    from ..stages.cpu.screenplay import check_script_limits

    data = read_script_file(path)
    if len(data) > LIMITS.script_bytes:
        raise ScriptError(path, 0, f"{len(data):,} bytes, over the limit of {LIMITS.script_bytes:,} bytes "
                                   f"(configs/limits.yaml)")
    text = decode_script(data, path)
    if not text.strip():
        raise ScriptError(path, 0, "the script is empty")
    play = parse_script(text, path=path, fmt=fmt)
    check_script_limits(play, path)
    return text, play


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _first_words(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 1)].rstrip() + "\u2026"


def cmd_script(args) -> int:
    from ..core.deadlines import WORDS_PER_S, sketch_duration_s
    from ..script import ScriptError

    try:
        _, play = read_checked(args.file, args.format)
    except ScriptError as exc:
        print(f"streamwise script: {exc}", file=sys.stderr)
        return 1
    from ..stages.cpu.speech import voice_for

    est = [sketch_duration_s(line.text) for line in play.lines]
    total = sum(est)
    from ..workflow.cast import cast_show

    # the voice each speaker will have on the CPU tier: the one the cast names, else one that agrees with the
    # look the cast describes, else the default by how much they say (streamwise.workflow.cast, as the
    # scheduler casts a script); and the look's traits
    named = {i: v for i, name in enumerate(play.speakers) if (v := play.voices.get(name))}
    words = [sum(len(line.text.split()) for line in play.lines if line.speaker == name) for name in play.speakers]
    looks = dict(zip(play.speakers, cast_show(named, list(play.speakers), None,
                                              [[play.characters.get(name)] for name in play.speakers], words)))
    voices = {name: voice_for(i, voice=named.get(i)).label for i, name in enumerate(play.speakers)}
    if args.json:
        print(json.dumps({
            "file": args.file, "title": play.title, "studio": play.studio, "speakers": list(play.speakers),
            "characters": play.characters, "voices": voices, "looks": looks, "spoken_s_estimate": round(total, 1),
            "words_per_s": WORDS_PER_S,
            "turns": [{"speaker": line.speaker, "line": line.source_line, "text": line.text, "est_s": round(s, 1)}
                      for line, s in zip(play.lines, est)],
            "notices": list(play.notices)}, ensure_ascii=False, indent=1))
    else:
        out = sys.stdout
        out.write(f"{args.file}: {len(play.lines)} turns, {len(play.speakers)} speakers, about {_duration(total)} "
                  f"of speech (estimated at {WORDS_PER_S:g} words/s)\n")
        if play.title:
            out.write(f"title: {play.title}\n")
        if play.studio:
            out.write(f"studio: {play.studio}\n")
        name_w = max(len("speaker"), *(len(s) for s in play.speakers))
        out.write("\n" + f"{'line':>6}  {'speaker':<{name_w}}  {'est.':>8}  first words\n")
        for line, seconds in zip(play.lines, est):
            out.write(f"{line.source_line:>6}  {line.speaker:<{name_w}}  {_duration(seconds):>8}  "
                      f"{_first_words(line.text, args.width)}\n")
        out.write("\nspeakers:\n")
        for speaker in play.speakers:
            turns = [s for line, s in zip(play.lines, est) if line.speaker == speaker]
            described = f"  ({play.characters[speaker]})" if speaker in play.characters else ""
            out.write(f"  {speaker:<{name_w}}  {len(turns):>4} turns  {_duration(sum(turns)):>10}  "
                      f"voice {voices[speaker]}{described}\n")
        if play.notices:
            out.write(f"\nnotices ({len(play.notices)}):\n")
            for notice in play.notices:
                out.write(f"  {notice}\n")
    return 3 if args.strict and play.notices else 0
