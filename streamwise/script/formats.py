"""Helpers for :mod:`streamwise.script`: WebVTT, SRT and JSON.

Every parser here turns source text into a :class:`Draft`: metadata plus a list of
:class:`RawLine` (speaker label as written, cleaned text, 1-based source line).
Problems are raised as :class:`FormatError` (line + message, no path); the public
:func:`streamwise.script.parse_script` turns those into ``ScriptError`` with the path.
Text cleaning and speaker labels come from :mod:`streamwise.script.text`.

All regular expressions use bounded or negated character classes, so no input can
make them backtrack catastrophically (a 1 MB script parses in well under a second).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from streamwise.core.looks import look_text
from streamwise.script.text import DIRECTIONS, clean_text, normalise_text, plausible_label, snippet, speaker_key, split_label


class FormatError(Exception):
    """A parse problem at a 1-based ``line`` (0 when unknown); the caller adds the path."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class RawLine(NamedTuple):
    """One stretch of dialogue before speaker names are normalised."""

    speaker: str
    text: str
    line: int


@dataclass
class Draft:
    """What a format parser found; ``merge`` joins consecutive same-speaker lines."""

    title: str | None = None
    studio: str | None = None
    characters: list[tuple[str, str]] = field(default_factory=list)
    lines: list[RawLine] = field(default_factory=list)
    merge: bool = False
    notices: list[tuple[int, str]] = field(default_factory=list)  # (1-based line, message)
    voices: dict[str, str] = field(default_factory=dict)  # speaker as written -> the voice it names


VOICE_IN_TEXT = re.compile(r"[(\[,;]?\s*\bvoice\s*[:=]\s*([A-Za-z][\w.@-]{0,30})\s*[)\]]?", re.IGNORECASE)


def take_voice(description: str) -> tuple[str, str | None]:
    """``"the host, voice: heart"`` -> ("the host", "heart"): a voice named in a cast description."""
    match = VOICE_IN_TEXT.search(description)
    if not match:
        return description, None
    rest = (description[: match.start()] + description[match.end():]).strip(" ,;")
    return rest, match.group(1)


# --------------------------------------------------------------------------- WebVTT and SRT

NARRATOR_NAME = "Narrator"
CAPTIONS_NARRATION = ("no speaker in any caption (no <v Speaker> tags or 'Speaker:' prefixes): read as a "
                      "one-speaker narration by 'Narrator'")

_VOICE = re.compile(r"<v(?:\.[^\s<>]*)?(?:[ \t]+([^<>]*))?>|</v\s*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[^<>]{0,300}>|\{\\[^{}]{0,100}\}")
_VTT_SKIP = ("NOTE", "STYLE", "REGION")


def blocks(lines: list[str]) -> list[list[tuple[int, str]]]:
    """Group lines into blank-line separated blocks of (1-based line number, text)."""
    out: list[list[tuple[int, str]]] = []
    block: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            block.append((number, line))
        elif block:
            out.append(block)
            block = []
    if block:
        out.append(block)
    return out


class _Captions:
    """Shared state for subtitle formats: who spoke last and which names were seen."""

    def __init__(self) -> None:
        self.draft = Draft(merge=True)
        self.speaker: str | None = None
        self.known: set[str] = set()
        self.unplaced: list[RawLine] = []

    def set_speaker(self, name: str) -> None:
        self.speaker = name
        self.known.add(speaker_key(name))

    def attribute(self, number: int, text: str) -> None:
        """Unvoiced caption text: a ``Speaker:`` / ``[Speaker]`` / ``- Speaker:`` prefix, else continue."""
        body = _ANY_TAG.sub(" ", text).strip()
        if body[:1] in ("-", "\u2013", "\u2014") and (body[1:2] == " " or body[1:2].isalpha()):
            body = body[1:].lstrip()  # subtitle dialogue dash
        label = split_label(body, bare_bracket=True)
        if (label and label.rest and label.kind in ("colon", "bold", "bracket", "bare")
                and plausible_label(label, self.known, new_bare=True)):
            self.set_speaker(label.name)
            body = label.rest
        self.emit(number, self.speaker, body)

    def emit(self, number: int, who: str | None, text: str) -> None:
        cleaned = clean_text(_ANY_TAG.sub(" ", text))
        if not cleaned or cleaned.casefold().strip(" .!") in DIRECTIONS:
            return  # "<i>Laughs</i>": a caption of a sound, not speech
        if who is None:
            self.unplaced.append(RawLine(NARRATOR_NAME, cleaned, number))
            return
        self.draft.lines.append(RawLine(who, cleaned, number))

    def finish(self) -> Draft:
        """Captions before anyone is named are reported; captions that name nobody at all (plain film
        subtitles) are one-speaker narration, as a text with no labels is."""
        if self.unplaced and not self.draft.lines:
            self.draft.lines.extend(self.unplaced)
            self.draft.notices.append((self.unplaced[0].line, CAPTIONS_NARRATION))
        else:
            self.draft.notices.extend(
                (raw.line, f"not placed: caption with no speaker (no <v Speaker> tag or 'Speaker:' prefix) "
                           f"before any speaker is named, not spoken: {snippet(raw.text)}") for raw in self.unplaced)
        return self.draft


