"""Helpers for :mod:`streamwise.script`: text cleaning and speaker labels.

:func:`clean_text` turns a line as written into speech text for TTS (markup and stage directions removed,
quotes, dashes and spaces normalised); :func:`split_label` finds a would-be speaker label at the start of a line
(a :class:`Label`) and :func:`plausible_label` judges whether it really names a speaker. Used by the plain-text
parser in :mod:`streamwise.script` and by the subtitle and JSON parsers in :mod:`streamwise.script.formats`.

All regular expressions use bounded or negated character classes, so no input can
make them backtrack catastrophically (a 1 MB script parses in well under a second).
"""

from __future__ import annotations

import html
import re
from typing import NamedTuple


class Label(NamedTuple):
    """A would-be speaker label at the start of a line (syntax only, not yet judged)."""

    name: str
    rest: str
    # "colon" (Name: text), "bold" (**Name:** text), "bracket" ([Name]: text), "bare" ([Name] text),
    # "play" (NAME. text / Name. text), "direction" (NAME [direction] text), "alone" (NAME on its own
    # line), "cue" (NAME. on its own line), "stamped" (Name  0:03 on its own line)
    kind: str


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
_BRACKETED = re.compile(r"\[[^\[\]]{0,300}\]")
_STARRED = re.compile(r"\*([^*]{1,80})\*")
_UNDERSCORED = re.compile(r"(?<![\w])_([^_\s][^_]{0,80})_(?![\w])")  # _is_: italics in Gutenberg texts
_NUM_DASH = re.compile(r"(?<=\d)[\u2013\u2014](?=\d)")
_DASH = re.compile(r" ?(?:[\u2013\u2014\u2015]+|(?<![<-])--+(?![->])) ?")
_SPACE_PUNCT = re.compile(r" ([,!?;]|\.(?!\.))")
_SENTENCE_END = ".!?:;\"'"
_STRAY_STOP = re.compile(r"([.!?]) \.(?!\.)")  # "Oh bother! [He throws the hat down]." -> "Oh bother!"


def normalise_text(text: str) -> str:
    """Unescape HTML entities, straighten quotes, map dashes/ellipses/odd spaces, collapse whitespace."""
    if "&" in text:
        text = html.unescape(text)
    text = " ".join(text.translate(_CHAR_MAP).split())
    text = _NUM_DASH.sub("-", text)
    return _DASH.sub(" - ", text).strip()


