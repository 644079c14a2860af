"""Parse podcast scripts a person wrote into a :class:`Screenplay`.

Accepted formats (``fmt``): ``"text"`` (``Speaker: line``, play style ``ALICE. line``,
screenplay style names on their own line, Markdown bold labels), ``"vtt"`` (WebVTT with
``<v Speaker>`` voice tags), ``"srt"`` (SubRip with ``Speaker:`` prefixes) and ``"json"``
(a JSON screenplay, a bare list of lines, or JSON Lines as an LLM streams them).

Every spoken line is cleaned for a TTS engine: stage directions (``[laughs]``,
``(pause)``, ``*sighs*``) removed, quotes/dashes/ellipses/spaces normalised, HTML
entities unescaped and whitespace collapsed. Speaker labels that differ only in case
(``ALICE``, ``alice``, ``Alice``) are one speaker, shown as first written, title-cased
when it was written in one case (``ALICE`` -> ``Alice``, ``dr. bob`` -> ``Dr. Bob``).

Problems raise :class:`ScriptError`, whose text is ``"{path}:{line}: {message}"``.
"""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from streamwise.script.formats import Draft, FormatError, parse_json, parse_srt, parse_vtt
from streamwise.script.plain import NARRATOR, parse_text
from streamwise.script.text import clean_text, drop_paren, speaker_key

__all__ = ["FORMATS", "NARRATOR", "Line", "Screenplay", "ScriptError", "clean_text", "detect_format",
           "display_name", "load_script", "parse_script", "read_script_file"]

FORMATS = ("text", "vtt", "srt", "json")
NO_DIALOGUE = ("no dialogue found: expected 'Speaker: line' text, WebVTT with <v Speaker> tags, "
               "SRT with 'Speaker:' prefixes, or a JSON screenplay")


@dataclass(frozen=True, slots=True)
class Line:
    """One spoken dialogue line."""

    index: int  # 0-based position in the screenplay
    speaker: str  # display name, normalised
    text: str  # what is spoken: directions removed, whitespace collapsed, quotes/dashes normalised
    source_line: int  # 1-based line number in the source file where this line starts


@dataclass(frozen=True, slots=True)
class Screenplay:
    """A parsed script: metadata plus dialogue lines in order."""

    title: str | None
    studio: str | None  # description of the studio / setting if the script gives one
    speakers: tuple[str, ...]  # distinct speakers in order of first appearance
    lines: tuple[Line, ...]
    characters: dict[str, str] = field(default_factory=dict)  # speaker -> description
    # what the reader could not place or chose for itself, each "path:line: message" (a line it
    # read as a stage direction, front matter it skipped, a text read as one-speaker narration)
    notices: tuple[str, ...] = ()
    voices: dict[str, str] = field(default_factory=dict)  # speaker -> the voice the script names for it


class ScriptError(ValueError):
    """A script that cannot be understood. ``str(err) == f"{path}:{line}: {message}"``."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message

    def __reduce__(self) -> tuple[type[ScriptError], tuple[str, int, str]]:
        return (type(self), (self.path, self.line, self.message))


# --------------------------------------------------------------------------- public API

_FORMAT_ALIASES = {"txt": "text", "md": "text", "markdown": "text", "webvtt": "vtt",
                   "subrip": "srt", "jsonl": "json", "ndjson": "json"}
_SUFFIXES = {".vtt": "vtt", ".webvtt": "vtt", ".srt": "srt", ".json": "json", ".jsonl": "json",
             ".ndjson": "json"}


def parse_script(text: str, *, path: str = "<script>", fmt: str | None = None) -> Screenplay:
    """Parse script ``text`` into a :class:`Screenplay`.

    ``fmt`` is one of ``"text"``, ``"vtt"``, ``"srt"``, ``"json"``; ``None`` detects it from
    the content and the suffix of ``path``. Raises :class:`ScriptError` naming ``path``.
    """
    path = os.fsdecode(path)
    lines = _prepare(text, path)
    kind = _resolve_format(fmt, text, path)
    parser = {"text": parse_text, "vtt": parse_vtt, "srt": parse_srt, "json": parse_json}[kind]
    try:
        draft = parser(lines)
    except FormatError as err:
        raise ScriptError(path, err.line, err.message) from None
    play = _assemble(draft, path)
    if not play.lines:
        raise ScriptError(path, 0, NO_DIALOGUE)
    return play


def load_script(path: str | os.PathLike[str], fmt: str | None = None) -> Screenplay:
    """Read a script file (UTF-8, BOM tolerated; UTF-16 with BOM too) and parse it.

    A missing or unreadable file, or bytes that are not text, raise :class:`ScriptError`.
    """
    name = os.fsdecode(path)
    return parse_script(_decode(read_script_file(name), name), path=name, fmt=fmt)


def read_script_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a script file.

    Raises:
        ScriptError: the file is missing, a directory or unreadable (one line naming it).
    """
    name = os.fsdecode(path)
    try:
        return Path(name).read_bytes()
    except FileNotFoundError:
        raise ScriptError(name, 0, "no such file") from None
    except IsADirectoryError:
        raise ScriptError(name, 0, "is a directory, not a script file") from None
    except OSError as err:
        raise ScriptError(name, 0, f"cannot read file: {err.strerror or err}") from None


