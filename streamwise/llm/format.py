"""What the screenplay LLM is asked to write, and how its streamed text becomes lines.

The format follows the StreamWise paper's screenplay (arXiv 2603.05800; design notes
section 2): the model streams JSON, first the studio (an image description and the show's
title), then the characters (a host, who opens and closes the show, and guests; each may
carry an optional ``look``, free text such as "an old man with a grey beard", read by
:mod:`streamwise.core.looks` for the portrait and the voice), then one object per dialogue line. Unconstrained backends are asked for JSON Lines::

    {"title": "Morning Brew", "studio": "A cozy radio studio with ..."}
    {"characters": [{"name": "Maya", "role": "host", "look": "a young woman with curly black hair"}, ...]}
    {"speaker": "Maya", "text": "Welcome to Morning Brew! ..."}

Backends with structured output are held to :func:`screenplay_schema` (one JSON object with
``studio``, ``characters`` and ``lines``), which reads the same way as it streams.
:class:`ScreenplayStream` accepts both: it scans the text as it arrives and hands over each
JSON object the moment its closing brace is written, so the first dialogue line reaches the
DAG long before the screenplay is finished. A malformed object is skipped and counted,
never fatal.
"""

from __future__ import annotations

import json
import re
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 32
MAX_TEXT_CHARS = 400
MAX_DOCUMENT_CHARS = 6000      # ~1,500 tokens: leaves room for the reply in a 2k-4k context

EXAMPLE = {
    "topic": "where coffee comes from",
    "title": "Morning Brew",
    "studio": "A cozy radio studio with wooden walls, two microphones on a round table and a window onto a rainy street.",
    "characters": [{"name": "Maya", "role": "host", "look": "a young woman with curly black hair"},
                   {"name": "Leo", "role": "guest", "look": "an old man with a grey beard and glasses"}],
    "lines": [
        {"speaker": "Maya", "text": "Welcome to Morning Brew! Today my guest Leo tells us where coffee comes from."},
        {"speaker": "Leo", "text": "Thanks, Maya. Coffee starts as the seed of a red cherry that grows on shrubs in Ethiopia."},
        {"speaker": "Maya", "text": "How did it travel from Ethiopia to the rest of the world?"},
        {"speaker": "Leo", "text": "Traders carried it to Yemen, and from there it reached Europe and the Americas."},
        {"speaker": "Maya", "text": "And why do we roast the beans?"},
        {"speaker": "Leo", "text": "Roasting turns the green seeds brown and brings out the flavour we love."},
        {"speaker": "Maya", "text": "That is all for today. Thank you, Leo, and goodbye everyone!"},
    ],
}


def screenplay_schema(min_lines: int = 6, max_lines: int = 12, max_speakers: int = 3) -> dict:
    """JSON schema of a whole screenplay, for backends with structured output. Keys are in
    streaming order (studio, characters, lines), so lines complete one by one as it streams."""
    text = {"type": "string", "minLength": 1}
    name = {"type": "string", "minLength": 1, "maxLength": 24}
    return {
        "type": "object",
        "properties": {
            "studio": {"type": "object", "properties": {"title": {"type": "string", "maxLength": 60},
                                                        "description": {"type": "string", "maxLength": 300}},
                       "required": ["title", "description"], "additionalProperties": False},
            "characters": {"type": "array", "minItems": 2, "maxItems": max_speakers, "items": {
                "type": "object", "properties": {"name": name, "role": {"enum": ["host", "guest"]},
                                                 "voice": {"enum": list(LLM_VOICES)},
                                                 "look": {"type": "string", "maxLength": 120}},
                "required": ["name", "role"], "additionalProperties": False}},
            "lines": {"type": "array", "minItems": min_lines, "maxItems": max_lines, "items": {
                "type": "object", "properties": {"speaker": name, "text": {**text, "maxLength": 150}},
                "required": ["speaker", "text"], "additionalProperties": False}},
        },
        "required": ["studio", "characters", "lines"],
        "additionalProperties": False,
    }


def _jsonl(example: dict) -> str:
    rows = [{"title": example["title"], "studio": example["studio"]}, {"characters": example["characters"]},
            *example["lines"]]
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"


