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

from streamwise.script.formats import Draft, FormatError, RawLine, parse_json, parse_srt, parse_vtt
from streamwise.script.text import (
    DIRECTIONS,
    INTERJECTIONS,
    NON_NAMES,
    PARTICLES,
    TITLES,
    Label,
    clean_text,
    drop_paren,
    is_caps,
    name_words,
    normalise_text,
    plausible_label,
    snippet,
    speaker_key,
    split_label,
)

__all__ = ["FORMATS", "NARRATOR", "Line", "Screenplay", "ScriptError", "clean_text", "detect_format",
           "display_name", "load_script", "parse_script"]

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
    parser = {"text": _parse_text, "vtt": parse_vtt, "srt": parse_srt, "json": parse_json}[kind]
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
    try:
        data = Path(name).read_bytes()
    except FileNotFoundError:
        raise ScriptError(name, 0, "no such file") from None
    except IsADirectoryError:
        raise ScriptError(name, 0, "is a directory, not a script file") from None
    except OSError as err:
        raise ScriptError(name, 0, f"cannot read file: {err.strerror or err}") from None
    return parse_script(_decode(data, name), path=name, fmt=fmt)


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
    """The text of a script file's bytes: UTF-8 (with or without BOM), UTF-16/32 (by BOM), or
    another encoding (Latin-1, Windows-1252, ...) as detected by charset-normalizer.

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
    characters = {display(name): desc for name, desc in draft.characters if desc}
    return Screenplay(title=draft.title, studio=draft.studio,
                      speakers=tuple(dict.fromkeys(line.speaker for line in lines)),
                      lines=lines, characters=characters,
                      notices=tuple(f"{path}:{line}: {message}" for line, message in draft.notices))


# --------------------------------------------------------------------------- plain text

_HEADING = re.compile(r"#{1,6}(?:\s|$)")
_RULE = re.compile(r"(?:-{3,}|\*{3,}|_{3,}|={3,})")
_BULLET = re.compile(r"(?:[-*+\u2022>]|\d{1,3}[.)])\s+")
_STAMP_HEAD = re.compile(r"[\[(]?\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?[\])]?\s+")
_IGNORED_KEYS = (  # labelled lines that are notes or directions, never speech
    *("note notes author authors writer writers by date episode duration length runtime summary "
      "description synopsis logline subtitle tags genre language format version draft copyright "
      "music sfx fx sound sounds direction directions action transition").split(),
    "written by", "sound effect", "sound effects", "stage direction", "stage directions",
    "cut to", "fade in", "fade out", "intro music", "outro music", "episode number",
)
_META = {
    **dict.fromkeys(["title", "episode title", "podcast title", "show title"], "title"),
    **dict.fromkeys(["studio", "setting", "studio setting", "location", "scene", "set"], "studio"),
    **dict.fromkeys(["cast", "characters", "speakers", "cast of characters", "dramatis personae",
                     "dramatis personæ", "hosts", "participants", "voices", "the persons in the play",
                     "persons in the play", "persons of the play", "the persons of the play",
                     "persons of the dialogue", "characters in the play", "the characters",
                     "characters of the play", "persons represented", "cast list"], "cast"),
    **dict.fromkeys(_IGNORED_KEYS, "ignore"),
}


_NUMBER = (r"(?:[IVXLC]{1,7}|\d{1,3}|ONE|TWO|THREE|FOUR|FIVE|SIX|SEVEN|EIGHT|NINE|TEN|FIRST|SECOND|THIRD"
           r"|FOURTH|FIFTH|LAST|FINAL)")
# a heading of a printed play's structure, alone on its line: "ACT I", "FIRST ACT", "SCENE 2",
# "Act 1, Scene 1", "PROLOGUE"; never a speaker
_STRUCTURE = re.compile(
    rf"(?:(?:ACT|SCENE|PART)\s+{_NUMBER}(?:[.,:]?\s*SCENE\s+{_NUMBER})?|{_NUMBER}\s+(?:ACT|SCENE|PART)"
    rf"|PROLOGUE|EPILOGUE|INDUCTION|SCENE|CURTAIN|THE END|END OF (?:THE )?(?:ACT|SCENE|PLAY)(?:\s+{_NUMBER})?)\.?",
    re.IGNORECASE)
# the play proper starts at its first act (what comes before is a title page, a cast list, notes)
_ACT_START = re.compile(rf"(?:ACT\s+{_NUMBER}|{_NUMBER}\s+ACT|PROLOGUE|INDUCTION)\.?", re.IGNORECASE)
NARRATOR = "Narrator"
NARRATION_NOTICE = ("no speaker labels found: read as a one-speaker narration by 'Narrator'; for a "
                    "conversation written from this text by the LLM, give it as --document FILE")
_PLAY_KINDS = ("play", "direction", "cue")  # labels of printed plays: one speech, one paragraph


def _parse_text(lines: list[str]) -> Draft:
    scan = _Prescan(lines)
    parser = _TextParser(lines, scan)
    draft = parser.run()
    if parser.opening_is_title():
        # read it again with that line as a heading, so nothing after it is taken as its speech
        number = parser.opening[2]
        lines = lines[: number - 1] + ["# " + lines[number - 1].strip()] + lines[number:]
        draft = _TextParser(lines, scan).run()
    return draft


class _Prescan:
    """What a first pass over the whole text tells the line-by-line reader.

    - ``names``: mixed-case names written as ``Name.`` labels (``Algernon. Did you hear ...``,
      ``Soc. What is ...``) or alone on a line above a speech (``Leah Cheshier``) at the start of
      at least two paragraphs (or of consecutive lines of a compact play). One ``Yes. I see.``
      does not make a speaker; printed plays repeat every speaker's label (the known-cast rule
      of play readers; a cast list adds its names too, in :meth:`_TextParser.add_character`).
    - ``aliases``: an abbreviated label (``Soc.``, ``Cr.``) that begins exactly one longer name
      (``Socrates``, ``Crito``) is that speaker, as Jowett's Plato and many printed plays abbreviate.
    - ``play_start``: the line of the first ``ACT I`` / ``FIRST ACT`` / ``PROLOGUE`` heading
      (0 when none): labelled lines before it are front matter (a cast list with its actors,
      ``TIME: The Present.``), not dialogue.
    """

    def __init__(self, lines: list[str]) -> None:
        counts: dict[str, int] = {}
        shown: dict[str, str] = {}
        self.play_start = 0
        previous_blank, previous_label = True, False
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line:
                previous_blank, previous_label = True, False
                continue
            bare = line.lstrip("#").strip()
            if not self.play_start and _ACT_START.fullmatch(bare):
                self.play_start = number
            label = split_label(line)
            following = lines[number].strip() if number < len(lines) else ""
            # "Name. text" at a paragraph's start (or on the next line of a compact play); a name
            # alone on its line above a speech anywhere (transcripts often have no blank lines)
            if label and not (label.kind == "play" and (previous_blank or previous_label)) and not (
                    label.kind in ("cue", "named") and following):
                label = None
            if label is not None:
                if not is_caps(label.name):
                    key = speaker_key(label.name)
                    if _candidate_name(label.name, key):
                        counts[key] = counts.get(key, 0) + 1
                        shown.setdefault(key, label.name)
                    else:
                        label = None
                else:
                    label = None
            previous_blank, previous_label = False, label is not None and label.kind == "play"
        self.aliases: dict[str, str] = {}
        totals = dict(counts)
        for short in sorted(counts):
            if " " in short or len(short) > 5:
                continue
            longer = {key for key in counts if key != short and " " not in key and key.startswith(short)}
            if len(longer) == 1:
                full = longer.pop()
                self.aliases[short] = shown[full]
                totals[full] += counts[short]
                totals[short] = totals[full]
        self.names = {key for key, count in totals.items() if count >= 2}


def _candidate_name(name: str, key: str) -> bool:
    words = name_words(name)
    return bool(words) and key not in INTERJECTIONS and key not in DIRECTIONS and \
        words[0].casefold().rstrip(".") not in NON_NAMES and key.rstrip(".") not in TITLES


class _TextParser:
    """Line-by-line state machine for human-written plain-text scripts."""

    def __init__(self, lines: list[str], scan: _Prescan | None = None) -> None:
        self.lines = lines
        self.scan = scan or _Prescan(lines)
        self.draft = Draft()
        self.known: set[str] = set()
        self.cast_names: set[str] = set(self.scan.names)  # names a mixed-case Name. label may use
        self.target: str | None = None  # "speech", "studio", "cast", "ignore", "unplaced" or None
        self.speaker: str | None = None  # the last speaker named
        self.kind = ""  # label kind that opened the current speech ("header" for a bare name)
        self.parts: list[str] = []
        self.start = 0
        self.cast_bullets = False
        self.cast_pending = False
        self.styles: dict[str, set[str]] = {}  # speaker key -> label kinds it was introduced with
        self.opening: tuple[str, str, int] | None = None  # (key, name, line) when the first label is a bare name
        self.unplaced: list[tuple[int, str]] = []  # paragraphs no speaker could be given
        self.front_labels = 0  # labelled lines skipped as front matter
        self.labels = 0  # speaker labels accepted

    def run(self) -> Draft:
        for number, raw in enumerate(self.lines, 1):
            self.feed(number, raw.strip())
        self.close()
        self.finish()
        return self.draft

    def finish(self) -> None:
        notices = self.draft.notices
        if not self.draft.lines and not self.labels and self.unplaced:
            self.draft.lines.extend(RawLine(NARRATOR, clean_text(text, prose=True), number)
                                    for number, text in self.unplaced)
            notices.append((self.unplaced[0][0], NARRATION_NOTICE))
            return
        if self.front_labels:
            notices.append((1, f"lines 1-{self.scan.play_start - 1} come before the first act "
                               f"(line {self.scan.play_start}): read as front matter, "
                               f"{self.front_labels} labelled line(s) there not spoken"))
        for number, text in self.unplaced:
            notices.append((number, f"not placed: no speaker label, read as a stage direction and "
                                    f"not spoken: {snippet(normalise_text(text))}"))
        notices.sort(key=lambda notice: notice[0])

    def opening_is_title(self) -> bool:
        """``THE MORNING SHOW`` alone on the first line of a play whose speakers are all labelled
        ``NAME.`` or ``NAME:`` is the title, not a screenplay-style speaker cue."""
        if self.opening is None or self.draft.title is not None:
            return False
        key = self.opening[0]
        others = [k for k in self.styles if k != key]
        return (self.styles.get(key) == {"alone"} and bool(others)
                and not any("alone" in self.styles[k] for k in others))

    def feed(self, number: int, line: str) -> None:
        if not line:
            return self.close()
        if _HEADING.match(line):
            return self.heading(number, line)
        if _RULE.fullmatch(line):
            return self.close()
        if _STRUCTURE.fullmatch(line):  # "ACT III", "SCENE", "FIRST ACT": a new part of the play
            self.close()
            self.speaker = None
            return None
        bullet = _BULLET.match(line)
        body = line[bullet.end():] if bullet else line
        if self.target == "cast" and self.cast_item(bool(bullet), body):
            return None
        heading = _META.get(speaker_key(body.rstrip(":.").replace("**", "")))
        if heading == "cast":  # "THE PERSONS IN THE PLAY" / "Dramatis Personae" on its own line
            return self.meta("cast", "")
        stamp = _STAMP_HEAD.match(body)  # "[00:01:23] Alice: ..." transcripts
        label = split_label(body[stamp.end():] if stamp else body, bare_bracket=True)
        if number < self.scan.play_start:
            return self.front_matter(number, body, label)
        if label and self.label(number, label):
            return None
        return self.continuation(number, body)

    def front_matter(self, number: int, body: str, label: Label | None) -> None:
        """A line before the first act: metadata and cast lists count, speech does not."""
        meta = _META.get(speaker_key(label.name)) if label and label.kind != "bare" else None
        if meta:
            return self.meta(meta, label.rest)
        if self.target in ("studio", "cast"):
            return self.continuation(number, body)
        if label and label.kind != "bare" and name_words(label.name) and label.rest:
            self.front_labels += 1
        if self.draft.title is None and not self.known and self._title_like(number, body):
            self.draft.title = normalise_text(body.replace("**", ""))
        self.close()
        self.target = "ignore"
        return None

    def heading(self, number: int, line: str) -> None:
        self.close()
        text = line.lstrip("#").strip()
        label = split_label(text)
        if _STRUCTURE.fullmatch(text):
            self.speaker = None
            return
        if _META.get(speaker_key(text.rstrip(":.").replace("**", ""))) == "cast":
            return self.meta("cast", "")
        if label and _META.get(speaker_key(label.name)) == "title":
            text = label.rest
        if self.draft.title is None and self.speaker is None and text:
            self.draft.title = normalise_text(text.replace("**", "")) or None
            self.target = "ignore"  # a subtitle line right under the title is not dialogue

    def label(self, number: int, label: Label) -> bool:
        key = speaker_key(label.name)
        if key in self.scan.aliases:  # "Soc." is Socrates
            label = label._replace(name=self.scan.aliases[key])
            key = speaker_key(label.name)
        meta = _META.get(key)
        if meta and label.kind not in ("bare", "cue", "named"):
            self.meta(meta, label.rest)
            return True
        open_speech = self.target == "speech" and bool(self.parts)
        if key not in self.known:
            if label.kind == "bare":
                return False  # "[laughs] ..." is a direction unless the name is a known speaker
            if label.kind == "alone" and (self.target == "speech" or not self._next_line(number)):
                return False  # a speech runs to a blank line; a shouted "NO WAY" in it is speech
            if label.kind in ("cue", "named", "role") and not self._next_line(number):
                return False  # a name on its own line is a label only with its speech below it
            cast = key in self.cast_names and label.kind in (*_PLAY_KINDS, "named")
            if not cast and not plausible_label(label, self.known, open_speech=open_speech):
                return False
        self.close()
        if not self.styles and label.kind == "alone" and not self.draft.lines:
            self.opening = (key, label.name, number)
        self.styles.setdefault(key, set()).add(label.kind)
        self.known.add(key)
        self.labels += 1
        self.target, self.speaker, self.parts = "speech", label.name, []
        self.kind = "play" if label.kind in _PLAY_KINDS else label.kind if label.rest else "header"
        if label.rest:
            self.append(number, label.rest)
        return True

    def meta(self, kind: str, rest: str) -> None:
        self.close()
        if kind == "title":
            if self.draft.title is None and rest:
                self.draft.title = normalise_text(rest.replace("**", "")) or None
        elif kind == "studio" and self.draft.studio is None:
            self.target, self.parts = "studio", [rest] if rest else []
        elif kind == "cast":
            self.target, self.cast_bullets = "cast", False
            self.cast_pending = True  # a blank line between the heading and its list does not end it
            for entry in _split_list(rest):
                self.add_character(entry)
        else:
            self.target = "ignore"

    def cast_item(self, bullet: bool, body: str) -> bool:
        if bullet:
            self.cast_bullets = True
        elif self.cast_bullets:
            self.close()  # plain line after a bulleted cast list: the list is over
            return False
        self.add_character(body)
        return True

    def add_character(self, entry: str) -> None:
        name, desc = _split_cast_entry(entry)
        if name:
            self.cast_pending = False
            key = speaker_key(name)
            self.known.add(key)
            self.cast_names.add(key)
            # "Algernon Moncrieff" is who "Algernon." and "ALGERNON." are; "Rev. Canon Chasuble": "Chasuble."
            words = [w for w in key.split() if len(w) > 2 and w not in TITLES and w not in PARTICLES]
            self.cast_names.update(words)
            self.draft.characters.append((name, desc))

    def continuation(self, number: int, body: str) -> None:
        if self.target in ("speech", "studio", "unplaced"):
            return self.append(number, body)
        if self.target in ("ignore", "cast"):
            return None
        if not clean_text(body):
            return None  # a direction on its own, e.g. "[Theme music]", "[Enter Lane.]"
        if self.speaker is not None and self.kind != "play":
            self.target, self.parts = "speech", []  # a new paragraph of the last speaker
            return self.append(number, body)
        if self.speaker is None and self.draft.title is None and not self.labels \
                and self._title_like(number, body):
            self.draft.title = normalise_text(body.replace("**", ""))
            return None
        # a paragraph of a printed play without a label (a stage direction in roman type), or text
        # before anyone speaks: reported, never merged into the previous speech
        self.target, self.parts = "unplaced", []
        return self.append(number, body)

    def append(self, number: int, text: str) -> None:
        if not self.parts:
            self.start = number
        self.parts.append(text)

    def close(self) -> None:
        if self.target == "cast" and self.cast_pending:
            return
        if self.target == "speech" and self.parts:
            text = clean_text(" ".join(self.parts))
            if text and self.speaker is not None:
                self.draft.lines.append(RawLine(self.speaker, text, self.start))
        elif self.target == "studio" and self.parts:
            self.draft.studio = normalise_text(" ".join(self.parts)) or None
        elif self.target == "unplaced" and self.parts:
            text = " ".join(self.parts)
            if clean_text(text, prose=True):
                self.unplaced.append((self.start, text))
        self.target, self.parts = None, []

    def _next_line(self, number: int) -> str:
        return self.lines[number].strip() if number < len(self.lines) else ""

    def _title_like(self, number: int, body: str) -> bool:
        """A short first line standing alone (blank or a label after it) reads as a title."""
        if len(body) > 100 or body.endswith((".", ",", ";")):
            return False
        following = self._next_line(number)
        return not following or split_label(following) is not None


def _split_list(text: str) -> list[str]:
    """Split ``Alice (host), Bob (guest)`` on commas (or semicolons) outside parentheses."""
    sep = ";" if ";" in text else ","
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += (char in "([") - (char in ")]")
        if char == sep and depth <= 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _split_cast_entry(entry: str) -> tuple[str | None, str]:
    """``Alice: the host`` / ``Alice - the host`` / ``Alice (the host)`` -> (name, description)."""
    entry = entry.replace("**", "").strip()
    label = split_label(entry)
    if label and label.kind in ("colon", "bracket") and name_words(label.name):
        return label.name, normalise_text(label.rest)
    for dash in (" - ", " \u2013 ", " \u2014 "):
        name, found, desc = entry.partition(dash)
        if found and name_words(name.strip()):
            return name.strip(), normalise_text(desc)
    if entry.endswith(")") and "(" in entry:
        name = entry[: entry.rfind("(")].strip()
        if name_words(name):
            return name, normalise_text(entry[entry.rfind("(") + 1:-1])
    if name_words(entry):
        return entry, ""
    # "Merriman, Butler", "Rev. Canon Chasuble, D.D.", "PHAEDO, who is the narrator ..."
    name, found, desc = entry.partition(",")
    if found and name_words(name.strip()):
        return name.strip(), normalise_text(desc.strip(" ."))
    return None, ""
