"""Speech stage, CPU rung: real neural TTS (piper, voice shipped in a package; espeak-ng fallback).

One task speaks one piece of a line with the speaker's voice, appends the pause that
follows it, pads to whole video frames (so audio and video stay in sync by construction)
and cuts the result at speech pauses into clips no longer than the talking-head model's
maximum. Audio goes to the object store as raw PCM (int16 mono, little endian).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..bus.messages import Task
from .base import TaskContext, TaskError
from .speech import SAMPLE_RATE, SpeechEngine, split_at_pauses, voice_for


def pad_to_frames(audio: np.ndarray, pause_s: float, samples_per_frame: int) -> np.ndarray:
    """``audio`` followed by ``pause_s`` of silence, zero-padded up to a whole number of video frames.

    Shapes: int16 (n,) -> int16 (m,) with ``m % samples_per_frame == 0`` and ``m >= n``.
    """
    n = len(audio) + int(round(pause_s * SAMPLE_RATE))
    m = max(1, -(-n // samples_per_frame)) * samples_per_frame
    out = np.zeros(m, dtype=np.int16)
    out[: len(audio)] = audio
    return out


class CpuSpeech:
    """Stage ``tts`` on CPU. Task inputs: ``text``, ``speaker_index``, ``fps``, ``max_clip_s``,
    ``pause_after_s``. Outputs: ``audio`` (object-store name of int16 PCM), ``samples``,
    ``sample_rate`` (Hz), ``clips`` (``[[start, end), ...]`` sample ranges, each at most
    ``max_clip_s`` seconds and a whole number of frames), ``engine``.
    """

    stage = "tts"

    def __init__(self, engine: str = "auto") -> None:
        self._engine_name = engine
        self.engine: SpeechEngine | None = None
        self.model = "piper" if engine in ("auto", "piper") else "espeak-ng"

    def load(self) -> None:
        self.engine = SpeechEngine(self._engine_name)
        self.model = "piper" if self.engine.name.startswith("piper") else "espeak-ng"
        self.engine.synthesize("Ready.", voice_for(0))   # warm-up: the first call pays graph init

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        inputs = task.inputs
        fps = float(inputs["fps"])
        spf = SAMPLE_RATE / fps
        if spf != int(spf):
            raise TaskError(f"fps {fps:g} must divide the audio rate {SAMPLE_RATE} Hz (e.g. 25 or 30)",
                            retryable=False)
        audio = await ctx.in_thread(self.engine.synthesize, inputs["text"], voice_for(int(inputs["speaker_index"])))
        audio = pad_to_frames(audio, float(inputs.get("pause_after_s", 0.0)), int(spf))
        clips = split_at_pauses(audio, float(inputs["max_clip_s"]), quantum=int(spf))
        name = await ctx.bus.put_blob(ctx.blob_name(task, "audio.pcm"), audio.astype("<i2").tobytes())
        return {"audio": name, "samples": len(audio), "sample_rate": SAMPLE_RATE,
                "clips": [[int(a), int(b)] for a, b in clips], "engine": self.engine.name}
