"""The talking head on the GPU: Wan2.1 image-to-video (diffusers ``WanImageToVideoPipeline``) driven by
the speech through FantasyTalking's audio conditioning (:mod:`streamwise.stages.gpu.audio`).

The checkpoint is the diffusers-format Wan2.1-I2V-14B-720P (``Wan-AI/Wan2.1-I2V-14B-720P-Diffusers``:
UMT5 text encoder, CLIP ViT-H image encoder, 14B DiT, causal VAE with 4x time / 8x space
compression); FantasyTalking's ``fantasytalking_model.ckpt`` and ``wav2vec2-base-960h`` add the audio
path. Without them the adapter is plain Wan I2V (:attr:`WanTalkingHead.audio_conditioned` is False).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from .interfaces import OnStep
from .runtime import as_pil, generator, pick_device, pick_dtype, resample_audio, to_uint8

log = logging.getLogger(__name__)

DEFAULT_PROMPT = ("A person is talking to the camera in a podcast studio, natural lip movements matching the "
                  "speech, steady head, realistic")
DEFAULT_NEGATIVE = "blurry, distorted face, static, low quality, subtitles, watermark"


class WanTalkingHead:
    """:class:`~streamwise.stages.gpu.interfaces.TalkingHeadAdapter` on Wan2.1 I2V + FantasyTalking audio.

    ``path``: diffusers-format Wan I2V folder. ``wav2vec_path`` / ``audio_weights``: the wav2vec2
    folder and ``fantasytalking_model.ckpt`` (both or neither). ``dtype`` applies to the DiT and text
    encoder on GPU; the VAE and image encoder stay float32 there (as the Wan model card does).
    ``audio_scale`` multiplies the audio attention (FantasyTalking's default 1.0).

    Raises:
        ValueError: audio weights without a wav2vec2 model, or weights that do not fit the DiT.
    """

    def __init__(self, path: str | os.PathLike, *, wav2vec_path: str | os.PathLike | None = None,
                 audio_weights: str | os.PathLike | None = None, device: str | None = None,
                 dtype: str | None = "bfloat16", guidance_scale: float = 5.0, audio_scale: float = 1.0,
                 prompt: str = DEFAULT_PROMPT, negative_prompt: str = DEFAULT_NEGATIVE,
                 max_sequence_length: int = 512, offload: bool = False) -> None:
        import torch
        from diffusers import WanImageToVideoPipeline

        from . import audio as A

        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.guidance_scale, self.prompt, self.negative_prompt = float(guidance_scale), prompt, negative_prompt
        self.max_sequence_length = int(max_sequence_length)
        self.pipe = WanImageToVideoPipeline.from_pretrained(str(path), dtype=self.dtype)
        for name in ("vae", "image_encoder") if self.dtype != torch.float32 else ():
            if getattr(self.pipe, name, None) is not None:
                getattr(self.pipe, name).to(torch.float32)
        if offload and self.device != "cpu":
            self.pipe.enable_model_cpu_offload()
        else:
            self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.temporal = self.pipe.vae_scale_factor_temporal
        patch = self.pipe.transformer.config.patch_size[1]
        self.size_multiple = self.pipe.vae_scale_factor_spatial * patch
        self.state = A.AudioState()
        self.features = None
        self.audio = None
        if audio_weights is not None and wav2vec_path is None:
            raise ValueError("FantasyTalking audio weights need the wav2vec2 model (wav2vec_path)")
        if audio_weights is not None:
            self.features = A.Wav2VecFeatures(wav2vec_path, device=self.device)
            self.audio = A.FantasyAudio.from_checkpoint(audio_weights)
            if self.audio.in_dim != self.features.hidden_size:
                raise ValueError(f"FantasyTalking projection expects {self.audio.in_dim}-d audio features; "
                                 f"the wav2vec2 model gives {self.features.hidden_size}")
            self.audio.to(self.device, self.dtype).eval()
            A.install(self.pipe.transformer, self.audio, self.state)
            self.state.scale = float(audio_scale)
        else:
            log.warning("no FantasyTalking audio weights: the talking head runs as plain Wan I2V (no lip-sync)")

    @property
    def audio_conditioned(self) -> bool:
        """Whether the speech drives the video (FantasyTalking weights loaded)."""
        return self.audio is not None

    def audio_context(self, audio: np.ndarray, sample_rate: int, frames: int, fps: float):
        """Projected audio windows (T', W, proj_dim) and their mask for a clip of ``frames`` at ``fps``:
        the audio is resampled to 16 kHz and padded with silence (or cut) to ``frames / fps`` seconds."""
        import torch

        from . import audio as A

        speech = resample_audio(audio, int(sample_rate), A.WAV2VEC_RATE)
        need = int(round(frames / fps * A.WAV2VEC_RATE))
        speech = np.pad(speech, (0, max(0, need - len(speech))))[:need]
        with torch.no_grad():
            tokens = self.audio.proj_model(self.features(speech).to(self.dtype))
        return A.windows_for(tokens, frames)

    def animate(self, portrait: np.ndarray, audio: np.ndarray, sample_rate: int, *, frames: int, fps: float,
                width: int, height: int, steps: int, seed: int = 0, prompt: str | None = None,
                on_step: OnStep = None) -> np.ndarray:
        """uint8 (frames, height, width, 3): ``portrait`` (uint8 (H, W, 3), any size) animated for
        ``frames`` frames at ``fps`` (the model's rate, 23 for FantasyTalking) by ``audio`` (float32
        mono at ``sample_rate`` Hz, the clip's speech), after ``steps`` denoising steps.

        Raises:
            ValueError: frames not 1+4n, a size not a multiple of :attr:`size_multiple`, steps < 1.
        """
        if frames < 1 or (frames - 1) % self.temporal:
            raise ValueError(f"frames must be 1+{self.temporal}n for the Wan VAE, got {frames}")
        if width <= 0 or height <= 0 or width % self.size_multiple or height % self.size_multiple:
            raise ValueError(f"size {width}x{height} must be positive multiples of {self.size_multiple} pixels")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        kw: dict[str, Any] = dict(image=as_pil(portrait), prompt=prompt or self.prompt,
                                  negative_prompt=self.negative_prompt, height=int(height), width=int(width),
                                  num_frames=int(frames), num_inference_steps=int(steps),
                                  guidance_scale=self.guidance_scale, max_sequence_length=self.max_sequence_length,
                                  generator=generator(self.device, seed), output_type="np")
        if on_step is not None:
            kw["callback_on_step_end"] = on_step
        if self.audio is not None:
            self.state.windows, self.state.valid = self.audio_context(audio, sample_rate, frames, fps)
        try:
            video = self.pipe(**kw).frames[0]
        finally:
            self.state.windows = self.state.valid = None
        return to_uint8(video)