def _one_object(example: dict) -> str:
    return json.dumps({"studio": {"title": example["title"], "description": example["studio"]},
                       "characters": example["characters"], "lines": example["lines"]}, ensure_ascii=False)


def build_messages(topic: str | None, document: str | None = None, *, structured: bool = False,
                   min_lines: int = 6, max_lines: int = 10, max_document_chars: int = MAX_DOCUMENT_CHARS,
                   direction: str | None = None) -> list[dict]:
    """The chat for one screenplay: a system turn, a one-shot example (user asks, assistant
    answers in the expected format) and the real request. ``document``: source text the
    show must be about (truncated to ``max_document_chars`` characters at a paragraph or
    sentence end). ``structured``: the example is one JSON object (the schema's shape)
    instead of JSON Lines. ``direction``: a viewer's steer ("go deeper on X", "a listener asks:
    ..."); the show is already under way and the reply continues it (the lines so far are the
    reply's prefix, :func:`resume_prefix`) following the direction.

    Raises:
        ValueError: neither a topic nor a document.
    """
    if not (topic or document):
        raise ValueError("a screenplay needs a topic or a document")
    fmt = ("one JSON object with \"studio\" (title and a one-sentence description of the studio set), "
           "\"characters\" (a host and one guest) and \"lines\" (the dialogue)") if structured else (
        "JSON Lines, one JSON object per line and nothing else: first {\"title\", \"studio\"} (the show's title and a "
        "one-sentence description of the studio set), then {\"characters\": [a host and one guest]}, then one "
        "{\"speaker\", \"text\"} per dialogue line")
    system = (f"You write short video podcast episodes. Answer in {fmt}. Write {min_lines} to {max_lines} dialogue "
              "lines of one or two short spoken sentences each. The host speaks first, welcoming the listeners and "
              "the guest, and speaks last, thanking the guest and saying goodbye.")
    example = _one_object(EXAMPLE) if structured else _jsonl(EXAMPLE)
    ask = f"Write a podcast episode about {topic}." if topic else "Write a podcast episode about this document."
    if document:
        ask += "\n\nDocument:\n" + truncate_document(document, max_document_chars)
    if direction:
        ask += ("\n\nThe episode is already on air. Continue it from the next line, and follow this direction "
                f"from a listener: {' '.join(direction.split())}")
    return [{"role": "system", "content": system},
            {"role": "user", "content": f"Write a podcast episode about {EXAMPLE['topic']}."},
            {"role": "assistant", "content": example},
            {"role": "user", "content": ask}]


class DocumentError(ValueError):
    """A document that cannot be read; the message names the file and the reason."""


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def tidy_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """A line as a small LLM writes it, made speakable: a sentence repeated back to back (the
    model looping: "She makes honey. She makes honey. ...") is kept once, and a line still over
    ``max_chars`` is cut after its last whole sentence that fits. Returns ``""`` when no whole
    sentence fits (the caller drops the line as overlong)."""
    kept: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if kept and sentence.casefold() == kept[-1].casefold():
            continue
        kept.append(sentence)
    text = " ".join(kept)
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars + 1]
    ends = [m.start() for m in _SENTENCE_END.finditer(cut)]
    return cut[:ends[-1]].rstrip() if ends else ""


def read_document(path: str | Path, max_chars: int = 50_000) -> str:
    """The text of a ``.txt``, ``.md`` (as plain text) or ``.pdf`` (text layer, via pypdf)
    file, at most ``max_chars`` characters (the LLM stage truncates further to its context).

    Raises:
        DocumentError: unreadable file, an unknown extension, a PDF without pypdf or with
            no text layer, or an empty document.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            try:
                from pypdf import PdfReader
            except ImportError:
                raise DocumentError(f"{path}: reading PDF needs pypdf (pip install pypdf, or the ml extra)") from None
            text, reader = [], PdfReader(str(path))
            for page in reader.pages:
                text.append(page.extract_text() or "")
                if sum(map(len, text)) >= max_chars:
                    break
            text = "\n\n".join(text)
        elif suffix in (".txt", ".md", ".markdown", ".text", ""):
            text = path.read_text(encoding="utf-8-sig", errors="replace")
        else:
            raise DocumentError(f"{path}: unknown document type {suffix!r}; use .txt, .md or .pdf")
    except OSError as exc:
        raise DocumentError(f"cannot read document {path}: {exc.strerror or exc}") from None
    except DocumentError:
        raise
    except Exception as exc:   # pypdf raises its own errors for a damaged file
        raise DocumentError(f"{path}: not a readable PDF: {exc}") from None
    text = text.strip()
    if not text:
        raise DocumentError(f"{path}: no text found" + (" (a scanned PDF has no text layer)" if suffix == ".pdf" else ""))
    return text[:max_chars]


def truncate_document(text: str, max_chars: int = MAX_DOCUMENT_CHARS) -> str:
    """``text`` cut to at most ``max_chars`` characters, at the last paragraph break or
    sentence end in its final fifth when there is one (so the prompt does not end mid-word)."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    for mark in ("\n\n", ". ", "\n"):
        at = cut.rfind(mark)
        if at >= max_chars * 0.8:
            return cut[:at + len(mark)].strip()
    return cut.rstrip() + " ..."


