"""Tests for streamwise.script: human-written podcast scripts -> Screenplay."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from streamwise.script import (
    Line,
    Screenplay,
    ScriptError,
    clean_text,
    detect_format,
    display_name,
    load_script,
    parse_script,
)

DATA = Path(__file__).parent / "data" / "scripts"


def texts(play: Screenplay) -> list[tuple[str, str]]:
    return [(line.speaker, line.text) for line in play.lines]


# --------------------------------------------------------------------------- sample files


def test_plain_two_speakers() -> None:
    play = load_script(DATA / "two_speakers.txt")
    assert play.title == "The Curious Byte"
    assert play.studio == ("A small radio studio at night, rain on the window, "
                           "two microphones on a wooden desk.")
    assert play.speakers == ("Ada", "Ben")
    assert texts(play) == [
        ("Ada", "Welcome back to The Curious Byte. I'm Ada."),
        ("Ben", "And I'm Ben. Today we're talking about streaming."),
        ("Ada", "Streaming is everywhere now. It's how most of us watch and listen."),
        ("Ben", "Right. Let's dig in."),
    ]
    assert [line.index for line in play.lines] == [0, 1, 2, 3]
    assert [line.source_line for line in play.lines] == [6, 7, 8, 10]
    assert play.characters == {}


def test_messy_text() -> None:
    play = load_script(DATA / "messy.txt")
    assert play.title == "Messy Episode Draft"
    assert play.speakers == ("Alice", "Bob", "Carol", "David", "Dr. Eve")
    assert len(play.lines) == 9
    by_index = {line.index: line for line in play.lines}
    assert by_index[0].text == "Hi, I'm Alice - welcome!"
    assert by_index[1] == Line(1, "Alice", "Still me, in lower case.", 4)
    assert by_index[2].text == "The time is 10:30: late."  # colons in speech, paren direction dropped
    assert by_index[3].text == 'Markdown bold label... with "curly quotes".'
    assert by_index[4].text == "Second bold style & an entity."
    assert by_index[5].text == "A play-style line. It continues here without a label."
    assert by_index[6].speaker == "Bob"
    assert by_index[6].text == ("Bracketed label, then a direction. "
                                "http://example.com/path: a URL line continues Bob.")
    long_line = by_index[7]
    assert long_line.speaker == "Carol" and long_line.source_line == 14
    assert len(long_line.text) > 4900
    assert long_line.text.startswith("The signal keeps going")
    assert long_line.text.endswith("without a break.")
    assert by_index[8].text == "Two-word play name. Well, that was fun - wasn't it?"
    spoken = " ".join(line.text for line in play.lines)
    assert "author note" not in spoken  # "Note:" lines are not speech
    assert "clears throat" not in spoken and "laughing" not in spoken and "pause" not in spoken
    assert all(ch not in spoken for ch in "\u2019\u201c\u201d\u2014\u2013\u2026*")


def test_screenplay_style() -> None:
    play = load_script(DATA / "screenplay.txt")
    assert play.title == "Night Shift"
    assert play.studio == "A late-night call-in show, neon light through the blinds."
    assert play.speakers == ("Host", "Caller")  # "CALLER (V.O.)" and "CALLER" are one speaker
    assert texts(play) == [
        ("Host", "Good evening, night owls. You're listening to Night Shift."),
        ("Caller", "Hi, long-time listener, first-time caller."),
        ("Host", "Welcome! What's on your mind?"),
        ("Caller", "I can't sleep."),
    ]
    assert [line.source_line for line in play.lines] == [6, 10, 14, 20]


def test_webvtt_voices_merged_across_cues() -> None:
    play = load_script(DATA / "voices.vtt")
    assert play.title == "Pod Episode 7"
    assert play.speakers == ("Maya", "Theo")
    assert texts(play) == [
        ("Maya", "Welcome to the show, where we talk about everything audio."),
        ("Theo", "Thanks, Maya! It's great to be here. Really great."),
        ("Maya", "Let's start. So, Theo - what's new?"),
    ]
    assert [line.source_line for line in play.lines] == [14, 21, 25]


def test_srt_prefixes() -> None:
    play = load_script(DATA / "prefixed.srt")
    assert play.speakers == ("Narrator", "Jo", "Sam")
    assert texts(play) == [
        ("Narrator", "In a world of endless noise... one voice stood out."),
        ("Jo", "Hey, who's there?"),
        ("Sam", "Just me. Don't be scared. I brought coffee."),  # [DOOR CREAKS] is no speech
        ("Jo", "Oh, thank you!"),
    ]
    assert [line.source_line for line in play.lines] == [3, 11, 12, 25]


def test_json_screenplay() -> None:
    play = load_script(DATA / "screenplay.json")
    assert play.title == "Deep Dive: Oceans"
    assert play.studio == "An underwater-themed studio with blue light and porthole windows"
    assert play.speakers == ("Ada", "Dr. Kai")
    assert play.characters == {"Ada": "curious host who asks short questions",
                               "Dr. Kai": "guest; marine biologist"}
    assert texts(play) == [
        ("Ada", "Welcome to Deep Dive. Today: the oceans."),
        ("Dr. Kai", "Thanks for having me."),
        ("Ada", "How deep is the ocean - really?"),
        ("Dr. Kai", "About 11,000 metres at its deepest point."),
        ("Dr. Kai", "That's the Mariana Trench."),  # no speaker key: continues
    ]
    assert [line.source_line for line in play.lines] == [12, 13, 19, 20, 21]


def test_jsonl_stream() -> None:
    play = load_script(DATA / "stream.jsonl")
    assert play.title == "Live From The Lab"
    assert play.studio == "A cluttered lab with glowing monitors"
    assert play.characters == {"Iris": "engineer", "Omar": "producer"}
    assert play.speakers == ("Iris", "Omar")
    assert texts(play) == [
        ("Iris", "We're live!"),
        ("Omar", "The stream is stable & fast."),
        ("Iris", "Let me check the logs."),
        ("Iris", "Looks good."),
    ]
    assert [line.source_line for line in play.lines] == [4, 5, 7, 8]


def test_large_script_parses(tmp_path: Path) -> None:
    chunk = ("Ada: " + "A fairly long sentence about streaming media (pause), "
             "with 10:30 times and \u201cquotes\u201d. " * 20 + "\nBEN. Short reply.\n\n")
    path = tmp_path / "big.txt"
    path.write_text(chunk * (1_000_000 // len(chunk) + 1), encoding="utf-8")
    play = load_script(path)
    assert play.speakers == ("Ada", "Ben")
    assert len(play.lines) == 2 * (1_000_000 // len(chunk) + 1)
    assert play.lines[1].text == "Short reply."


# --------------------------------------------------------------------------- plain-text rules


def test_labels_in_any_case_are_one_speaker() -> None:
    play = parse_script("ALICE: one\nalice: two\nAlice : three\n**alice:** four\n[ALICE]: five")
    assert play.speakers == ("Alice",)
    assert [line.text for line in play.lines] == ["one", "two", "three", "four", "five"]


@pytest.mark.parametrize("label, shown", [
    ("ALICE", "Alice"), ("dr. bob", "Dr. Bob"), ("McKay", "McKay"), ("O'BRIEN", "O'Brien"),
    ("MARY-JANE WATSON", "Mary-Jane Watson"), ("DJ", "DJ"), ("Speaker 1", "Speaker 1"),
])
def test_display_names(label: str, shown: str) -> None:
    assert display_name(label) == shown
    assert parse_script(f"{label}: hello").speakers == (shown,)


def test_first_seen_form_wins() -> None:
    play = parse_script("dr. bob: hi\nDR. BOB: again\nDr Bob: third")
    assert play.speakers == ("Dr. Bob",)
    assert len(play.lines) == 3


def test_colons_and_urls_do_not_start_speakers() -> None:
    script = ("Bob: The time is 10:30: late.\n"
              "https://example.com: is a link\n"
              "the thing is: it works\n"
              "Remember this: always test.\n"
              "Note: authors' note, not spoken\n"
              "Ada: done")
    play = parse_script(script)
    assert play.speakers == ("Bob", "Ada")
    assert play.lines[0].text == ("The time is 10:30: late. https://example.com: is a link "
                                  "the thing is: it works Remember this: always test.")


def test_blank_line_paragraph_continues_speaker_as_new_line() -> None:
    play = parse_script("Ada: first paragraph\nstill first\n\nsecond paragraph\n")
    assert texts(play) == [("Ada", "first paragraph still first"), ("Ada", "second paragraph")]
    assert [line.source_line for line in play.lines] == [1, 4]


def test_parenthetical_after_name_and_direction_only_lines() -> None:
    play = parse_script("Ada (whispering): hello\nBen: [laughs]\n(Music swells)\nBen: *sighs* fine")
    assert texts(play) == [("Ada", "hello"), ("Ben", "fine")]


def test_headings_metadata_and_cast() -> None:
    script = ("# Episode One\n## Part 1\nSetting: A bright studio\n"
              "Cast:\n- Ada: the host\n- Ben (the guest)\n\n"
              "SFX: door slams\nAda: hi\n## Part 2\nBen: hey\n")
    play = parse_script(script)
    assert play.title == "Episode One"
    assert play.studio == "A bright studio"
    assert play.characters == {"Ada": "the host", "Ben": "the guest"}
    assert texts(play) == [("Ada", "hi"), ("Ben", "hey")]


def test_transcript_style_labels() -> None:
    play = parse_script("[00:00:01] Speaker 1: hello\nSpeaker 2  0:03\nhi there\n")
    assert texts(play) == [("Speaker 1", "hello"), ("Speaker 2", "hi there")]


def test_plain_title_line_is_allowed() -> None:
    play = parse_script("My Great Show\n\nAda: hello")
    assert play.title == "My Great Show"
    assert texts(play) == [("Ada", "hello")]


# --------------------------------------------------------------------------- cleaning


@pytest.mark.parametrize("raw, spoken", [
    ("It\u2019s \u201cfine\u201d\u2026 really", 'It\'s "fine"... really'),
    ("wait\u2014what?", "wait - what?"),
    ("pages 10\u201320", "pages 10-20"),
    ("a\u00a0b   c\t d", "a b c d"),
    ("Tom &amp; Jerry &lt;3", "Tom & Jerry <3"),
    ("[laughs] Okay (pause) then.", "Okay then."),
    ("Well (beat) , sure", "Well, sure"),
    ("*sighs* Fine.", "Fine."),
    ("That is *really* good", "That is really good"),
    ("It was **so** good", "It was so good"),
    ("<i>tagged</i> text", "tagged text"),
    ("(laughs)", ""),
    ("[music] ...", ""),
])
def test_clean_text(raw: str, spoken: str) -> None:
    assert clean_text(raw) == spoken


# --------------------------------------------------------------------------- other formats


def test_vtt_without_speaker_tags_uses_prefixes() -> None:
    vtt = ("WEBVTT\n\n00:00.000 --> 00:01.000\nAda: Hello\n\n"
           "00:01.000 --> 00:02.000\nthere\n\n00:02.000 --> 00:03.000\nBen: Hi")
    assert texts(parse_script(vtt)) == [("Ada", "Hello there"), ("Ben", "Hi")]


def test_vtt_cue_without_speaker_is_reported_and_captions_without_any_are_narration() -> None:
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.000\nhello there\n\n00:01.000 --> 00:02.000\n<v Ada>Hi.\n"
    play = parse_script(vtt, path="talk.vtt")
    assert texts(play) == [("Ada", "Hi.")]
    assert play.notices[0].startswith("talk.vtt:4: not placed: caption with no speaker")
    film = parse_script("1\n00:00:01,000 --> 00:00:02,000\n- Who's there?\n- Me.\n", path="film.srt")
    assert texts(film) == [("Narrator", "Who's there? Me.")]
    assert "narration" in film.notices[0]


def test_json_lenient_shapes() -> None:
    bare = '[{"character": "ADA", "content": "one"}, "Ben: two", {"Ada": "three"}]'
    assert texts(parse_script(bare)) == [("Ada", "one"), ("Ben", "two"), ("Ada", "three")]
    wrapped = '{"lines": [{"name": "Ada", "line": "hi"}]}'
    assert texts(parse_script(wrapped)) == [("Ada", "hi")]
    fenced = '```json\n{"dialogue": [{"speaker": "Ada", "text": "fenced"}]}\n```'
    assert texts(parse_script(fenced)) == [("Ada", "fenced")]


def test_json_without_speaker_is_an_error() -> None:
    with pytest.raises(ScriptError, match="no speaker"):
        parse_script('{"speaker": "", "text": "hello"}', path="x.json")


@pytest.mark.parametrize("text, path, expected", [
    ("WEBVTT\n\n", None, "vtt"),
    ("anything", "a.vtt", "vtt"),
    ("1\n00:00:01,000 --> 00:00:02,000\nA: b", None, "srt"),
    ("Ada: hi", "a.srt", "srt"),
    ('{"lines": []}', None, "json"),
    ('[\n {"speaker": "A"}]', None, "json"),
    ("[Ada]: hi", None, "text"),
    ("Ada: hi", "a.jsonl", "json"),
    ("Ada: hi", "a.txt", "text"),
])
def test_detect_format(text: str, path: str | None, expected: str) -> None:
    assert detect_format(text, path) == expected


def test_explicit_format_overrides_detection() -> None:
    srt_as_text = "Ada: 1 --> 2"
    assert texts(parse_script(srt_as_text, fmt="text")) == [("Ada", "1 --> 2")]
    with pytest.raises(ValueError, match="unknown script format"):
        parse_script("Ada: hi", fmt="docx")


# --------------------------------------------------------------------------- errors and files


def test_missing_file() -> None:
    path = str(DATA / "does-not-exist.txt")
    with pytest.raises(ScriptError) as info:
        load_script(path)
    assert (info.value.path, info.value.line, info.value.message) == (path, 0, "no such file")
    assert str(info.value) == f"{path}:0: no such file"


def test_no_dialogue() -> None:
    path = str(DATA / "no_dialogue.txt")
    with pytest.raises(ScriptError) as info:
        load_script(path)
    assert str(info.value).startswith(f"{path}:0: no dialogue found")
    with pytest.raises(ScriptError, match="no dialogue found"):
        parse_script("")


def test_line_without_speaker_is_reported_with_file_and_line_not_merged() -> None:
    path = str(DATA / "no_label.txt")
    play = load_script(path)
    assert texts(play) == [("Ada", "Hello.")]          # the paragraph is nobody's speech
    assert len(play.notices) == 1
    assert play.notices[0].startswith(f"{path}:3: not placed: no speaker label")
    assert "opening paragraph" in play.notices[0]


def test_bad_json_reports_decoder_line() -> None:
    path = str(DATA / "broken.json")
    with pytest.raises(ScriptError) as info:
        load_script(path)
    assert info.value.line == 5
    assert str(info.value).startswith(f"{path}:5: invalid JSON")


def test_bad_jsonl_line() -> None:
    with pytest.raises(ScriptError) as info:
        parse_script('{"speaker": "A", "text": "x"}\n\n{"speaker": "B", \n', path="s.jsonl")
    assert str(info.value).startswith("s.jsonl:3: invalid JSON")


def test_a_latin1_file_is_detected_and_read() -> None:
    """Not UTF-8: charset-normalizer names the encoding (Windows-1252 for Western text)."""
    raw = (DATA / "latin1.txt").read_bytes()
    play = load_script(DATA / "latin1.txt")
    assert "\n".join(line.text for line in play.lines) in raw.decode("cp1252").replace("\r", "")
    assert any(ord(c) > 127 for line in play.lines for c in line.text)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "cp1252", "latin-1"])
def test_script_encodings_are_detected(tmp_path: Path, encoding: str) -> None:
    text = "Zoë: Voilà, the café is open.\nRenée: Très bien, à bientôt!\n"
    path = tmp_path / f"show-{encoding}.txt"
    path.write_bytes(text.encode(encoding))
    play = load_script(path)
    assert [(line.speaker, line.text) for line in play.lines] == [
        ("Zoë", "Voilà, the café is open."), ("Renée", "Très bien, à bientôt!")]


def test_bytes_that_are_no_text_are_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes(range(1, 256)) * 4)
    with pytest.raises(ScriptError) as info:
        load_script(path)
    assert f"{path}:" in str(info.value) and "not UTF-8 text" in str(info.value)


def test_binary_data(tmp_path: Path) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(b"Ada: hi\n\x00\x01\x02")
    with pytest.raises(ScriptError) as info:
        load_script(path)
    assert str(info.value).startswith(f"{path}:2: binary data")


def test_bom_crlf_and_utf16(tmp_path: Path) -> None:
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffAda: caf\u00e9\r\nBen: ok\r\n".encode("utf-8"))
    assert texts(load_script(bom)) == [("Ada", "caf\u00e9"), ("Ben", "ok")]
    utf16 = tmp_path / "wide.srt"
    utf16.write_bytes("1\r\n00:00:01,000 --> 00:00:02,000\r\nAda: hi\r\n".encode("utf-16"))
    assert texts(load_script(utf16)) == [("Ada", "hi")]


def test_script_error_shape() -> None:
    err = ScriptError("a.txt", 3, "bad")
    assert isinstance(err, ValueError)
    assert str(err) == "a.txt:3: bad"
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.line, copy.message) == ("a.txt", 3, "bad")


def test_screenplay_is_frozen() -> None:
    play = parse_script("Ada: hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        play.title = "x"  # type: ignore[misc]
    assert play.lines[0] == Line(0, "Ada", "hi", 1)


def test_a_play_with_a_capitals_title_line_and_colons_in_the_first_speech():
    sp = load_script(DATA / "play_with_title.txt")
    assert sp.title == "THE MORNING SHOW"
    assert sp.speakers == ("Hamlet", "Ophelia") and len(sp.lines) == 5
    assert sp.lines[0].text.startswith("To be, or not to be: that is the question.")
    assert sp.lines[0].source_line == 6


# --------------------------------------------------------------------------- printed-play labels (issue 12)


@pytest.mark.parametrize("space", ["\u00a0", "\u00a0 ", "\u2003", "\u202f", "\t", "  "])
def test_labels_followed_by_any_unicode_space(space: str) -> None:
    script = f"Ada:{space}Hello there.\nBEN.{space}Hi, Ada.\nAda:{space}Bye."
    assert texts(parse_script(script)) == [("Ada", "Hello there."), ("Ben", "Hi, Ada."), ("Ada", "Bye.")]


def test_name_direction_text_is_a_turn_and_the_label_is_not_spoken() -> None:
    script = ("PICKERING. What is his trade, Eliza?\n\n"
              "DOOLITTLE [remonstrating] Now, now, look here, Governor.\n\n"
              "MRS. PEARCE (at the door). Please, sir.\n")
    assert texts(parse_script(script)) == [("Pickering", "What is his trade, Eliza?"),
                                           ("Doolittle", "Now, now, look here, Governor."),
                                           ("Mrs. Pearce", "Please, sir.")]


def test_sentences_ending_in_a_period_are_not_speakers() -> None:
    prose = "Yes. I think so.\n\nIndeed. It is late.\n\nYes. Again.\n\nJohn. He came once.\n"
    play = parse_script(prose, path="prose.txt")
    assert play.speakers == ("Narrator",) and len(play.lines) == 4
    assert "--document" in play.notices[0]
    script = "Ada: Hello.\n\nYes. I agree with myself.\n\nAda: Also, John. He came once.\n"
    play = parse_script(script)
    assert play.speakers == ("Ada",)
    assert [line.text for line in play.lines] == ["Hello.", "Yes. I agree with myself.", "Also, John. He came once."]


def test_mixed_case_play_labels_from_a_cast_list_or_repetition() -> None:
    cast = "Dramatis Personae\n\nAlgernon Moncrieff\nLane, Manservant\n\nAlgernon.  Did you hear, Lane?\n\nLane.  No, sir.\n"
    assert texts(parse_script(cast)) == [("Algernon", "Did you hear, Lane?"), ("Lane", "No, sir.")]
    repeated = "Echecrates. Were you there?\n\nPhaedo. Yes.\n\nEch. Tell me.\n\nPhaedo. I will.\n"
    assert texts(parse_script(repeated)) == [("Echecrates", "Were you there?"), ("Phaedo", "Yes."),
                                             ("Echecrates", "Tell me."), ("Phaedo", "I will.")]


def test_a_direction_mentioning_a_speaker_is_not_a_turn() -> None:
    script = ("HIGGINS. Silly?\n\n[Higgins goes to the window.]\n\n"
              "Higgins goes out, and Liza follows him.\n\nLIZA. Not me.\n")
    play = parse_script(script, path="p.txt")
    assert texts(play) == [("Higgins", "Silly?"), ("Liza", "Not me.")]
    assert play.notices == ("p.txt:5: not placed: no speaker label, read as a stage direction and not "
                            "spoken: 'Higgins goes out, and Liza follows him.'",)


def test_compact_mixed_case_play_and_a_transcript_without_blank_lines() -> None:
    compact = "Algernon. Did you hear?\nLane. No, sir.\nAlgernon. Good.\nLane. Yes, sir."
    assert [line.speaker for line in parse_script(compact).lines] == ["Algernon", "Lane", "Algernon", "Lane"]
    transcript = ("Gary Jordan (Host)\nWelcome to the show.\nDan Huot\nThanks, Gary.\n"
                  "Gary Jordan\nSo, Dan.\nDan Huot\nYes.")
    assert texts(parse_script(transcript)) == [("Gary Jordan", "Welcome to the show."), ("Dan Huot", "Thanks, Gary."),
                                               ("Gary Jordan", "So, Dan."), ("Dan Huot", "Yes.")]


def test_abbreviated_labels_of_a_play_without_blank_lines() -> None:
    """Gutenberg's older Shakespeare: labels abbreviated, speeches run on without blank lines, a cast list."""
    play = ("Dramatis Personae\n\n  Horatio, friend to Hamlet.\n  Marcellus, an officer.\n"
            "  Bernardo, an officer.\n  Francisco, a soldier.\n\nACT I. Scene I.\n\n"
            "  Ber. Who's there?\n  Fran. Nay, answer me. Stand and unfold yourself.\n  Ber. Long live the King!\n"
            "  Fran. For this relief much thanks. 'Tis bitter cold,\n    And I am sick at heart.\n"
            "  Ber. Well, good night.\n    If you do meet Horatio and Marcellus,\n"
            "    The rivals of my watch, bid them make haste.\n\n                    Enter Horatio and Marcellus.\n\n"
            "  Fran. I think I hear them. Stand, ho! Who is there?\n  Hor. Friends to this ground.\n"
            "  Mar. And liegemen to the Dane.\n")
    parsed = parse_script(play, path="hamlet.txt")
    assert [line.speaker for line in parsed.lines] == ["Bernardo", "Francisco", "Bernardo", "Francisco", "Bernardo",
                                                      "Francisco", "Horatio", "Marcellus"]
    assert parsed.lines[3].text == "For this relief much thanks. 'Tis bitter cold, And I am sick at heart."
    assert any("Enter Horatio and Marcellus." in notice for notice in parsed.notices)


