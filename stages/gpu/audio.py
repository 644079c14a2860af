"""Audio conditioning of the Wan2.1 DiT, FantasyTalking style: wav2vec2 features, projected, attended to
by every block's cross-attention, one window of audio per latent frame.

diffusers 0.42.1 has no audio-driven talking-head pipeline, so this module wires it (FantasyTalking,
arXiv 2504.04842, Apache-2.0 code and weights ``acvlab/FantasyTalking``):

- **Features** (faithful): 16 kHz audio -> ``Wav2Vec2Model`` (``facebook/wav2vec2-base-960h``)
  ``last_hidden_state``: 768-d tokens at 50 per second.
- **Projection** (faithful): ``Linear(768 -> 2048, no bias)`` + ``LayerNorm(2048)``; FantasyTalking's
  ``proj_model`` weights load unchanged (``proj.weight``, ``norm.weight``, ``norm.bias``).
- **Per-block audio attention** (faithful maths): in every DiT block's cross-attention the video
  queries (``norm_q(to_q(x))``) of latent frame ``t`` attend to the projected audio tokens of that
  frame's window through the block's own ``k_proj`` / ``v_proj`` (``Linear(2048 -> 5120, no bias)``),
  and the result is added, times ``audio_scale``, before the output projection:
  ``to_out(x_text + x_image + audio_scale * x_audio)``. We run diffusers' own processor for the text
  and image part and add ``W_out @ (audio_scale * x_audio)`` (``to_out`` is affine, so this is the same
  sum with the bias counted once). Weights come from ``fantasytalking_model.ckpt``'s
  ``audio_processor`` entries ``blocks.<i>.cross_attn.processor.{k,v}_proj.weight`` (DiffSynth's
  names), mapped by block index onto diffusers' ``blocks.<i>.attn2``.
- **Windows** (our own, close to FantasyTalking's ``split_audio_sequence``): latent frame 0 covers
  video frame 0, latent frame ``i >= 1`` video frames ``4i-3 .. 4i``; its window is the
  ``2 * round(2 * tokens_per_frame)`` audio tokens centred on those frames, zero-padded at the clip
  ends and masked out of the attention.

Approximations, stated plainly: FantasyTalking's face-focused cross-attention masks, its motion-
intensity modulation and its separate audio classifier-free guidance (``audio_cfg_scale``) are not
reproduced; audio is applied in both passes of diffusers' text CFG. The extra ``to_q`` projection per
block costs ~2 % of a 14B step. Without the FantasyTalking weights the talking head is plain Wan I2V.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WAV2VEC_RATE = 16000   # Hz: what wav2vec2-base expects
_KV_KEY = re.compile(r"(?:^|\.)blocks\.(\d+)\.(?:.*\.)?(k_proj|v_proj)\.weight$")


class AudioProjection(nn.Module):
    """FantasyTalking's ``proj_model``: audio features (B, L, in_dim) -> context tokens (B, L, proj_dim)."""

    def __init__(self, in_dim: int, proj_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, proj_dim, bias=False)
        self.norm = nn.LayerNorm(proj_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(features))


class AudioKV(nn.Module):
    """One DiT block's audio key / value projections: (.., proj_dim) -> (.., dim)."""

    def __init__(self, proj_dim: int, dim: int) -> None:
        super().__init__()
        self.k_proj = nn.Linear(proj_dim, dim, bias=False)
        self.v_proj = nn.Linear(proj_dim, dim, bias=False)


