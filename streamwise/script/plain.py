"""Plain-text scripts for :mod:`streamwise.script`: podcast scripts and printed plays.

:func:`parse_text` reads ``Speaker: line`` text, printed plays (``NAME. text``, ``Name. text`` of a known
cast, ``NAME [direction] text``, a name alone on its line above the speech), transcripts
(``Name (Host):``, ``[00:01] Name:``, ``Name  0:03``), Markdown bold labels, title / studio / cast lines,
into a :class:`~streamwise.script.formats.Draft`. A first pass (:mod:`streamwise.script.prescan`) finds
the cast a printed play repeats and where its first act begins; the line-by-line reader
(:class:`_TextParser`) then reports what it cannot place as notices (``Draft.notices``) instead of
merging it into a speech, and reads a text with no labels at all as one-speaker narration. The line
patterns and keyword tables are :mod:`streamwise.script.patterns`.
"""

from __future__ import annotations

from streamwise.script.formats import NARRATOR_NAME, Draft, RawLine, take_voice
from streamwise.script.patterns import (
    _BULLET,
    _HEADING,
    _META,
    _RULE,
    _STAMP_HEAD,
    _STAMP_LINE,
    _STRUCTURE,
    _SURE_STAMP,
)
from streamwise.script.prescan import _Prescan, _unheaded_cast
from streamwise.script.text import (
    PARTICLES,
    TITLES,
    Label,
    clean_text,
    name_words,
    normalise_text,
    plausible_label,
    snippet,
    speaker_key,
    split_label,
)

__all__ = ["NARRATOR", "NARRATION_NOTICE", "parse_text"]

NARRATOR = NARRATOR_NAME
NARRATION_NOTICE = ("no speaker labels found: read as a one-speaker narration by 'Narrator'; for a "
                    "conversation written from this text by the LLM, give it as --document FILE")
_PLAY_KINDS = ("play", "direction", "cue")  # labels of printed plays: one speech, one paragraph
# first words of a printed play's directions that take a label's shape ("Exeunt. Manet Hamlet.")
_NOT_SPEAKERS = frozenset("enter exit exeunt manet manent re-enter flourish alarum alarums sennet aside within "
                          "excursions retreat trumpets hautboys music thunder".split())


def parse_text(lines: list[str]) -> Draft:
    """Read plain-text script ``lines`` (no newlines) into a Draft; see the module docstring."""
    scan = _Prescan(lines)
    parser = _TextParser(lines, scan)
    draft = parser.run()
    if parser.opening_is_title():
        # read it again with that line as a heading, so nothing after it is taken as its speech
        number = parser.opening[2]
        lines = lines[: number - 1] + ["# " + lines[number - 1].strip()] + lines[number:]
        draft = _TextParser(lines, scan).run()
    return draft


