"""``streamwise generate``'s progress (rich bars for screenplay, speech, video and delivered seconds,
a summary table at the end) on a real terminal (a pty), and silence when stdout is a pipe. Real
nats-server, real worker pool (no result cache, so every node sends its completion event)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import events_of
from streamwise.bus import registry
from streamwise.service.pool import Pool

SCRIPT = Path(__file__).parent / "data" / "scripts" / "two_speakers.txt"


@pytest.fixture(scope="module")
def pool(nats_url, tmp_path_factory):
    p = Pool(nats_url, log_dir=tmp_path_factory.mktemp("progress-logs"), scheduler=["--no-cache"]).start()
    yield p
    p.stop()


@pytest.fixture
async def ready(bus, pool):
    deadline = time.monotonic() + 120
    while True:
        pool.check()
        try:
            await registry.wait_for_stages(bus.instances, pool.stages(), 0.5)
            return bus
        except TimeoutError:
            assert time.monotonic() < deadline, "the pool did not become ready"


def _on_a_terminal(cmd: list[str]) -> tuple[int, str]:
    """Run ``cmd`` with stdout and stderr on a pseudo-terminal; (exit code, everything it wrote)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": "120", "TERM": "xterm-256color"})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:        # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(60), re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))


async def test_generate_draws_bars_and_a_summary_on_a_terminal(ready, nats_url, tmp_path):
    out = tmp_path / "show"
    cmd = [sys.executable, "-m", "streamwise", "generate", "--script", str(SCRIPT), "--out", str(out),
           "--nats", nats_url]
    code, text = await asyncio.to_thread(_on_a_terminal, cmd)
    assert code == 0, text
    for bar in ("screenplay", "speech", "video", "delivered"):
        assert re.search(rf"^\s*{bar}\s", text, re.M), f"no {bar} bar in:\n{text}"
    report = json.loads((out / "report.json").read_text())
    assert f"{report['lines']} lines (complete)" in text
    assert f"{report['video_duration_s']:.0f} s / {report['video_duration_s']:.0f} s of video" in text
    # the summary table counts what the workers reported on the bus
    events = await events_of(ready, report["request_id"])
    shots = {e.node_id for e in events if e.stage == "video" and e.ok and not e.partial}
    pieces = {e.node_id for e in events if e.stage == "tts" and e.ok and not e.partial}
    assert f"{len(pieces)} pieces / {len(shots)} shots rendered" in text
    assert f"TTFF" in text and f"{report['ttff_s']:.2f} s (SLO 1.5 s)" in text
    assert "quality rungs" in text and str(out / "podcast.mp4") in text


async def test_generate_is_quiet_when_stdout_is_not_a_terminal(ready, nats_url, tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamwise", "generate", "--script", str(SCRIPT), "--out", str(tmp_path / "show"),
        "--nats", nats_url, "--ttff", "3600", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode == 0, stderr.decode()
    assert stdout == b""
    text = stderr.decode()
    assert "speech" not in text and "TTFF" not in text and "first segment" not in text, text
    assert (tmp_path / "show" / "podcast.mp4").stat().st_size > 0