class FantasyAudio(nn.Module):
    """The audio weights of FantasyTalking: the projection and one :class:`AudioKV` per DiT block."""

    def __init__(self, in_dim: int, proj_dim: int, dim: int, layers: int) -> None:
        super().__init__()
        self.in_dim, self.proj_dim, self.dim = in_dim, proj_dim, dim
        self.proj_model = AudioProjection(in_dim, proj_dim)
        self.blocks = nn.ModuleList(AudioKV(proj_dim, dim) for _ in range(layers))

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> FantasyAudio:
        """Load ``fantasytalking_model.ckpt`` (``{"proj_model": {...}, "audio_processor": {...}}``, a
        torch pickle of tensors) or a flat safetensors file with ``proj_model.`` / ``audio_processor.``
        prefixes. Dimensions come from the tensors.

        Raises:
            ValueError: the file does not have FantasyTalking's keys (the message lists what it has).
        """
        proj, procs = _read_fantasy(Path(path))
        if "proj.weight" not in proj:
            raise ValueError(f"{path}: no proj_model.proj.weight; keys: {sorted(proj)[:8]}")
        kv: dict[int, dict[str, torch.Tensor]] = {}
        for key, tensor in procs.items():
            m = _KV_KEY.search(key)
            if m:
                kv.setdefault(int(m.group(1)), {})[m.group(2)] = tensor
        if not kv or sorted(kv) != list(range(len(kv))) or any(len(v) != 2 for v in kv.values()):
            raise ValueError(f"{path}: audio_processor must hold blocks.<i>...k_proj/v_proj.weight for blocks "
                             f"0..n-1; found blocks {sorted(kv)} in keys like {sorted(procs)[:4]}")
        proj_dim, in_dim = proj["proj.weight"].shape
        dim = kv[0]["k_proj"].shape[0]
        module = cls(in_dim, proj_dim, dim, len(kv))
        state = {f"proj_model.{k}": v for k, v in proj.items()}
        for i, pair in kv.items():
            for name, tensor in pair.items():
                state[f"blocks.{i}.{name}.weight"] = tensor
        module.load_state_dict(state)
        return module


def _read_fantasy(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        flat = load_file(str(path))
        proj = {k[len("proj_model."):]: v for k, v in flat.items() if k.startswith("proj_model.")}
        procs = {k[len("audio_processor."):]: v for k, v in flat.items() if k.startswith("audio_processor.")}
        return proj, procs
    data = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or "proj_model" not in data or "audio_processor" not in data:
        keys = sorted(data)[:8] if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: expected a dict with proj_model and audio_processor, got {keys}")
    return dict(data["proj_model"]), dict(data["audio_processor"])


@dataclass
class AudioState:
    """What the processors read during one pipeline call: ``windows`` (T', W, proj_dim) projected audio
    per latent frame, ``valid`` (T', W) bool key mask, ``scale`` (audio_scale). None outside a call."""

    windows: torch.Tensor | None = None
    valid: torch.Tensor | None = None
    scale: float = 1.0


def _processor_base():
    from diffusers.models.transformers.transformer_wan import WanAttnProcessor

    return WanAttnProcessor


def make_processor(kv: AudioKV, state: AudioState):
    """A diffusers Wan attention processor for one block's cross-attention (``attn2``) that runs
    diffusers' own text + image attention and adds the audio attention (module docstring)."""
    base = _processor_base()

    class AudioCrossAttnProcessor(base):
        """diffusers' WanAttnProcessor plus this block's audio attention."""

        def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
            out = super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)
            if state.windows is None or state.scale == 0.0:
                return out
            return out + _audio_attention(attn, kv, hidden_states, state)

    return AudioCrossAttnProcessor()


