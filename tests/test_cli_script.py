"""``streamwise script FILE`` and the script check of ``streamwise generate`` (issue 12): the real
CLI entry point on real files; nothing is mocked."""

from __future__ import annotations

import json
from pathlib import Path

from streamwise.cli import main

CORPUS = Path(__file__).parent / "data" / "scripts" / "corpus"
DATA = Path(__file__).parent / "data" / "scripts"


def test_script_prints_who_says_what_with_line_words_and_duration(capsys) -> None:
    path = CORPUS / "shaw_pygmalion.txt"
    assert main(["script", str(path)]) == 0
    out = capsys.readouterr().out
    rows = [row.split(None, 3) for row in out.splitlines() if row[:6].strip().isdigit()]
    assert len(rows) == 52                                    # one row per turn
    assert rows[0][0] == "4" and out.splitlines()[3].split()[1:3] == ["Mrs.", "Higgins"]
    assert "Henry! What are you doing here" in out and "7.2 s" in out   # 18 words at 2.5 words/s
    assert f"{path}:72: not placed" in out                    # the unplaced paragraph, with file:line
    assert "6 speakers" in out and "Mrs. Eynsford Hill" in out


def test_script_json_and_strict(capsys) -> None:
    path = CORPUS / "carroll_alice.txt"
    assert main(["script", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["speakers"] == ["Narrator"] and doc["turns"][0]["line"] == 3
    assert doc["turns"][0]["est_s"] == round(len(doc["turns"][0]["text"].split()) / 2.5, 1)
    assert "(as well as she could" in doc["turns"][1]["text"]     # narration keeps its parentheses
    assert any("--document" in notice for notice in doc["notices"])
    assert main(["script", str(path), "--strict"]) == 3
    assert main(["script", str(DATA / "two_speakers.txt"), "--strict"]) == 0


def test_script_errors_exit_non_zero_with_one_line(tmp_path: Path, capsys) -> None:
    assert main(["script", str(tmp_path / "missing.txt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"streamwise script: {tmp_path / 'missing.txt'}:0: no such file"]
    empty = tmp_path / "directions.txt"
    empty.write_text("[Theme music]\n(pause)\n", encoding="utf-8")
    assert main(["script", str(empty)]) == 1
    assert "no dialogue found" in capsys.readouterr().err


def test_generate_checks_the_script_before_anything_starts_and_says_it_once(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"Ada: hi\n\x00\x01\x02")
    out = tmp_path / "out"
    assert main(["generate", "--script", str(bad), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    lines = [line for line in (captured.err + captured.out).splitlines() if line.strip()]
    assert lines == [f"streamwise: {bad}:2: binary data, not a text script"]
    assert not (out / "logs").exists()              # no worker was started (the pool writes its logs there)


def test_an_unknown_voice_in_the_cast_is_refused_with_file_and_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "cast.txt"
    path.write_text("Cast:\n- Ada: the host (voice: alloy)\n\nAda: Hello.\nBen: Hi.\n", encoding="utf-8")
    assert main(["script", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"streamwise script: {path}:4: Ada: unknown voice 'alloy'") and "\n" not in err
    path.write_text("Cast:\n- Ada: the host (voice: heart)\n\nAda: Hello.\nBen: Hi.\n", encoding="utf-8")
    assert main(["script", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["characters"] == {"Ada": "the host"}


def test_generate_refuses_a_bad_voice_before_anything_starts(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    script = str(DATA / "two_speakers.txt")
    assert main(["generate", "--script", script, "--out", str(out), "--voice", "Ada"]) == 2
    assert "expected SPEAKER=VOICE" in capsys.readouterr().err
    assert main(["generate", "--script", script, "--out", str(out), "--voice", "Ada=alloy"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("streamwise generate: voices: Ada: unknown voice 'alloy'") and "\n" not in err
    assert not (out / "logs").exists()
