"""The web page in a real browser: Debian's chromium, driven by Playwright through its executable
path (never ``playwright install``), against a real ``streamwise serve`` process on the session's
real nats-server and a real worker pool (the scheduler without its cache, so the show is really
generated while it plays).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import wait_ready
from streamwise.bus import subjects
from streamwise.bus.codec import decode
from streamwise.bus.messages import Segment
from streamwise.bus.server import free_port
from streamwise.service.pool import Pool

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "podcast.txt"
CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                                         "(apt-get install chromium; .ci/run does it)")


@pytest.fixture(scope="module")
def pool(nats_url, tmp_path_factory):
    """The worker pool, with an LLM screenplay worker too (transformers on the random 24 M-parameter
    Llama of tests/test_llm_screenplay.py) for the topic test; the scheduler keeps no line
    after the one playing at the first segment not yet muxed when a topic is steered (``$STREAMWISE_STEER_LEAD_S``)."""
    from streamwise.service.pool import DEFAULT_WORKERS
    from test_llm_screenplay import _tiny_llama

    model = _tiny_llama(tmp_path_factory.mktemp("llama-24m-browser"), hidden=512, layers=8)
    mp = pytest.MonkeyPatch()
    mp.setenv("STREAMWISE_STEER_LEAD_S", "0")
    p = Pool(nats_url, DEFAULT_WORKERS, log_dir=tmp_path_factory.mktemp("browser-logs"), scheduler=["--no-cache"],
             extra=[("screenplay-llm", ["worker", "--stage", "screenplay", "--model", "llm", "--llm", "transformers",
                                        "--llm-model", str(model), "--llm-max-tokens", "400"])]).start()
    mp.undo()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def gateway(nats_url, pool, tmp_path_factory):
    """``streamwise serve --nats URL --port P`` as its own process; yields the page's URL."""
    log = open(tmp_path_factory.mktemp("gateway") / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamwise", "serve", "--nats", nats_url,
                             "--port", str(free_port())], stdout=subprocess.PIPE, stderr=log)
    try:
        url = proc.stdout.readline().decode().strip()
        assert url.startswith("http://"), f"streamwise serve printed {url!r} (exit {proc.poll()})"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def test_the_page_plays_the_example_while_it_is_generated(bus, pool, gateway, tmp_path):
    from playwright.async_api import async_playwright

    await wait_ready(bus, pool)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(gateway)
            await page.fill("#script", EXAMPLE.read_text(encoding="utf-8"))
            await page.click("#start")
            await page.wait_for_function("window.sw.id !== null || window.sw.error", timeout=30_000)
            rid = await page.evaluate("window.sw.id")
            assert rid, await page.evaluate("window.sw.error")

            # playback has begun ...
            await page.wait_for_function("document.getElementById('video').currentTime > 0", timeout=120_000)
            # ... while the bus has not yet carried the final segment: later ones are still being generated
            last = decode((await bus.js.get_last_msg(subjects.STREAM_SEGMENTS,
                                                     subjects.segments("default", rid))).data, Segment)
            assert not last.final, f"segment {last.index} was already the final one when playback began"
            playing_at_segment = last.index

            t1 = await page.evaluate("document.getElementById('video').currentTime")
            await page.wait_for_function(f"document.getElementById('video').currentTime > {t1} + 1.0",
                                         timeout=60_000)
            await page.screenshot(path=str(tmp_path / "gateway-playing.png"))
            # the codec string the stream uses is what the page checked, and the browser plays it
            mime = await page.evaluate("window.sw.mime")
            assert mime and mime.startswith('video/mp4; codecs="avc1.') and "mp4a.40.2" in mime
            assert await page.evaluate(f"MediaSource.isTypeSupported({mime!r})") is True
            assert await page.evaluate("window.sw.supported") is True

            # steer: "End after this line" ends the show early (after the line now playing)
            await page.click("#end")
            await page.wait_for_function("window.sw.steer !== undefined", timeout=30_000)
            steer = await page.evaluate("window.sw.steer")
            assert steer.get("ok"), steer
            assert (await page.text_content("#steer")).startswith(f"ends after line {steer['last_line'] + 1}")

            # the (shortened) show arrives, the panel shows it, nothing went wrong in the page
            await page.wait_for_function("window.sw.ended && window.sw.status && window.sw.status.state === 'done'",
                                         timeout=300_000)
            status = await page.evaluate("window.sw.status")
            received = await page.evaluate("window.sw.segmentsReceived")
            assert received == status["segments_total"] >= playing_at_segment + 1
            assert status["video_duration_s"] < 60      # the whole example is about 90 s
            assert await page.evaluate("window.sw.error") in (None, "")
            assert errors == []
            # the live panel shows what the status stream said
            assert (await page.text_content("#p-lines")).startswith(f"{status['lines']} ")
            assert int(await page.text_content("#p-shots")) == status["dag"]["shots"] > 0
            assert await page.locator("#p-rungs .chip").count() == status["segments_total"]
            # the live Gantt chart per instance (issue 13 item 7, the page's view of `streamwise timeline`): a row
            # per instance that ran a task, a bar per task the status counted, each stage on its row
            await page.wait_for_function(f"window.sw.tasks.length === {status['tasks']}", timeout=30_000)
            tasks = await page.evaluate("window.sw.tasks")
            rows = await page.evaluate("window.sw.ganttRows")
            assert {t["stage"] for t in tasks} == {"screenplay", "tts", "image", "video", "mux"}
            assert sorted(rows) == sorted({t["instance"] for t in tasks}) and len(rows) >= 5
            assert await page.evaluate("window.sw.ganttBars") == len(tasks) == status["tasks"]
            blank = await page.evaluate("""(() => { const c = document.getElementById('gantt');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let inked = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) inked++; return inked; })()""")
            assert blank > 1000            # drawn: bars, ticks and labels, not an empty canvas
            first_frame_ms = await page.evaluate("window.sw.firstFrameMs")
            assert first_frame_ms is not None and first_frame_ms > 0
            print(f"\nbrowser submit -> first frame {first_frame_ms / 1000:.3f} s; gateway TTFF "
                  f"{status['ttff_s']:.3f} s; playback began while segment {playing_at_segment} of "
                  f"{status['segments_total']} was the newest")
        finally:
            await browser.close()


