"""GPU stage adapters on tiny random-weight models, on CPU (issue 5).

Every adapter's model is built by ``streamwise.stages.gpu.tiny`` with the real diffusers /
transformers classes at tiny sizes, saved with ``save_pretrained`` (or as a single checkpoint file) in
the layout of the real checkpoint, and loaded back through the production path
(``configs/models.yaml`` ``adapters`` -> ``build`` -> ``weights.resolve`` via ``$STREAMWISE_MODELS``).
The quality knobs (size, steps, frames, fps) are checked against what comes out. Nothing downloads
(HF_HUB_OFFLINE=1). GPU-only checks skip without CUDA.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the GPU adapters need the ml extra (torch, diffusers)")
pytest.importorskip("diffusers", reason="the GPU adapters need the ml extra (torch, diffusers)")
os.environ["HF_HUB_OFFLINE"] = "1"

from streamwise.bus.messages import Quality, Task  # noqa: E402
from streamwise.stages.runtime.base import TaskContext  # noqa: E402
from streamwise.stages.gpu import tiny  # noqa: E402
from streamwise.stages.gpu.build import build  # noqa: E402
from streamwise.stages.gpu.parallel import ParallelDegrees, init_xfuser, split_degrees  # noqa: E402
from streamwise.stages.gpu.runtime import StepClock, retime  # noqa: E402
from streamwise.stages.gpu.weights import MissingCheckpointError, resolve  # noqa: E402

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread for this module: on the shared 2-core machine OpenMP's spinning threads made
    these tiny models 5x slower under load (46 s -> 10 s for the file); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """All tiny checkpoints, in the $STREAMWISE_MODELS layout (a few MB, a few seconds)."""
    root = tmp_path_factory.mktemp("models")
    tiny.build_all(root)
    return root


@pytest.fixture(scope="module")
def portrait():
    return np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def speech():
    """0.5 s of noise bursts at 22 050 Hz (float32), standing in for speech."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(11025).astype(np.float32) * 0.3
    x[::2000] *= 3
    return x


# ------------------------------------------------------------------------------ weights


def test_a_missing_checkpoint_names_the_model_the_places_looked_and_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(MissingCheckpointError) as err:
        build("fantasytalking", models_dir=tmp_path)
    text = str(err.value)
    assert "'fantasytalking'" in text and "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers" in text
    assert str(tmp_path / "Wan-AI" / "Wan2.1-I2V-14B-720P-Diffusers") in text
    assert "Hugging Face cache" in text
    assert "huggingface-cli download Wan-AI/Wan2.1-I2V-14B-720P-Diffusers" in text and "STREAMWISE_MODELS" in text
    with pytest.raises(MissingCheckpointError, match=r"download ai-forever/Real-ESRGAN RealESRGAN_x2.pth"):
        resolve("ai-forever/Real-ESRGAN/RealESRGAN_x2.pth", model="realesrgan-x2", models_dir=tmp_path)