def clean_text(text: str, *, prose: bool = False) -> str:
    """Speech text ready for TTS: markup and stage directions removed, then normalised.

    ``prose``: narration, where a ``(parenthesis)`` is part of the sentence: only ``[bracketed]``
    directions are removed. Returns "" when nothing speakable (no letter or digit) remains.
    """
    text = _MARKUP.sub(" ", text)
    text = " ".join(text.translate(_CHAR_MAP).split())  # early collapse keeps the regexes linear
    text = (_BRACKETED if prose else _DIRECTION).sub(" ", text.replace("**", ""))
    text = _STARRED.sub(_star_direction, text).replace("*", "")
    text = _UNDERSCORED.sub(r"\1", text).replace("_._", "")
    text = _SPACE_PUNCT.sub(r"\1", _STRAY_STOP.sub(r"\1", normalise_text(text)))
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
    "solution definition disclaimer summary fig figs vol vols ch pp op cf ibid ed eds trans no nos "
    "act acts scene scenes curtain tableau finis prologue epilogue interlude transcript contents page "
    "acte scène szene akt aufzug auftritt acto escena atto scena".split()  # a play's parts in French, German, ...
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
# "Gary Jordan (Host):Houston, ..." - a role in parentheses makes a colon without a space a label
_ROLE_COLON = re.compile(r"([^:\[\]()<>{}\"|/\\*=#@]{1,40})(\([^()]{1,60}\))\s*:(?=\S)")
# "DOOLITTLE [with fatherly pride] Well, ..." / "MRS. HIGGINS (dismayed). Henry!" - Shaw's style
_DIRECTION_LABEL = re.compile(r"([^\[\]()<>{}:;,!?\"]{2,40}?)\s*(\[[^\[\]]{1,200}\]|\([^()]{1,200}\))[.:]?\s+(?=\S)")
_STAMP_TAIL = re.compile(r"\s+\(?\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?\)?$")
_STAMP_ALONE = re.compile(r"[\[(]?\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?[\])]?")


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
    """True for an ALL-CAPS name with at least two letters; a leading title may be in any case
    (``Miss EYNSFORD HILL``, ``Mrs. PEARCE``, as some printed plays set them)."""
    words = name.split()
    while len(words) > 1 and words[0].rstrip(".").casefold() in TITLES:
        words = words[1:]
    letters = [c for c in " ".join(words) if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def is_capitalised_name(name: str) -> bool:
    """``Algernon``, ``Lady Bracknell``, ``Mrs. Higgins``, ``Soc``: 1-4 name-like words, each
    capitalised (particles such as ``de`` / ``of`` excepted)."""
    words = name_words(name)
    return bool(words) and _capitalised(words)


def split_label(body: str, *, bare_bracket: bool = False) -> Label | None:
    """Find a speaker-label shape at the start of ``body`` (see :class:`Label` kinds)."""
    if body.startswith(("**", "__")):
        return _bold_label(body)
    if body.startswith("["):
        return _bracket_label(body, bare_bracket)
    match = _COLON_LABEL.match(body) or _ROLE_COLON.match(body)
    if match:
        colon = Label(match.group(1).strip(" \t\"'"), body[match.end():].strip(), "colon")
        play = _play_label(body)
        # "HAMLET. To be, or not to be: that is..." - the play label ends before the colon
        if play is not None and len(play.name) < len(colon.name):
            return play
        return colon
    return _play_label(body) or _direction_label(body) or _alone_label(body)


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
    if _STAMP_ALONE.fullmatch(after):  # "[Jane Doe] 10:02:03" on its own line, the words below (Zoom)
        return Label(name, "", "stamped")
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
        # "Algernon. Did you hear ..." in mixed case is only a shape here: plausible_label takes
        # it when the name is known (a cast list, or seen as a label before)
        ok = is_caps(name) or is_capitalised_name(name)
        return Label(name, body[match.end():].strip(), "play") if ok else None
    return None


def _direction_label(body: str) -> Label | None:
    """``NAME [direction] text``: a name in capitals, a bracketed direction, then the speech."""
    match = _DIRECTION_LABEL.match(body)
    if not match:
        return None
    name = match.group(1).strip().rstrip(".").strip()
    if not name or not (is_caps(name) or is_capitalised_name(name)) or name_words(name) is None:
        return None
    return Label(name, body[match.end():].strip(), "direction")


def _alone_label(body: str) -> Label | None:
    stamped = _STAMP_TAIL.search(body) if len(body) < 60 else None
    if stamped:  # transcript style "Alice  0:03" on its own line
        return Label(drop_paren(body[: stamped.start()]), "", "stamped")
    name = drop_paren(body.rstrip(":"))
    kind = "alone"
    if name.endswith(".") and name.split()[-1].rstrip(".").casefold() not in TITLES:
        name, kind = name[:-1].rstrip(), "cue"  # "ALGERNON." on its own line, the speech below
        if not name or name.endswith("."):
            return None
    role = body.rstrip(":").endswith(")") and "(" in body and kind == "alone"
    if "," in name and is_caps(name):  # "BRÉCOURT, DERRIÈRE LE THÉÂTRE": the name, then a direction
        name = name.split(",", 1)[0].strip()
    if is_caps(name):
        return Label(name, "", "role" if role else kind)
    if is_capitalised_name(name):  # "Leah Cheshier (Host)", "Algernon.": see plausible_label
        return Label(name, "", "role" if role else "cue" if kind == "cue" else "named")
    return None


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
    if label.kind in ("play", "alone", "cue", "direction"):
        return caps
    if label.kind == "named":
        return False
    if label.kind == "role":  # a name with a role on its own line: "Leah Cheshier (Host)"
        return caps or _capitalised(words)
    if label.kind == "bare":
        return new_bare and _capitalised(words)
    if caps:
        return True
    if not label.rest and label.kind != "stamped" and open_speech:
        return False
    if _capitalised(words):
        return True
    return label.name.islower() and (len(words) == 1 or words[0].rstrip(".") in TITLES)


def snippet(text: str, limit: int = 60) -> str:
    """A short quoted excerpt of ``text`` for error messages."""
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