def parse_vtt(lines: list[str]) -> Draft:
    """Parse WebVTT: voice tags name speakers; unvoiced cues continue the previous speaker."""
    cap = _Captions()
    for index, block in enumerate(blocks(lines)):
        first = block[0][1].strip()
        if index == 0 and first.startswith("WEBVTT"):
            cap.draft.title = normalise_text(first[6:].strip(" \t-:")) or None
            continue
        if first.split(None, 1)[0] in _VTT_SKIP:
            continue
        timing = next((i for i, (_, line) in enumerate(block) if "-->" in line), None)
        if timing is not None:
            _vtt_cue(cap, block[timing + 1:])
    return cap.finish()


def _vtt_cue(cap: _Captions, payload: list[tuple[int, str]]) -> None:
    voice: str | None = None  # an open <v> span lasts to its </v> or the end of the cue
    for number, raw in payload:
        pos = 0
        for match in _VOICE.finditer(raw):
            _vtt_text(cap, number, raw[pos:match.start()], voice)
            if match.group(0).startswith("</"):
                voice = None
            else:
                name = " ".join((match.group(1) or "").split())
                if name:
                    cap.set_speaker(name)
                voice = cap.speaker or name or None
            pos = match.end()
        _vtt_text(cap, number, raw[pos:], voice)


def _vtt_text(cap: _Captions, number: int, text: str, voice: str | None) -> None:
    if not text.strip():
        return
    if voice:
        cap.emit(number, voice, text)
    else:
        cap.attribute(number, text)


def parse_srt(lines: list[str]) -> Draft:
    """Parse SRT: numbered blocks with a timing line; speakers come from ``<v Speaker>`` voice tags (as in
    WebVTT) or text prefixes (``Speaker:``, ``[SPEAKER]``, ``- Speaker:``)."""
    cap = _Captions()
    for block in blocks(lines):
        timing = next((i for i, (_, line) in enumerate(block[:3]) if "-->" in line), None)
        if timing is not None:
            block = block[timing + 1:]
        elif all(line.strip().isdigit() for _, line in block):
            continue
        _vtt_cue(cap, block)   # SubRip players read WebVTT's <v Speaker> voice tags too
    return cap.finish()


# --------------------------------------------------------------------------- JSON / JSON Lines

_SPEAKER_KEYS = ("speaker", "character", "name", "who", "role", "persona")
_TEXT_KEYS = ("text", "line", "content", "dialogue", "dialog", "utterance", "speech", "says", "message")
_LIST_KEYS = ("scenes", "lines", "dialogue", "dialog", "script", "turns", "utterances", "segments",
              "transcript", "conversation", "messages", "exchanges", "entries", "items")
_TITLE_KEYS = ("title", "episode_title", "podcast_title", "show_title")
_STUDIO_KEYS = ("studio", "setting", "studio_description", "setting_description", "location", "set",
                "environment", "scene")
_CAST_KEYS = ("characters", "cast", "speakers", "hosts", "participants", "personas", "looks")
_DESC_KEYS = ("role", "description", "desc", "persona", "bio", "about", "personality", "appearance", "look")
_SKIP_TYPES = frozenset("direction stage_direction action sfx music note comment pause sound".split())


def _norm_key(key: Any) -> str:
    return str(key).strip().casefold().replace("-", "_").replace(" ", "_")


