"""Multi-GPU DiT sequence parallelism (xDiT / xfuser 0.7.0: Ulysses x Ring x CFG), GPU path only.

An instance with ``g`` GPUs is ``g`` processes started by ``torchrun`` (one per GPU). Each DiT
attention's token sequence is split over the ranks: Ulysses (all-to-all over heads; its degree must
divide the head count) times Ring (ring attention over the sequence), optionally times 2 for
classifier-free-guidance parallelism (the conditional and unconditional passes on different ranks).

How an instance runs (the design; see "Status" below):

- **Launch.** ``torchrun --standalone --nproc_per_node N -m streamwise.stages.gpu.parallel worker
  --stage video --model fantasytalking --hardware h100 --gpus N --nats URL`` (:func:`launch_command`
  builds it; :func:`main` is the module's entry point). Rank 0 runs the ordinary ``streamwise worker``
  (bus, heartbeats, tasks: it *is* the instance); ranks > 0 never touch the bus: they load the same
  model and run :func:`follow`. An instance over one node runs the same module on each node with
  torchrun's static rendezvous (``--nnodes K --node_rank R --master_addr <node 0>``; node 0 holds
  global rank 0, the leader; ``streamwise deploy render`` makes the pods, docs/deploy.md): untested
  on real nodes.
- **Set-up** (every rank, inside the stage's ``load``): :func:`start_distributed` checks CUDA and
  xfuser and initialises torch.distributed through xfuser (NCCL, ``env://`` from torchrun, device
  ``cuda:LOCAL_RANK``); the adapter loads its pipeline with xfuser's sequence-parallel transformer
  class (``xFuserWanTransformer3DWrapper`` / ``xFuserFlux1Transformer2DWrapper``: they chunk the
  tokens over the SP ranks, use xfuser's USP attention for self-attention and all-gather the output)
  and calls :func:`enable_usp`, which builds xfuser's ``EngineConfig`` (``xFuserArgs(...).create_config()``),
  calls ``initialize_runtime_state(pipe, engine_config)`` (which creates the Ulysses / Ring / CFG
  process groups) and opens a gloo *control group* for the task channel.
- **Per task** (:mod:`streamwise.stages.gpu.channel`). Rank 0's adapter is a :class:`LeaderAdapter`: a
  call (``animate`` / ``generate`` / ``edit``) is first broadcast to the other ranks over the control
  group (:class:`TaskChannel`: a pickled header by ``broadcast_object_list``, numpy arrays as tensors by
  ``broadcast``), then every rank runs the same pipeline call with the same inputs and seed (so the same
  initial noise); the transformer's collectives meet inside it. Every rank ends with the full output
  (the wrapper all-gathers the sequence before the VAE); rank 0 returns it to the stage, which publishes
  it; followers drop theirs. Afterwards all ranks all-gather an (ok, error) status, so a follower's
  failure surfaces on rank 0 as a RuntimeError (a failure *inside* a collective instead stalls the group
  until NCCL's timeout: torchrun then tears the instance down).
- **Stop.** Rank 0 sends a stop message at exit (``atexit``); followers return from :func:`follow`.

xfuser 0.7.0 raises ``NotImplementedError`` at import without an accelerator (not an ImportError),
so it is imported only inside the GPU-only functions, after a ``torch.cuda.is_available()`` check,
catching any exception (:func:`xfuser_available`).

Sources: xfuser 0.7.0 wheel (PyPI) ``xfuser/model_executor/models/runner_models/wan.py`` and
``flux.py`` (how xDiT's own runner loads these models), ``xfuser/core/distributed/runtime_state.py``,
``xfuser/config/args.py``; xDiT ``examples/wan_usp_example.py``.

Status: **none of the GPU path has ever run on a GPU** (no GPU in the sessions so far). What has run:
the degree arithmetic, the launch-command builder and the task channel / follower protocol
(:mod:`streamwise.stages.gpu.channel`) on CPU with real torch.distributed (gloo, 2 processes under
torchrun), and the shard-aware FantasyTalking audio attention against the unsharded one
(:mod:`streamwise.stages.gpu.wan`), all in ``tests/test_gpu_parallel.py``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

from .channel import PARALLEL_METHODS, Call, LeaderAdapter, TaskChannel, follow

__all__ = [
    "LAUNCHER_MODULE", "ParallelDegrees", "split_degrees", "launched_world_size", "launched_rank", "RDZV_PORT",
    "launch_command", "launch_env", "xfuser_available", "Launch", "ParallelContext", "current_launch",
    "adapter_placement", "current_context", "start_distributed", "enable_usp", "before_call", "init_xfuser", "main",
    # the task channel (.channel), defined here before the split
    "PARALLEL_METHODS", "Call", "LeaderAdapter", "TaskChannel", "follow",
]

log = logging.getLogger(__name__)

LAUNCHER_MODULE = "streamwise.stages.gpu.parallel"


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


# ------------------------------------------------------------------------------------------ launching


def launched_world_size() -> int:
    """The process count of this torchrun launch (``$WORLD_SIZE``), 1 when not launched by torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def launched_rank() -> int:
    """This process's global rank in the torchrun launch (``$RANK``), 0 when not launched by torchrun."""
    return int(os.environ.get("RANK", "0") or 0)


