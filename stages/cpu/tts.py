"""Speech stage, CPU rung: real neural TTS (piper, voice shipped in a package; espeak-ng fallback).

One task speaks one piece of a line with the speaker's voice, appends the pause that
follows it, pads to whole video frames (so audio and video stay in sync by construction)
and cuts the result at speech pauses into clips no longer than the talking-head model's
maximum. Audio goes to the object store as raw PCM (int16 mono, little endian).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ...bus.messages import Task
from ..runtime.base import TaskContext, TaskError
from .speech import SAMPLE_RATE, SpeechEngine, resample_pcm, show_audio_rate, split_at_pauses, voice_for


def pad_to_frames(audio: np.ndarray, pause_s: float, samples_per_frame: int,
                  sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``audio`` (at ``sample_rate`` Hz) followed by ``pause_s`` seconds of silence, zero-padded up
    to a whole number of video frames.

    Shapes: int16 (n,) -> int16 (m,) with ``m % samples_per_frame == 0`` and ``m >= n``.
    """
    n = len(audio) + int(round(pause_s * sample_rate))
    m = max(1, -(-n // samples_per_frame)) * samples_per_frame
    out = np.zeros(m, dtype=np.int16)
    out[: len(audio)] = audio
    return out


def clip_ranges(audio: np.ndarray, max_clip_s: float, samples_per_frame: int,
                first_clip_s: float | None = None, sample_rate: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """Cut ``audio`` (at ``sample_rate`` Hz) at speech pauses into ``[start, end)`` sample ranges of
    at most ``max_clip_s`` seconds (whole frames). With ``first_clip_s`` (the show's first piece) the
    first range is exactly ``first_clip_s`` (whole frames; all of a shorter piece), not cut at a pause:
    the first segment is that long, so it waits for one clip only, never for a second one of up to
    ``max_clip_s`` (the nod and the mouth run on across the cut, from the audio around it)."""
    split = dict(quantum=samples_per_frame, sample_rate=sample_rate)
    if not first_clip_s or first_clip_s >= max_clip_s:
        return split_at_pauses(audio, max_clip_s, **split)
    first_end = max(1, int(first_clip_s * sample_rate + 1e-6) // samples_per_frame) * samples_per_frame
    if first_end >= len(audio):
        return [(0, len(audio))]
    rest = split_at_pauses(audio[first_end:], max_clip_s, **split)
    return [(0, first_end)] + [(first_end + a, first_end + b) for a, b in rest]


def frame_grid(fps: float) -> tuple[int, int]:
    """``(audio rate in Hz, samples per video frame)`` of a show at ``fps``
    (:func:`~streamwise.stages.runtime.base.show_audio_rate`).

    Raises:
        TaskError: an unsupported fps (not retryable).
    """
    try:
        rate = show_audio_rate(fps)
    except ValueError as e:
        raise TaskError(str(e), retryable=False) from None
    return rate, int(rate / fps)


class CpuSpeech:
    """Stage ``tts`` on CPU. Task inputs: ``text``, ``speaker_index``, ``fps``, ``max_clip_s``,
    ``pause_after_s``, optional ``voice`` (a name the screenplay gave the speaker: ``heart``,
    ``joe@0.9``; default :func:`~.speech.voice_for` of the speaker index). Outputs: ``voice`` (its
    label), ``voice_model`` (``hibari:heart``, ``piper:en_US-joe-medium`` or ``espeak-ng``),
    ``audio`` (object-store name of int16 PCM), ``samples``,
    ``sample_rate`` (Hz: :func:`~streamwise.stages.runtime.base.show_audio_rate` of the fps), ``clips``
    (``[[start, end), ...]`` sample ranges, each at most ``max_clip_s`` seconds and a whole number
    of frames), ``engine``, ``mouth`` (where the talking head's mouth shapes come from:
    ``piper-alignments``, ``piper-phonemes``, ``hibari-phonemes`` or ``loudness``, see :class:`~.speech.Speech`)
    and, but from espeak-ng, ``visemes`` (``[[start_s, end_s, viseme], ...]`` from the audio's start, see
    :mod:`streamwise.stages.art.visemes`).
    """

    stage = "tts"
    # onnxruntime threads: $STREAMWISE_TTS_THREADS (default 1, leaving the other cores to the
    # talking-head and mux stages that decide time to first frame)

    def __init__(self, engine: str = "auto") -> None:
        self._engine_name = engine
        self.engine: SpeechEngine | None = None
        self.model = "piper" if engine in ("auto", "piper") else "espeak-ng"

    def load(self) -> None:
        self.engine = SpeechEngine(self._engine_name, threads=int(os.environ.get("STREAMWISE_TTS_THREADS", "1")))
        self.model = "piper" if self.engine.name.startswith("piper") else "espeak-ng"
        for _ in range(3):   # warm-up: onnxruntime's first few runs are up to 2x slower (both voice models)
            for speaker in (0, 1):
                self.engine.synthesize("The studio is ready, and the first guest is on the line.", voice_for(speaker))

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        inputs = task.inputs
        rate, spf = frame_grid(float(inputs["fps"]))
        try:
            voice = voice_for(int(inputs["speaker_index"]), voice=inputs.get("voice"))
        except ValueError as exc:
            raise TaskError(str(exc), retryable=False) from None
        speech = await ctx.in_thread(self.engine.speak, inputs["text"], voice)
        audio = speech.audio
        if rate != SAMPLE_RATE:
            audio = await ctx.in_thread(resample_pcm, audio, SAMPLE_RATE, rate)
        audio = pad_to_frames(audio, float(inputs.get("pause_after_s", 0.0)), spf, rate)
        clips = clip_ranges(audio, float(inputs["max_clip_s"]), spf, inputs.get("first_clip_s"), rate)
        name = await ctx.bus.put_blob(ctx.blob_name(task, "audio.pcm"), audio.astype("<i2").tobytes())
        return {"audio": name, "samples": len(audio), "sample_rate": rate,
                "clips": [[int(a), int(b)] for a, b in clips], "engine": self.engine.name,
                "voice": voice.label, "voice_model": self.engine.voice_model(voice), "mouth": speech.mouth,
                **({"visemes": [[a, b, v] for a, b, v in speech.visemes]} if speech.visemes else {})}