async def test_the_hls_mode_plays_the_live_playlist_to_its_end_with_hls_js(bus, pool, gateway):
    """The page's HLS mode: the vendored hls.js plays the gateway's live EVENT playlist from its
    first segment, follows it as it grows, and stops at EXT-X-ENDLIST (the video ends at the
    show's length)."""
    from playwright.async_api import async_playwright

    await wait_ready(bus, pool)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(gateway + "?player=hls")
            assert await page.input_value("#player") == "hls"
            await page.fill("#script", (ROOT / "examples" / "short_chat.txt").read_text(encoding="utf-8"))
            await page.click("#start")
            await page.wait_for_function("document.getElementById('video').currentTime > 0 || window.sw.error",
                                         timeout=120_000)
            assert not await page.evaluate("window.sw.error")
            assert await page.evaluate("window.sw.player") == "hls"
            await page.wait_for_function("document.getElementById('video').ended || window.sw.error",
                                         timeout=300_000)
            assert not await page.evaluate("window.sw.error")
            status = await page.evaluate("window.sw.status")
            played = await page.evaluate("document.getElementById('video').currentTime")
            assert status["state"] == "done" and played == pytest.approx(status["video_duration_s"], abs=0.5)
            assert errors == []
        finally:
            await browser.close()


async def test_a_steer_from_the_page_changes_what_the_llm_says_next(bus, pool, gateway, tmp_path):
    """A topic request from the page; once it plays and the LLM has written lines past the opening,
    a direction typed into the page's steer box is sent: the lines after the cut are the
    continuation's (none of the replaced ones is said), and the panel shows the steer-to-screen time."""
    import asyncio

    from playwright.async_api import async_playwright

    from streamwise.bus import registry

    await wait_ready(bus, pool)
    while not any(h.model == "llm" and h.state == "ready" for h in await registry.list_instances(bus.instances)):
        pool.check()          # the LLM worker loads its model after the other stages are up
        await asyncio.sleep(0.2)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(gateway)
            assert await page.is_disabled("#direct")          # nothing to steer yet
            await page.fill("#topic", "the colour of the sky")
            await page.click("#start")
            await page.wait_for_function("(window.sw.id !== null && window.sw.status && window.sw.status.lines >= 3 "
                                         "&& document.getElementById('video').currentTime > 0) || window.sw.error",
                                         timeout=240_000)
            assert not await page.evaluate("window.sw.error")
            rid = await page.evaluate("window.sw.id")
            assert await page.is_enabled("#direct")
            await page.fill("#direction", "a listener asks: why are sunsets red?")
            await page.click("#direct")
            await page.wait_for_function("window.sw.steer !== undefined", timeout=30_000)
            steer = await page.evaluate("window.sw.steer")
            assert steer.get("ok"), steer
            said = await page.text_content("#steer")
            assert said.startswith(f"the LLM continues after line {steer['last_line'] + 1}"), said
            await page.wait_for_function("window.sw.ended && window.sw.status && window.sw.status.state === 'done'",
                                         timeout=400_000)
            status = await page.evaluate("window.sw.status")
            assert errors == [] and not await page.evaluate("window.sw.error")
            [record] = status["steers"]
            assert record["direction"] == "a listener asks: why are sunsets red?"
            assert record["first_line"] == steer["first_line"] and record["steer_to_screen_s"] > 0
            assert record["delivered_s"] is not None and record["delivered_s"] > 0
            assert f"({record['steer_to_screen_s']:.2f} s)" in await page.text_content("#p-steers")
        finally:
            await browser.close()
    # what was said (the cues of every segment on the bus): after the cut only the continuation's lines
    sub = await bus.js.subscribe(subjects.segments("default", rid), stream=subjects.STREAM_SEGMENTS,
                                 ordered_consumer=True)
    indices: set[int] = set()
    said: set[int] = set()
    try:
        while len(indices) < status["segments_total"]:
            seg = decode((await sub.next_msg(timeout=10)).data, Segment)
            indices.add(seg.index)
            said.update(cue.line for cue in seg.cues)
    finally:
        await sub.unsubscribe()
    lines = sorted(said)
    after = [line for line in lines if line > steer["last_line"]]
    assert after and min(after) == steer["first_line"]
    assert not set(lines) & set(steer["replaced"])