def test_resolve_prefers_an_explicit_path_then_streamwise_models(models_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMWISE_MODELS", str(models_dir))
    flux = resolve(tiny.FLUX_ID)
    assert flux == models_dir / tiny.FLUX_ID and (flux / "model_index.json").is_file()
    assert resolve(f"{tiny.ESRGAN_ID}/{tiny.ESRGAN_FILE}").is_file()
    assert resolve(tiny.FLUX_ID, explicit=models_dir / tiny.KONTEXT_ID) == models_dir / tiny.KONTEXT_ID


def test_the_registry_lists_gpu_models_without_importing_torch():
    code = ("import sys; from streamwise.stages import registry; import streamwise.stages.gpu.stage; "
            "print(sorted(m for s, m in registry.ADAPTERS if s in ('image', 'video', 'tts')), "
            "'torch' in sys.modules, 'diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'fantasytalking'" in out and "'flux'" in out and "'kokoro'" in out
    assert out.strip().endswith("False False")


# ------------------------------------------------------------------------------ FLUX


@pytest.fixture(scope="module")
def flux(models_dir):
    return build("flux", models_dir=models_dir)


def test_flux_size_and_steps_reach_the_pipeline(flux):
    one, two = StepClock(), StepClock()
    a = flux.generate("a podcast studio", width=64, height=48, steps=1, on_step=one)
    b = flux.generate("a podcast studio", width=64, height=48, steps=2, on_step=two)
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8
    assert (one.steps, two.steps) == (1, 2)
    assert not np.array_equal(a, b)
    assert flux.generate("a podcast studio", width=32, height=64, steps=1).shape == (64, 32, 3)
    assert np.array_equal(b, flux.generate("a podcast studio", width=64, height=48, steps=2))   # seeded
    with pytest.raises(ValueError, match="multiples of 2"):
        flux.generate("x", width=63, height=48, steps=1)


def test_kontext_edits_an_image_at_the_requested_size(models_dir, portrait):
    kontext = build("flux-kontext", models_dir=models_dir)
    clock = StepClock()
    out = kontext.edit(portrait, "close-up of the host", width=48, height=32, steps=2, on_step=clock)
    assert out.shape == (32, 48, 3) and clock.steps == 2
    other = kontext.edit(portrait[::-1].copy(), "close-up of the host", width=48, height=32, steps=2)
    assert not np.array_equal(out, other)          # the input image conditions the output
    assert kontext.edit(None, "a studio", width=32, height=32, steps=1).shape == (32, 32, 3)


# ------------------------------------------------------------------------------ talking head


@pytest.fixture(scope="module")
def talking(models_dir):
    return build("fantasytalking", models_dir=models_dir)


def test_the_talking_head_makes_1_plus_4n_frames_at_the_size_and_steps_asked(talking, portrait, speech):
    assert talking.audio_conditioned
    clock = StepClock()
    video = talking.animate(portrait, speech, 22050, frames=9, fps=23, width=64, height=48, steps=2, on_step=clock)
    assert video.shape == (9, 48, 64, 3) and video.dtype == np.uint8 and clock.steps == 2
    assert talking.animate(portrait, speech, 22050, frames=5, fps=23, width=32, height=32, steps=1).shape == (5, 32, 32, 3)
    with pytest.raises(ValueError, match="1\\+4n"):
        talking.animate(portrait, speech, 22050, frames=8, fps=23, width=64, height=64, steps=1)
    with pytest.raises(ValueError, match="multiples of 16"):
        talking.animate(portrait, speech, 22050, frames=5, fps=23, width=40, height=64, steps=1)


def test_the_speech_drives_the_video_through_the_fantasytalking_weights(talking, models_dir, portrait, speech):
    kw = dict(frames=5, fps=23, width=32, height=32, steps=1)
    with_speech = talking.animate(portrait, speech, 22050, **kw)
    assert np.array_equal(with_speech, talking.animate(portrait, speech, 22050, **kw))          # deterministic
    silent = talking.animate(portrait, np.zeros_like(speech), 22050, **kw)
    assert np.abs(with_speech.astype(int) - silent).mean() > 0.05
    plain = build("fantasytalking", models_dir=models_dir, audio=False)
    assert not plain.audio_conditioned
    no_audio = plain.animate(portrait, speech, 22050, **kw)
    talking.state.scale = 0.0                       # audio_scale 0: exactly the plain I2V path
    try:
        assert np.array_equal(talking.animate(portrait, speech, 22050, **kw), no_audio)
    finally:
        talking.state.scale = 1.0


def test_fantasytalking_weights_load_from_their_own_layout_and_must_fit_the_dit(tmp_path):
    from safetensors.torch import save_file

    from streamwise.stages.gpu.audio import FantasyAudio, install

    ckpt = tiny.save_fantasy_ckpt(tmp_path, layers=3, dim=24)
    audio = FantasyAudio.from_checkpoint(ckpt)
    assert (audio.in_dim, audio.proj_dim, audio.dim, len(audio.blocks)) == (tiny.TINY_AUDIO_IN, tiny.TINY_AUDIO_PROJ, 24, 3)
    data = torch.load(ckpt, weights_only=True)
    flat = {f"proj_model.{k}": v for k, v in data["proj_model"].items()}
    flat |= {f"audio_processor.{k}": v for k, v in data["audio_processor"].items()}
    save_file(flat, str(tmp_path / "ft.safetensors"))
    again = FantasyAudio.from_checkpoint(tmp_path / "ft.safetensors")
    assert torch.equal(again.blocks[2].v_proj.weight, audio.blocks[2].v_proj.weight)
    dit = tiny.wan_i2v_components()["transformer"]          # 2 blocks: the 3-block weights do not fit
    with pytest.raises(ValueError, match="3 blocks of width 24; this Wan transformer has 2 blocks"):
        install(dit, audio, None)


def test_audio_windows_cover_each_latent_frame():
    from streamwise.stages.gpu.audio import windows_for

    tokens = torch.arange(20, dtype=torch.float32)[:, None].repeat(1, 3)      # 20 tokens for 9 frames
    win, valid = windows_for(tokens, 9)
    assert win.shape == (3, 8, 3) and valid.shape == (3, 8)
    assert valid[1].all() and not valid[0].all()                               # frame 0: padded before the clip
    assert win[2][valid[2]][:, 0].min() > win[1][valid[1]][:, 0].min()        # later frames, later audio
    with pytest.raises(ValueError, match="1\\+4n"):
        windows_for(tokens, 8)


# ------------------------------------------------------------------------------ FramePack, upscaler


def test_framepack_makes_the_frames_asked_at_the_size_asked(models_dir, portrait):
    video = build("hunyuanframepack", models_dir=models_dir, latent_window_size=3)
    clock = StepClock()
    out = video.animate(portrait, "a podcast studio", frames=9, fps=30, width=64, height=48, steps=2, on_step=clock)
    assert out.shape == (9, 48, 64, 3) and out.dtype == np.uint8
    assert clock.steps == 2                     # one 9-frame section (latent window 3) x 2 steps


def test_real_esrgan_loads_through_the_production_path_and_doubles_the_size(models_dir, tmp_path):
    from streamwise.stages.gpu.upscale import RealEsrganUpscaler, build_rrdbnet, read_state_dict

    up = build("realesrgan-x2", models_dir=models_dir)
    frames = np.random.default_rng(2).integers(0, 255, (3, 20, 28, 3), dtype=np.uint8)
    out = up.upscale(frames)
    assert up.scale == 2 and out.shape == (3, 40, 56, 3) and out.dtype == np.uint8
    assert up.upscale(frames[0]).shape == (40, 56, 3)
    # the same weights as a plain state dict and as safetensors load to the same network
    from safetensors.torch import save_file

    sd = read_state_dict(models_dir / tiny.ESRGAN_ID / tiny.ESRGAN_FILE)
    save_file(sd, str(tmp_path / "x2.safetensors"))
    again = RealEsrganUpscaler(tmp_path / "x2.safetensors", loader="builtin")
    assert np.array_equal(again.upscale(frames), up.upscale(frames)) or up.loader == "spandrel"
    with pytest.raises(ValueError, match="not a Real-ESRGAN"):
        build_rrdbnet({"conv.weight": torch.zeros(1)})


def test_spandrel_loads_the_same_real_esrgan_file(models_dir):
    try:
        import spandrel  # noqa: F401
    except Exception as exc:
        pytest.skip(f"spandrel does not import here ({type(exc).__name__}: {exc}); it needs a torchvision "
                    "matching torch, and the registry's torchvision is a CUDA build")
    from streamwise.stages.gpu.upscale import RealEsrganUpscaler

    up = RealEsrganUpscaler(models_dir / tiny.ESRGAN_ID / tiny.ESRGAN_FILE, loader="spandrel")
    assert up.loader == "spandrel" and up.scale == 2


@pytest.fixture
def kokoro_models(tmp_path, monkeypatch):
    """A tiny random Kokoro saved under a fresh $STREAMWISE_MODELS (the root is returned); skips
    where the ``kokoro`` package does not import."""
    try:
        import kokoro  # noqa: F401
    except Exception as exc:
        pytest.skip(f"kokoro does not import ({type(exc).__name__}: {exc}); the ml extra installs it")
    root = tmp_path / "models"
    tiny.save_kokoro(root)
    monkeypatch.setenv("STREAMWISE_MODELS", str(root))
    return root


def test_kokoro_speaks_with_local_weights(kokoro_models):
    """A tiny random Kokoro (config.json + kokoro-v1_0.pth + voices/*.pt) loaded by ``build("kokoro")``
    through $STREAMWISE_MODELS; English G2P by espeak-ng from the espeakng-loader wheel (no spaCy model,
    nothing downloaded): 24 kHz float32 mono, 600 samples per duration frame, faster at speed 2."""
    from streamwise.stages.gpu.kokoro import KokoroSpeech, english_model_installed

    root = kokoro_models
    tts = build("kokoro")          # configs/models.yaml: lang_code a, voices af_heart, ...
    assert tts.g2p == ("misaki" if english_model_installed() else "espeak") and tts.sample_rate == 24000
    audio, rate = tts.speak("Hello, and welcome.", "af_heart")
    assert rate == 24000 and audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) > 0 and len(audio) % 600 == 0 and np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    fast, _ = tts.speak("Hello, and welcome.", str(root / tiny.KOKORO_ID / "voices" / "bm_george.pt"), speed=2.0)
    assert 0 < len(fast) < len(audio)
    with pytest.raises(FileNotFoundError, match="nobody"):
        tts.speak("Hi.", "nobody")
    if not english_model_installed():          # never a run-time spaCy download: a clear error instead
        with pytest.raises(RuntimeError, match="en_core_web_sm"):
            KokoroSpeech(root / tiny.KOKORO_ID, lang_code="a", g2p="misaki")


async def test_the_kokoro_tts_stage_speaks_at_the_show_rate(bus, kokoro_models):
    """The Kokoro worker stage (a drop-in for the CPU speech stage): its 24 kHz speech is
    resampled to the show's rate, 22 050 Hz at 25 fps and 48 kHz at 24 fps, padded to whole
    frames; an fps with no whole samples per frame is refused, not retried."""
    from streamwise.stages.runtime.base import TaskError
    from streamwise.stages.registry import make_adapter

    stage = make_adapter("tts", "kokoro")
    stage.load()
    ctx = TaskContext(bus=bus, instance="gpu-test")

    def task(fps: float) -> Task:
        return Task(task_id=f"r.tts:{fps:g}.1-0", request_id="r", tenant="t", node_id=f"tts:{fps:g}", stage="tts",
                    model="kokoro", deadline=0.0, inputs=dict(text="Hello, and welcome to the show.",
                                                             speaker_index=0, fps=fps, max_clip_s=3.5,
                                                             pause_after_s=0.3))

    at25, at24 = await stage.run(task(25.0), ctx), await stage.run(task(24.0), ctx)
    assert at25["sample_rate"] == 22050 and at25["samples"] % 882 == 0
    assert at24["sample_rate"] == 48000 and at24["samples"] % 2000 == 0
    assert at24["samples"] / 48000 == pytest.approx(at25["samples"] / 22050, rel=0.05)   # not 2.18x off
    for out in (at25, at24):
        assert out["clips"][0][0] == 0 and out["clips"][-1][1] == out["samples"]
        assert len(await bus.get_blob(out["audio"])) == 2 * out["samples"]
    with pytest.raises(TaskError, match="not supported") as info:
        await stage.run(task(23.0), ctx)
    assert not info.value.retryable


# ------------------------------------------------------------------------------ the worker stage


def _task(node: str, quality: Quality, **inputs) -> Task:
    return Task(task_id=f"r.{node}.1-0", request_id="r", tenant="t", node_id=node, stage="video",
                model="fantasytalking", deadline=0.0, inputs=inputs, quality=quality)


async def test_the_gpu_talking_head_stage_is_a_drop_in_for_the_cpu_rung(bus, models_dir, portrait, monkeypatch):
    """Same inputs as the CPU talking head, an H.264 clip the mux decodes: the rung's size, 1+4n frames
    at 23 fps generated, retimed to the stream's 25 fps with exactly the frames the mux slices."""
    from streamwise.stages.gpu.stage import FantasyTalkingStage
    from streamwise.stages.cpu.image import png_bytes
    from streamwise.stages.cpu.media import decode_clip
    from streamwise.stages.registry import make_adapter

    from PIL import Image

    monkeypatch.setenv("STREAMWISE_MODELS", str(models_dir))
    stage = make_adapter("video", "fantasytalking")
    assert isinstance(stage, FantasyTalkingStage)
    stage.load()
    pcm = (np.random.default_rng(3).standard_normal(22050) * 3000).astype("<i2")
    audio = await bus.put_blob("r/tts:0/audio.pcm", pcm.tobytes())
    image = await bus.put_blob("r/portrait:0/portrait.png", png_bytes(Image.fromarray(portrait)))
    ctx = TaskContext(bus=bus, instance="gpu-test")
    inputs = dict(audio=audio, sample_from=0, sample_to=8820, sample_rate=22050, portrait=image, fps=25.0,
                  width=64, height=64, subtitle="hello", speaker="A", start_frame=0, blink_seed=0)
    out = await stage.run(_task("clip:0:0", Quality(rung="low", width=48, height=32, fps=25.0, steps=1), **inputs), ctx)
    clip = decode_clip(await bus.get_blob(out["clip"]))
    assert out["frames"] == 10 and clip.shape == (10, 32, 48, 3)       # 0.4 s at 25 fps, the rung's size
    assert out["model_frames"] == 13 and out["steps"] == 1 and out["audio_conditioned"]   # 0.4 s x 23 -> 1+4n
    hi = await stage.run(_task("clip:0:1", Quality(rung="high", width=64, height=64, fps=25.0, steps=2), **inputs), ctx)
    assert hi["steps"] == 2 and decode_clip(await bus.get_blob(hi["clip"])).shape == (10, 64, 64, 3)
    med = await stage.run(_task("clip:0:2", Quality(rung="medium", width=32, height=32, fps=25.0, steps=1), **inputs), ctx)
    assert med["upscaled"] and decode_clip(await bus.get_blob(med["clip"])).shape == (10, 64, 64, 3)   # Real-ESRGAN x2


async def test_the_framepack_stage_animates_the_portrait_without_lip_sync(bus, models_dir, portrait, monkeypatch):
    from streamwise.stages.cpu.image import png_bytes
    from streamwise.stages.cpu.media import decode_clip
    from streamwise.stages.registry import make_adapter

    from PIL import Image

    monkeypatch.setenv("STREAMWISE_MODELS", str(models_dir))
    stage = make_adapter("video", "hunyuanframepack", options={"latent_window_size": 3})
    stage.load()
    audio = await bus.put_blob("r/tts:1/audio.pcm", np.zeros(8820, "<i2").tobytes())
    image = await bus.put_blob("r/portrait:1/portrait.png", png_bytes(Image.fromarray(portrait)))
    inputs = dict(audio=audio, sample_from=0, sample_to=8820, sample_rate=22050, portrait=image, fps=25.0,
                  subtitle="a studio")
    out = await stage.run(_task("clip:1:0", Quality(rung="low", width=32, height=32, fps=25.0, steps=1), **inputs),
                          TaskContext(bus=bus, instance="gpu-test"))
    assert out["model_frames"] == 13 and out["frames"] == 10 and not out["audio_conditioned"]   # 0.4 s at 30 fps
    assert decode_clip(await bus.get_blob(out["clip"])).shape == (10, 32, 32, 3)


async def test_the_gpu_image_stage_draws_studio_and_portrait(bus, models_dir, monkeypatch):
    from streamwise.stages.cpu.image import load_png
    from streamwise.stages.art.portrait import FaceLayout
    from streamwise.stages.registry import make_adapter

    monkeypatch.setenv("STREAMWISE_MODELS", str(models_dir))
    stage = make_adapter("image", "flux-kontext")
    stage.load()
    ctx = TaskContext(bus=bus, instance="gpu-test")
    q = Quality(rung="low", width=64, height=48, fps=25.0, steps=1)
    studio = await stage.run(Task(task_id="r.studio.1-0", request_id="r", tenant="t", node_id="studio", stage="image",
                                  model="flux-kontext", deadline=0.0, quality=q,
                                  inputs={"kind": "studio", "title": "T", "width": 640, "height": 400}), ctx)
    assert load_png(await bus.get_blob(studio["image"])).shape == (48, 64, 3) and studio["steps"] == 1
    por = await stage.run(Task(task_id="r.portrait:0.1-0", request_id="r", tenant="t", node_id="portrait:0",
                               stage="image", model="flux-kontext", deadline=0.0, quality=q,
                               inputs={"kind": "portrait", "studio": studio["image"], "name": "Ann",
                                       "speaker_index": 0}), ctx)
    assert load_png(await bus.get_blob(por["image"])).shape == (48, 64, 3)
    FaceLayout.from_dict(por["layout"])             # the CPU head can still animate it


def test_retime_keeps_time_when_the_stream_fps_differs():
    frames = np.arange(9)[:, None, None, None].repeat(2, 1).repeat(2, 2).repeat(3, 3).astype(np.uint8)
    out = retime(frames, 23.0, 25.0, 10)
    assert out.shape == (10, 2, 2, 3) and list(out[:, 0, 0, 0]) == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8]


