"""Progress display for ``streamwise generate`` and ``watch`` (rich): four bars and a summary table.

Bars (on stderr): **screenplay** (lines written; complete once the scheduler reports the
screenplay's last line), **speech** (speech pieces synthesised), **video** (talking-head shots
rendered) and **delivered** (seconds of video received, out of the show's length once all its
speech is known). Speech and video count the DAG's completion events
(:func:`streamwise.client.generate` passes them as ``"event"`` updates); nodes completed from the
result cache send no event and are counted in the summary's *cache hits* instead. At the end,
:meth:`ProgressView.done` prints a summary table of the report.

``streamwise generate`` enables the view only when stdout is a terminal (and ``--quiet`` is not
given), so a redirected or scripted run prints nothing but errors and SLO warnings;
``streamwise watch`` shows it unless ``--quiet``.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

BARS = ("screenplay", "speech", "video", "delivered")
_EVENT_BARS = {"tts": "speech", "video": "video"}


def progress_wanted(quiet: bool, stream=None) -> bool:
    """Whether to show progress: not ``--quiet`` and ``stream`` (default stdout) is a terminal."""
    stream = sys.stdout if stream is None else stream
    return not quiet and bool(getattr(stream, "isatty", lambda: False)())


class ProgressView:
    """Bars for screenplay, speech, video and delivered seconds; a summary table at the end.

    ``enabled``: False prints nothing (but :func:`slo_warnings`). ``console``: where to draw
    (default a rich Console on stderr).
    """

    def __init__(self, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._tasks: dict[str, int] = {}
        self._nodes: set[str] = set()
        self.counts: collections.Counter = collections.Counter()
        self._lines = 0
        self._duration: float | None = None
        self._first = True

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(f"[dim]{text}[/dim]")

    def _bars(self) -> Progress:
        if self._progress is None:
            self._progress = Progress(TextColumn("{task.description:<10}"), BarColumn(),
                                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                      console=self.console, transient=False)
            for name in BARS:
                self._tasks[name] = self._progress.add_task(name, total=None, info="")
            self._progress.start()
        return self._progress

    def update(self, kind: str, info: dict) -> None:
        """Callback for :func:`streamwise.client.generate` and :func:`streamwise.client.watch`:
        ``kind`` is ``"status"``, ``"event"`` or ``"segment"`` and ``info`` the message as a map."""
        if kind == "event":
            bar = _EVENT_BARS.get(info.get("stage"))
            if bar and info.get("ok") and not info.get("partial") and info["node_id"] not in self._nodes:
                self._nodes.add(info["node_id"])
                self.counts[bar] += 1
                if self.enabled:
                    unit = "pieces" if bar == "speech" else "shots"
                    self._bars().update(self._tasks[bar], completed=self.counts[bar],
                                        info=f"{self.counts[bar]} {unit}")
            return
        if kind == "status":
            self._status(info)
            return
        end = info["start_s"] + info["duration_s"]
        self.counts["segments"] += 1
        if not self.enabled:
            return
        bars = self._bars()
        if info["index"] == 0:
            bars.console.print(f"first segment after {info['arrived_s']:.2f} s")
        total = f" / {self._duration:.0f} s" if self._duration else ""
        bars.update(self._tasks["delivered"], completed=end, total=self._duration,
                    info=f"{end:.0f} s{total} of video")

    def _status(self, info: dict) -> None:
        if not self.enabled:
            return
        if info.get("state") == "running" and info.get("speakers") and self._first:
            self.console.print(f"screenplay: speakers {', '.join(info['speakers'])}")
            self._first = False
        if info.get("error"):
            self.console.print(f"[red]{info['error']}[/red]")
        bars = self._bars()
        lines = info.get("lines") or 0
        if lines:
            done = bool(info.get("screenplay_done_at"))
            bars.update(self._tasks["screenplay"], completed=lines, total=lines if done else None,
                        info=f"{lines} lines" + (" (complete)" if done else ""))
        if info.get("video_duration_s"):
            self._duration = float(info["video_duration_s"])
            bars.update(self._tasks["delivered"], total=self._duration)

    def stop(self) -> None:
        if self._progress is not None:
            for name in ("speech", "video"):   # the show is over: what was counted is the total
                self._progress.update(self._tasks[name], total=max(self.counts[name], 1), completed=self.counts[name])
            self._progress.stop()
            self._progress = None

    def done(self, report, out: str) -> None:
        """Stop the bars and print the summary table of ``report`` (a :class:`~streamwise.client.Report`)."""
        self.stop()
        if self.enabled:
            self.console.print(summary_table(report, out, self.counts))
            self.console.print(f"[green]done[/green]: {report.video_duration_s:.1f} s of video -> "
                               f"{Path(out) / 'podcast.mp4'}")
        for warning in slo_warnings(report):
            print(f"streamwise: warning: {warning}", file=sys.stderr)


def summary_table(report, out: str, counts: collections.Counter | None = None) -> Table:
    """A rich table of a finished show: what was made, how fast, at which quality, where it is."""
    counts = counts or collections.Counter()
    attached = getattr(report, "attached", False)
    t = Table(title="podcast" + (" (watched: times count from attaching)" if attached else ""),
              show_header=False, title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_row("request", report.request_id)
    t.add_row("speakers", ", ".join(report.speakers) or "-")
    t.add_row("lines", str(report.lines))
    if counts.get("speech") or counts.get("video"):
        t.add_row("speech / shots", f"{counts.get('speech', 0)} pieces / {counts.get('video', 0)} shots rendered")
    t.add_row("cache hits", str(report.cache_hits))
    t.add_row("video", f"{report.video_duration_s:.1f} s in {len(report.segments)} segments")
    rungs = collections.Counter(s.quality.get("rung", "?") for s in report.segments)
    t.add_row("quality rungs", ", ".join(f"{r} x{n}" for r, n in rungs.most_common()) or "-")
    if not attached:
        slo = getattr(report, "ttff_slo_s", None)
        t.add_row("TTFF", f"{report.ttff_s:.2f} s" + (f" (SLO {slo:g} s)" if slo is not None else ""))
        t.add_row("wall / realtime", f"{report.wall_s:.1f} s, realtime factor {report.realtime_factor:.2f}")
        t.add_row("stall", f"{report.stall_s:.2f} s ({len(report.late_segments)} late segments)")
        if getattr(report, "slo_met", None) is not None:
            t.add_row("SLO met", "[green]yes[/green]" if report.slo_met else "[red]no[/red]")
    t.add_row("files", f"{Path(out) / 'podcast.mp4'}, {Path(out) / 'index.m3u8'}")
    return t


def slo_warnings(report) -> list[str]:
    """Plain-language warnings for a missed SLO: TTFF over the request's target, playback
    stalls (with the late segments). Empty when the show met its SLO (or was only watched)."""
    out = []
    slo = getattr(report, "ttff_slo_s", None)
    if slo is not None and report.ttff_s > slo:
        out.append(f"TTFF {report.ttff_s:.2f} s exceeded the SLO of {slo:g} s")
    late = getattr(report, "late_segments", [])
    if late and not getattr(report, "attached", False):
        worst = max(late, key=lambda x: x["late_s"])
        out.append(f"playback stalled {report.stall_s:.2f} s in all: {len(late)} segment(s) late, the worst "
                   f"(segment {worst['index']}) by {worst['late_s']:.2f} s (report.json lists them)")
    return out
