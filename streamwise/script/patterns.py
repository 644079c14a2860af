"""The line patterns and keyword tables of plain-text scripts (:mod:`streamwise.script.plain`):
Markdown headings, rules and bullets, transcript time stamps, the labelled lines that are a title,
a studio, a cast or notes (``_META``), and a printed play's structure headings (``ACT I``, ``SCENE 2``,
``PROLOGUE``) and where its first act starts."""

from __future__ import annotations

import re

_HEADING = re.compile(r"#{1,6}(?:\s|$)")
_RULE = re.compile(r"(?:-{3,}|\*{3,}|_{3,}|={3,})")
_BULLET = re.compile(r"(?:[-*+\u2022>]|\d{1,3}[.)])\s+")
_STAMP = r"[\[(]?\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?[\])]?"
# "[00:01:23] Alice: ...", "00:00:02 - Alice: ...", "(0:07) | ALICE: ..."
_STAMP_HEAD = re.compile(_STAMP + r"(?:\s*[-\u2013\u2014|]\s+|\s+)")
_STAMP_LINE = re.compile(_STAMP)   # a time stamp alone on its line (YouTube / caption exports): not spoken
# a stamp that cannot be the start of a sentence ("[00:01]", "00:01:23"): dropped from unlabelled lines too
_SURE_STAMP = re.compile(r"(?:[\[(]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?[\])]|\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,3})?)"
                         r"(?:\s*[-\u2013\u2014|]\s+|\s+)")
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
           r"|FOURTH|FIFTH|LAST|FINAL"
           # French, German, Spanish and Italian ordinals of printed plays: "ACTE PREMIER", "SCÈNE II",
           # "ERSTER AUFZUG", "ACTO SEGUNDO", "ATTO PRIMO"
           r"|PREMI[EÈ]RE?|SECONDE?|DEUXI[EÈ]ME|TROISI[EÈ]ME|QUATRI[EÈ]ME|CINQUI[EÈ]ME|DERNI[EÈ]RE?"
           r"|ERSTER|ZWEITER|DRITTER|VIERTER|F[ÜU]NFTER|LETZTER|PRIMERO|SEGUNDO|TERCERO|PRIMO|SECONDO|TERZO)")
_ACT_WORD = r"(?:ACT|ACTE|AKT|AUFZUG|ACTO|ATTO)"
_SCENE_WORD = r"(?:SCENE|SC[ÈE]NE|SZENE|AUFTRITT|ESCENA|SCENA)"
# a heading of a printed play's structure, alone on its line: "ACT I", "FIRST ACT", "SCENE 2",
# "Act 1, Scene 1", "PROLOGUE"; never a speaker
_STRUCTURE = re.compile(
    rf"(?:(?:{_ACT_WORD}|{_SCENE_WORD}|PART)\s+{_NUMBER}(?:[.,:]?\s*{_SCENE_WORD}\s+{_NUMBER})?"
    rf"|{_NUMBER}\s+(?:{_ACT_WORD}|{_SCENE_WORD}|PART)"
    rf"|PROLOGUE|[ÉE]PILOGUE|INDUCTION|{_SCENE_WORD}|CURTAIN|RIDEAU|THE END"
    rf"|END OF (?:THE )?(?:ACT|SCENE|PLAY)(?:\s+{_NUMBER})?)\.?",
    re.IGNORECASE)
# the play proper starts at its first act (what comes before is a title page, a cast list, notes)
_ACT_START = re.compile(rf"(?:{_ACT_WORD}\s+{_NUMBER}(?:[.,:]?\s*{_SCENE_WORD}\s+{_NUMBER})?|{_NUMBER}\s+{_ACT_WORD}"
                        rf"|PROLOGUE|INDUCTION)\.?", re.IGNORECASE)