#: The rendezvous port of a multi-node instance's leader (torchrun's ``--master_port``; its default).
RDZV_PORT = 29500


def launch_command(stage: str, model: str, gpus: int, nats: str, *, hardware: str = "h100",
                   instance: str | None = None, extra: list[str] | tuple[str, ...] = (),
                   torchrun: list[str] | tuple[str, ...] = ("torchrun",), nnodes: int = 1,
                   node_rank: int | str = 0, master_addr: str | None = None, master_port: int = RDZV_PORT) -> list[str]:
    """The argv that starts one worker instance of ``model`` on ``gpus`` GPUs (on this machine, or,
    with ``nnodes > 1``, this machine's share of them).

    ``gpus <= 1``: the plain ``streamwise worker ...``. ``gpus > 1``, one node: ``torchrun --standalone
    --nnodes 1 --nproc_per_node gpus -m streamwise.stages.gpu.parallel worker ...`` (``--standalone`` picks a free
    rendezvous port, so several instances can share a host; give each its GPUs with
    ``CUDA_VISIBLE_DEVICES``, see :func:`launch_env`). ``nnodes > 1``: ``torchrun --nnodes nnodes
    --nproc_per_node gpus/nnodes --node_rank R --master_addr A --master_port P -m ...`` on every node (torchrun's
    static rendezvous: node 0 at ``master_addr`` hosts it, so global rank 0, the instance's bus-facing
    leader, is on node 0; ``node_rank`` may be a string such as ``$(POD_INDEX)`` that Kubernetes
    expands). ``torchrun`` may be replaced, e.g. by ``[sys.executable, "-m", "torch.distributed.run"]``.

    Raises:
        ValueError: gpus < 0, an empty stage / model / nats URL, or several nodes without a
            ``master_addr`` or with a GPU count they do not divide.
    """
    if gpus < 0 or not stage or not model or not nats:
        raise ValueError(f"need gpus >= 0, a stage, a model and a NATS URL; got {gpus}, {stage!r}, {model!r}, {nats!r}")
    worker = ["worker", "--stage", stage, "--model", model, "--hardware", hardware, "--gpus", str(gpus),
              "--nats", nats, *(["--instance", instance] if instance else []), *extra]
    if gpus <= 1:
        return ["streamwise", *worker]
    if nnodes <= 1:
        return [*torchrun, "--standalone", "--nnodes", "1", "--nproc_per_node", str(gpus), "-m", LAUNCHER_MODULE,
                *worker]
    if gpus % nnodes or not master_addr:
        raise ValueError(f"an instance of {gpus} GPUs on {nnodes} nodes needs a GPU count the nodes divide and the "
                         f"rendezvous address of node 0 (master_addr); got master_addr={master_addr!r}")
    return [*torchrun, "--nnodes", str(nnodes), "--nproc_per_node", str(gpus // nnodes), "--node_rank", str(node_rank),
            "--master_addr", master_addr, "--master_port", str(master_port), "-m", LAUNCHER_MODULE, *worker]


def launch_env(devices: list[int] | tuple[int, ...] | None = None) -> dict[str, str]:
    """Extra environment for :func:`launch_command`: ``CUDA_VISIBLE_DEVICES`` for the given GPU indices
    (local rank i then uses the i-th of them) and ``OMP_NUM_THREADS=1`` (torchrun's own default, set
    explicitly so the CPU-side work of N ranks does not oversubscribe the host). Empty devices: no
    ``CUDA_VISIBLE_DEVICES``."""
    env = {"OMP_NUM_THREADS": "1"}
    if devices:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(int(d)) for d in devices)
    return env


# ------------------------------------------------------------------------------------------ the GPU set-up


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


@dataclass
class Launch:
    """This process's place in a multi-GPU instance: global ``rank``, ``local_rank`` (its GPU index on
    the host), ``world`` (process count = GPU count) and ``device`` (``cuda:<local_rank>``)."""

    rank: int
    local_rank: int
    world: int
    device: str