# ------------------------------------------------------------------------------ xDiT parallelism


def test_ulysses_ring_degrees_multiply_to_the_gpu_count():
    assert split_degrees(1, 40) == ParallelDegrees(1, 1)
    assert split_degrees(8, 40) == ParallelDegrees(8, 1)
    assert split_degrees(16, 40) == ParallelDegrees(8, 2)
    assert split_degrees(3, 40) == ParallelDegrees(1, 3)
    assert split_degrees(8, 24, cfg_parallel=True) == ParallelDegrees(4, 1, 2)
    for gpus in (1, 2, 3, 4, 6, 8, 12, 16, 32, 40):
        for heads in (24, 40):
            d = split_degrees(gpus, heads)
            assert d.gpus == gpus and heads % d.ulysses == 0
    with pytest.raises(ValueError):
        split_degrees(0, 40)


@pytest.mark.skipif(CUDA, reason="checks the CPU refusal")
def test_xfuser_is_refused_cleanly_without_a_gpu():
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        init_xfuser(split_degrees(2, 40))


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU and torchrun (xfuser raises at import without one)")
def test_xfuser_imports_on_a_gpu():
    from streamwise.stages.gpu.parallel import xfuser_available

    import importlib.util

    if importlib.util.find_spec("xfuser") is None:
        pytest.skip("xfuser is not installed (the `gpu` extra)")
    ok, why = xfuser_available()
    assert ok, why   # installed on a CUDA machine: it must import


