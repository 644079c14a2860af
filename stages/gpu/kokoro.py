"""Kokoro-82M neural TTS on the GPU (the ``kokoro`` package: ``KModel`` + misaki G2P). Output: float32 mono
samples at 24 000 Hz.

Weights come from a local copy of ``hexgrad/Kokoro-82M`` (``config.json``, ``kokoro-v1_0.pth``,
``voices/<voice>.pt``, each voice a float32 ``(510, 1, 256)`` tensor of style vectors, one row per phoneme
count): ``KModel`` is given the config and weight paths explicitly, so it never calls the hub.

Text to phonemes (G2P), never downloading anything:

* ``misaki`` (English, ``lang_code`` ``a``/``b``): kokoro's own ``KPipeline`` with misaki's English G2P.
  It needs spaCy's ``en_core_web_sm`` *installed* (misaki would otherwise fetch it with
  ``spacy.cli.download`` at run time; this adapter refuses instead). Install it into the GPU environment
  with ``python -m spacy download en_core_web_sm``.
* ``espeak``: espeak-ng through misaki's ``EspeakFallback`` mapping (English) -- the library and its data
  ship inside the ``espeakng-loader`` wheel, so no system package is needed. Lower quality for English
  than misaki (no POS-aware lexicon), but offline everywhere; it is what the CPU tests run.
* ``auto`` (default): ``misaki`` when ``en_core_web_sm`` is installed, else ``espeak`` (logged).

Other ``lang_code`` values (``e`` es, ``f`` fr-fr, ``h`` hi, ``i`` it, ``p`` pt-br) always use kokoro's
espeak-ng pipeline; ``j`` / ``z`` need ``misaki[ja]`` / ``misaki[zh]``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .runtime import pick_device

SAMPLE_RATE = 24000          # Hz
MAX_PHONEMES = 510           # KModel's context (512 tokens incl. the two boundary tokens); voice packs have 510 rows
SPACY_MODEL = "en_core_web_sm"

log = logging.getLogger(__name__)


def english_model_installed() -> bool:
    """Whether spaCy and its ``en_core_web_sm`` package are installed (misaki's English G2P needs both)."""
    try:
        import spacy
    except Exception:
        return False
    return bool(spacy.util.is_package(SPACY_MODEL))


def _chunks(phonemes: list[str], limit: int = MAX_PHONEMES) -> list[str]:
    """Sentence phoneme strings packed into chunks of at most ``limit`` characters (a longer sentence is
    split at spaces, a longer word cut)."""
    out: list[str] = []
    cur = ""
    for ps in phonemes:
        for word in ps.split(" ") if len(ps) > limit else [ps]:
            word = word[:limit]
            if cur and len(cur) + 1 + len(word) > limit:
                out.append(cur)
                cur = word
            else:
                cur = f"{cur} {word}" if cur else word
    if cur:
        out.append(cur)
    return [c for c in out if c.strip()]


class KokoroSpeech:
    """:class:`~streamwise.stages.gpu.interfaces.TtsAdapter` on Kokoro-82M.

    ``path``: the local Kokoro-82M folder. ``lang_code``: kokoro's language (``a`` = American English,
    ``b`` = British, ``e``/``f``/``h``/``i``/``p`` via espeak-ng). ``g2p``: ``auto`` | ``misaki`` |
    ``espeak``, for English (see the module docstring). ``repo_id`` is only recorded by KModel (no
    download happens when the config and weights are given).

    Attributes: ``g2p`` (the G2P in use: ``misaki``, ``espeak`` or ``kpipeline`` for non-English),
    ``device``, ``model`` (the ``KModel``).

    Raises:
        ImportError: the ``kokoro`` package is not installed (the ``ml`` extra installs it).
        FileNotFoundError: ``config.json`` or a ``.pth`` weight file is missing under ``path``.
        RuntimeError: ``g2p="misaki"`` for English without spaCy's ``en_core_web_sm`` installed.
        ValueError: unknown ``g2p``.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, path: str | os.PathLike, *, device: str | None = None, lang_code: str = "a",
                 repo_id: str = "hexgrad/Kokoro-82M", g2p: str = "auto") -> None:
        from kokoro import KModel, KPipeline

        if g2p not in ("auto", "misaki", "espeak"):
            raise ValueError(f"Kokoro g2p must be auto, misaki or espeak, not {g2p!r}")
        path = Path(path)
        config = path / "config.json"
        weights = sorted(path.glob("kokoro-*.pth")) or sorted(path.glob("*.pth"))
        if not config.is_file() or not weights:
            raise FileNotFoundError(f"{path}: needs config.json and kokoro-v1_0.pth (hexgrad/Kokoro-82M)")
        lang_code = lang_code.lower()
        english = lang_code in ("a", "b", "en-us", "en-gb")
        if english and g2p == "misaki" and not english_model_installed():
            raise RuntimeError(f"Kokoro g2p='misaki' needs spaCy's {SPACY_MODEL} installed (misaki would "
                               f"download it at run time): python -m spacy download {SPACY_MODEL}, or use "
                               "g2p='espeak'")
        self.device = pick_device(device)
        self.model = KModel(repo_id=repo_id, config=str(config), model=str(weights[0])).to(self.device).eval()
        self.voices = path / "voices"
        self._packs: dict[str, object] = {}
        self.pipeline = None
        self._fallback = None
        if english and (g2p == "espeak" or (g2p == "auto" and not english_model_installed())):
            from misaki.espeak import EspeakFallback

            if g2p == "auto":
                log.warning("Kokoro: spaCy's %s is not installed; English G2P falls back to espeak-ng", SPACY_MODEL)
            self.g2p = "espeak"
            self._fallback = EspeakFallback(british=lang_code in ("b", "en-gb"))
        else:
            self.g2p = "misaki" if english else "kpipeline"
            self.pipeline = KPipeline(lang_code=lang_code, repo_id=repo_id, model=self.model)

    def _voice_file(self, voice: str) -> Path:
        file = Path(voice) if voice.endswith(".pt") else self.voices / f"{voice}.pt"
        if not file.is_file():
            raise FileNotFoundError(f"Kokoro voice {voice!r} not found at {file}")
        return file

    def phonemes(self, text: str) -> list[str]:
        """The espeak-ng G2P's phoneme chunks for ``text`` (each at most 510 characters), one per
        sentence where they fit. Only with ``g2p == "espeak"``."""
        if self._fallback is None:
            raise RuntimeError(f"phonemes() is for the espeak G2P; this instance uses {self.g2p}")
        sentences = [s for s in re.split(r"(?<=[.!?;:])\s+|\n+", text.strip()) if s.strip()]
        out = []
        for s in sentences:
            ps, _ = self._fallback(SimpleNamespace(text=s))
            if ps:
                out.append(ps)
        return _chunks(out)

    def speak(self, text: str, voice: str, *, speed: float = 1.0) -> tuple[np.ndarray, int]:
        """(float32 mono samples in [-1, 1], 24000 Hz): ``text`` spoken with ``voice`` (a name under
        ``voices/``, e.g. ``af_heart``, or a ``.pt`` path). ``speed`` > 1 speaks faster. Each phoneme lasts
        a whole number of 25 ms duration frames (600 samples).

        Raises:
            FileNotFoundError: no such voice file.
        """
        import torch

        file = self._voice_file(voice)
        if self.pipeline is not None:
            chunks = [r.audio for r in self.pipeline(text, voice=str(file), speed=speed) if r.audio is not None]
        else:
            key = str(file)
            if key not in self._packs:
                self._packs[key] = torch.load(file, map_location="cpu", weights_only=True)
            pack = self._packs[key]
            chunks = [self.model(ps, pack[len(ps) - 1], speed) for ps in self.phonemes(text)]
        if not chunks:
            return np.zeros(0, np.float32), SAMPLE_RATE
        audio = np.concatenate([np.asarray(c.detach().float().cpu() if hasattr(c, "detach") else c, np.float32)
                                .reshape(-1) for c in chunks])
        return np.clip(audio, -1.0, 1.0), SAMPLE_RATE