@dataclass
class ParallelContext:
    """What :func:`enable_usp` set up: the ``launch``, the chosen ``degrees``, this rank's position in the
    sequence-parallel group (``sp_rank`` of ``sp_size``: its contiguous share of the DiT tokens), xfuser's
    ``engine_config`` and the gloo ``channel`` that carries task inputs from rank 0."""

    launch: Launch
    degrees: ParallelDegrees
    sp_rank: int
    sp_size: int
    engine_config: Any
    channel: TaskChannel
    model_family: str = ""


_LAUNCH: Launch | None = None
_CONTEXT: ParallelContext | None = None


def current_launch() -> Launch | None:
    """The :class:`Launch` of this process after :func:`start_distributed`, else None (single GPU)."""
    return _LAUNCH


def adapter_placement(device: str | None, dtype: str | None, offload: bool) -> tuple[bool, str, Any]:
    """(multi-GPU?, device, torch dtype) for a DiT adapter being built in this process: the
    rank's own GPU inside a multi-GPU instance (after :func:`start_distributed`), else the
    requested or best single device.

    Raises:
        ValueError: model CPU offload asked for in a multi-GPU instance.
    """
    from .runtime import pick_device, pick_dtype

    launch = current_launch()
    multi = launch is not None and launch.world > 1
    if multi and offload:
        raise ValueError("model CPU offload is not supported in a multi-GPU instance")
    chosen = launch.device if multi else pick_device(device)
    return multi, chosen, pick_dtype(dtype, chosen)


def current_context() -> ParallelContext | None:
    """The :class:`ParallelContext` of this process after :func:`enable_usp`, else None."""
    return _CONTEXT


def start_distributed(gpus: int) -> Launch:
    """Initialise torch.distributed for a ``gpus``-GPU instance through xfuser's
    ``init_distributed_environment`` (backend NCCL, ``env://`` rendezvous from torchrun's ``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``; it also calls ``torch.cuda.set_device``).
    Call it on every rank before loading the model; idempotent.

    Raises:
        RuntimeError: no CUDA GPU or xfuser unusable (the message gives the reason), or the process was
            not started by torchrun with ``gpus`` processes (the message gives the launch command).
    """
    global _LAUNCH
    if _LAUNCH is not None:
        return _LAUNCH
    ok, why = xfuser_available()
    if not ok:
        raise RuntimeError(f"--gpus {gpus}: multi-GPU DiT parallelism needs xfuser 0.7.0 on CUDA GPUs "
                           f"(pip install 'streamwise[gpu]' in the GPU environment); here: {why}")
    world = launched_world_size()
    if world != gpus:
        cmd = " ".join(launch_command("video", "fantasytalking", gpus, "nats://HOST:4222"))
        raise RuntimeError(f"--gpus {gpus} needs {gpus} processes started by torchrun, found WORLD_SIZE={world}; "
                           f"start the instance as e.g.: {cmd}")
    import torch
    from xfuser.core.distributed import get_world_group, init_distributed_environment

    if not torch.distributed.is_initialized():
        init_distributed_environment()      # env://, xfuser's backend choice (nccl on CUDA)
    group = get_world_group()
    torch.cuda.set_device(group.local_rank)
    _LAUNCH = Launch(rank=group.rank, local_rank=group.local_rank, world=group.world_size,
                     device=f"cuda:{group.local_rank}")
    return _LAUNCH