def detect_format(text: str, path: str | None = None) -> str:
    """Guess the format of ``text``: ``"vtt"``, ``"srt"``, ``"json"`` or ``"text"``."""
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("WEBVTT"):
        return "vtt"
    suffix = os.path.splitext(path)[1].lower() if path else ""
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if head.startswith(("{", "```json", "```JSON")) or _json_list(head):
        return "json"
    first = [line.strip() for line in head[:400].splitlines()[:2]]
    if first and "-->" in first[0]:
        return "srt" if "," in first[0] else "vtt"
    if len(first) == 2 and first[0].isdigit() and "-->" in first[1]:
        return "srt"
    return "text"


def display_name(label: str) -> str:
    """The display form of a speaker label: mixed case kept, one-case labels title-cased."""
    name = " ".join(drop_paren(label).strip(" \t*_[]:").split()) or " ".join(label.split())
    letters = [c for c in name if c.isalpha()]
    if any(c.isupper() for c in letters) and any(c.islower() for c in letters):
        return name
    words = name.split()
    return " ".join(_title_word(w, i, len(words)) for i, w in enumerate(words))


_ACRONYMS = frozenset("AI DJ MC TV CEO CTO CFO COO GPT NPC HR PR QA UK US USA EU UN NASA FBI CIA BBC "
                      "CNN NPR VO OS PC".split())
_ROMAN = re.compile(r"(?=[MDCLXVI])M{0,3}(C[MD]|D?C{0,3})(X[CL]|L?X{0,3})(I[XV]|V?I{0,3})")
_LOWER_PARTICLES = frozenset("de da del della der di du la le van von den bin ibn".split())


def _title_word(word: str, index: int, count: int) -> str:
    upper = word.upper()
    if upper.rstrip(".") in _ACRONYMS or (index > 0 and _ROMAN.fullmatch(upper)):
        return upper
    if 0 < index < count - 1 and word.casefold() in _LOWER_PARTICLES:
        return word.lower()
    return "-".join(_capitalise(part) for part in word.lower().split("-"))


def _capitalise(part: str) -> str:
    if not part:
        return part
    part = part[0].upper() + part[1:]
    if len(part) > 2 and part[1] in "'\u2019":  # O'Brien, D'Angelo
        part = part[:2] + part[2].upper() + part[3:]
    return part


# --------------------------------------------------------------------------- input handling