def resume_prefix(state: dict) -> str:
    """JSON Lines that replay a screenplay already received (``{"title", "studio",
    "speakers", "host", "lines": [{"speaker": index, "text"}]}``), so a retried task
    continues after the last line instead of starting over."""
    speakers = state.get("speakers") or []
    host = state.get("host")
    rows: list[dict] = [{"title": state.get("title") or "", "studio": state.get("studio") or ""}]
    if speakers:
        rows.append({"characters": [{"name": n, "role": "host" if n == host or (host is None and i == 0) else "guest"}
                                    for i, n in enumerate(speakers)]})
    rows += [{"speaker": speakers[int(line["speaker"])], "text": line["text"]} for line in state.get("lines") or []]
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"


LLM_VOICES = ("joe", "heart")
"""Voices an LLM may give a character (``"voice"`` in its ``characters``): the offline voice models of the
CPU tier, joe (male) and heart (female); see ``streamwise.stages.cpu.speech.VOICE_MODELS``."""


@dataclass
class ScreenplayStream:
    """Incremental parser of an LLM's screenplay text (JSON Lines or one JSON object).

    :meth:`feed` takes text chunks as they stream and returns how many new dialogue lines
    it completed; the state (``title``, ``studio``, ``speakers``, ``host``, ``lines`` as
    ``(speaker index, text)``) only grows, so it can be published as it changes. Objects
    that are not valid JSON or have an unknown shape, lines with an empty or overlong
    text, a speaker beyond ``max_speakers``, and verbatim repeats are skipped and counted
    in ``malformed`` (with a few ``samples`` for the log).
    """

    max_speakers: int = 4
    title: str | None = None
    studio: str | None = None
    host: str | None = None
    speakers: list[str] = field(default_factory=list)
    voices: dict[str, str] = field(default_factory=dict)   # speaker -> the voice the LLM gave it ("joe", "heart")
    looks: dict[str, str] = field(default_factory=dict)    # speaker -> the look the LLM gave it (free text)
    lines: list[tuple[int, str]] = field(default_factory=list)
    malformed: int = 0
    samples: list[str] = field(default_factory=list)
    _buf: list[str] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)
    _in_string: bool = False
    _escape: bool = False

    @classmethod
    def resumed(cls, state: dict | None, **kw) -> "ScreenplayStream":
        """A parser that already holds ``state`` (see :func:`resume_prefix`)."""
        s = cls(**kw)
        if state:
            s.title, s.studio, s.host = state.get("title"), state.get("studio"), state.get("host")
            s.speakers = list(state.get("speakers") or [])
            s.lines = [(int(x["speaker"]), str(x["text"])) for x in state.get("lines") or []]
        return s

    def feed(self, text: str) -> int:
        """Scan ``text`` (the next chunk); returns the number of dialogue lines it completed."""
        before = len(self.lines)
        buf = self._buf
        for ch in text:
            buf.append(ch)
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif ch == "\\":
                    self._escape = True
                elif ch == '"':
                    self._in_string = False
                elif ch == "\n":          # JSON strings hold no raw newline: this line is broken
                    self._drop("unterminated string")
                continue
            if ch == '"':
                self._in_string = bool(self._starts)
            elif ch == "{":
                self._starts.append(len(buf) - 1)
            elif ch == "}" and self._starts:
                start = self._starts.pop()
                self._object("".join(buf[start:]))
                if not self._starts:
                    buf.clear()
        return len(self.lines) - before

    def close(self) -> None:
        """The text ended: an object still open (cut off by the token limit) counts as malformed."""
        if self._starts:
            self._drop("unfinished object at the end")

    def _drop(self, why: str) -> None:
        self._note("".join(self._buf[self._starts[0]:] if self._starts else self._buf), why)
        self._buf.clear()
        self._starts.clear()
        self._in_string = self._escape = False

    def _note(self, raw: str, why: str) -> None:
        self.malformed += 1
        if len(self.samples) < 5:
            self.samples.append(f"{why}: {raw[:120]!r}")
        log.debug("screenplay: skipped %s: %r", why, raw[:200])

    def _object(self, raw: str) -> None:
        try:
            obj = json.loads(raw)
        except ValueError:
            self._note(raw, "not valid JSON")
            return
        if not isinstance(obj, dict):
            return
        if "speaker" in obj and "text" in obj:
            self._line(obj, raw)
            return
        known = False
        cast = obj.get("characters")
        if isinstance(cast, list):
            known = True
            for c in cast:
                if isinstance(c, dict):
                    self._character(c.get("name"), c.get("role"), c.get("voice"), c.get("look"))
                elif isinstance(c, str):
                    self._character(c, None)
        elif isinstance(obj.get("name"), str):
            known = True
            self._character(obj["name"], obj.get("role"), obj.get("voice"), obj.get("look"))
        if not isinstance(obj.get("name"), str):
            known = self._meta(obj) or known
        if not known and "lines" not in obj:
            self._note(raw, "unknown object")

    def _meta(self, obj: dict) -> bool:
        studio = obj.get("studio")
        title = obj.get("title")
        if isinstance(studio, dict):
            title = title or studio.get("title")
            studio = studio.get("description")
        elif studio is None and isinstance(obj.get("description"), str):
            studio = obj["description"]
        found = False
        if isinstance(studio, str) and studio.strip():
            self.studio = self.studio or studio.strip()[:MAX_TEXT_CHARS]
            found = True
        if isinstance(title, str) and title.strip():
            self.title = self.title or title.strip()[:80]
            found = True
        return found

    def _speaker_index(self, name: str) -> int | None:
        key = name.casefold()
        for i, known in enumerate(self.speakers):
            if known.casefold() == key:
                return i
        if len(self.speakers) >= self.max_speakers:
            return None
        self.speakers.append(name)
        return len(self.speakers) - 1

    def _character(self, name: Any, role: Any, voice: Any = None, look: Any = None) -> None:
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_CHARS:
            return
        index = self._speaker_index(name.strip())
        if index is not None and self.host is None and str(role).lower() == "host":
            self.host = self.speakers[index]
        if index is not None and isinstance(voice, str) and voice.strip().casefold() in LLM_VOICES:
            self.voices.setdefault(self.speakers[index], voice.strip().casefold())
        if index is not None and isinstance(look, str) and look.strip():   # optional: how the character looks
            self.looks.setdefault(self.speakers[index], " ".join(look.split())[:MAX_TEXT_CHARS])

    def _line(self, obj: dict, raw: str) -> None:
        speaker, text = obj.get("speaker"), obj.get("text")
        if not isinstance(speaker, str) or not isinstance(text, str):
            self._note(raw, "speaker and text must be strings")
            return
        speaker, text = speaker.strip(), tidy_text(" ".join(text.split()))
        if not speaker or len(speaker) > MAX_NAME_CHARS:
            self._note(raw, "bad speaker name")
        elif not any(c.isalpha() for c in text) or len(text) > MAX_TEXT_CHARS:
            self._note(raw, "empty or overlong text")
        elif any(self.speakers[s].casefold() == speaker.casefold() and t == text for s, t in self.lines):
            self._note(raw, "repeated line")
        else:
            index = self._speaker_index(speaker)
            if index is None:
                self._note(raw, f"more than {self.max_speakers} speakers")
                return
            self.lines.append((index, text))

    def state(self) -> dict:
        """The screenplay so far, as :func:`resume_prefix` and a retried task take it."""
        return {"title": self.title, "studio": self.studio, "speakers": list(self.speakers), "host": self.host,
                "lines": [{"speaker": s, "text": t} for s, t in self.lines]}
