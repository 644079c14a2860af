"""Tiny random-weight models with the real architectures' code, saved the way the real checkpoints are laid out.

For tests and for ``streamwise profile --tiny`` on machines without GPUs or weights: every builder
constructs the real diffusers / transformers classes with very small configs (the diffusers unit-test
shapes, see ``../shared/FEASIBILITY.md`` section 1), initialises them randomly with a fixed seed,
and writes them with ``save_pretrained`` (or, for single-file checkpoints, ``torch.save`` /
safetensors) under ``root/<checkpoint id>``: the layout :func:`streamwise.stages.gpu.weights.resolve`
finds through ``$STREAMWISE_MODELS``. The production loaders then read them back unchanged.

:func:`build_all` writes everything the GPU adapters need; it takes a few seconds on one core and a
few MB of disk. Nothing here downloads: tokenizers are trained offline on a small corpus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CORPUS = [
    "a photo of two podcast hosts sitting at a desk with microphones",
    "a close-up portrait of a podcast host speaking, studio lighting, bokeh",
    "a cozy radio studio with shelves, plants and a neon sign",
    "the speaker talks to the camera with natural lip movements",
] * 20

#: Tiny configs, by the real checkpoint ids they stand in for (see configs/models.yaml ``adapters``).
FLUX_ID = "black-forest-labs/FLUX.1-dev"
KONTEXT_ID = "black-forest-labs/FLUX.1-Kontext-dev"
WAN_I2V_ID = "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers"
WAV2VEC_ID = "facebook/wav2vec2-base-960h"
FANTASY_ID = "acvlab/FantasyTalking"
FANTASY_FILE = "fantasytalking_model.ckpt"
ESRGAN_ID = "ai-forever/Real-ESRGAN"
ESRGAN_FILE = "RealESRGAN_x2.pth"
FRAMEPACK_BASE_ID = "hunyuanvideo-community/HunyuanVideo"
FRAMEPACK_TRANSFORMER_ID = "lllyasviel/FramePack_F1_I2V_HY_20250503"
FRAMEPACK_REDUX_ID = "lllyasviel/flux_redux_bfl"
KOKORO_ID = "hexgrad/Kokoro-82M"
KOKORO_FILE = "kokoro-v1_0.pth"
KOKORO_VOICES = ("af_heart", "am_michael", "bf_emma", "bm_george")   # configs/models.yaml adapters.kokoro.voices

TINY_AUDIO_IN = 16     # tiny wav2vec2 hidden size (real: 768)
TINY_AUDIO_PROJ = 16   # tiny FantasyTalking projection width (real: 2048)
TINY_WAN_DIM = 24      # tiny Wan DiT width: 2 heads x 12 (real: 40 x 128 = 5120)
TINY_WAN_LAYERS = 2


def _bpe(vocab_size: int, special: tuple[str, ...]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special),
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


def clip_tokenizer(model_max_length: int = 77):
    """A CLIP-slot fast tokenizer (BPE trained offline; bos/eos like CLIP's)."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tok = _bpe(500, ("<|startoftext|>", "<|endoftext|>", "<pad>", "<unk>"))
    bos, eos = tok.token_to_id("<|startoftext|>"), tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", unk_token="<unk>", model_max_length=model_max_length)


def t5_tokenizer(model_max_length: int = 512):
    """A T5/UMT5/Llama-slot fast tokenizer (BPE trained offline)."""
    from transformers import PreTrainedTokenizerFast

    tok = _bpe(1000, ("<s>", "</s>", "<pad>", "<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", model_max_length=model_max_length)


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def _clip_text(tok):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                                        num_hidden_layers=2, vocab_size=len(tok), max_position_embeddings=77,
                                        projection_dim=32, bos_token_id=tok.bos_token_id,
                                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))


def _t5(tok, umt5: bool = False):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    kw = dict(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
              relative_attention_num_buckets=8)
    return UMT5EncoderModel(UMT5Config(**kw)) if umt5 else T5EncoderModel(T5Config(**kw))


