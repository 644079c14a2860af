"""Browser first frame vs the bus's TTFF: ``python -m streamwise.bench.browser``.

Starts an embedded nats-server, a worker pool (scheduler without its result cache, so every run
is really generated) and the gateway, then drives Debian's ``chromium`` with Playwright (through
its executable path; never ``playwright install``): for each run a fresh page pastes the script,
presses Start, and the page records the time from the press to the first frame painted
(``requestVideoFrameCallback``). Next to it: the gateway's TTFF (request published -> first
segment at the gateway) and the mux's (request published -> first segment published), from the
status JSON. Each run waits for its show to end before the next starts.

Needs ``playwright`` (the ``dev`` extra) and ``chromium`` on ``PATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ..bus.client import connect
from ..bus.registry import wait_for_stages
from ..bus.server import EmbeddedServer, free_port
from ..gateway import serve
from ..service.pool import Pool

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCRIPT = ROOT / "examples" / "podcast.txt"
FLAGS = ["--headless", "--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio"]


async def _run(script: Path, runs: int, screenshot: Path | None, log_dir: Path,
               players: tuple[str, ...] = ("mse",)) -> list[dict]:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("streamwise.bench.browser: chromium not found (apt-get install chromium)")
    server = EmbeddedServer().start()
    pool = Pool(server.url, log_dir=log_dir, scheduler=["--no-cache"]).start()
    bus = await connect(server.url, name="bench-browser")
    stop = asyncio.Event()
    port = free_port()
    site = asyncio.create_task(serve(bus, port=port, stop=stop))
    rows = []
    try:
        wait = asyncio.create_task(wait_for_stages(bus.instances, pool.stages(), 120.0))
        while not wait.done():
            pool.check()
            await asyncio.sleep(0.1)
        wait.result()
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=FLAGS)
            for run, player in [(r, pl) for r in range(runs) for pl in players]:
                page = await browser.new_page(viewport={"width": 1280, "height": 720})
                await page.goto(f"http://127.0.0.1:{port}/?player={player}")
                await page.fill("#script", script.read_text(encoding="utf-8"))
                await page.click("#start")
                await page.wait_for_function("window.sw.firstFrameMs !== null || window.sw.error", timeout=120_000)
                error = await page.evaluate("window.sw.error")
                if error:
                    raise RuntimeError(f"run {run}: the page reported: {error}")
                if screenshot and run == 0 and player == players[0]:
                    t = await page.evaluate("document.getElementById('video').currentTime")
                    await page.wait_for_function(f"document.getElementById('video').currentTime > {t} + 2",
                                                 timeout=60_000)
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    await page.screenshot(path=str(screenshot))
                await page.wait_for_function("window.sw.ended && window.sw.status && "
                                             "['done', 'failed'].includes(window.sw.status.state)", timeout=600_000)
                status = await page.evaluate("window.sw.status")
                first = await page.evaluate("window.sw.firstFrameMs") / 1000
                accepted = (await page.evaluate("window.sw.acceptedAt - window.sw.submitAt")) / 1000
                rows.append({"run": run, "player": player, "browser_first_frame_s": round(first, 3),
                             "post_s": round(accepted, 3),
                             "gateway_ttff_s": status["ttff_s"], "bus_ttff_s": status["ttff_produced_s"],
                             "browser_minus_gateway_s": round(first - status["ttff_s"], 3),
                             "segments": status["segments_total"], "stall_s": status["stall_s"]})
                await page.close()
            await browser.close()
    finally:
        stop.set()
        await asyncio.wait([site], timeout=5)
        await bus.close()
        pool.stop()
        server.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m streamwise.bench.browser", description=__doc__.splitlines()[0])
    ap.add_argument("--script", type=Path, default=DEFAULT_SCRIPT, help="script to paste (default examples/podcast.txt)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--player", default="mse", help="comma-separated: mse (WebSocket + MSE, the page's default), "
                                                    "hls (hls.js on the live playlist)")
    ap.add_argument("--screenshot", type=Path, help="save a screenshot of the first run while it plays")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    t0 = time.time()
    players = tuple(p.strip() for p in args.player.split(",") if p.strip())
    if not players or set(players) - {"mse", "hls"}:
        ap.error(f"--player {args.player!r}: use mse, hls or mse,hls")
    rows = asyncio.run(_run(args.script, args.runs, args.screenshot, Path(tempfile.mkdtemp(prefix="sw-bench-")),
                            players))
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'run':>3}  {'player':>6}  {'browser first frame':>19}  {'POST':>6}  {'gateway TTFF':>12}  {'bus TTFF':>8}  "
          f"{'browser - gateway':>17}  {'stall':>6}")
    for r in rows:
        print(f"{r['run']:>3}  {r['player']:>6}  {r['browser_first_frame_s']:>17.3f} s  {r['post_s']:>4.3f} s  {r['gateway_ttff_s']:>10.3f} s"
              f"  {r['bus_ttff_s']:>6.3f} s  {r['browser_minus_gateway_s']:>15.3f} s  {r['stall_s']:>4.2f} s")
    for player in players:
        mine = [r["browser_minus_gateway_s"] for r in rows if r["player"] == player]
        print(f"{player}: median browser - gateway {statistics.median(mine):.3f} s over {len(mine)} runs")
    print(f"({time.time() - t0:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
