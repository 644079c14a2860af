"""Multi-GPU DiT sequence parallelism (xDiT / xfuser: Ulysses x Ring), GPU path only.

An instance with ``g`` GPUs splits each DiT attention's sequence over ``g`` ranks: Ulysses
(all-to-all over heads; its degree must divide the head count) times Ring (ring attention over
the sequence), optionally times 2 for classifier-free-guidance parallelism (the conditional and
unconditional passes on different ranks). :func:`split_degrees` is the pure arithmetic (tested on
CPU); :func:`init_xfuser` sets up torch.distributed and xfuser's process groups and runs only on a
CUDA machine: xfuser 0.7.0 raises ``NotImplementedError`` at import without an accelerator (not an
ImportError), so it is imported only here, behind ``torch.cuda.is_available()``, catching any
exception.

Status: the degree split and the process-group set-up are written; replacing the Wan / FLUX
attention processors with xfuser's ``xFuserLongContextAttention`` and sharding the audio
attention's windows has NOT run on a GPU yet (no GPU in the sessions so far): instances run with
one GPU each until it has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ParallelDegrees:
    """``ulysses * ring * cfg == gpus``: Ulysses (head all-to-all), Ring (sequence ring) and CFG degrees."""

    ulysses: int
    ring: int
    cfg: int = 1

    @property
    def gpus(self) -> int:
        """The GPU count these degrees use."""
        return self.ulysses * self.ring * self.cfg

    @property
    def sequence(self) -> int:
        """The sequence-parallel degree (Ulysses x Ring)."""
        return self.ulysses * self.ring


def split_degrees(gpus: int, heads: int, *, cfg_parallel: bool = False) -> ParallelDegrees:
    """Degrees for ``gpus`` GPUs and a DiT with ``heads`` attention heads (Wan2.1-14B: 40, FLUX: 24).

    CFG parallelism (when asked and the count is even) takes a factor 2; of the rest, Ulysses takes the
    largest part that divides the head count (it is the faster of the two on one server) and Ring the
    remainder: 8 GPUs and 40 heads -> Ulysses 8; 16 GPUs and 40 heads -> Ulysses 8 x Ring 2; 3 GPUs and 40
    heads -> Ring 3.

    Raises:
        ValueError: gpus or heads below 1.
    """
    if gpus < 1 or heads < 1:
        raise ValueError(f"need gpus >= 1 and heads >= 1, got gpus={gpus}, heads={heads}")
    cfg = 2 if cfg_parallel and gpus % 2 == 0 else 1
    seq = gpus // cfg
    ulysses = math.gcd(seq, heads)
    return ParallelDegrees(ulysses=ulysses, ring=seq // ulysses, cfg=cfg)


def xfuser_available() -> tuple[bool, str]:
    """(True, "") when xfuser can be used here; else (False, the reason). Never raises."""
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "no CUDA GPU (xfuser raises NotImplementedError at import without an accelerator)"
    try:
        import xfuser  # noqa: F401
    except Exception as exc:   # ImportError, or NotImplementedError from xfuser.envs
        return False, f"xfuser does not import: {type(exc).__name__}: {exc}"
    return True, ""


def init_xfuser(degrees: ParallelDegrees) -> int:
    """Initialise torch.distributed (NCCL, from the torchrun environment) and xfuser's Ulysses / Ring /
    CFG groups; returns this process's rank. Call once per process, before building the pipeline.

    Raises:
        RuntimeError: no CUDA GPU or xfuser unusable (the reason is in the message), or the world size
            of the torchrun launch differs from ``degrees.gpus``.
    """
    ok, why = xfuser_available()
    if not ok:
        raise RuntimeError(f"multi-GPU DiT parallelism needs xfuser on CUDA: {why}")
    import torch
    import torch.distributed as dist
    from xfuser.core.distributed import init_distributed_environment, initialize_model_parallel

    if not dist.is_initialized():
        dist.init_process_group("nccl")
    world = dist.get_world_size()
    if world != degrees.gpus:
        raise RuntimeError(f"torchrun started {world} processes; the degrees {degrees} need {degrees.gpus}")
    rank = dist.get_rank()
    init_distributed_environment(rank=rank, world_size=world)
    initialize_model_parallel(sequence_parallel_degree=degrees.sequence, classifier_free_guidance_degree=degrees.cfg,
                              ring_degree=degrees.ring, ulysses_degree=degrees.ulysses)
    torch.cuda.set_device(rank % torch.cuda.device_count())
    return rank