def flux_components(seed: int = 0) -> dict[str, Any]:
    """Components of a tiny FluxPipeline / FluxKontextPipeline (diffusers unit-test shapes)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

    _seed(seed)
    tok, tok2 = clip_tokenizer(), t5_tokenizer()
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 4, 8])
    vae = AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
                        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
                        shift_factor=0.0609, scaling_factor=1.5035)
    return {"transformer": transformer, "vae": vae, "text_encoder": _clip_text(tok), "tokenizer": tok,
            "text_encoder_2": _t5(tok2), "tokenizer_2": tok2, "scheduler": FlowMatchEulerDiscreteScheduler()}


def save_flux(root: Path, *, kontext: bool = False, seed: int = 0) -> Path:
    """Write a tiny FLUX.1-dev (or FLUX.1-Kontext-dev) pipeline under ``root/<id>``; returns its folder."""
    from diffusers import FluxKontextPipeline, FluxPipeline

    out = Path(root) / (KONTEXT_ID if kontext else FLUX_ID)
    cls = FluxKontextPipeline if kontext else FluxPipeline
    cls(**flux_components(seed)).save_pretrained(out)
    return out


def wan_i2v_components(seed: int = 0, *, layers: int = TINY_WAN_LAYERS) -> dict[str, Any]:
    """Components of a tiny Wan2.1-style WanImageToVideoPipeline: a CLIP vision encoder feeding the
    DiT's image cross-attention (``image_dim``, ``added_kv_proj_dim``), 36 input channels
    (16 noise + 4 mask + 16 image latents), a 3-level causal VAE (4x time, 8x space)."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    _seed(seed)
    tok = t5_tokenizer()
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                        in_channels=36, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
                                        num_layers=layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                        rope_max_seq_len=32, image_dim=4, added_kv_proj_dim=TINY_WAN_DIM)
    encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=4, projection_dim=4, num_hidden_layers=2,
                                               num_attention_heads=2, image_size=32, intermediate_size=16,
                                               patch_size=1))
    processor = CLIPImageProcessor(crop_size=32, size=32)
    return {"transformer": transformer, "vae": vae, "text_encoder": _t5(tok, umt5=True), "tokenizer": tok,
            "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0), "image_encoder": encoder,
            "image_processor": processor}


def save_wan_i2v(root: Path, seed: int = 0) -> Path:
    """Write a tiny Wan I2V pipeline under ``root/Wan-AI/Wan2.1-I2V-14B-720P-Diffusers``."""
    from diffusers import WanImageToVideoPipeline

    out = Path(root) / WAN_I2V_ID
    WanImageToVideoPipeline(**wan_i2v_components(seed)).save_pretrained(out)
    return out


def save_wav2vec2(root: Path, seed: int = 0) -> Path:
    """Write a tiny Wav2Vec2Model (50 frames/s at 16 kHz like wav2vec2-base: conv strides multiply to
    320) and its feature extractor under ``root/facebook/wav2vec2-base-960h``."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    _seed(seed)
    out = Path(root) / WAV2VEC_ID
    cfg = Wav2Vec2Config(hidden_size=TINY_AUDIO_IN, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                         do_stable_layer_norm=False, feat_extract_norm="group")
    Wav2Vec2Model(cfg).save_pretrained(out)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(out)
    return out


def save_fantasy_ckpt(root: Path, *, layers: int = TINY_WAN_LAYERS, dim: int = TINY_WAN_DIM, seed: int = 0,
                      scale: float = 0.5) -> Path:
    """Write a random ``fantasytalking_model.ckpt`` in FantasyTalking's own layout: ``{"proj_model":
    {proj.weight, norm.weight, norm.bias}, "audio_processor": {"blocks.<i>.cross_attn.processor.
    {k,v}_proj.weight"}}`` (the DiffSynth WanModel names), sized for the tiny models above.
    ``scale``: std of the random k/v weights (the real ones start at zero and are trained)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    proj = {"proj.weight": torch.randn(TINY_AUDIO_PROJ, TINY_AUDIO_IN, generator=g) * 0.3,
            "norm.weight": torch.ones(TINY_AUDIO_PROJ), "norm.bias": torch.zeros(TINY_AUDIO_PROJ)}
    procs = {}
    for i in range(layers):
        for kv in ("k_proj", "v_proj"):
            procs[f"blocks.{i}.cross_attn.processor.{kv}.weight"] = torch.randn(dim, TINY_AUDIO_PROJ, generator=g) * scale
    out = Path(root) / FANTASY_ID / FANTASY_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"proj_model": proj, "audio_processor": procs}, out)
    return out


