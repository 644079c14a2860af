"""FLUX.1-dev text-to-image and FLUX.1-Kontext-dev image editing through diffusers.

Both load a diffusers-format checkpoint folder with ``from_pretrained`` (``FluxPipeline``,
``FluxKontextPipeline``; Black Forest Labs' weights in the diffusers layout on the Hugging Face hub)
and run at the size and step count each call asks for: the scheduler's quality knobs.

Multi-GPU (an instance launched by torchrun with ``--gpus N > 1``, see :mod:`.parallel`): the
transformer is loaded as xfuser's ``xFuserFlux1Transformer2DWrapper`` (sequence-parallel FLUX.1, as
xfuser 0.7.0's own runner loads FLUX.1-dev and FLUX.1-Kontext-dev) into the ordinary diffusers
pipeline; FLUX.1-dev is guidance-distilled (one pass per step), so no CFG parallelism. Never run on a
GPU so far.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import parallel as P
from .interfaces import OnStep
from .runtime import as_pil, generator, to_uint8


def _check_size(width: int, height: int, multiple: int) -> None:
    if width <= 0 or height <= 0 or width % multiple or height % multiple:
        raise ValueError(f"size {width}x{height} must be positive multiples of {multiple} pixels "
                         "(snap it with streamwise.core.constraints.snap_size)")


class _FluxBase:
    pipeline_class = "FluxPipeline"

    def __init__(self, path: str | os.PathLike, *, device: str | None = None, dtype: str | None = "bfloat16",
                 guidance_scale: float = 3.5, max_sequence_length: int = 512, offload: bool = False) -> None:
        import diffusers

        multi, self.device, self.dtype = P.adapter_placement(device, dtype, offload)
        self.guidance_scale = float(guidance_scale)
        self.max_sequence_length = int(max_sequence_length)
        self.parallel: P.ParallelContext | None = None
        cls = getattr(diffusers, self.pipeline_class)
        if multi:   # xfuser 0.7.0 runner_models/flux.py (xFuserFluxModel / xFuserFluxKontextModel)
            from xfuser.model_executor.models.transformers.transformer_flux import xFuserFlux1Transformer2DWrapper

            transformer = xFuserFlux1Transformer2DWrapper.from_pretrained(str(path), subfolder="transformer",
                                                                          torch_dtype=self.dtype)
            self.pipe = cls.from_pretrained(str(path), transformer=transformer, dtype=self.dtype)
        else:
            self.pipe = cls.from_pretrained(str(path), dtype=self.dtype)
        if offload and self.device != "cpu":
            self.pipe.enable_model_cpu_offload()
        else:
            self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        # the VAE packs 2x2 latents: sizes must be multiples of 2 x the VAE's spatial factor (16 for FLUX)
        self.size_multiple = self.pipe.vae_scale_factor * 2
        if multi:
            self.parallel = P.enable_usp(self.pipe, model_path=str(path), family="flux", cfg_parallel=False)

    def _common(self, width: int, height: int, steps: int, seed: int, on_step: OnStep) -> dict[str, Any]:
        _check_size(width, height, self.size_multiple)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        kw: dict[str, Any] = dict(width=int(width), height=int(height), num_inference_steps=int(steps),
                                  guidance_scale=self.guidance_scale, max_sequence_length=self.max_sequence_length,
                                  generator=generator(self.device, seed), output_type="np")
        if on_step is not None:
            kw["callback_on_step_end"] = on_step
        P.before_call(steps=int(steps), max_sequence_length=self.max_sequence_length)
        return kw


class FluxImage(_FluxBase):
    """:class:`~streamwise.stages.gpu.interfaces.ImageAdapter` on ``FluxPipeline``.

    ``path``: a diffusers-format FLUX.1-dev folder (``model_index.json`` + components).
    ``dtype`` applies on GPU (bfloat16 by default); CPU runs float32. ``offload`` moves idle
    components to CPU memory (diffusers model CPU offload) for GPUs with less than ~40 GB.
    """

    pipeline_class = "FluxPipeline"

    def generate(self, prompt: str, *, width: int, height: int, steps: int, seed: int = 0,
                 on_step: OnStep = None) -> np.ndarray:
        """uint8 (height, width, 3) for ``prompt`` after ``steps`` denoising steps.

        Raises:
            ValueError: a size that is not a positive multiple of :attr:`size_multiple`, or steps < 1.
        """
        out = self.pipe(prompt=prompt, **self._common(width, height, steps, seed, on_step)).images
        return to_uint8(out[0])


class FluxKontextEdit(_FluxBase):
    """:class:`~streamwise.stages.gpu.interfaces.EditAdapter` on ``FluxKontextPipeline``.

    The input image is resized to the requested output size first, and Kontext's own resizing to its
    training resolutions is off (``_auto_resize=False``, ``max_area`` = the requested area), so the
    scheduler's size knob decides the cost and the output size. Without an input image it
    generates from the prompt alone (Kontext's text-to-image mode).
    """

    pipeline_class = "FluxKontextPipeline"

    def __init__(self, path: str | os.PathLike, *, guidance_scale: float = 2.5, **kw: Any) -> None:
        super().__init__(path, guidance_scale=guidance_scale, **kw)

    def edit(self, image: np.ndarray | None, prompt: str, *, width: int, height: int, steps: int, seed: int = 0,
             on_step: OnStep = None) -> np.ndarray:
        """uint8 (height, width, 3): ``image`` (uint8 (H, W, 3), any size) edited as ``prompt`` says.

        Raises:
            ValueError: a size that is not a positive multiple of :attr:`size_multiple`, or steps < 1.
        """
        from PIL import Image

        kw = self._common(width, height, steps, seed, on_step)
        pil = None if image is None else as_pil(image).resize((int(width), int(height)), Image.LANCZOS)
        out = self.pipe(image=pil, prompt=prompt, _auto_resize=False, max_area=int(width) * int(height), **kw).images
        return to_uint8(out[0])
