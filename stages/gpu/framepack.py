"""Long-shot sketch video: Hunyuan FramePack (F1) image-to-video through diffusers.

FramePack (lllyasviel, arXiv 2504.12626) generates a long clip section by section from a fixed-size
packed context, on the HunyuanVideo base (Llama + CLIP text encoders, HunyuanVideo VAE) with its own
transformer and a SigLIP image encoder (from ``lllyasviel/flux_redux_bfl``). diffusers 0.42.1 has
``HunyuanVideoFramepackPipeline`` + ``HunyuanVideoFramepackTransformer3DModel``; the three parts are
loaded from their own folders and assembled as its documentation shows. F1 is the forward-only
("vanilla") sampling of ``lllyasviel/FramePack_F1_I2V_HY_20250503``.

Single GPU only: xfuser 0.7.0 has no sequence-parallel FramePack transformer (its HunyuanVideo
support is for ``HunyuanVideoTransformer3DModel``, not the FramePack variant), so a multi-GPU instance
is refused (:data:`MULTI_GPU`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import parallel as P
from .interfaces import OnStep

MULTI_GPU = False   # no xfuser support (module docstring)
from .runtime import as_pil, generator, pick_device, pick_dtype, to_uint8


class FramePackVideo:
    """:class:`~streamwise.stages.gpu.interfaces.VideoAdapter` on ``HunyuanVideoFramepackPipeline``.

    ``path``: the HunyuanVideo base pipeline folder; ``transformer_path``: the FramePack transformer;
    ``image_encoder_path``: flux_redux_bfl (subfolders ``image_encoder``, ``feature_extractor``).
    ``guidance_scale`` is HunyuanVideo's distilled guidance (no extra CFG pass); ``latent_window_size``
    sets the section length ((w - 1) * 4 + 1 frames). Steps run once per section: a clip of ``k``
    sections runs ``k * steps`` denoising steps.

    Raises:
        RuntimeError: in a multi-GPU instance (not supported, see the module docstring).
    """

    def __init__(self, path: str | os.PathLike, *, transformer_path: str | os.PathLike,
                 image_encoder_path: str | os.PathLike, device: str | None = None, dtype: str | None = "bfloat16",
                 guidance_scale: float = 10.0, sampling_type: str = "vanilla", latent_window_size: int = 9,
                 max_sequence_length: int = 256, prompt: str = "", offload: bool = False) -> None:
        import torch
        from diffusers import HunyuanVideoFramepackPipeline, HunyuanVideoFramepackTransformer3DModel
        from transformers import SiglipImageProcessor, SiglipVisionModel

        launch = P.current_launch()
        if launch is not None and launch.world > 1:
            raise RuntimeError("FramePack has no multi-GPU support (xfuser 0.7.0 has no sequence-parallel "
                               "FramePack transformer): run it with --gpus 1")
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.guidance_scale, self.sampling_type = float(guidance_scale), sampling_type
        self.latent_window_size, self.max_sequence_length = int(latent_window_size), int(max_sequence_length)
        self.prompt = prompt
        transformer = HunyuanVideoFramepackTransformer3DModel.from_pretrained(str(transformer_path), dtype=self.dtype)
        features = SiglipImageProcessor.from_pretrained(str(image_encoder_path), subfolder="feature_extractor")
        encoder = SiglipVisionModel.from_pretrained(str(image_encoder_path), subfolder="image_encoder",
                                                    dtype=torch.float16 if self.device != "cpu" else torch.float32)
        self.pipe = HunyuanVideoFramepackPipeline.from_pretrained(
            str(path), transformer=transformer, feature_extractor=features, image_encoder=encoder, dtype=self.dtype)
        if offload and self.device != "cpu":
            self.pipe.enable_model_cpu_offload()
        else:
            self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.size_multiple = self.pipe.vae_scale_factor_spatial * self.pipe.transformer.config.patch_size

    def animate(self, image: np.ndarray, prompt: str, *, frames: int, fps: float, width: int, height: int,
                steps: int, seed: int = 0, on_step: OnStep = None) -> np.ndarray:
        """uint8 (frames, height, width, 3) starting from ``image`` (uint8 (H, W, 3)); the pipeline makes
        whole sections, and the clip is cut to ``frames``. ``fps`` is the playback rate (30 for FramePack):
        the model has no fps input, so it only documents the call.

        Raises:
            ValueError: frames < 1, a size not a multiple of :attr:`size_multiple`, steps < 1.
        """
        if frames < 1 or steps < 1:
            raise ValueError(f"frames and steps must be >= 1, got {frames}, {steps}")
        if width <= 0 or height <= 0 or width % self.size_multiple or height % self.size_multiple:
            raise ValueError(f"size {width}x{height} must be positive multiples of {self.size_multiple} pixels")
        kw: dict[str, Any] = dict(image=as_pil(image), prompt=prompt or self.prompt, height=int(height),
                                  width=int(width), num_frames=int(frames), num_inference_steps=int(steps),
                                  guidance_scale=self.guidance_scale, latent_window_size=self.latent_window_size,
                                  sampling_type=self.sampling_type, max_sequence_length=self.max_sequence_length,
                                  generator=generator(self.device, seed), output_type="np")
        if on_step is not None:
            kw["callback_on_step_end"] = on_step
        video = to_uint8(self.pipe(**kw).frames[0])
        return video[:frames]