def rrdbnet_state_dict(*, scale: int = 2, num_feat: int = 8, num_block: int = 1, num_grow_ch: int = 4,
                       seed: int = 0) -> dict[str, Any]:
    """A random state dict with Real-ESRGAN's RRDBNet key names (``conv_first``, ``body.<i>.rdb<j>.conv<k>``,
    ``conv_body``, ``conv_up1/2``, ``conv_hr``, ``conv_last``); x2 models take 12 input channels
    (pixel-unshuffled RGB), x1 models 48."""
    import torch

    g = torch.Generator().manual_seed(seed)
    in_ch = 3 * {1: 16, 2: 4, 4: 1}[scale]
    sd: dict[str, Any] = {}

    def conv(name: str, cin: int, cout: int) -> None:
        sd[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (0.2 / (cin * 9) ** 0.5)
        sd[f"{name}.bias"] = torch.zeros(cout)

    conv("conv_first", in_ch, num_feat)
    for b in range(num_block):
        for r in range(1, 4):
            for k in range(1, 6):
                conv(f"body.{b}.rdb{r}.conv{k}", num_feat + (k - 1) * num_grow_ch, num_grow_ch if k < 5 else num_feat)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        conv(name, num_feat, num_feat)
    conv("conv_last", num_feat, 3)
    return sd


def save_rrdbnet(root: Path, *, seed: int = 0, wrap: str | None = "params_ema") -> Path:
    """Write a tiny RealESRGAN_x2.pth under ``root/ai-forever/Real-ESRGAN`` (wrapped in ``params_ema``
    like the xinntao releases when ``wrap`` is given)."""
    import torch

    sd = rrdbnet_state_dict(seed=seed)
    out = Path(root) / ESRGAN_ID / ESRGAN_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({wrap: sd} if wrap else sd, out)
    return out


def framepack_components(seed: int = 0) -> dict[str, Any]:
    """Components of a tiny HunyuanVideoFramepackPipeline (Llama + CLIP text encoders, SigLIP image
    encoder, FramePack transformer with image projection and clean-latent embedders, HunyuanVideo VAE)."""
    from diffusers import (AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler,
                           HunyuanVideoFramepackTransformer3DModel)
    from transformers import (CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel, SiglipImageProcessor,
                              SiglipVisionConfig, SiglipVisionModel)

    _seed(seed)
    tok, tok2 = t5_tokenizer(), clip_tokenizer()
    transformer = HunyuanVideoFramepackTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=True,
        text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4), image_condition_type=None,
        has_image_proj=True, image_proj_dim=16, has_clean_x_embedder=True)
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4, up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8), layers_per_block=1, act_fn="silu", norm_num_groups=4,
        scaling_factor=0.476986, spatial_compression_ratio=8, temporal_compression_ratio=4, mid_block_add_attention=True)
    llama = LlamaModel(LlamaConfig(bos_token_id=0, eos_token_id=2, hidden_size=16, intermediate_size=37,
                                   max_position_embeddings=512, num_attention_heads=4, num_hidden_layers=2,
                                   pad_token_id=tok.pad_token_id, vocab_size=len(tok)))
    clip = CLIPTextModel(CLIPTextConfig(hidden_size=8, intermediate_size=37, num_attention_heads=2,
                                        num_hidden_layers=2, vocab_size=len(tok2), max_position_embeddings=77,
                                        projection_dim=8, bos_token_id=tok2.bos_token_id,
                                        eos_token_id=tok2.eos_token_id, pad_token_id=tok2.pad_token_id))
    siglip = SiglipVisionModel(SiglipVisionConfig(hidden_size=16, intermediate_size=37, num_attention_heads=2,
                                                  num_hidden_layers=1, image_size=32, patch_size=8))
    processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    return {"transformer": transformer, "vae": vae, "text_encoder": llama, "tokenizer": tok,
            "text_encoder_2": clip, "tokenizer_2": tok2, "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0),
            "image_encoder": siglip, "feature_extractor": processor}


def save_framepack(root: Path, seed: int = 0) -> dict[str, Path]:
    """Write a tiny FramePack set the way the real one is split over three repositories: the
    HunyuanVideo base pipeline (without its transformer), the FramePack transformer, and the SigLIP
    image encoder + processor of flux_redux_bfl (subfolders ``image_encoder``, ``feature_extractor``)."""
    from diffusers import HunyuanVideoFramepackPipeline

    c = framepack_components(seed)
    root = Path(root)
    paths = {"base": root / FRAMEPACK_BASE_ID, "transformer": root / FRAMEPACK_TRANSFORMER_ID,
             "redux": root / FRAMEPACK_REDUX_ID}
    c["transformer"].save_pretrained(paths["transformer"])
    c["image_encoder"].save_pretrained(paths["redux"] / "image_encoder")
    c["feature_extractor"].save_pretrained(paths["redux"] / "feature_extractor")
    HunyuanVideoFramepackPipeline(**c).save_pretrained(paths["base"])
    return paths


