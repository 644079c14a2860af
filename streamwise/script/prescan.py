"""The first pass over a plain-text script (:mod:`streamwise.script.plain`): the cast a printed play
repeats, its abbreviated labels and where its first act begins (:class:`_Prescan`), and a cast list
given without a heading (:func:`_unheaded_cast`)."""

from __future__ import annotations

from streamwise.script.patterns import _ACT_START, _BULLET, _HEADING, _META
from streamwise.script.text import (
    DIRECTIONS,
    INTERJECTIONS,
    NON_NAMES,
    TITLES,
    is_caps,
    name_words,
    speaker_key,
    split_label,
)


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
        anywhere: dict[str, int] = {}   # "Name. text" at the start of any line
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
            if label and label.kind == "play" and not is_caps(label.name) and \
                    _candidate_name(label.name, speaker_key(label.name)):
                anywhere[speaker_key(label.name)] = anywhere.get(speaker_key(label.name), 0) + 1
                shown.setdefault(speaker_key(label.name), label.name)
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
        self.names, self.aliases = _names(counts, shown)
        if len(self.names) >= 2:
            # a play: "Hor. Not I." after a speech of several lines counts too (Gutenberg's older
            # Shakespeare texts run speeches together without blank lines)
            self.names, self.aliases = _names({k: max(v, counts.get(k, 0)) for k, v in anywhere.items()}
                                              | {k: v for k, v in counts.items() if k not in anywhere}, shown)


def _unheaded_cast(lines: list[str]) -> int:
    """The line (1-based) where a cast list without a heading starts, 0 when there is none: bullet
    lines ``- Name: description`` before any other labelled line, each of whose names is later
    a speaker label in a line that is not a bullet (``MARTHA. You're late.``). A script made
    only of bullet lines (a bulleted transcript) has no later label, so it is dialogue."""
    start, names, at = 0, [], 0
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or _HEADING.match(line):
            continue
        bullet = _BULLET.match(line)
        label = split_label(line[bullet.end():] if bullet else line)
        if label is None or _META.get(speaker_key(label.name)):
            if names:
                at = number
                break
            continue          # a title, a "Studio:" line, a paragraph before the cast
        if not bullet or label.kind != "colon":
            at = number
            break
        start = start or number
        names.append(speaker_key(label.name))
    if not names or not at:
        return 0
    later = set()
    for raw in lines[at - 1:]:
        line = raw.strip()
        label = None if _BULLET.match(line) else split_label(line)
        if label is not None:
            later.add(speaker_key(label.name))
    return start if all(name in later for name in names) else 0


def _names(counts: dict[str, int], shown: dict[str, str]) -> tuple[set[str], dict[str, str]]:
    """Names seen at least twice (an abbreviation counting for the one longer name it begins), and the
    abbreviations: key -> the full name as written."""
    aliases: dict[str, str] = {}
    totals = dict(counts)
    for short in sorted(counts):
        if " " in short or len(short) > 5:
            continue
        longer = {key for key in counts if key != short and " " not in key and key.startswith(short)}
        if len(longer) == 1:
            full = longer.pop()
            aliases[short] = shown[full]
            totals[full] += counts[short]
            totals[short] = totals[full]
    return {key for key, count in totals.items() if count >= 2}, aliases


def _candidate_name(name: str, key: str) -> bool:
    words = name_words(name)
    return bool(words) and key not in INTERJECTIONS and key not in DIRECTIONS and \
        words[0].casefold().rstrip(".") not in NON_NAMES and key.rstrip(".") not in TITLES