def decode_script(data: bytes, name: str) -> str:
    """The text of a script file's bytes: UTF-8 (with or without BOM), UTF-16/32 (by BOM, or without one as
    charset-normalizer detects it), or another encoding (Latin-1, Windows-1252, ...) as detected by charset-normalizer.

    Raises:
        ScriptError: the bytes are not text in any encoding (binary data), naming ``name``.
    """
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                raise ScriptError(name, 0, f"not valid {codec.upper()} text") from None
    if b"\x00" in data and (wide := _bomless_wide(data)) is not None:
        return wide
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        utf8_error = f"not UTF-8 text: cannot decode byte 0x{data[err.start]:02x} at offset {err.start}"
    if b"\x00" not in data:
        from charset_normalizer import from_bytes

        # ties (short texts fit several code pages equally) go to Windows-1252, the superset of
        # Latin-1 that Western European texts are most often in
        western = ("cp1252", "latin_1", "iso8859_1", "iso8859_15")
        matches = sorted(from_bytes(data), key=lambda m: (round(m.chaos, 3), -round(m.coherence, 3),
                                                          m.encoding not in western))
        if matches:
            # Latin-1 / Windows-1252 are by far the most common 8-bit encodings of scripts; a Mac or
            # Central European code page only a little less "chaotic" on a short French text
            # (mac_latin2 reads the È of MOLIÈRE as a quote mark) does not beat them
            best = matches[0].chaos
            if any(m.encoding in western and m.chaos <= best + 0.03 for m in matches):
                try:
                    return data.decode("cp1252")
                except UnicodeDecodeError:
                    return data.decode("latin-1")
            return str(matches[0])
    raise ScriptError(name, line, f"{utf8_error}, and no other text encoding fits (binary data?)")


_decode = decode_script


def _bomless_wide(data: bytes) -> str | None:
    """UTF-16 / UTF-32 text saved without a BOM (some Windows tools), as charset-normalizer detects it; ``None``
    for anything else, binary data included (its decoding would hold control characters)."""
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=["utf_16_le", "utf_16_be", "utf_32_le", "utf_32_be"]).best()
    if best is None:
        return None
    text = str(best)
    printable = sum(c.isprintable() or c in "\t\n\r" for c in text)
    return text if text and "\x00" not in text and printable >= 0.98 * len(text) else None


def _prepare(text: str, path: str) -> list[str]:
    """Strip a BOM, normalise newlines, refuse binary data; returns the source lines."""
    if not isinstance(text, str):
        raise TypeError(f"script text must be str, not {type(text).__name__}")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    nul = text.find("\x00")
    if nul >= 0:
        raise ScriptError(path, text.count("\n", 0, nul) + 1, "binary data, not a text script")
    return text.split("\n")


def _resolve_format(fmt: str | None, text: str, path: str) -> str:
    if fmt is None:
        return detect_format(text, None if path == "<script>" else path)
    kind = _FORMAT_ALIASES.get(fmt.lower(), fmt.lower())
    if kind not in FORMATS:
        raise ValueError(f"unknown script format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return kind


def _json_list(head: str) -> bool:
    """``[{...`` / ``["...`` / ``[]`` is JSON; ``[Alice]: hi`` is a text label."""
    return head.startswith("[") and head[1:].lstrip()[:1] in ("{", "[", '"', "]")


def _assemble(draft: Draft, path: str = "<script>") -> Screenplay:
    """Normalise speaker names, merge where the format asks for it, number the lines."""
    names: dict[str, str] = {}

    def display(label: str) -> str:
        key = speaker_key(label) or label
        return names.setdefault(key, display_name(label))

    for name, _ in draft.characters:
        display(name)
    merged: list[tuple[str, list[str], int]] = []
    for raw in draft.lines:
        who = display(raw.speaker)
        if draft.merge and merged and merged[-1][0] == who:
            merged[-1][1].append(raw.text)
        else:
            merged.append((who, [raw.text], raw.line))
    lines = tuple(Line(i, who, " ".join(parts), start) for i, (who, parts, start) in enumerate(merged))
    characters: dict[str, str] = {}
    for name, desc in draft.characters:    # a speaker described twice (a cast entry and a ``looks`` map): both
        if desc and desc not in characters.get(display(name), "").split("; "):
            characters[display(name)] = "; ".join(filter(None, (characters.get(display(name)), desc)))
    voices = {display(name): voice for name, voice in draft.voices.items()}
    return Screenplay(title=draft.title, studio=draft.studio,
                      speakers=tuple(dict.fromkeys(line.speaker for line in lines)),
                      lines=lines, characters=characters, voices=voices,
                      notices=tuple(f"{path}:{line}: {message}" for line, message in draft.notices))