class _TextParser:
    """Line-by-line state machine for human-written plain-text scripts."""

    def __init__(self, lines: list[str], scan: _Prescan | None = None) -> None:
        self.lines = lines
        self.scan = scan or _Prescan(lines)
        self.draft = Draft()
        self.known: set[str] = set()
        self.cast_names: set[str] = set(self.scan.names)  # names a mixed-case Name. label may use
        self.cast_words: dict[str, str] = {}  # a word of a cast list's name -> as written ("horatio" -> "Horatio")
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
        self.title_guessed = False  # the title is a short first line, not a "Title:" or "# heading"
        self.cast_block = _unheaded_cast(lines)  # line of a cast list given without a heading (0: none)
        self.indent = 0  # the current line's indentation (columns, tabs at 8)
        self.speech_indent: int | None = None  # indentation of the current speech's first line
        self.caps_cue = False  # the current speech's label is a capitals cue alone on its line
        self.label_indent: int | None = None  # indentation of the last ``Name. text`` label line
        self.hanging = False  # a play speech went on on a line indented deeper than its label (hanging indent)

    def run(self) -> Draft:
        for number, raw in enumerate(self.lines, 1):
            expanded = raw.expandtabs(8)
            self.indent = len(expanded) - len(expanded.lstrip())
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
        if _STAMP_LINE.fullmatch(line):  # "0:02" alone above the words it times: not spoken, ends nothing
            return None
        if _STRUCTURE.fullmatch(line):  # "ACT III", "SCENE", "FIRST ACT": a new part of the play
            self.close()
            self.speaker = None
            return None
        bullet = _BULLET.match(line)
        body = line[bullet.end():] if bullet else line
        if number == self.cast_block:
            self.meta("cast", "")
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
        sure = _SURE_STAMP.match(body)   # "[00:01:30] and then ...": the speech goes on, its time stamp is not said
        return self.continuation(number, body[sure.end():] if sure else body)

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
            self.title_guessed = True
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
        elif label.kind == "play" and key not in self.cast_words and " " not in key and len(key) <= 5:
            # "Hor." when the cast list has Horatio: the one cast name it begins
            fuller = {word for word in self.cast_words if word.startswith(key) and word != key}
            if len(fuller) == 1:
                word = fuller.pop()
                label = label._replace(name=self.cast_words[word])
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
            if not cast and not self._hanging_label(label) and \
                    not plausible_label(label, self.known, open_speech=open_speech):
                return False
        self.close()
        if not self.styles and label.kind == "alone" and not self.draft.lines:
            self.opening = (key, label.name, number)
        self.styles.setdefault(key, set()).add(label.kind)
        self.known.add(key)
        self.labels += 1
        self.target, self.speaker, self.parts = "speech", label.name, []
        self.kind = "play" if label.kind in _PLAY_KINDS else label.kind if label.rest else "header"
        self.speech_indent = None
        self.label_indent = self.indent if self.kind == "play" else None
        self.caps_cue = self.kind == "header" and label.name.isupper()   # a screenplay cue: "SARAH", "MIKE (O.S.)"
        if label.rest:
            self.append(number, label.rest)
        return True

    def meta(self, kind: str, rest: str) -> None:
        self.close()
        if kind == "title":
            if (self.draft.title is None or self.title_guessed) and rest:   # "Title:" beats a guessed first line
                self.draft.title = normalise_text(rest.replace("**", "")) or None
                self.title_guessed = False
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
            words = [w for w in name.split() if len(w) > 2 and speaker_key(w) not in TITLES
                     and speaker_key(w) not in PARTICLES]
            self.cast_names.update(speaker_key(w) for w in words)
            for word in words:
                self.cast_words.setdefault(speaker_key(word), word.strip(".,"))
            desc, voice = take_voice(desc)
            if voice:
                self.draft.voices[name] = voice
            self.draft.characters.append((name, desc))

    def continuation(self, number: int, body: str) -> None:
        if self.target == "speech" and self.hanging and self.label_indent is not None and self.indent <= self.label_indent:
            self.close()   # a line at the labels' indentation in a play set with hanging indents: no more speech
            self.target = "unplaced"
            return self.append(number, body)
        if self.target in ("speech", "studio", "unplaced"):
            return self.append(number, body)
        if self.target in ("ignore", "cast"):
            return None
        if not clean_text(body):
            return None  # a direction on its own, e.g. "[Theme music]", "[Enter Lane.]"
        if self.speaker is not None and self.kind != "play" and not self._dedented():
            self.target, self.parts = "speech", []  # a new paragraph of the last speaker
            return self.append(number, body)
        if self.speaker is None and self.draft.title is None and not self.labels and not self.unplaced \
                and self._title_like(number, body):   # only the text's first line: a title, not a quoted line
            self.draft.title = normalise_text(body.replace("**", ""))
            self.title_guessed = True
            return None
        if self.kind == "play" and (label := self._unpunctuated_label(body)) is not None:
            # "Medviedenko Why should you be unhappy?": a known speaker whose label lost its period
            self.draft.notices.append((number, f"read {label.name!r} as a speaker label without its period"))
            self.label(number, label)
            return None
        # a paragraph of a printed play without a label (a stage direction in roman type), or text
        # before anyone speaks: reported, never merged into the previous speech
        self.target, self.parts = "unplaced", []
        return self.append(number, body)

    def _unpunctuated_label(self, body: str) -> Label | None:
        """A paragraph of a play that starts with a speaker already seen as a label, then one space and a
        capital letter (``Masha Why ...``); ``Masha and Trigorin enter`` or ``Masha sits down`` are not."""
        words = body.split(" ", 4)
        for n in (1, 2, 3):
            if len(words) > n and words[n][:1].isupper() and speaker_key(" ".join(words[:n])) in self.known:
                return Label(" ".join(words[:n]), " ".join(words[n:]), "play")
        return None

    def _hanging_label(self, label: Label) -> bool:
        """``Hor. Friends to this ground.`` in a play set with hanging indents (each ``Name. text`` label at one
        indentation, the rest of its speech deeper, as Gutenberg's older Shakespeare texts are): a new speaker's
        label at the labels' indentation, though that speaker has not been seen twice. ``Exeunt. ...`` and
        ``Enter ...`` are directions."""
        words = name_words(label.name)
        return (label.kind == "play" and self.hanging and self.indent == self.label_indent and bool(words)
                and len(words) <= 2 and words[0][:1].isupper() and words[0].casefold() not in _NOT_SPEAKERS
                and plausible_label(label._replace(kind="colon"), self.known))

    def _dedented(self) -> bool:
        """A paragraph after a screenplay cue's speech is action, not more of the speech: one left of the
        speech's indentation (cues and dialogue indented, action flush left), or any paragraph after a
        blank line when the cue is in capitals alone on its line and nothing is indented (Fountain)."""
        if self.speech_indent is not None and self.indent < self.speech_indent:
            return True
        return self.caps_cue and not self.indent

    def append(self, number: int, text: str) -> None:
        if not self.parts:
            self.start = number
            if self.target == "speech" and self.speech_indent is None:
                self.speech_indent = self.indent
        elif self.target == "speech" and self.label_indent is not None and self.indent > self.label_indent:
            self.hanging = True
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
        if len(body) > 100 or body.endswith((".", ",", ";")) or body[:1] in "\"'\u201c\u2018":
            return False   # a sentence, or a quotation: prose
        following = self._next_line(number)
        if not following:
            return True
        label = split_label(following)
        return label is not None and plausible_label(label, self.known)


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
        # the period that ends a list ("PERSONS: Socrates, Euthyphro.") is no part of the name; an
        # abbreviation's is ("Jr.", "D.D.")
        last = entry.split()[-1]
        if last.endswith(".") and len(last.rstrip(".")) > 3 and "." not in last.rstrip("."):
            entry = entry[:-1]
        return entry, ""
    # "Merriman, Butler", "Rev. Canon Chasuble, D.D.", "PHAEDO, who is the narrator ..."
    name, found, desc = entry.partition(",")
    if found and name_words(name.strip()):
        return name.strip(), normalise_text(desc.strip(" ."))
    return None, ""