#: Phoneme symbols of the tiny Kokoro vocabulary: punctuation, letters and the IPA / misaki symbols espeak-ng
#: and misaki emit (the real config.json maps 178 token ids the same way: one character, one id).
KOKORO_SYMBOLS = (';:,.!?—…"()“” ' + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  + "ɑɐɒæβɔçðʤəɚɛɜɟɡɥɨɪʝɯɰŋɳɲɴøɸθœɹɾɻʁɽʂʃʈʧʊʋʌɣɤχʎʒʔˈˌːʰʲ↓→↗↘ᵻᵊ")


def kokoro_config() -> dict[str, Any]:
    """A tiny Kokoro ``config.json`` (the real file's keys). Kokoro's code fixes some widths (decoder
    1024/512 channels, ``hidden_dim`` 512 for its 512-channel ASR projection, ``style_dim`` 128 because
    voices are 256 = 2 x 128 style vectors), so only PL-BERT (1 layer, 32 wide), the layer counts, the
    vocoder's resblocks and ``max_dur`` (8 duration frames per phoneme at most) shrink: ~58 M parameters.
    The iSTFTNet rates stay real: 10 x 6 x hop 5 = 300 samples per F0 frame, 600 samples (25 ms at
    24 000 Hz) per duration frame."""
    vocab = {c: i + 1 for i, c in enumerate(dict.fromkeys(KOKORO_SYMBOLS))}
    return {"vocab": vocab, "n_token": 178, "hidden_dim": 512, "style_dim": 128, "n_layer": 1, "max_dur": 8,
            "dropout": 0.2, "text_encoder_kernel_size": 5, "n_mels": 80, "dim_in": 64, "multispeaker": True,
            "plbert": {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 37,
                       "max_position_embeddings": 512, "num_hidden_layers": 1, "dropout": 0.1, "embedding_size": 16},
            "istftnet": {"upsample_kernel_sizes": [20, 12], "upsample_rates": [10, 6], "gen_istft_hop_size": 5,
                         "gen_istft_n_fft": 20, "resblock_dilation_sizes": [[1, 3, 5]], "resblock_kernel_sizes": [3],
                         "upsample_initial_channel": 512}}


def save_kokoro(root: Path, *, seed: int = 0, voices: tuple[str, ...] = KOKORO_VOICES) -> Path:
    """Write a tiny random Kokoro-82M under ``root/hexgrad/Kokoro-82M``: ``config.json``,
    ``kokoro-v1_0.pth`` (KModel's layout: ``{"bert", "bert_encoder", "predictor", "text_encoder",
    "decoder"}`` -> state dicts, stored float16: ~117 MB) and ``voices/<name>.pt`` (float32
    ``(510, 1, 256)`` style vectors, std 0.15 like the real packs). Needs the ``kokoro`` package
    (its ``KModel`` builds the network; an empty ``.pth`` leaves the random init in place)."""
    import json

    import torch
    from kokoro import KModel

    out = Path(root) / KOKORO_ID
    (out / "voices").mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(kokoro_config(), ensure_ascii=False, indent=1), encoding="utf-8")
    empty = out / "empty.pth"
    torch.save({}, empty)
    _seed(seed)
    try:
        model = KModel(repo_id=KOKORO_ID, config=str(out / "config.json"), model=str(empty))
    finally:
        empty.unlink()
    torch.save({name: {k: v.half() if v.is_floating_point() else v for k, v in part.state_dict().items()}
                for name, part in model.named_children()}, out / KOKORO_FILE)
    g = torch.Generator().manual_seed(seed)
    for voice in voices:
        torch.save(torch.randn(510, 1, 256, generator=g) * 0.15, out / "voices" / f"{voice}.pt")
    return out


def build_all(root: Path, *, framepack: bool = True) -> Path:
    """Write every tiny checkpoint the GPU adapters use under ``root`` (use it as ``$STREAMWISE_MODELS``)."""
    root = Path(root)
    save_flux(root)
    save_flux(root, kontext=True)
    save_wan_i2v(root)
    save_wav2vec2(root)
    save_fantasy_ckpt(root)
    save_rrdbnet(root)
    if framepack:
        save_framepack(root)
    return root
