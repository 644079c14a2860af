"""Helpers for :mod:`streamwise.script`: text cleaning, speaker labels, WebVTT, SRT and JSON.

Every parser here turns source text into a :class:`Draft`: metadata plus a list of
:class:`RawLine` (speaker label as written, cleaned text, 1-based source line).
Problems are raised as :class:`FormatError` (line + message, no path); the public
:func:`streamwise.script.parse_script` turns those into ``ScriptError`` with the path.

All regular expressions use bounded or negated character classes, so no input can
make them backtrack catastrophically (a 1 MB script parses in well under a second).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple


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


class Label(NamedTuple):
    """A would-be speaker label at the start of a line (syntax only, not yet judged)."""

    name: str
    rest: str
    kind: str  # "colon", "bold", "bracket", "bare" ([Name] text), "play" (NAME. text), "alone"


# --------------------------------------------------------------------------- text cleaning

_CHAR_MAP = {
    **{ord(c): "'" for c in "\u2018\u2019\u201a\u201b\u2032\u2035\u2039\u203a"},
    **{ord(c): '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"},
    **{ord(c): " " for c in "\u00a0\u1680\u202f\u205f\u3000\u2028\u2029"},
    **{c: " " for c in range(0x2000, 0x200B)},
    **{ord(c): None for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad\x7f"},
    **{ord(c): "-" for c in "\u2010\u2011\u2012\u2212"},
    **{c: " " for c in range(0x20)},
    ord("\u2026"): "...",
}
_MARKUP = re.compile(r"</?[A-Za-z][\w:.-]{0,30}(?:\s[^<>]{0,200})?/?>")
_DIRECTION = re.compile(r"\[[^\[\]]{0,300}\]|\([^()]{0,300}\)")
_STARRED = re.compile(r"\*([^*]{1,80})\*")
_NUM_DASH = re.compile(r"(?<=\d)[\u2013\u2014](?=\d)")
_DASH = re.compile(r" ?(?:[\u2013\u2014\u2015]+|(?<![<-])--+(?![->])) ?")
_SPACE_PUNCT = re.compile(r" ([,!?;]|\.(?!\.))")
_SENTENCE_END = ".!?:;\"'"


def normalise_text(text: str) -> str:
    """Unescape HTML entities, straighten quotes, map dashes/ellipses/odd spaces, collapse whitespace."""
    if "&" in text:
        text = html.unescape(text)
    text = " ".join(text.translate(_CHAR_MAP).split())
    text = _NUM_DASH.sub("-", text)
    return _DASH.sub(" - ", text).strip()


def clean_text(text: str) -> str:
    """Speech text ready for TTS: markup and stage directions removed, then normalised.

    Returns "" when nothing speakable (no letter or digit) remains.
    """
    text = _MARKUP.sub(" ", text)
    text = " ".join(text.translate(_CHAR_MAP).split())  # early collapse keeps the regexes linear
    text = _DIRECTION.sub(" ", text.replace("**", ""))
    text = _STARRED.sub(_star_direction, text).replace("*", "")
    text = _SPACE_PUNCT.sub(r"\1", normalise_text(text))
    text = text.lstrip(",;: ")
    if text.startswith("- "):
        text = text[2:]
    return text if any(c.isalnum() for c in text) else ""


def _star_direction(match: re.Match[str]) -> str:
    """``*sighs*`` at a sentence start or at the end is a direction; ``*really*`` mid-sentence is emphasis."""
    s, start, end = match.string, match.start(), match.end()
    inner = match.group(1)
    i = start - 1
    while i >= 0 and s[i] == " ":
        i -= 1
    at_start = i < 0 or s[i] in _SENTENCE_END
    spaced_after = end == len(s) or s[end] == " "
    at_end = not s[end:end + 3].strip(" .,!?") and end + 3 >= len(s)
    words = inner.casefold().split()
    if words and (words[0] in DIRECTIONS or " ".join(words) in DIRECTIONS):
        return " "
    if len(words) <= 6 and ((at_start and spaced_after) or at_end):
        return " "
    return inner


# --------------------------------------------------------------------------- speaker labels

NON_NAMES = frozenset(
    "http https ftp www mailto file data javascript e.g eg i.e ie nb ps p.s re fyi example examples "
    "int ext warning caution tip hint important update edit todo fixme step chapter section part item rule "
    "fact quote source link url email phone address time total result results reason problem "
    "solution definition disclaimer summary".split()
)
INTERJECTIONS = frozenset(
    "ok okay no yes yeah yep nope hey hi hello oh ah uh um hmm wow so well right sure thanks what why "
    "how who really great good fine now and but or the end pause silence music applause laughter beat "
    "continued cont'd more intro outro sfx fx stop wait go help exactly absolutely indeed bye goodbye "
    "please sorry omg lol ha haha int ext".split()
) | {"the end", "fade out", "fade in", "cut to", "thank you", "oh no", "no way", "ad break"}
DIRECTIONS = frozenset(
    "laughs laughing laughter music applause sighs sigh pause silence inaudible crosstalk chuckles "
    "chuckling giggles coughs cough noise static beep indistinct unintelligible sfx break smiles grins "
    "nods beat shrugs gasps groans whispers whispering yawns claps sniffs scoffs snorts winks exhales "
    "inhales pauses sighing smiling".split()
) | {"clears throat", "phone rings", "door opens", "footsteps", "background noise", "music playing",
     "intro music", "outro music", "theme music", "upbeat music", "indistinct chatter", "ad break"}
TITLES = frozenset("dr mr mrs ms mx prof st sr jr rev capt gen sgt lt col".split())
PARTICLES = frozenset("de da del della der di du la le van von den bin ibn al el y of the".split())
ROLES = frozenset(
    "speaker host guest person voice narrator interviewer interviewee caller participant panelist "
    "panellist co-host cohost character student teacher customer agent user assistant man woman "
    "actor reader presenter moderator expert reporter anchor".split()
)
_NAME_PUNCT = "'\u2019.-"
_COLON_LABEL = re.compile(
    r"([^:\[\]()<>{}\"\u201c\u201d|/\\*=#@]{1,40})(\([^()]{0,60}\)|\[[^\[\]]{0,60}\])?\s*:(?=\s|$)"
)
_PLAY_SEP = re.compile(r"\.\s+")
_STAMP_TAIL = re.compile(r"\s+\(?\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?\)?$")


def speaker_key(name: str) -> str:
    """Case-, space- and period-insensitive identity of a speaker name (``Dr. Bob`` == ``DR BOB``)."""
    return " ".join(name.replace(".", " ").replace("*", "").casefold().split())


def drop_paren(name: str) -> str:
    """``Alice (laughing)`` -> ``Alice``; a trailing ``(...)``/``[...]`` after a name is a direction."""
    name = name.strip()
    for open_, close in ("()", "[]"):
        if name.endswith(close) and open_ in name:
            name = name[: name.rfind(open_)].strip()
    return name.strip(" \t\"'")


def name_words(name: str) -> list[str] | None:
    """The words of a name-like label (1-4 words starting with a letter, <= 40 chars), else None."""
    words = name.split()
    if not name or len(name) > 40 or not 1 <= len(words) <= 4:
        return None
    for i, word in enumerate(words):
        if word.isdigit() and i == len(words) - 1 and i > 0 and words[i - 1].casefold() in ROLES:
            continue  # "Speaker 1", "Guest 2"
        if not word[0].isalpha() or not all(c.isalnum() or c in _NAME_PUNCT for c in word):
            return None
    return words


def is_caps(name: str) -> bool:
    """True for an ALL-CAPS name with at least two letters."""
    letters = [c for c in name if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def split_label(body: str, *, bare_bracket: bool = False) -> Label | None:
    """Find a speaker-label shape at the start of ``body`` (see :class:`Label` kinds)."""
    if body.startswith(("**", "__")):
        return _bold_label(body)
    if body.startswith("["):
        return _bracket_label(body, bare_bracket)
    match = _COLON_LABEL.match(body)
    if match:
        colon = Label(match.group(1).strip(" \t\"'"), body[match.end():].strip(), "colon")
        play = _play_label(body)
        # "HAMLET. To be, or not to be: that is..." - the play label ends before the colon
        if play is not None and len(play.name) < len(colon.name):
            return play
        return colon
    return _play_label(body) or _alone_label(body)


def _bold_label(body: str) -> Label | None:
    mark = body[:2]
    end = body.find(mark, 2, 80)
    if end < 0:
        return None
    inner, after = body[2:end].strip(), body[end + 2:].strip()
    if inner.endswith(":"):
        name, rest = inner[:-1], after
    elif after.startswith(":") or not after:
        name, rest = inner, after[1:].strip()
    else:
        return None
    return Label(drop_paren(name), rest, "bold")


def _bracket_label(body: str, bare: bool) -> Label | None:
    end = body.find("]", 1, 60)
    if end < 0:
        return None
    name, after = drop_paren(body[1:end]), body[end + 1:].lstrip()
    if after.startswith(":"):
        return Label(name, after[1:].strip(), "bracket")
    return Label(name, after, "bare") if bare and after else None


def _play_label(body: str) -> Label | None:
    for match in _PLAY_SEP.finditer(body, 0, 48):
        name = body[: match.start()].strip()
        if not name:
            return None
        words = name.split()
        if words[-1].casefold() in TITLES:
            continue  # "DR. BOB. Hello."
        if any("." in w and w.rstrip(".").casefold() not in TITLES for w in words):
            return None  # "U.S. troops ..."
        return Label(name, body[match.end():].strip(), "play") if is_caps(name) else None
    return None


def _alone_label(body: str) -> Label | None:
    stamped = _STAMP_TAIL.search(body) if len(body) < 60 else None
    if stamped:  # transcript style "Alice  0:03" on its own line
        return Label(drop_paren(body[: stamped.start()]), "", "stamped")
    name = drop_paren(body.rstrip(":"))
    if name.endswith(".") and name.split()[-1].rstrip(".").casefold() not in TITLES:
        return None
    return Label(name, "", "alone") if is_caps(name) else None


def _capitalised(words: list[str]) -> bool:
    return words[0][0].isupper() and all(
        w[0].isupper() or w.casefold() in PARTICLES or w.isdigit() for w in words[1:]
    )


def plausible_label(label: Label, known: set[str], *, open_speech: bool = False,
                    new_bare: bool = False) -> bool:
    """Judge whether a label shape really names a speaker.

    Known speakers always pass. Otherwise the name must be name-like, not a URL scheme or
    note-like word, and: ALL CAPS, or Capitalised Words, or a single lowercase word
    (``alice:``) / lowercase title + name (``dr. bob:``). A bare ``Name:`` with no speech
    after it is only a header when no speech is open (or it is in capitals).
    """
    words = name_words(label.name)
    if words is None:
        return False
    key = speaker_key(label.name)
    if key in known:
        return True
    if words[0].casefold().rstrip(".") in NON_NAMES or key in INTERJECTIONS or key in DIRECTIONS:
        return False
    caps = is_caps(label.name)
    if label.kind in ("play", "alone"):
        return caps
    if label.kind == "bare":
        return new_bare and _capitalised(words)
    if caps:
        return True
    if not label.rest and label.kind != "stamped" and open_speech:
        return False
    if _capitalised(words):
        return True
    return label.name.islower() and (len(words) == 1 or words[0].rstrip(".") in TITLES)


# --------------------------------------------------------------------------- WebVTT and SRT

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
        if not cleaned:
            return
        if who is None:
            raise FormatError(number, f"caption has no speaker (no <v Speaker> tag or 'Speaker:' "
                                      f"prefix): {snippet(cleaned)}")
        self.draft.lines.append(RawLine(who, cleaned, number))


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
    return cap.draft


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
    """Parse SRT: numbered blocks with a timing line; speakers come from text prefixes."""
    cap = _Captions()
    for block in blocks(lines):
        timing = next((i for i, (_, line) in enumerate(block[:3]) if "-->" in line), None)
        if timing is not None:
            block = block[timing + 1:]
        elif all(line.strip().isdigit() for _, line in block):
            continue
        for number, raw in block:
            cap.attribute(number, raw)
    return cap.draft


# --------------------------------------------------------------------------- JSON / JSON Lines

_SPEAKER_KEYS = ("speaker", "character", "name", "who", "role", "persona")
_TEXT_KEYS = ("text", "line", "content", "dialogue", "dialog", "utterance", "speech", "says", "message")
_LIST_KEYS = ("scenes", "lines", "dialogue", "dialog", "script", "turns", "utterances", "segments",
              "transcript", "conversation", "messages", "exchanges", "entries", "items")
_TITLE_KEYS = ("title", "episode_title", "podcast_title", "show_title")
_STUDIO_KEYS = ("studio", "setting", "studio_description", "setting_description", "location", "set",
                "environment", "scene")
_CAST_KEYS = ("characters", "cast", "speakers", "hosts", "participants", "personas")
_DESC_KEYS = ("role", "description", "desc", "persona", "bio", "about", "personality", "appearance")
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
        parts = [obj[k] for k in (*_DESC_KEYS, "prompt", "text") if isinstance(obj.get(k), str)]
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
            self.draft.characters.append((name.strip(), _describe(desc)))

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


def snippet(text: str, limit: int = 60) -> str:
    """A short quoted excerpt of ``text`` for error messages."""
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
