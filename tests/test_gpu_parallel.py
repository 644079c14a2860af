"""Multi-GPU DiT parallelism (stages/gpu/parallel.py): what can be tested honestly without a GPU.

- the Ulysses x Ring x CFG degree split and the launch-command builder (pure Python);
- the task channel / follower protocol with real torch.distributed: 2 CPU processes on the gloo
  backend, started by torchrun (``python -m torch.distributed.run``), exactly as a GPU instance's
  control group carries task inputs from rank 0;
- the shard-aware FantasyTalking audio attention against the unsharded one (pure torch, CPU);
- the clear refusals without CUDA / xfuser / a torchrun launch.

The xfuser path itself (``start_distributed`` on NCCL, ``enable_usp``, the xfuser transformer
classes) needs CUDA GPUs: that test skips here. None of it has run on a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

from streamwise.stages.gpu import parallel as P  # noqa: E402
from streamwise.stages.gpu.parallel import ParallelDegrees, split_degrees  # noqa: E402

CUDA = torch.cuda.is_available()


# ------------------------------------------------------------------------------ degrees and launching


def test_degrees_cover_the_gpus_and_ulysses_divides_the_heads():
    assert split_degrees(2, 40) == ParallelDegrees(2, 1)
    assert split_degrees(2, 40, cfg_parallel=True) == ParallelDegrees(1, 1, 2)
    assert split_degrees(16, 40, cfg_parallel=True) == ParallelDegrees(8, 1, 2)
    assert split_degrees(6, 24) == ParallelDegrees(6, 1)          # FLUX: 24 heads
    assert split_degrees(5, 24) == ParallelDegrees(1, 5)          # 5 does not divide 24: all Ring
    assert split_degrees(3, 40, cfg_parallel=True) == ParallelDegrees(1, 3, 1)   # odd: no CFG split
    for gpus in range(1, 41):
        for heads in (24, 40):
            for cfg in (False, True):
                d = split_degrees(gpus, heads, cfg_parallel=cfg)
                assert d.gpus == gpus and heads % d.ulysses == 0 and d.sequence * d.cfg == gpus


def test_launch_command_uses_torchrun_only_for_several_gpus():
    one = P.launch_command("video", "fantasytalking", 1, "nats://h:4222")
    assert one == ["streamwise", "worker", "--stage", "video", "--model", "fantasytalking", "--hardware", "h100",
                   "--gpus", "1", "--nats", "nats://h:4222"]
    eight = P.launch_command("video", "fantasytalking", 8, "nats://h:4222", hardware="h200", instance="ft-0",
                             torchrun=[sys.executable, "-m", "torch.distributed.run"])
    assert eight == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                     "--nproc_per_node", "8", "-m", "streamwise.stages.gpu.parallel", "worker", "--stage", "video",
                     "--model", "fantasytalking", "--hardware", "h200", "--gpus", "8", "--nats", "nats://h:4222",
                     "--instance", "ft-0"]
    assert P.launch_env([4, 5]) == {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "4,5"}
    with pytest.raises(ValueError):
        P.launch_command("video", "fantasytalking", -1, "nats://h:4222")


def test_the_launcher_refuses_a_gpu_count_torchrun_did_not_start(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(SystemExit, match="WORLD_SIZE=1; start it as: torchrun --standalone"):
        P.main(["worker", "--stage", "video", "--model", "fantasytalking", "--gpus", "4", "--nats", "x"])
    with pytest.raises(SystemExit, match="emulated"):
        P.main(["worker", "--stage", "video", "--model", "fantasytalking", "--gpus", "4", "--emulate",
                "--nats", "x"])


def test_rank_zero_of_the_launcher_runs_the_ordinary_worker(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    seen = []
    argv = ["worker", "--stage", "video", "--model", "fantasytalking", "--gpus", "2", "--nats", "nats://h:1"]
    assert P.main(argv, run_leader=lambda a: seen.append(a) or 0) == 0
    assert seen == [argv]


# ------------------------------------------------------------------------------ refusals without a GPU


@pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without CUDA")
def test_start_distributed_refuses_clearly_without_cuda():
    with pytest.raises(RuntimeError, match=r"--gpus 2: multi-GPU DiT parallelism needs xfuser 0.7.0 on CUDA.*no CUDA"):
        P.start_distributed(2)
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        P.init_xfuser(split_degrees(2, 40))
    assert P.current_launch() is None and P.current_context() is None


@pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without CUDA")
def test_multi_gpu_stages_refuse_before_loading_anything():
    from streamwise.stages.gpu.stage import FantasyTalkingStage, FluxImageStage, FramePackStage, KokoroTtsStage

    for cls in (FantasyTalkingStage, FluxImageStage):
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            cls(gpus=2).load()
    for cls in (FramePackStage, KokoroTtsStage):
        with pytest.raises(RuntimeError, match="no multi-GPU support"):
            cls(gpus=2).load()


def test_enable_usp_needs_start_distributed_first():
    if P.current_launch() is not None:
        pytest.skip("this process already joined a group")
    with pytest.raises(RuntimeError, match="start_distributed"):
        P.enable_usp(object(), model_path="x")


@pytest.mark.skipif(not CUDA, reason="needs CUDA GPUs, xfuser 0.7.0 and a torchrun launch with WORLD_SIZE > 1")
def test_xfuser_group_starts_under_torchrun_on_gpus():
    if P.launched_world_size() < 2:
        pytest.skip("run under torchrun --nproc_per_node >= 2 to test the NCCL group")
    ok, why = P.xfuser_available()
    if not ok:
        pytest.skip(why)
    launch = P.start_distributed(P.launched_world_size())
    assert launch.device == f"cuda:{launch.local_rank}"


# ------------------------------------------------------------------------------ the task channel (gloo, 2 processes)

CHANNEL_SCRIPT = r'''
import json, os, sys
import numpy as np
import torch.distributed as dist
from streamwise.stages.gpu.parallel import LeaderAdapter, TaskChannel, follow, launched_rank, launched_world_size

out = sys.argv[1]
dist.init_process_group("gloo")            # env:// from torchrun
rank = dist.get_rank()
assert rank == launched_rank() and launched_world_size() == dist.get_world_size() == 2


class Recorder:
    """Stands in for a pipeline adapter: records what it is called with, fails on request."""

    def __init__(self):
        self.calls = []

    def animate(self, portrait, audio, sample_rate, *, frames, fps, width, height, steps, seed=0, prompt=None,
                on_step=None):
        if prompt == "fail on follower" and rank == 1:
            raise ValueError("follower refused")
        if prompt == "fail on leader" and rank == 0:
            raise ValueError("leader refused")
        self.calls.append(dict(portrait_sum=int(portrait.astype(np.int64).sum()), portrait_dtype=portrait.dtype.str,
                               portrait_shape=list(portrait.shape), audio_sum=float(audio.astype(np.float64).sum()),
                               audio_dtype=audio.dtype.str, audio_len=len(audio), sample_rate=sample_rate,
                               frames=frames, fps=fps, width=width, height=height, steps=steps, seed=seed,
                               prompt=prompt, on_step=on_step is not None))
        return np.full((frames, height, width, 3), rank, np.uint8)

    def generate(self, prompt, *, width, height, steps, seed=0, on_step=None):
        self.calls.append(dict(prompt=prompt, width=width, height=height, steps=steps, seed=seed))
        return np.zeros((height, width, 3), np.uint8)


adapter = Recorder()
channel = TaskChannel()
rng = np.random.default_rng(7)
portrait = rng.integers(0, 256, (24, 16, 3), dtype=np.uint8)
audio = rng.standard_normal(5000).astype(np.float32)
result = {"rank": rank}
if rank == 0:
    leader = LeaderAdapter(adapter, channel, stop_at_exit=False)
    video = leader.animate(portrait, audio, 22050, frames=5, fps=23.0, width=16, height=24, steps=3, seed=11,
                           prompt="hello", on_step=lambda *a: None)
    result["video"] = [list(video.shape), int(video.max())]
    leader.generate("a studio", width=32, height=16, steps=2, seed=5)
    leader.animate(portrait, np.zeros(0, np.float32), 16000, frames=1, fps=23.0, width=16, height=24, steps=1)
    errors = []
    for prompt in ("fail on follower", "fail on leader"):
        try:
            leader.animate(portrait, audio, 22050, frames=5, fps=23.0, width=16, height=24, steps=1, prompt=prompt)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    result["errors"] = errors
    result["audio_conditioned"] = getattr(leader, "calls") is adapter.calls
    leader.close()
    leader.close()                                   # idempotent
else:
    result["followed"] = follow(adapter, channel)
result["calls"] = adapter.calls
with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
    json.dump(result, f)
dist.destroy_process_group()
'''


def test_task_inputs_reach_the_other_rank_over_gloo(tmp_path):
    script = tmp_path / "channel.py"
    script.write_text(textwrap.dedent(CHANNEL_SCRIPT))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
           str(script), str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    # the follower ran exactly the calls rank 0 ran (those that did not fail there), with identical inputs
    assert r1["followed"] == 5
    assert r0["video"] == [[5, 24, 16, 3], 0]                  # rank 0's own output is what it returns
    first0, first1 = r0["calls"][0], r1["calls"][0]
    assert first0["on_step"] is True and first1["on_step"] is False     # callables stay on rank 0
    for key in ("portrait_sum", "portrait_dtype", "portrait_shape", "audio_sum", "audio_dtype", "audio_len",
                "sample_rate", "frames", "fps", "width", "height", "steps", "seed", "prompt"):
        assert first0[key] == first1[key], key
    assert first1["portrait_dtype"] == "|u1" and first1["audio_dtype"] == "<f4" and first1["audio_len"] == 5000
    assert r0["calls"][1] == r1["calls"][1] == {"prompt": "a studio", "width": 32, "height": 16, "steps": 2,
                                                "seed": 5}
    assert r1["calls"][2]["audio_len"] == 0 and r1["calls"][2]["prompt"] is None
    # a follower's failure surfaces on rank 0 as a RuntimeError naming the rank; rank 0's own error is re-raised
    assert r0["errors"][0] == "RuntimeError: multi-GPU call animate failed on rank(s) 1: ValueError: follower refused"
    assert r0["errors"][1] == "ValueError: leader refused"
    assert r0["audio_conditioned"] is True                    # other attributes are the adapter's own


# ------------------------------------------------------------------------------ sharded FantasyTalking audio attention


def _audio_parts(batch: int):
    from diffusers.models.transformers.transformer_wan import WanAttention

    from streamwise.stages.gpu import audio as A

    torch.manual_seed(0)
    attn = WanAttention(dim=32, heads=4, dim_head=8, eps=1e-6, cross_attention_dim_head=8).eval()
    kv = A.AudioKV(proj_dim=16, dim=32).eval()
    windows, valid = A.windows_for(torch.randn(37, 16), 9)          # 9 frames -> T' = 3 latent frames
    state = A.AudioState(windows=windows, valid=valid, scale=0.7)
    return A, attn, kv, state


@pytest.mark.parametrize("sp,batch", [(1, 1), (2, 1), (4, 2), (7, 1)])
def test_sharded_audio_attention_equals_the_unsharded_rows(sp, batch):
    from streamwise.stages.gpu.wan import SequenceShard, sharded_audio_attention

    A, attn, kv, state = _audio_parts(batch)
    tpf = 5                                             # latent 5 tokens per frame: 15 tokens, padded per sp
    total = state.windows.shape[0] * tpf
    hidden = torch.randn(batch, total, 32)
    with torch.no_grad():
        full = A._audio_attention(attn, kv, hidden, state)
        chunk = -(-total // sp)
        padded = torch.cat([hidden, torch.zeros(batch, chunk * sp - total, 32)], dim=1)
        parts = [sharded_audio_attention(attn, kv, padded[:, r * chunk:(r + 1) * chunk], state,
                                         SequenceShard(rank=r, size=sp, tokens_per_frame=tpf)) for r in range(sp)]
    joined = torch.cat(parts, dim=1)
    assert joined.shape == (batch, chunk * sp, 32)
    torch.testing.assert_close(joined[:, :total], full, rtol=1e-5, atol=1e-6)
    assert torch.count_nonzero(joined[:, total:]) == 0          # padding tokens get nothing


def test_sharded_processor_adds_the_audio_term_to_diffusers_cross_attention():
    from streamwise.stages.gpu.wan import SequenceShard, make_sharded_processor

    A, attn, kv, state = _audio_parts(1)
    hidden, text = torch.randn(1, 15, 32), torch.randn(1, 6, 32)
    shard = SequenceShard(rank=1, size=3, tokens_per_frame=5)
    with torch.no_grad():
        full = A.make_processor(kv, state)(attn, hidden, text)
        mine = make_sharded_processor(kv, state, shard)(attn, hidden[:, 5:10], text)
        torch.testing.assert_close(mine, full[:, 5:10], rtol=1e-5, atol=1e-6)
        state.windows = None                                         # outside a call: cross-attention only
        plain = make_sharded_processor(kv, state, shard)(attn, hidden[:, 5:10], text)
    assert not torch.allclose(plain, mine)
    with pytest.raises(ValueError, match="tokens_per_frame"):
        from streamwise.stages.gpu.wan import sharded_audio_attention

        state.windows, state.valid = A.windows_for(torch.randn(37, 16), 9)
        sharded_audio_attention(attn, kv, hidden, state, SequenceShard())
