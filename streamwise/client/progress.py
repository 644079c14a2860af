"""Progress display for ``streamwise generate`` (rich), quiet when asked to be."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


class ProgressView:
    """Shows status messages and a bar of segments received (seconds of video so far)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self._progress: Progress | None = None
        self._task = None
        self._first = True

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(f"[dim]{text}[/dim]")

    def _bar(self) -> None:
        if self._progress is None and self.enabled:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                      TimeElapsedColumn(), console=self.console, transient=False)
            self._progress.start()
            self._task = self._progress.add_task("segments", total=None, info="")

    def update(self, kind: str, info: dict) -> None:
        """Callback for :func:`streamwise.client.generate` and :func:`streamwise.client.watch`."""
        if not self.enabled:
            return
        if kind == "status":
            if info.get("state") == "running" and info.get("speakers") and self._first:
                self.console.print(f"screenplay: {info['lines']} lines, speakers {', '.join(info['speakers'])}")
                self._first = False
            if info.get("error"):
                self.console.print(f"[red]{info['error']}[/red]")
            if self._progress is not None and info.get("segments_total"):
                self._progress.update(self._task, total=info["segments_total"])
            return
        self._bar()
        if info["index"] == 0:
            self.console.print(f"first segment after {info['arrived_s']:.2f} s")
        self._progress.update(self._task, advance=1,
                              info=f"{info['start_s'] + info['duration_s']:.0f} s of video")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def done(self, report, out: str) -> None:
        self.stop()
        if self.enabled and getattr(report, "attached", False):   # times count from attaching: no TTFF
            self.console.print(f"[green]done[/green]: {report.video_duration_s:.1f} s of video "
                               f"({len(report.segments)} segments) -> {Path(out) / 'podcast.mp4'}, "
                               f"{Path(out) / 'index.m3u8'}")
        elif self.enabled:
            self.console.print(
                f"[green]done[/green]: {report.video_duration_s:.1f} s of video in {report.wall_s:.1f} s "
                f"(TTFF {report.ttff_s:.2f} s, realtime factor {report.realtime_factor:.2f}, "
                f"stall {report.stall_s:.2f} s) -> {Path(out) / 'podcast.mp4'}, {Path(out) / 'index.m3u8'}")
        for warning in slo_warnings(report):
            print(f"streamwise: warning: {warning}", file=sys.stderr)


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
