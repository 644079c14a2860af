"""Build a GPU adapter for a model name from its ``configs/models.yaml`` ``adapters`` entry.

Checkpoints are found by :func:`streamwise.stages.gpu.weights.resolve` (explicit path,
``$STREAMWISE_MODELS``, the Hugging Face cache; never downloaded); a missing one raises
:class:`~streamwise.stages.gpu.weights.MissingCheckpointError` naming the model and how to provide it.
"""

from __future__ import annotations

import os
from typing import Any

from .config import AdapterSpec, spec_for
from .weights import resolve


def _paths(spec: AdapterSpec, paths: dict[str, Any] | None, models_dir: str | os.PathLike | None):
    def path(role: str):
        return resolve(spec.checkpoints[role], model=spec.model, explicit=(paths or {}).get(role),
                       models_dir=models_dir)
    return path


def build(model: str, *, spec: AdapterSpec | None = None, paths: dict[str, Any] | None = None,
          models_dir: str | os.PathLike | None = None, device: str | None = None, audio: bool = True,
          **overrides: Any):
    """The adapter object for ``model`` (e.g. ``flux`` -> :class:`~.flux.FluxImage`).

    ``paths`` maps checkpoint roles (``checkpoint``, ``transformer``, ``image_encoder``,
    ``audio_encoder``, ``audio_weights``) to explicit local paths; ``models_dir`` overrides
    ``$STREAMWISE_MODELS``; ``overrides`` replace config options (``dtype``, ``guidance_scale``, ...).
    ``audio=False`` builds the FantasyTalking model as plain Wan I2V (no audio weights needed).

    Raises:
        KeyError: no adapter configured for ``model``.
        MissingCheckpointError: a configured checkpoint is not available locally.
    """
    spec = spec or spec_for(model)
    opts = {**spec.options, **overrides}
    path = _paths(spec, paths, models_dir)
    common = {"device": device, "dtype": opts.get("dtype", "bfloat16"), "offload": bool(opts.get("offload", False))}
    kind = spec.adapter
    if kind in ("flux", "flux-kontext"):
        from .flux import FluxImage, FluxKontextEdit

        cls = FluxImage if kind == "flux" else FluxKontextEdit
        return cls(path("checkpoint"), guidance_scale=float(opts.get("guidance_scale", 3.5 if kind == "flux" else 2.5)),
                   max_sequence_length=int(opts.get("max_sequence_length", 512)), **common)
    if kind == "wan-i2v-audio":
        from .wan import DEFAULT_NEGATIVE, DEFAULT_PROMPT, WanTalkingHead

        with_audio = audio and "audio_weights" in spec.checkpoints
        return WanTalkingHead(path("checkpoint"),
                              wav2vec_path=path("audio_encoder") if with_audio else None,
                              audio_weights=path("audio_weights") if with_audio else None,
                              guidance_scale=float(opts.get("guidance_scale", 5.0)),
                              audio_scale=float(opts.get("audio_scale", 1.0)),
                              prompt=opts.get("prompt", DEFAULT_PROMPT),
                              negative_prompt=opts.get("negative_prompt", DEFAULT_NEGATIVE),
                              max_sequence_length=int(opts.get("max_sequence_length", 512)), **common)
    if kind == "framepack":
        from .framepack import FramePackVideo

        return FramePackVideo(path("checkpoint"), transformer_path=path("transformer"),
                              image_encoder_path=path("image_encoder"),
                              guidance_scale=float(opts.get("guidance_scale", 10.0)),
                              sampling_type=str(opts.get("sampling_type", "vanilla")),
                              latent_window_size=int(opts.get("latent_window_size", 9)),
                              max_sequence_length=int(opts.get("max_sequence_length", 256)),
                              prompt=str(opts.get("prompt", "")), **common)
    if kind == "realesrgan":
        from .upscale import RealEsrganUpscaler

        return RealEsrganUpscaler(path("checkpoint"), device=device, dtype=opts.get("dtype", "float16"),
                                  loader=str(opts.get("loader", "auto")), batch=int(opts.get("batch", 8)))
    if kind == "kokoro":
        from .kokoro import KokoroSpeech

        return KokoroSpeech(path("checkpoint"), device=device, lang_code=str(opts.get("lang_code", "a")),
                            repo_id=spec.checkpoints["checkpoint"], g2p=str(opts.get("g2p", "auto")))
    raise KeyError(f"{model}: unknown adapter family {kind!r}")