def _audio_attention(attn, kv: AudioKV, hidden_states: torch.Tensor, state: AudioState) -> torch.Tensor:
    """W_out @ (scale * per-latent-frame attention of the video queries over the audio window)."""
    windows, valid = state.windows, state.valid
    b, n_tok, _ = hidden_states.shape
    frames = windows.shape[0]
    if n_tok % frames:
        raise RuntimeError(f"{n_tok} video tokens do not split into {frames} latent frames "
                           "(sequence-parallel sharding of the audio attention is not supported)")
    heads = attn.heads
    q = attn.norm_q(attn.to_q(hidden_states))
    q = q.view(b * frames, n_tok // frames, heads, -1).transpose(1, 2)           # (bT, h, hw, d)
    ctx = windows.to(device=q.device, dtype=q.dtype)
    k = kv.k_proj(ctx).view(frames, ctx.shape[1], heads, -1).transpose(1, 2)      # (T, h, W, d)
    v = kv.v_proj(ctx).view(frames, ctx.shape[1], heads, -1).transpose(1, 2)
    if b > 1:
        k, v = k.repeat(b, 1, 1, 1), v.repeat(b, 1, 1, 1)
    mask = valid.to(q.device)[:, None, None, :].repeat(b, 1, 1, 1)               # (bT, 1, 1, W)
    x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    x = x.transpose(1, 2).reshape(b, n_tok, -1)
    return F.linear(x * state.scale, attn.to_out[0].weight)


def install(transformer, audio: FantasyAudio, state: AudioState) -> None:
    """Put an audio processor on every block's ``attn2`` of a diffusers ``WanTransformer3DModel``.

    Raises:
        ValueError: the audio weights do not fit this transformer (block count or width differ).
    """
    blocks = transformer.blocks
    width = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    if len(blocks) != len(audio.blocks) or width != audio.dim:
        raise ValueError(f"FantasyTalking audio weights are for {len(audio.blocks)} blocks of width {audio.dim}; "
                         f"this Wan transformer has {len(blocks)} blocks of width {width}")
    for block, kv in zip(blocks, audio.blocks):
        block.attn2.set_processor(make_processor(kv, state))


def windows_for(tokens: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split audio tokens (L, C) of a clip of ``frames`` (1+4n) video frames into one window per latent
    frame: returns (T', W, C) zero-padded windows and a (T', W) bool mask of real tokens, with
    T' = (frames - 1) / 4 + 1 and W = 2 * max(1, round(2 * L / frames)).

    Raises:
        ValueError: frames not of the form 1+4n, or no tokens.
    """
    if frames < 1 or (frames - 1) % 4:
        raise ValueError(f"frames must be 1+4n, got {frames}")
    n_tok = tokens.shape[0]
    if n_tok == 0:
        raise ValueError("no audio tokens")
    per_frame = n_tok / frames
    half = max(1, round(2 * per_frame))
    latents = (frames - 1) // 4 + 1
    out = tokens.new_zeros(latents, 2 * half, tokens.shape[1])
    valid = torch.zeros(latents, 2 * half, dtype=torch.bool)
    for i in range(latents):
        centre = 0.0 if i == 0 else (4 * i - 1.5) * per_frame
        start = int(math.floor(centre + 0.5)) - half
        lo, hi = max(0, start), min(n_tok, start + 2 * half)
        if hi > lo:
            out[i, lo - start:hi - start] = tokens[lo:hi]
            valid[i, lo - start:hi - start] = True
    return out, valid


class Wav2VecFeatures:
    """wav2vec2 features of 16 kHz speech: float32 mono (n,) -> (L, hidden) tokens, L ~ 50 per second.

    ``path``: a ``Wav2Vec2Model`` folder (``facebook/wav2vec2-base-960h`` in diffusers/transformers
    layout); its ``preprocessor_config.json`` (zero-mean unit-variance normalisation) is used when present.
    """

    def __init__(self, path: str | os.PathLike, *, device: str = "cpu", dtype=torch.float32) -> None:
        from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

        self.device, self.dtype = device, dtype
        self.model = Wav2Vec2Model.from_pretrained(str(path), dtype=dtype).to(device).eval()
        try:
            self.extractor = Wav2Vec2FeatureExtractor.from_pretrained(str(path))
        except OSError:
            self.extractor = Wav2Vec2FeatureExtractor(sampling_rate=WAV2VEC_RATE, do_normalize=True)
        self.hidden_size = self.model.config.hidden_size

    @torch.no_grad()
    def __call__(self, audio16k: np.ndarray) -> torch.Tensor:
        x = self.extractor(np.asarray(audio16k, np.float32), sampling_rate=WAV2VEC_RATE,
                           return_tensors="pt").input_values
        return self.model(x.to(self.device, self.dtype)).last_hidden_state[0]
