"""The script reader on real texts nobody wrote for it (issue 12): excerpts of public-domain plays,
a dialogue, podcast transcripts and a subtitle file, exactly as published (sources and licences in
tests/data/scripts/corpus/SOURCES.md). Each ``X.speakers`` file lists, one a line, who speaks each
turn, written by reading the text; every turn must be attributed to that speaker, in order, with
no label read aloud."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamwise.script import NARRATOR, decode_script, load_script
from streamwise.script.text import speaker_key

CORPUS = Path(__file__).parent / "data" / "scripts" / "corpus"
EXCERPTS = sorted(p for p in CORPUS.iterdir() if p.suffix != ".speakers" and p.name != "SOURCES.md")


def expected_speakers(path: Path) -> list[str]:
    return [line.strip() for line in path.with_suffix(".speakers").read_text(encoding="utf-8").splitlines()
            if line.strip()]


def test_the_corpus_is_there_and_documented() -> None:
    assert len(EXCERPTS) >= 10
    sources = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    for path in EXCERPTS:
        assert path.with_suffix(".speakers").exists(), path.name
        assert f"`{path.name}`" in sources, f"{path.name} has no source and licence in SOURCES.md"


@pytest.mark.parametrize("path", EXCERPTS, ids=lambda p: p.name)
def test_every_turn_goes_to_its_speaker(path: Path) -> None:
    play = load_script(path)
    want = expected_speakers(path)
    got = [line.speaker for line in play.lines]
    assert [speaker_key(name) for name in got] == [speaker_key(name) for name in want], (
        "\n".join(f"{line.source_line}: {line.speaker}: {line.text[:50]}" for line in play.lines))
    raw = decode_script(path.read_bytes(), path.name)
    for line in play.lines:
        # a label is never spoken: no line starts with its own speaker's name as a label
        first = line.text.split(" ", 1)[0].rstrip(".:,").casefold()
        assert not (first == speaker_key(line.speaker).split()[-1] and line.text[len(first):len(first) + 1] in ".:"), line
        assert 1 <= line.source_line <= raw.count("\n") + 1


def test_encodings_of_the_corpus_are_what_the_test_claims() -> None:
    """One Latin-1, one Windows-1252 and one UTF-16 file, so the decoder is exercised on real text."""
    latin1 = (CORPUS / "moliere_impromptu.md").read_bytes()
    assert b"MOLI\xc8RE" in latin1                      # È in Latin-1, not UTF-8
    assert "Molière" in load_script(CORPUS / "moliere_impromptu.md").speakers
    cp1252 = (CORPUS / "plato_crito.md").read_bytes()
    assert b"\x97" in cp1252                            # the em dash of Windows-1252
    assert "\u2014" not in "".join(line.text for line in load_script(CORPUS / "plato_crito.md").lines)
    assert (CORPUS / "shakespeare_coriolanus.txt").read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    nbsp = (CORPUS / "wilde_earnest_1915_nbsp.txt").read_text(encoding="utf-8")
    assert "Algernon.\u00a0 Did you hear" in nbsp


def test_what_is_not_dialogue_is_reported_not_spoken() -> None:
    play = load_script(CORPUS / "shaw_pygmalion.txt")
    spoken = " ".join(line.text for line in play.lines)
    assert "interrupted by the parlor-maid" not in spoken           # a stage direction in roman type
    assert any(":72: not placed" in notice and "interrupted by the parlor-maid" in notice
               for notice in play.notices)
    assert "DOOLITTLE" not in spoken and "HIGGINS [" not in spoken and "MRS." not in spoken
    earnest = load_script(CORPUS / "wilde_earnest.txt")
    assert earnest.title == "The Importance of Being Earnest"
    assert earnest.characters["Lane"] == "Manservant" and earnest.characters["Merriman"] == "Butler"
    assert not any("Aynesworth" in line.text or "Present" in line.text for line in earnest.lines)
    assert any("front matter" in notice for notice in earnest.notices)
    crito = load_script(CORPUS / "plato_crito.md")
    assert crito.speakers == ("Socrates", "Crito")                  # Soc. and Cr. are abbreviations
    assert not any(line.text.startswith(("214", "DIALOGUES")) for line in crito.lines)


def test_a_text_without_labels_is_one_speaker_narration_with_a_notice() -> None:
    play = load_script(CORPUS / "carroll_alice.txt")
    assert play.speakers == (NARRATOR,)
    assert play.title == "CHAPTER I. Down the Rabbit-Hole"
    assert play.lines[0].text.startswith("Alice was beginning to get very tired")
    assert len(play.notices) == 1 and "--document" in play.notices[0] and "narration" in play.notices[0]