def test_quoted_lines_of_prose_are_narration_not_titles_and_title_lines_beat_a_guess() -> None:
    prose = ("\u201cThere is no use your telling me that you are going to be good,\u201d cried\nLord Henry.\n\n"
             "\u201cWhere were you yesterday?\u201d\n\n\u201cIn the country, Harry.\u201d\n")
    play = parse_script(prose)
    assert play.title is None and play.speakers == ("Narrator",) and len(play.lines) == 3
    gutenberg = "The Project Gutenberg EBook of Pygmalion\n\nTitle: Pygmalion\n\nACT I\n\nLIZA. Ah-ow-oo!\n\nHIGGINS. No.\n"
    assert parse_script(gutenberg).title == "Pygmalion"


def test_the_period_ending_a_cast_list_is_not_part_of_a_name() -> None:
    """Jowett's dialogues: "PERSONS OF THE DIALOGUE: Socrates, Euthyphro." then ``EUTHYPHRO:``
    labels: the speaker is Euthyphro, not "Euthyphro."; an abbreviation keeps its period."""
    text = ("PERSONS OF THE DIALOGUE: Socrates, Euthyphro.\n\n"
            "EUTHYPHRO: Why have you left the Lyceum, Socrates?\n\n"
            "SOCRATES: Not in a suit, Euthyphro.\n")
    assert list(parse_script(text).speakers) == ["Euthyphro", "Socrates"]
    from streamwise.script.plain import _split_cast_entry

    assert _split_cast_entry("Euthyphro.")[0] == "Euthyphro" and _split_cast_entry("John Jr.")[0] == "John Jr."


