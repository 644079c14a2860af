"""``streamwise profile --model M``: time a GPU adapter over a grid of qualities, write a reference-schema profile.

Three ways to get a model to time:

- real checkpoints (default): the adapter exactly as a worker builds it (``configs/models.yaml``
  ``adapters``; weights from ``$STREAMWISE_MODELS`` / the HF cache, never downloaded);
- ``--tiny``: tiny random-weight checkpoints of the same architectures written to a temporary folder
  and loaded through the same production code (any machine; the numbers describe only this code path);
- ``--random-weights --arch wan2.1-i2v-14b``: the real Wan2.1-I2V-14B DiT (and Wan VAE) built from its
  config alone with random weights, timed per denoising step (two DiT passes: classifier-free guidance)
  and per VAE decode. A DiT step takes the same time whatever the weights, so on a lent GPU this
  measures FantasyTalking's real cost without downloading 60 GB. ``--layers K`` keeps only K blocks (a
  fast smoke run on CPU).

Output: CSV in the schema of ``latency_ft_mapping_<gpu>.csv`` (``../shared/profiles/README.md``):
``world_size,steps,frames,width,height,total_time,avg_steps_time,vae_time`` (seconds; ``avg_steps_time``
per denoising step, ``vae_time`` = VAE decode and post-processing after the last step), one row per grid
point (median of ``--repeats`` runs after ``--warmup`` runs), then ``#`` comment lines naming the model,
hardware, mode and machine. :meth:`streamwise.core.profiles.ProfileBook.with_measured` loads it, and
``$STREAMWISE_PROFILES`` makes the scheduler load it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

HEADER = ("world_size", "steps", "frames", "width", "height", "total_time", "avg_steps_time", "vae_time")
KINDS = {"flux": "image", "flux-kontext": "edit", "fantasytalking": "talking", "hunyuanframepack": "video",
         "realesrgan-x2": "upscale"}
TINY_GRID = {"image": "64x64:1:1,64x64:2:1,96x64:2:1", "edit": "64x64:1:1,64x64:2:1,96x64:2:1",
             "talking": "64x64:1:5,64x64:2:5,64x64:2:9,96x64:2:9", "video": "64x64:1:9,64x64:2:9,96x64:2:9",
             "upscale": "32x32:1:4,64x64:1:4"}
REAL_GRID = {"image": "640x400:14:1,1280x800:28:1", "edit": "640x400:14:1,1280x800:28:1",
             "talking": "640x400:10:81,1280x800:20:81", "video": "640x400:12:324",
             "upscale": "640x400:1:23"}
#: Real architectures by name: the diffusers config of the DiT (random weights), for --random-weights.
ARCHS = {
    "wan2.1-i2v-14b": dict(patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=36,
                           out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40,
                           cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=1280,
                           added_kv_proj_dim=5120, rope_max_seq_len=1024),
    "wan2.1-i2v-tiny": dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36,
                            out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
                            cross_attn_norm=True, qk_norm="rms_norm_across_heads", image_dim=4,
                            added_kv_proj_dim=24, rope_max_seq_len=32),
}
#: Wan2.1 VAE (z_dim 16, base 96, 4x time / 8x space): the real config.
WAN_VAE = dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, temperal_downsample=[False, True, True])


@dataclass(frozen=True, slots=True)
class Point:
    """One grid point: size (pixels), denoising steps, frames."""

    width: int
    height: int
    steps: int
    frames: int


def parse_grid(text: str) -> list[Point]:
    """``"640x400:10:81,1280x800:20:81"`` -> points (WIDTHxHEIGHT:STEPS:FRAMES; frames 1 for images).

    Raises:
        ValueError: a malformed item (the message shows it).
    """
    points = []
    for item in text.split(","):
        try:
            size, steps, frames = item.strip().split(":")
            w, h = (int(x) for x in size.lower().split("x"))
            p = Point(w, h, int(steps), int(frames))
        except ValueError:
            raise ValueError(f"--grid item {item!r}: expected WIDTHxHEIGHT:STEPS:FRAMES, e.g. 640x400:10:81") from None
        if min(p.width, p.height, p.steps, p.frames) < 1:
            raise ValueError(f"--grid item {item!r}: all values must be >= 1")
        points.append(p)
    return points


@dataclass
class Timing:
    """One run: total, per-step and after-the-last-step (VAE) seconds."""

    total: float
    step: float
    vae: float


# --------------------------------------------------------------------------- runners


def _adapter_runner(model: str, adapter: Any) -> Callable[[Point], Timing]:
    """A function that runs ``adapter`` once at a grid point and times it (StepClock callbacks)."""
    import numpy as np

    from ..stages.gpu.runtime import StepClock

    kind = KINDS[model]
    rng = np.random.default_rng(0)

    def run(p: Point) -> Timing:
        clock = StepClock()
        image = rng.integers(0, 255, (p.height, p.width, 3), dtype=np.uint8)
        if kind == "upscale":
            frames = rng.integers(0, 255, (p.frames, p.height, p.width, 3), dtype=np.uint8)
            t0 = time.perf_counter()
            adapter.upscale(frames)
            total = time.perf_counter() - t0
            return Timing(total, total / p.frames, 0.0)
        clock.start()
        if kind == "image":
            adapter.generate("a podcast studio", width=p.width, height=p.height, steps=p.steps, on_step=clock)
        elif kind == "edit":
            adapter.edit(image, "close-up of the host", width=p.width, height=p.height, steps=p.steps, on_step=clock)
        elif kind == "talking":
            fps = 23.0
            audio = (rng.standard_normal(int(22050 * p.frames / fps)) * 0.2).astype(np.float32)
            adapter.animate(image, audio, 22050, frames=p.frames, fps=fps, width=p.width, height=p.height,
                            steps=p.steps, on_step=clock)
        else:
            adapter.animate(image, "a podcast studio", frames=p.frames, fps=30.0, width=p.width, height=p.height,
                            steps=p.steps, on_step=clock)
        clock.stop()
        return Timing(clock.total_s, clock.avg_step_s, clock.tail_s)

    return run


def _dit_runner(arch: str, device: str, dtype_name: str, layers: int | None,
                guidance: bool = True) -> Callable[[Point], Timing]:
    """Times the real-architecture Wan I2V DiT (random weights) per step and the Wan VAE decode.

    A step = one DiT forward (two with classifier-free guidance) on a (1, 36, T', H/8, W/8) latent with a
    512-token text context and a 257-token CLIP image context; the VAE decodes (1, 16, T', H/8, W/8).
    """
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from ..stages.gpu.runtime import pick_dtype

    cfg = dict(ARCHS[arch])
    if layers:
        cfg["num_layers"] = int(layers)
    dtype = pick_dtype(dtype_name, device)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)   # build in the run dtype: 14B fp32 parameters would not fit beside bf16 ones
    try:
        with torch.device(device):
            dit = WanTransformer3DModel(**cfg).eval()
    finally:
        torch.set_default_dtype(default)
    with torch.device(device):
        vae = AutoencoderKLWan(**(WAN_VAE if "14b" in arch else dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1],
                                                                     num_res_blocks=1,
                                                                     temperal_downsample=[False, True, True]))).eval()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    @torch.no_grad()
    def run(p: Point) -> Timing:
        t_lat, h, w = (p.frames - 1) // 4 + 1, p.height // 8, p.width // 8
        x = torch.randn(1, cfg["in_channels"], t_lat, h, w, device=device, dtype=dtype)
        text = torch.randn(1, 512, cfg["text_dim"], device=device, dtype=dtype)
        img = torch.randn(1, 257, cfg["image_dim"], device=device, dtype=dtype)
        ts = torch.tensor([500], device=device)
        sync()
        t0 = time.perf_counter()
        for _ in range(p.steps):
            for _ in range(2 if guidance else 1):
                dit(hidden_states=x, timestep=ts, encoder_hidden_states=text, encoder_hidden_states_image=img,
                    return_dict=False)
        sync()
        t1 = time.perf_counter()
        vae.decode(torch.randn(1, 16, t_lat, h, w, device=device, dtype=torch.float32), return_dict=False)
        sync()
        t2 = time.perf_counter()
        return Timing(t2 - t0, (t1 - t0) / p.steps, t2 - t1)

    return run


def measure(run: Callable[[Point], Timing], points: list[Point], *, warmup: int = 1, repeats: int = 2,
            world_size: int = 1, log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Rows in the reference schema: for each point, ``warmup`` untimed runs then the median of ``repeats``."""
    rows = []
    for p in points:
        for _ in range(warmup):
            run(p)
        times = [run(p) for _ in range(max(1, repeats))]
        row = {"world_size": world_size, "steps": p.steps, "frames": p.frames, "width": p.width, "height": p.height,
               "total_time": round(statistics.median(t.total for t in times), 6),
               "avg_steps_time": round(statistics.median(t.step for t in times), 6),
               "vae_time": round(statistics.median(t.vae for t in times), 6)}
        rows.append(row)
        if log:
            log(",".join(str(row[k]) for k in HEADER))
    return rows


def write_csv(rows: list[dict[str, Any]], notes: dict[str, str]) -> str:
    """The profile file's text: the header, the rows, then ``# key: value`` comment lines."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    for r in rows:
        writer.writerow([r[k] for k in HEADER])
    for k, v in notes.items():
        buf.write(f"# {k}: {v}\n")
    return buf.getvalue()


# --------------------------------------------------------------------------- command


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``profile`` on the ``streamwise`` sub-command parser."""
    p = sub.add_parser("profile", help="time a GPU adapter over a quality grid; write a reference-schema profile")
    p.add_argument("--model", required=True, choices=sorted(KINDS), help="the GPU model (configs/models.yaml)")
    p.add_argument("--hardware", help="hardware name for the profile (default: cuda device name, or cpu)")
    p.add_argument("--gpus", type=int, default=1, help="world_size recorded in the rows (default 1)")
    p.add_argument("--grid", help="WIDTHxHEIGHT:STEPS:FRAMES[,...] (default: a small grid for the mode)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", help="write the CSV here (default: print it)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--tiny", action="store_true", help="tiny random-weight checkpoints (any machine)")
    mode.add_argument("--random-weights", action="store_true",
                      help="real architecture from its config, random weights (needs --arch; GPU)")
    p.add_argument("--arch", choices=sorted(ARCHS), help="with --random-weights: the architecture")
    p.add_argument("--layers", type=int, help="with --random-weights: keep only this many DiT blocks")
    p.add_argument("--no-cfg", action="store_true", help="with --random-weights: one DiT pass per step")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--dtype", default="bfloat16", help="on GPU (default bfloat16; CPU runs float32)")
    p.add_argument("--models-dir", help="checkpoint folder (default: $STREAMWISE_MODELS)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (CPU; default: torch's choice)")
    return p


@contextlib.contextmanager
def _tiny_models() -> Iterator[Path]:
    from ..stages.gpu.tiny import build_all

    with tempfile.TemporaryDirectory(prefix="streamwise-tiny-") as d:
        yield build_all(Path(d))


def _hardware(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0).lower().replace(" ", "-")
    return "cpu"


def cmd_profile(args) -> int:
    """Run ``streamwise profile``; prints progress to stderr and the CSV (or writes ``--out``)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ..stages.gpu.runtime import pick_device

    device = pick_device(args.device)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    kind = KINDS[args.model]
    log = (lambda s: print(s, file=sys.stderr, flush=True))
    if args.random_weights:
        if not args.arch:
            raise ValueError("--random-weights needs --arch (e.g. wan2.1-i2v-14b)")
        if args.model != "fantasytalking":
            raise ValueError("--random-weights is implemented for --model fantasytalking (the Wan2.1 DiT)")
        if device == "cpu" and "14b" in args.arch and not args.layers:
            raise ValueError("the full 14B DiT needs a GPU; on CPU pass --layers 1 for a smoke run")
        grid = parse_grid(args.grid or ("64x64:1:5,64x64:2:9" if "tiny" in args.arch or args.layers
                                        else REAL_GRID[kind]))
        run = _dit_runner(args.arch, device, args.dtype, args.layers, guidance=not args.no_cfg)
        mode = f"random weights, {args.arch}" + (f", {args.layers} layers" if args.layers else "") + \
               (", CFG (2 DiT passes per step)" if not args.no_cfg else ", 1 DiT pass per step")
        rows = measure(run, grid, warmup=args.warmup, repeats=args.repeats, world_size=args.gpus, log=log)
    else:
        from ..stages.gpu.build import build

        grid = parse_grid(args.grid or (TINY_GRID if args.tiny else REAL_GRID)[kind])
        with (_tiny_models() if args.tiny else contextlib.nullcontext(args.models_dir)) as models_dir:
            t0 = time.perf_counter()
            adapter = build(args.model, models_dir=models_dir, device=device)
            log(f"loaded {args.model} in {time.perf_counter() - t0:.2f} s")
            rows = measure(_adapter_runner(args.model, adapter), grid, warmup=args.warmup, repeats=args.repeats,
                           world_size=args.gpus, log=log)
        mode = "tiny random-weight checkpoints (architecture code path only)" if args.tiny else "real checkpoints"
    notes = {"model": args.model, "hardware": args.hardware or _hardware(device), "mode": mode,
             "device": device, "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}",
             "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
             "command": "streamwise profile " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["profile"] else [])}
    text = write_csv(rows, notes)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        log(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0
