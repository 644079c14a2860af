"""Splitting a line's text into speakable pieces for low time to first audio (:func:`split_text`;
:data:`FIRST_PIECE_CHARS`). Used by the screenplay stages and the speech engine's callers;
:mod:`.speech` re-exports these names."""

from __future__ import annotations

import re


_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*$")
_CLAUSE_END = re.compile(r"[,;:\u2014\u2013]+[\"'\u201d\u2019)\]]*$")
_DASHES = {"-", "--", "\u2013", "\u2014"}
_ABBREVIATIONS = {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "e.g.", "i.e.", "etc.", "jr.", "sr.", "no."}
_CONJUNCTIONS = {"and", "but", "or", "so", "because", "which", "while", "when", "where", "although", "though",
                 "whereas", "since", "unless", "until", "then", "yet", "that", "if"}
FIRST_PIECE_CHARS = 80   # the first piece of a line: short, so its audio (and the first frame) come quickly


def _break_level(words: list[str], k: int) -> int:
    """Strength of a break between words[k-1] and words[k]: 4 sentence, 3 clause, 2 before a conjunction, 1 word."""
    prev = words[k - 1]
    if _SENTENCE_END.search(prev) and prev.lower() not in _ABBREVIATIONS and not re.fullmatch(r"[A-Z]\.", prev):
        return 4
    if _CLAUSE_END.search(prev) or prev in _DASHES or words[k] in _DASHES:
        return 3
    if words[k].lower().strip("\"'(") in _CONJUNCTIONS:
        return 2
    return 1


def split_text(text: str, max_chars: int = 180, first_chars: int = FIRST_PIECE_CHARS) -> list[str]:
    """Split a (possibly several-thousand-character) line into speakable pieces of <= ``max_chars`` characters.

    Breaks at sentence ends first, then at clause punctuation (, ; : and dashes), then before conjunctions, then
    at any word boundary; a single word longer than ``max_chars`` is cut hard. Short sentences are grouped while
    they fit. The FIRST piece is limited to ~``first_chars`` characters (at the best break available) so the first audio is
    ready quickly: time to first audio does not grow with the line length. Whitespace inside pieces is collapsed
    to single spaces, so joining the pieces with spaces gives back the text modulo whitespace.
    Returns [] for blank text. Raises ValueError if max_chars < 1.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    words = text.split()
    pieces: list[str] = []
    i = 0
    while i < len(words):
        limit = min(max_chars, first_chars) if not pieces else max_chars
        if len(words[i]) > max_chars:  # hard cut of an over-long word
            pieces.append(words[i][:max_chars])
            words[i] = words[i][max_chars:]
            continue
        limit = max(limit, len(words[i]))
        # farthest j such that words[i:j] fits in limit
        j, length = i + 1, len(words[i])
        while j < len(words) and length + 1 + len(words[j]) <= limit:
            length += 1 + len(words[j])
            j += 1
        if j < len(words):  # does not all fit: cut at the strongest break, the farthest among equals
            best_level, best_k = 0, j
            for k in range(j, i, -1):
                level = _break_level(words, k)
                if level > best_level:
                    best_level, best_k = level, k
                    if level == 4:
                        break
            j = best_k
        pieces.append(" ".join(words[i:j]))
        i = j
    return pieces


OPENING_PIECE_CHARS = (16, 48)   # the show's first piece: a sentence or clause of this many characters


def split_opening(text: str, max_chars: int = 180, first_chars: int = FIRST_PIECE_CHARS) -> list[str]:
    """:func:`split_text` for the FIRST line of a show: its first piece ends at the first sentence or
    clause break between :data:`OPENING_PIECE_CHARS` characters (about 1.2-3.5 s of speech) when there
    is one. The show's first segment is one second long, so that is all the speech its first frame
    waits for: eight shows started at once on one speech worker wait for eight of these, not eight
    80-character pieces (piper: ~0.29 s of CPU for "Welcome to Two Minute Tech. Today, why your
    video call freezes.", ~0.13 s for its first sentence, on the development VM). Otherwise (no
    such break) the same pieces as :func:`split_text`; joined with spaces, the pieces give back the
    text modulo whitespace."""
    lo, hi = OPENING_PIECE_CHARS
    words = text.split()
    length = 0
    for k, word in enumerate(words[:-1], start=1):
        length += len(word) + (k > 1)
        if length > hi:
            break
        if length >= lo and _break_level(words, k) >= 3:
            return [" ".join(words[:k])] + split_text(" ".join(words[k:]), max_chars, first_chars)
    return split_text(text, max_chars, first_chars)