def test_a_cast_list_without_a_heading_is_a_cast_not_dialogue():
    """Bullet ``- Name: description`` lines before the dialogue, whose names the play then labels
    (``MARTHA. ...``), are its cast (found in a new-user try: they were spoken as turns); a
    transcript made only of bullet lines stays dialogue."""
    play = parse_script("# The Last Ferry\n\n- Martha: an old woman with grey hair, in a red coat\n"
                        "- Tom: a young man with a black beard\n\nMARTHA. You're late again.\n"
                        "TOM. The fog, Aunt Martha.\nMARTHA. Sit down.\n")
    assert [(line.speaker, line.text) for line in play.lines] == [
        ("Martha", "You're late again."), ("Tom", "The fog, Aunt Martha."), ("Martha", "Sit down.")]
    assert "grey hair" in str(play.characters.get("Martha"))
    chat = parse_script("- Alice: hi there\n- Bob: hello Alice\n- Alice: how are you\n")
    assert [line.speaker for line in chat.lines] == ["Alice", "Bob", "Alice"]


def test_screenplay_action_lines_left_of_the_dialogue_are_not_spoken() -> None:
    """A screenplay indents cues and dialogue and writes action flush left: an action paragraph after a
    speech is a direction (reported with its line), not a new paragraph of the last speaker; a dialogue
    paragraph at the dialogue's indentation still continues the speech."""
    text = ("INT. STUDIO - NIGHT\n\n"
            "                    SARAH\n"
            "          (warmly)\n"
            "          Good evening.\n\n"
            "                    MIKE (O.S.)\n"
            "          And good night.\n\n"
            "Sarah smiles at the glass.\n\n"
            "                    SARAH\n"
            "          One more thing.\n\n"
            "          And another.\n")
    play = parse_script(text)
    assert texts(play) == [("Sarah", "Good evening."), ("Mike", "And good night."), ("Sarah", "One more thing."),
                           ("Sarah", "And another.")]
    unplaced = [notice for notice in play.notices if "not placed" in notice]
    assert [notice.split(":")[1] for notice in unplaced] == ["10"] and "Sarah smiles" in unplaced[0]


def test_fountain_action_after_a_capitals_cue_is_not_spoken() -> None:
    """Fountain (a plain-text screenplay with nothing indented): a capitals cue alone on its line, the speech
    right under it; a paragraph after the blank line is action, reported, not given to the last speaker. A
    mixed-case header (a transcript's ``Maya Lindqvist  0:02``) still continues over paragraphs."""
    play = parse_script("INT. STUDIO - NIGHT\n\nSARAH\n(warmly)\nGood evening.\n\nMIKE (O.S.)\nAnd good night.\n\n"
                        "Sarah smiles at the glass.\n\nSARAH\nOne more thing.\n")
    assert texts(play) == [("Sarah", "Good evening."), ("Mike", "And good night."), ("Sarah", "One more thing.")]
    assert any(":10: not placed" in notice and "Sarah smiles" in notice for notice in play.notices)
    play = parse_script("Maya Lindqvist  0:02\nWelcome back.\n\nToday we talk about bees.\n\n"
                        "Tom Berg  0:09\nThanks, Maya.\n")
    assert texts(play) == [("Maya Lindqvist", "Welcome back."), ("Maya Lindqvist", "Today we talk about bees."),
                           ("Tom Berg", "Thanks, Maya.")]
