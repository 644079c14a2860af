"""Kokoro-82M neural TTS on the GPU (the ``kokoro`` package: ``KModel`` + ``KPipeline``).

Weights come from a local copy of ``hexgrad/Kokoro-82M`` (``config.json``, ``kokoro-v1_0.pth``,
``voices/<voice>.pt``): ``KModel`` is given the config and weight paths explicitly, so it never calls
the hub. Output is 24 kHz mono.

Not tested on this project's CPU machines: kokoro 0.9.4 imports ``misaki[en]`` when the package is
imported, which needs spaCy and fetches the ``en_core_web_sm`` model at run time
(``spacy.cli.download``), and the Kokoro weights are not on the package registry. The ``kokoro``
package belongs to the GPU environment (``pip install kokoro`` there, plus the spaCy model).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .runtime import pick_device

SAMPLE_RATE = 24000  # Hz


class KokoroSpeech:
    """:class:`~streamwise.stages.gpu.interfaces.TtsAdapter` on Kokoro-82M.

    ``path``: the local Kokoro-82M folder. ``lang_code``: KPipeline's language (``a`` = American
    English, ``b`` = British). ``repo_id`` is only recorded by KModel (no download happens when the
    config and weights are given).

    Raises:
        ImportError: the ``kokoro`` package is not installed (see the module docstring).
        FileNotFoundError: ``config.json`` or a ``.pth`` weight file is missing under ``path``.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, path: str | os.PathLike, *, device: str | None = None, lang_code: str = "a",
                 repo_id: str = "hexgrad/Kokoro-82M") -> None:
        from kokoro import KModel, KPipeline

        path = Path(path)
        config = path / "config.json"
        weights = sorted(path.glob("kokoro-*.pth")) or sorted(path.glob("*.pth"))
        if not config.is_file() or not weights:
            raise FileNotFoundError(f"{path}: needs config.json and kokoro-v1_0.pth (hexgrad/Kokoro-82M)")
        self.device = pick_device(device)
        self.model = KModel(repo_id=repo_id, config=str(config), model=str(weights[0])).to(self.device).eval()
        self.pipeline = KPipeline(lang_code=lang_code, repo_id=repo_id, model=self.model)
        self.voices = path / "voices"

    def speak(self, text: str, voice: str, *, speed: float = 1.0) -> tuple[np.ndarray, int]:
        """(float32 mono samples, 24000): ``text`` spoken with ``voice`` (a name under ``voices/``,
        e.g. ``af_heart``, or a ``.pt`` path).

        Raises:
            FileNotFoundError: no such voice file.
        """
        file = Path(voice) if voice.endswith(".pt") else self.voices / f"{voice}.pt"
        if not file.is_file():
            raise FileNotFoundError(f"Kokoro voice {voice!r} not found at {file}")
        chunks = [r.audio for r in self.pipeline(text, voice=str(file), speed=speed) if r.audio is not None]
        if not chunks:
            return np.zeros(0, np.float32), SAMPLE_RATE
        return np.concatenate([np.asarray(c.detach().cpu() if hasattr(c, "detach") else c, np.float32)
                               for c in chunks]), SAMPLE_RATE
