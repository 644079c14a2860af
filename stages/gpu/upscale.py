"""Real-ESRGAN x2 upscaling of clips: spandrel's loader where it imports, else a built-in RRDBNet.

Real-ESRGAN (Wang et al. 2021; xinntao/Real-ESRGAN, BSD-3) is an ESRGAN generator, ``RRDBNet``:
a 3x3 conv, ``num_block`` residual-in-residual dense blocks (three 5-conv dense blocks each, residuals
scaled by 0.2), a conv, two nearest-neighbour x2 upsampling convs, and two output convs. The x2 model
first folds each 2x2 pixel block into channels (pixel-unshuffle: 12 input channels), so its output is
twice the input size. The checkpoints (``RealESRGAN_x2.pth`` of ``ai-forever/Real-ESRGAN`` or
``RealESRGAN_x2plus.pth``) hold this state dict, plain or under ``params_ema`` / ``params``.

Loading: ``spandrel`` (a maintained loader that detects the architecture from the state dict) is
used when it imports. It needs torchvision, and the only torchvision on the package registry is a
CUDA build that does not load next to the CPU torch (``RuntimeError: operator torchvision::nms does
not exist``) and then breaks transformers' image processors, so on CPU machines the built-in RRDBNet
below loads the same state dict, detecting scale, width, depth and growth from the tensor shapes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .runtime import pick_device, pick_dtype


def _torch_modules():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class DenseBlock(nn.Module):
        """Five 3x3 convs, each seeing the block input and all earlier outputs; residual x 0.2."""

        def __init__(self, feat: int, grow: int) -> None:
            super().__init__()
            for k in range(1, 6):
                setattr(self, f"conv{k}", nn.Conv2d(feat + (k - 1) * grow, grow if k < 5 else feat, 3, 1, 1))

        def forward(self, x):
            outs = [x]
            for k in range(1, 5):
                outs.append(F.leaky_relu(getattr(self, f"conv{k}")(torch.cat(outs, 1)), 0.2))
            return x + 0.2 * self.conv5(torch.cat(outs, 1))

    class RRDB(nn.Module):
        """Three dense blocks in a row; residual x 0.2."""

        def __init__(self, feat: int, grow: int) -> None:
            super().__init__()
            self.rdb1, self.rdb2, self.rdb3 = (DenseBlock(feat, grow) for _ in range(3))

        def forward(self, x):
            return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))

    class RRDBNet(nn.Module):
        """Real-ESRGAN's generator; ``scale`` 1, 2 or 4 (1 and 2 pixel-unshuffle the input first)."""

        def __init__(self, scale: int, feat: int, blocks: int, grow: int, in_ch: int = 3, out_ch: int = 3) -> None:
            super().__init__()
            self.scale = scale
            self.fold = {1: 4, 2: 2, 4: 1}[scale]
            self.conv_first = nn.Conv2d(in_ch * self.fold ** 2, feat, 3, 1, 1)
            self.body = nn.Sequential(*(RRDB(feat, grow) for _ in range(blocks)))
            self.conv_body = nn.Conv2d(feat, feat, 3, 1, 1)
            self.conv_up1 = nn.Conv2d(feat, feat, 3, 1, 1)
            self.conv_up2 = nn.Conv2d(feat, feat, 3, 1, 1)
            self.conv_hr = nn.Conv2d(feat, feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(feat, out_ch, 3, 1, 1)

        def forward(self, x):
            if self.fold > 1:
                x = F.pixel_unshuffle(x, self.fold)
            feat = self.conv_first(x)
            feat = feat + self.conv_body(self.body(feat))
            for up in (self.conv_up1, self.conv_up2):
                feat = F.leaky_relu(up(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
            return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))

    return torch, RRDBNet


def read_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """The generator's state dict from a ``.pth`` / ``.pt`` (plain, or under ``params_ema`` / ``params``,
    ``module.`` prefixes dropped) or a ``.safetensors`` file."""
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(path))
    else:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("params_ema", "params", "state_dict"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    return {k.removeprefix("module."): v for k, v in sd.items()}


def build_rrdbnet(sd: dict[str, Any]):
    """An ``RRDBNet`` whose hyper-parameters are read off the state dict (scale from the first conv's
    input channels: 48 -> x1, 12 -> x2, 3 -> x4), with the weights loaded (strict).

    Raises:
        ValueError: not a Real-ESRGAN RRDBNet state dict (the message lists some of its keys).
    """
    _, RRDBNet = _torch_modules()
    try:
        first = sd["conv_first.weight"]
        feat, cin = int(first.shape[0]), int(first.shape[1])
        blocks = len({k.split(".")[1] for k in sd if k.startswith("body.")})
        grow = int(sd["body.0.rdb1.conv1.weight"].shape[0])
        out_ch = int(sd["conv_last.weight"].shape[0])
    except KeyError as exc:
        raise ValueError(f"not a Real-ESRGAN RRDBNet state dict (missing {exc}); keys: {sorted(sd)[:6]}") from None
    scale = {48: 1, 12: 2, 3: 4}.get(cin)
    if scale is None:
        raise ValueError(f"conv_first takes {cin} channels; RRDBNet x1/x2/x4 take 48/12/3")
    net = RRDBNet(scale, feat, blocks, grow, out_ch=out_ch)
    net.load_state_dict(sd, strict=True)
    return net


def _spandrel_model(path: Path):
    """(model, scale) through spandrel, or None when spandrel does not import here."""
    try:
        import spandrel
    except Exception:   # ImportError, or torchvision's RuntimeError on a CPU torch (module docstring)
        return None
    desc = spandrel.ModelLoader().load_from_file(str(path))
    return desc.model, int(desc.scale)


class RealEsrganUpscaler:
    """:class:`~streamwise.stages.gpu.interfaces.UpscaleAdapter` for Real-ESRGAN checkpoints.

    ``path``: the ``.pth`` / ``.safetensors`` file. ``loader``: ``auto`` (spandrel when it imports,
    else built-in), ``spandrel`` or ``builtin``. ``batch``: frames per forward pass.
    :attr:`loader` tells which one loaded it.

    Raises:
        ImportError: ``loader="spandrel"`` and spandrel does not import.
        ValueError: the file is not a Real-ESRGAN state dict.
    """

    def __init__(self, path: str | os.PathLike, *, device: str | None = None, dtype: str | None = "float16",
                 loader: str = "auto", batch: int = 8) -> None:
        torch, _ = _torch_modules()
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.batch = max(1, int(batch))
        found = None if loader == "builtin" else _spandrel_model(Path(path))
        if found is None and loader == "spandrel":
            raise ImportError("spandrel does not import here (it needs a torchvision that matches torch)")
        if found is not None:
            self.model, self.scale, self.loader = found[0], found[1], "spandrel"
        else:
            self.model = build_rrdbnet(read_state_dict(path))
            self.scale, self.loader = self.model.scale, "builtin"
        self.model.to(self.device, self.dtype).eval()
        self._torch = torch

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> uint8 (N, H * scale, W * scale, 3) (a single (H, W, 3) image also works)."""
        torch = self._torch
        frames = np.asarray(frames)
        single = frames.ndim == 3
        if single:
            frames = frames[None]
        out = []
        with torch.no_grad():
            for i in range(0, len(frames), self.batch):
                x = torch.from_numpy(np.ascontiguousarray(frames[i:i + self.batch])).to(self.device)
                x = x.permute(0, 3, 1, 2).to(self.dtype) / 255.0
                y = self.model(x).clamp(0, 1).mul(255.0).round().to(torch.uint8)
                out.append(y.permute(0, 2, 3, 1).cpu().numpy())
        result = np.concatenate(out)
        return result[0] if single else result
