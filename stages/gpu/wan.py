"""The talking head on the GPU: Wan2.1 image-to-video (diffusers ``WanImageToVideoPipeline``) driven by
the speech through FantasyTalking's audio conditioning (:mod:`streamwise.stages.gpu.audio`).

The checkpoint is the diffusers-format Wan2.1-I2V-14B-720P (``Wan-AI/Wan2.1-I2V-14B-720P-Diffusers``:
UMT5 text encoder, CLIP ViT-H image encoder, 14B DiT, causal VAE with 4x time / 8x space
compression); FantasyTalking's ``fantasytalking_model.ckpt`` and ``wav2vec2-base-960h`` add the audio
path. Without them the adapter is plain Wan I2V (:attr:`WanTalkingHead.audio_conditioned` is False).

Multi-GPU (an instance launched by torchrun with ``--gpus N > 1``, see :mod:`.parallel`): the DiT is
loaded as xfuser's ``xFuserWanTransformer3DWrapper`` (tokens chunked over the sequence-parallel ranks,
USP self-attention, output all-gathered) inside xfuser's ``xFuserWanImageToVideoPipeline`` (CFG
parallelism), and the FantasyTalking audio attention becomes shard-aware
(:func:`sharded_audio_attention`): each rank's contiguous token chunk maps to latent frames by its
global offset. Never run on a GPU so far.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import parallel as P
from .interfaces import OnStep
from .runtime import as_pil, generator, resample_audio, to_uint8

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
    ``cfg_parallel``: in a multi-GPU instance (:func:`.parallel.start_distributed` has run), run the
    two guidance passes on two halves of the GPUs when the count is even (xDiT's CFG parallelism).

    Raises:
        ValueError: audio weights without a wav2vec2 model, or weights that do not fit the DiT; ``offload``
            in a multi-GPU instance.
        RuntimeError: (multi-GPU) xfuser refuses the configuration.
    """

    def __init__(self, path: str | os.PathLike, *, wav2vec_path: str | os.PathLike | None = None,
                 audio_weights: str | os.PathLike | None = None, device: str | None = None,
                 dtype: str | None = "bfloat16", guidance_scale: float = 5.0, audio_scale: float = 1.0,
                 prompt: str = DEFAULT_PROMPT, negative_prompt: str = DEFAULT_NEGATIVE,
                 max_sequence_length: int = 512, offload: bool = False, cfg_parallel: bool = True) -> None:
        import torch
        from diffusers import WanImageToVideoPipeline

        from . import audio as A

        multi, self.device, self.dtype = P.adapter_placement(device, dtype, offload)
        self.guidance_scale, self.prompt, self.negative_prompt = float(guidance_scale), prompt, negative_prompt
        self.max_sequence_length = int(max_sequence_length)
        self.parallel: P.ParallelContext | None = None
        self.shard: SequenceShard | None = None
        if multi:   # xfuser 0.7.0's own loading of Wan2.1 I2V (runner_models/wan.py, xFuserWan21I2VModel)
            from xfuser.model_executor.models.transformers.transformer_wan import xFuserWanTransformer3DWrapper
            from xfuser.model_executor.pipelines.pipeline_wan_i2v import xFuserWanImageToVideoPipeline

            transformer = xFuserWanTransformer3DWrapper.from_pretrained(str(path), subfolder="transformer",
                                                                        torch_dtype=self.dtype)
            self.pipe = xFuserWanImageToVideoPipeline.from_pretrained(str(path), transformer=transformer,
                                                                      dtype=self.dtype)
        else:
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
        if multi:
            self.parallel = P.enable_usp(self.pipe, model_path=str(path), family="wan",
                                         cfg_parallel=bool(cfg_parallel) and self.guidance_scale > 1.0)
            if self.audio is not None:   # audio attention on this rank's token chunk
                self.shard = SequenceShard(rank=self.parallel.sp_rank, size=self.parallel.sp_size)
                for block, kv in zip(self.pipe.transformer.blocks, self.audio.blocks):
                    block.attn2.set_processor(make_sharded_processor(kv, self.state, self.shard))

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
        if self.shard is not None:
            p_h, p_w = self.pipe.transformer.config.patch_size[1:]
            spatial = self.pipe.vae_scale_factor_spatial
            self.shard.tokens_per_frame = (int(height) // spatial // p_h) * (int(width) // spatial // p_w)
        P.before_call(steps=int(steps))
        try:
            video = self.pipe(**kw).frames[0]
        finally:
            self.state.windows = self.state.valid = None
        return to_uint8(video)


@dataclass
class SequenceShard:
    """Which tokens of the DiT sequence this rank holds under sequence parallelism: xfuser pads the
    sequence of ``T' * tokens_per_frame`` tokens (frame-major, as the patch embedding flattens them) to a
    multiple of ``size`` and gives rank ``rank`` the ``rank``-th contiguous chunk. ``tokens_per_frame``
    (latent height x width after patching) is set per call."""

    rank: int = 0
    size: int = 1
    tokens_per_frame: int = 0


def sharded_audio_attention(attn, kv, hidden_states, state, shard: SequenceShard):
    """FantasyTalking's audio attention (:func:`streamwise.stages.gpu.audio._audio_attention`) on one
    rank's chunk of the video tokens.

    ``hidden_states`` (B, n, C): this rank's chunk, global tokens ``[rank * n, (rank + 1) * n)`` of the
    padded sequence; ``state.windows`` (T', W, proj_dim) and ``state.valid`` (T', W) as in
    :class:`~streamwise.stages.gpu.audio.AudioState`; token ``g`` belongs to latent frame
    ``g // shard.tokens_per_frame`` and attends only to that frame's audio window; padding tokens
    (``g >= T' * tokens_per_frame``) get zeros. Returns (B, n, C): ``W_out @ (scale * attention)``, the
    matching rows of the unsharded result.

    Raises:
        ValueError: ``shard.tokens_per_frame`` not set (< 1).
    """
    import torch
    import torch.nn.functional as F

    tpf = int(shard.tokens_per_frame)
    if tpf < 1:
        raise ValueError("SequenceShard.tokens_per_frame must be set before the call")
    windows, valid = state.windows, state.valid
    b, n_loc, _ = hidden_states.shape
    frames, width = windows.shape[0], windows.shape[1]
    total, offset, heads = frames * tpf, shard.rank * n_loc, attn.heads
    q = attn.norm_q(attn.to_q(hidden_states))
    q = q.view(b, n_loc, heads, -1).transpose(1, 2)                                  # (B, h, n, d)
    ctx = windows.to(device=q.device, dtype=q.dtype)
    k = kv.k_proj(ctx).view(frames, width, heads, -1).transpose(1, 2)                # (T', h, W, d)
    v = kv.v_proj(ctx).view(frames, width, heads, -1).transpose(1, 2)
    mask = valid.to(q.device)
    out = torch.zeros_like(q)
    end = min(offset + n_loc, total)
    for f in range(offset // tpf, (end - 1) // tpf + 1 if end > offset else 0):
        lo, hi = max(f * tpf, offset) - offset, min((f + 1) * tpf, end) - offset
        kf, vf = k[f:f + 1].expand(b, -1, -1, -1), v[f:f + 1].expand(b, -1, -1, -1)
        out[:, :, lo:hi] = F.scaled_dot_product_attention(q[:, :, lo:hi], kf, vf,
                                                          attn_mask=mask[f][None, None, None, :])
    x = out.transpose(1, 2).reshape(b, n_loc, -1)
    return F.linear(x * state.scale, attn.to_out[0].weight)


def make_sharded_processor(kv, state, shard: SequenceShard):
    """A diffusers Wan attention processor for one block's ``attn2`` under sequence parallelism:
    diffusers' text + image cross-attention (per query token, so exact on a chunk: the keys are the
    whole text / image context) plus :func:`sharded_audio_attention`."""
    from . import audio as A

    base = A._processor_base()

    class ShardedAudioCrossAttnProcessor(base):
        """diffusers' WanAttnProcessor plus this block's audio attention on this rank's token chunk."""

        def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
            out = super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)
            if state.windows is None or state.scale == 0.0:
                return out
            return out + sharded_audio_attention(attn, kv, hidden_states, state, shard)

    return ShardedAudioCrossAttnProcessor()
