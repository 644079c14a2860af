"""``python -m streamwise.bench.rungs``: CPU seconds of the CPU rungs, the source of their
``cpu_cost`` in ``configs/quality.yaml``.

For each CPU rung of the FantasyTalking ladder it renders and encodes a talking-head clip of
``--clip-s`` seconds of synthetic speech (the video stage's work) and makes it a segment as the
mux does (decoded and encoded again, or passed through when the clip is in the stream's own
encoding, as the `still` rung's are), ``--repeat`` times, and prints the median seconds of
each and the rung's cost relative to ``static``. Process CPU time, not wall time, so a busy
machine changes the figures less.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from ..core.quality import load_ladders
from ..stages.art.head import HeadAnimator
from ..stages.art.portrait import render_person_layers
from ..stages.art.studio import render_studio
from ..stages.cpu.media import StreamPackets, encode_segment
from ..stages.cpu.passthrough import stream_avcc
from ..stages.cpu.mux import HeldClip, held_span
from ..stages.cpu.talking_head import CpuTalkingHead


def _speech(seconds: float, rate: int = 22050) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 2.5 * t) > -0.2)).astype(np.int16)


def mux_segment(clip: bytes, hold: int, frames: int, audio: np.ndarray, fps: float) -> bytes:
    """The mux's work for one segment of ``frames`` stream frames made of ``clip`` (as
    :class:`~streamwise.stages.cpu.mux.PyavMux` does it at 640x400): its frames passed through
    when the clip is in the stream's encoding, else decoded and encoded again."""
    held = HeldClip(clip)
    if held.packets is not None and held.avcc == stream_avcc(640, 400, fps):
        drawn, reps = held_span(len(held.packets), hold, 0, frames)
        video = StreamPackets(held.packets[drawn], 640, 400)
    else:
        drawn, reps = held_span(len(held.frames()), hold, 0, frames)
        video = held.frames()[drawn]
    return encode_segment(video, audio, fps=fps, sample_rate=22050, start_s=0.0,
                          repeats=None if (reps == 1).all() else reps)


def measure(clip_s: float = 3.5, fps: float = 25.0, repeat: int = 5) -> list[dict]:
    """Per CPU rung: median CPU seconds of the video stage's clip and of the mux's segment work."""
    ladder = load_ladders()["fantasytalking"]
    lay = render_person_layers(render_studio(640, 400, title="Bench", description="", seed=1), name="Ada",
                               speaker_index=0)
    animator = HeadAnimator(np.asarray(lay.image), lay.layout, person=np.asarray(lay.person),
                            backdrop=np.asarray(lay.backdrop))
    audio = _speech(clip_s)
    inputs = {"sample_rate": 22050, "sample_from": 0, "sample_to": len(audio), "subtitle": "A line of speech "
              "long enough to wrap over two lines of subtitles", "speaker": "Ada"}
    frames = round(clip_s * fps)
    rows = []
    for rung in (r for r in ladder.rungs if ladder.is_cpu(r)):
        hold = rung.hold_frames(fps)
        video_s, mux_s = [], []
        for _ in range(repeat):
            t0 = time.process_time()
            clip = CpuTalkingHead._render(animator, audio, inputs, fps, (640, 400), hold)
            t1 = time.process_time()
            mux_segment(clip, hold, frames, audio, fps)
            t2 = time.process_time()
            video_s.append(t1 - t0)
            mux_s.append(t2 - t1)
        rows.append({"rung": rung.name, "hold": hold, "video_s": statistics.median(video_s),
                     "mux_s": statistics.median(mux_s), "configured_cpu_cost": rung.cpu_cost})
    base = next(r for r in rows if r["rung"] == "static")
    for r in rows:
        r["video_cost"] = round(r["video_s"] / base["video_s"], 3)
        r["mux_cost"] = round(r["mux_s"] / base["mux_s"], 3)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m streamwise.bench.rungs", description=__doc__.split("\n\n")[0])
    p.add_argument("--clip-s", type=float, default=3.5)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    print("| rung | frames held | video stage CPU s | relative | mux CPU s | relative | configured cpu_cost |")
    print("|---|---|---|---|---|---|---|")
    for r in measure(args.clip_s, args.fps, args.repeat):
        print(f"| {r['rung']} | {r['hold']} | {r['video_s']:.3f} | {r['video_cost']:.2f} | {r['mux_s']:.3f} | "
              f"{r['mux_cost']:.2f} | {r['configured_cpu_cost']:g} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