def enable_usp(pipe, *, model_path: str, cfg_parallel: bool = False, family: str = "") -> ParallelContext:
    """Turn on xfuser's Ulysses x Ring (x CFG) parallelism for ``pipe``, whose transformer must be one
    of xfuser's sequence-parallel classes (``xFuserWanTransformer3DWrapper`` for Wan,
    ``xFuserFlux1Transformer2DWrapper`` for FLUX): splits the degrees from the transformer's head count,
    builds the ``EngineConfig`` with ``xFuserArgs(model=..., ulysses_degree, ring_degree,
    use_cfg_parallel).create_config()``, calls ``initialize_runtime_state(pipe, engine_config)`` (it
    creates the process groups; xfuser checks that Ulysses divides the head count) and opens the gloo
    control group (every rank calls this in the same order: ``new_group`` is collective).

    ``cfg_parallel``: run the two classifier-free-guidance passes on two halves of the GPUs (needs
    xfuser's pipeline class, e.g. ``xFuserWanImageToVideoPipeline``, which all-gathers them).

    Raises:
        RuntimeError: :func:`start_distributed` was not called, or xfuser refuses the configuration.
    """
    global _CONTEXT
    launch = _LAUNCH
    if launch is None:
        raise RuntimeError("enable_usp: call start_distributed(gpus) first (on every rank)")
    import torch.distributed as dist
    from xfuser import xFuserArgs
    from xfuser.core.distributed import (get_sequence_parallel_rank, get_sequence_parallel_world_size,
                                         initialize_runtime_state)

    heads = int(pipe.transformer.config.num_attention_heads)
    degrees = split_degrees(launch.world, heads, cfg_parallel=cfg_parallel)
    args = xFuserArgs(model=str(model_path), ulysses_degree=degrees.ulysses, ring_degree=degrees.ring,
                      use_cfg_parallel=degrees.cfg == 2)
    engine_config, _ = args.create_config()
    initialize_runtime_state(pipe, engine_config)
    control = dist.new_group(backend="gloo")
    _CONTEXT = ParallelContext(launch=launch, degrees=degrees, sp_rank=get_sequence_parallel_rank(),
                               sp_size=get_sequence_parallel_world_size(), engine_config=engine_config,
                               channel=TaskChannel(group=control), model_family=family)
    log.info("rank %d/%d: xfuser %s on %s (sequence shard %d of %d)", launch.rank, launch.world, degrees,
             launch.device, _CONTEXT.sp_rank, _CONTEXT.sp_size)
    return _CONTEXT


def before_call(*, steps: int, max_sequence_length: int | None = None) -> None:
    """Per-call xfuser bookkeeping, as xDiT's own runners do before each pipeline call: the input
    parameters (FLUX: ``set_input_parameters(batch_size=1, num_inference_steps, max_condition_sequence_length,
    split_text_embed_in_sp=True)``) and Wan's VSA schedule reset (a no-op with dense attention). Nothing
    when :func:`enable_usp` has not run."""
    if _CONTEXT is None:
        return
    from xfuser.core.distributed import get_runtime_state

    state = get_runtime_state()
    if _CONTEXT.model_family == "flux":
        state.set_input_parameters(batch_size=1, num_inference_steps=int(steps),
                                   max_condition_sequence_length=max_sequence_length, split_text_embed_in_sp=True)
    elif hasattr(state, "reset_vsa_schedule_state"):
        state.reset_vsa_schedule_state(int(steps))


def init_xfuser(degrees: ParallelDegrees) -> int:
    """Back-compatible entry: :func:`start_distributed` for ``degrees.gpus`` GPUs; returns this rank.

    Raises:
        RuntimeError: as :func:`start_distributed` (the message says "no CUDA GPU" on a CPU machine).
    """
    return start_distributed(degrees.gpus).rank


# ------------------------------------------------------------------------------------------ entry point


def _worker_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"torchrun ... -m {LAUNCHER_MODULE}", add_help=True)
    p.add_argument("command", choices=["worker"])
    p.add_argument("--stage", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--gpus", type=int, required=True)
    p.add_argument("--emulate", action="store_true")
    args, _ = p.parse_known_args(argv)
    return args


def main(argv: list[str] | None = None, *, run_leader: Callable[[list[str]], int] | None = None) -> int:
    """``torchrun --standalone --nproc_per_node N -m streamwise.stages.gpu.parallel worker --stage S --model M
    --gpus N --nats URL [...]``: rank 0 runs ``streamwise worker`` with the same arguments
    (``run_leader``, default :func:`streamwise.cli.main`); ranks > 0 build the same stage, load it (which
    joins the parallel set-up) and :func:`follow` until rank 0 stops.

    Raises:
        SystemExit: not a ``worker`` command, ``--emulate``, or ``--gpus`` different from torchrun's
            ``WORLD_SIZE`` (the message gives the launch command).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _worker_args(argv)
    if args.emulate:
        raise SystemExit("an emulated instance needs no GPU group: run `streamwise worker --emulate ...` directly")
    world = launched_world_size()
    if args.gpus != world:
        cmd = " ".join(launch_command(args.stage, args.model, args.gpus, "nats://HOST:4222"))
        raise SystemExit(f"--gpus {args.gpus} but this launch has WORLD_SIZE={world}; start it as: {cmd}")
    if launched_rank() == 0:
        if run_leader is None:
            from streamwise.cli import main as run_leader
        return int(run_leader(argv) or 0)
    from streamwise.stages.registry import make_adapter

    stage = make_adapter(args.stage, args.model)
    stage.load()
    ctx = current_context()
    if ctx is None:
        raise SystemExit(f"model {args.model!r} did not set up multi-GPU parallelism on rank {launched_rank()}")
    done = follow(stage.adapter, ctx.channel)
    log.info("rank %d: stopped after %d calls", launched_rank(), done)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
