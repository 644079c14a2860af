"""Script styles an outside reader brings (session 8's try of issue 12 as a new user): subtitle files with
voice tags in SubRip, transcripts with their time stamps in the forms exporters write them, a printed
play in French, an older Gutenberg play set with hanging indents, UTF-16 without a BOM. Each was misread
before (a turn lost, a time stamp spoken or taken as the title, a label read aloud in the previous speech,
a scene heading taken as a speaker, a file refused); the real reader on real text, nothing mocked."""

from __future__ import annotations

from pathlib import Path

from streamwise.script import load_script, parse_script


def turns(text: str, path: str = "t.txt") -> list[tuple[str, str]]:
    return [(line.speaker, line.text) for line in parse_script(text, path=path).lines]


DIALOGUE = [("Jane Doe", "Thanks for joining us today."), ("Tom Baker", "Sure. I grew up on the river."),
            ("Jane Doe", "And what does a typical day look like?")]


def test_srt_voice_tags_name_the_speaker_as_in_webvtt() -> None:
    srt = ("1\n00:00:01,000 --> 00:00:03,500\n<v Jane>Thanks for joining us today.</v>\n\n"
           "2\n00:00:03,600 --> 00:00:06,000\n<v Tom>Sure. I grew up on the river,\nso it was natural.</v>\n\n"
           "3\n00:00:06,100 --> 00:00:08,000\n[JANE] And what does a typical day look like?\n\n"
           "4\n00:00:08,100 --> 00:00:10,000\n- TOM: Mostly walking the banks.\n- JANE: Counting birds?\n")
    play = parse_script(srt, path="tags.srt")
    assert [(line.speaker, line.text, line.source_line) for line in play.lines] == [
        ("Jane", "Thanks for joining us today.", 3), ("Tom", "Sure. I grew up on the river, so it was natural.", 7),
        ("Jane", "And what does a typical day look like?", 12), ("Tom", "Mostly walking the banks.", 16),
        ("Jane", "Counting birds?", 17)]
    assert play.notices == ()


def test_time_stamps_in_the_forms_transcript_exporters_write_are_not_spoken() -> None:
    lines = [f"{who}: {text}" for who, text in DIALOGUE]
    stamps = ["00:00:02", "00:00:07", "00:00:15"]
    # YouTube-style: the stamp alone on its line above the words (it was the title, and spoken)
    youtube = "".join(f"{s}\n{line}\n" for s, line in zip(("0:02", "0:07", "0:15"), lines))
    assert youtube.startswith("0:02\nJane Doe:")
    play = parse_script(youtube)
    assert [(line.speaker, line.text) for line in play.lines] == DIALOGUE and play.title is None
    # "00:00:02 - Jane Doe: ..." (was one-speaker narration)
    assert turns("".join(f"{s} - {line}\n" for s, line in zip(stamps, lines))) == DIALOGUE
    # Zoom's "[Jane Doe] 10:02:03" above the words (was narration)
    zoom = "".join(f"[{who}] 10:02:{i:02d}\n{text}\n" for i, (who, text) in enumerate(DIALOGUE))
    assert turns(zoom) == DIALOGUE
    # a stamped line without a label goes on with the speech; its stamp is not said
    assert turns("[00:00:02] Jane Doe: Thanks for joining\n[00:00:04] us today.\n[00:00:07] Tom Baker: Sure.\n") == [
        ("Jane Doe", "Thanks for joining us today."), ("Tom Baker", "Sure.")]
    # prose that starts with a time of day keeps it
    assert turns("Narrator: At dawn we left.\n10:30 in the morning was late.\n", "n.txt")[0][1].endswith("10:30 in the morning was late.")


def test_a_french_play_s_acts_and_scenes_are_headings_not_speakers() -> None:
    play = parse_script("L'AVARE\n\nACTE PREMIER\n\nSCÈNE PREMIÈRE. - VALÈRE, ÉLISE.\n\n"
                        "VALÈRE. - Hé quoi! charmante Élise, vous devenez mélancolique?\n\n"
                        "ÉLISE. - Non, Valère, je ne puis pas me repentir.\n\nSCÈNE II\n\n"
                        "VALÈRE. - Eh! que pouvez-vous craindre?\n", path="avare.txt")
    assert play.speakers == ("Valère", "Élise") and play.title == "L'AVARE"
    assert [line.text for line in play.lines][0].startswith("Hé quoi!")
    assert not any("ACTE" in line.text or "SCÈNE" in line.text for line in play.lines)


HAMLET = """ACT I. SCENE I.
Elsinore. A platform before the Castle.

  Ber. Who's there?
  Fran. Nay, answer me. Stand and unfold yourself.
  Ber. Long live the King!
  Fran. For this relief much thanks. 'Tis bitter cold,
    And I am sick at heart.
  Ber. Well, good night.
    If you do meet Horatio and Marcellus,
    The rivals of my watch, bid them make haste.

                    Enter Horatio and Marcellus.

  Fran. I think I hear them. Stand, ho! Who is there?
  Hor. Friends to this ground.
  Mar. And liegemen to the Dane.
  Exeunt. Manet Horatio.
"""


def test_a_play_set_with_hanging_indents_gives_a_speaker_seen_once_his_own_turn() -> None:
    """Gutenberg's older Shakespeare: labels at one indentation, verse continued deeper. ``Hor.`` speaks once in
    the excerpt; it was read aloud at the end of Francisco's speech."""
    play = parse_script(HAMLET, path="hamlet.txt")
    assert [line.speaker for line in play.lines] == ["Ber", "Fran", "Ber", "Fran", "Ber", "Fran", "Hor", "Mar"]
    assert play.lines[3].text == "For this relief much thanks. 'Tis bitter cold, And I am sick at heart."
    assert play.lines[6].text == "Friends to this ground." and play.lines[5].text.endswith("Who is there?")
    assert not any("Exeunt" in line.text or "Manet" in line.text for line in play.lines)
    # without hanging indents a mixed-case "Name." seen once is no speaker (a "Yes." or "Indeed." never is)
    flat = "\n".join(row.strip() for row in HAMLET.splitlines())
    assert "Hor" not in parse_script(flat, path="flat.txt").speakers


def test_utf16_without_a_bom_is_detected(tmp_path: Path) -> None:
    text = "Ada: Welcome to the show.\nBen: Thank you, Ada. Naïvely optimistic, as ever.\n"
    for codec in ("utf-16-le", "utf-16-be"):
        path = tmp_path / f"{codec}.txt"
        path.write_bytes(text.encode(codec))
        assert [line.speaker for line in load_script(path).lines] == ["Ada", "Ben"], codec
        assert "Naïvely" in load_script(path).lines[1].text
    ascii_only = tmp_path / "ascii.txt"          # valid UTF-8 too (with NULs): still read as UTF-16
    ascii_only.write_bytes("Ada: Hello there.\nBen: Hi.\n".encode("utf-16-le"))
    assert [line.text for line in load_script(ascii_only).lines] == ["Hello there.", "Hi."]