# ------------------------------------------------------------------------------ streamwise profile


def test_profile_writes_a_reference_schema_file_the_profile_book_loads(tmp_path, monkeypatch):
    from streamwise.cli import main
    from streamwise.core.profiles import ProfileBook

    out = tmp_path / "ft_cpu.csv"
    assert main(["profile", "--model", "fantasytalking", "--tiny", "--grid", "32x32:1:5,32x32:2:5",
                 "--warmup", "0", "--repeats", "1", "--hardware", "cpu-tiny", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "world_size,steps,frames,width,height,total_time,avg_steps_time,vae_time"
    rows = [ln.split(",") for ln in lines[1:3]]
    assert [r[:5] for r in rows] == [["1", "1", "5", "32", "32"], ["1", "2", "5", "32", "32"]]
    assert all(float(r[5]) > 0 and float(r[6]) > 0 for r in rows) and "# model: fantasytalking" in lines
    book = ProfileBook.load().with_measured(str(out))
    assert ("cpu-tiny", 1) in book.known("fantasytalking")
    anchor = book.runtime_s("fantasytalking", "cpu-tiny", 1, width=32, height=32, steps=2, frames=5)
    assert anchor == pytest.approx(2 * float(rows[1][6]) + float(rows[1][7]), rel=1e-6)
    assert book.runtime_s("fantasytalking", "cpu-tiny", 1, width=32, height=32, steps=4, frames=5) > anchor
    monkeypatch.setenv("STREAMWISE_PROFILES", str(tmp_path))      # the scheduler's book picks it up
    assert ("cpu-tiny", 1) in ProfileBook.load().known("ft")


def test_the_real_wan_14b_architecture_builds_from_its_config_alone():
    """The --random-weights --arch wan2.1-i2v-14b DiT on the meta device (no memory): ~16.4 B parameters
    (14 B DiT + image cross-attention); one block of it runs a step on CPU."""
    from diffusers import WanTransformer3DModel

    from streamwise.cli.profile import ARCHS, Point, _dit_runner

    with torch.device("meta"):
        dit = WanTransformer3DModel(**ARCHS["wan2.1-i2v-14b"])
    assert 16.0e9 < sum(p.numel() for p in dit.parameters()) < 17.0e9
    t = _dit_runner("wan2.1-i2v-tiny", "cpu", "float32", None)(Point(32, 32, 2, 5))
    assert t.total > 0 and t.step > 0 and t.vae > 0


@pytest.mark.skipif(not CUDA, reason="profiles the real Wan2.1-14B DiT on a GPU")
def test_profile_the_real_wan_dit_on_a_gpu(tmp_path):
    from streamwise.cli import main

    out = tmp_path / "ft_gpu.csv"
    assert main(["profile", "--model", "fantasytalking", "--random-weights", "--arch", "wan2.1-i2v-14b",
                 "--grid", "640x400:2:81", "--warmup", "1", "--repeats", "1", "--out", str(out)]) == 0
    assert out.read_text().splitlines()[1].startswith("1,2,81,640,400,")


def test_seeds_follow_the_node_and_generated_portraits_get_a_layout():
    from streamwise.stages.gpu.stage import nominal_layout, task_seed

    t = Task(task_id="a", request_id="r", tenant="t", node_id="clip:1:0", stage="video", model="m", deadline=0.0)
    assert task_seed(t) == zlib.crc32(b"r/clip:1:0")
    assert nominal_layout(640, 400)["mouth_center"] == [320, 256]


def test_kokoro_voices_follow_the_cpu_voice_map():
    """Issue 12: the GPU tier's voices have the CPU tier's timbre per speaker (joe -> male, heart -> female)."""
    from streamwise.stages.gpu.stage import KOKORO_TIMBRES, kokoro_voice
    from streamwise.stages.cpu.speech import voice_for

    for i in range(8):
        assert kokoro_voice(i) in KOKORO_TIMBRES[voice_for(i).model]
    assert kokoro_voice(0, "heart") == "af_heart" and kokoro_voice(1, "joe") == "am_michael"
    assert kokoro_voice(2, None, ["bm_george"]) == "bm_george"