def _first_str(obj: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _describe(value: Any) -> str:
    """A description from a string, or from the descriptive fields of an object."""
    if isinstance(value, str):
        return normalise_text(value)
    if isinstance(value, dict):
        obj = {_norm_key(k): v for k, v in value.items()}
        parts = [obj[k] if isinstance(obj[k], str) else look_text(obj[k]) for k in (*_DESC_KEYS, "prompt", "text")
                 if isinstance(obj.get(k), (str, dict))]   # a structured look, e.g. {"hair": "grey"}, as text
        return normalise_text("; ".join(dict.fromkeys(p.strip() for p in parts if p.strip())))
    return ""


class _JsonWalker:
    """Walks any of the lenient JSON shapes, collecting metadata and dialogue in order."""

    def __init__(self, text: str) -> None:
        self.draft = Draft()
        self.text = text
        self.cursor = 0
        self.cursor_line = 1
        self.speaker: str | None = None
        self.known: set[str] = set()
        self.misses = 0

    def item(self, value: Any, line: int | None) -> None:
        if isinstance(value, dict):
            self.obj(value, line)
        elif isinstance(value, list):
            for entry in value:
                self.item(entry, line)
        elif isinstance(value, str):
            self.string(value, line)

    def obj(self, raw: dict[Any, Any], line: int | None) -> None:
        obj = {_norm_key(k): v for k, v in raw.items()}
        if len(obj) == 1 and isinstance(next(iter(raw.values())), str):
            key = next(iter(raw))
            if _norm_key(key) not in _TEXT_KEYS + _TITLE_KEYS + _STUDIO_KEYS + _SPEAKER_KEYS:
                return self.add(str(key), next(iter(raw.values())), line)  # {"Ada": "Hello"}
        self.meta(obj)
        text = _first_str(obj, _TEXT_KEYS)
        kind = obj.get("type")
        if text is not None and not (isinstance(kind, str) and _norm_key(kind) in _SKIP_TYPES):
            self.add(_first_str(obj, _SPEAKER_KEYS), text, line)
        for key in _LIST_KEYS:
            if isinstance(obj.get(key), (list, dict)):
                self.item(obj[key], line)

    def meta(self, obj: dict[str, Any]) -> None:
        title = _first_str(obj, _TITLE_KEYS)
        if title and self.draft.title is None:
            self.draft.title = normalise_text(title) or None
        for key in _STUDIO_KEYS:
            studio = _describe(obj.get(key))
            if studio and self.draft.studio is None:
                self.draft.studio = studio
        for key in _CAST_KEYS:
            self.cast(obj.get(key))

    def cast(self, value: Any) -> None:
        if isinstance(value, dict):
            entries = [(str(name), desc) for name, desc in value.items()]
        elif isinstance(value, list):
            entries = []
            for entry in value:
                if isinstance(entry, str):
                    entries.append((entry, ""))
                elif isinstance(entry, dict):
                    obj = {_norm_key(k): v for k, v in entry.items()}
                    name = _first_str(obj, ("name", "speaker", "character", "id"))
                    if name:
                        entries.append((name, obj))
        else:
            return
        for name, desc in entries:
            self.known.add(speaker_key(name))
            voice = desc.get("voice") if isinstance(desc, dict) else None
            described, named = take_voice(_describe(desc))
            if isinstance(voice, str) and voice.strip():
                named = voice.strip()
            if named:
                self.draft.voices[name.strip()] = named
            self.draft.characters.append((name.strip(), described))

    def string(self, value: str, line: int | None) -> None:
        label = split_label(value.strip())
        if label and label.rest and label.kind != "alone" and plausible_label(label, self.known):
            self.add(label.name, label.rest, line)
        else:
            self.add(None, value, line)

    def add(self, speaker: str | None, text: str, line: int | None) -> None:
        number = line if line is not None else self.locate(text)
        cleaned = clean_text(text)
        if speaker is not None and speaker.strip():
            self.speaker = speaker.strip()
            self.known.add(speaker_key(self.speaker))
        if not cleaned:
            return
        if self.speaker is None:
            raise FormatError(number, f"dialogue entry has no speaker: {snippet(cleaned)}")
        self.draft.lines.append(RawLine(self.speaker, cleaned, number))

    def locate(self, text: str) -> int:
        """Best-effort source line of a JSON string value, scanning forward through the text.

        Values written with unusual escapes are not found; after a few misses the search
        stops (each miss scans the rest of the document) and the last line found is used.
        """
        if self.misses > 16:
            return self.cursor_line
        for ascii_only in (False, True):
            needle = '"' + json.dumps(text, ensure_ascii=ascii_only)[1:61]
            pos = self.text.find(needle, self.cursor)
            if pos >= 0:
                self.cursor_line += self.text.count("\n", self.cursor, pos)
                self.cursor = pos
                return self.cursor_line
        self.misses += 1
        return self.cursor_line


def parse_json(lines: list[str]) -> Draft:
    """Parse a JSON screenplay (object or list) or JSON Lines (one object per line)."""
    lines = _strip_fence(lines)
    text = "\n".join(lines)
    try:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            return _parse_jsonl(lines, err)
        walker = _JsonWalker(text)
        walker.item(value, None)
    except RecursionError:
        raise FormatError(1, "JSON is nested too deeply") from None
    return walker.draft


def _parse_jsonl(lines: list[str], whole_error: json.JSONDecodeError) -> Draft:
    walker = _JsonWalker("")
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    for index, (number, line) in enumerate(numbered):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            # a bad first line means this is not JSON Lines either: report the whole-document error
            error, base = (whole_error, 1) if index == 0 else (err, number)
            raise FormatError(base + error.lineno - 1,
                              f"invalid JSON: {error.msg} (column {error.colno})") from None
        walker.item(value, number)
    return walker.draft


def _strip_fence(lines: list[str]) -> list[str]:
    """Blank out a Markdown code fence around JSON (keeps line numbers)."""
    starts = [i for i, line in enumerate(lines) if line.strip()]
    if len(starts) >= 2 and lines[starts[0]].lstrip().startswith("```"):
        lines = list(lines)
        lines[starts[0]] = ""
        if lines[starts[-1]].strip().startswith("```"):
            lines[starts[-1]] = ""
    return lines
