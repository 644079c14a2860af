"""Which adapter serves which stage: ``make_adapter(stage, model)``.

Adapters are imported lazily, so a worker process loads only its own model's code.
The CPU rung's models are the defaults; GPU model families (issue 5) register here too.
"""

from __future__ import annotations

from importlib import import_module

from .runtime.base import StageAdapter

STAGES = ("screenplay", "tts", "image", "video", "mux")
#: Stages of the GPU chain (streamwise/workflow/chain.py), served only by GPU (or emulated) instances.
CHAIN_STAGES = ("sketch", "vae", "upscale")
#: The stage an emulated instance of a model serves (``streamwise up --emulate MODEL:HW:GPUS``;
#: others: ``video``). FramePack emulated is the chain's sketch.
EMULATED_STAGE = {"hunyuanframepack": "sketch", "hunyuanframepack-vae": "vae", "realesrgan-x2": "upscale"}

# (stage, model) -> "module:Class"; the first model of a stage is its default.
ADAPTERS: dict[tuple[str, str], str] = {
    ("screenplay", "script-parser"): "streamwise.stages.cpu.screenplay:ScriptScreenplay",
    ("screenplay", "llm"): "streamwise.stages.cpu.llm_screenplay:LlmScreenplay",   # topic/document -> LLM
    ("tts", "piper"): "streamwise.stages.cpu.tts:CpuSpeech",
    ("tts", "espeak-ng"): "streamwise.stages.cpu.tts:CpuSpeech",
    ("image", "cpu-art"): "streamwise.stages.cpu.image:CpuArt",
    ("video", "cpu-head"): "streamwise.stages.cpu.talking_head:CpuTalkingHead",
    ("mux", "pyav-fmp4"): "streamwise.stages.cpu.mux:PyavMux",
    # GPU models (issue 5): torch and diffusers load only inside the adapter's load()
    ("image", "flux"): "streamwise.stages.gpu.stage:FluxImageStage",
    ("image", "flux-kontext"): "streamwise.stages.gpu.stage:KontextImageStage",
    ("video", "fantasytalking"): "streamwise.stages.gpu.stage:FantasyTalkingStage",
    ("video", "hunyuanframepack"): "streamwise.stages.gpu.stage:FramePackStage",
    ("tts", "kokoro"): "streamwise.stages.gpu.stage:KokoroTtsStage",
}
_KWARGS = {("tts", "espeak-ng"): {"engine": "espeak"}}


def default_model(stage: str) -> str:
    """The default model of ``stage``.

    Raises:
        ValueError: unknown stage (the message lists the stages).
    """
    for (s, model) in ADAPTERS:
        if s == stage:
            return model
    raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")


def make_adapter(stage: str, model: str | None = None, *, emulate: bool = False, hardware: str = "cpu",
                 gpus: int = 0, options: dict | None = None) -> StageAdapter:
    """Instantiate the adapter for ``stage`` / ``model`` (default model when ``None``).

    ``options``: keyword arguments for the adapter (e.g. the LLM screenplay's ``backend``,
    ``llm_model``, ``url``); ``None`` values are left out.

    ``emulate``: an :class:`~streamwise.stages.cpu.emulated.EmulatedGpuStage` that serves ``model``
    on ``gpus`` × ``hardware`` by taking its profiled time around the stage's CPU rung.

    Raises:
        ValueError: unknown stage or model (the message lists the known models).
    """
    if emulate:
        if not model or hardware == "cpu" or gpus < 1:
            raise ValueError("--emulate needs --model, a GPU --hardware (a100, h100, h200, gb200) and --gpus >= 1")
        from .cpu.emulated import ChainPassThrough, EmulatedGpuStage

        inner = ChainPassThrough(stage) if stage in CHAIN_STAGES else make_adapter(stage)
        return EmulatedGpuStage(stage, model, hardware, gpus, inner)
    model = model or default_model(stage)
    target = ADAPTERS.get((stage, model))
    if target is None:
        known = ", ".join(m for s, m in ADAPTERS if s == stage) or "none"
        raise ValueError(f"no model {model!r} for stage {stage!r}; known: {known} (GPU adapters come with "
                         f"issue 5; --emulate stands in for a GPU model with its profiled time)")
    module, cls = target.split(":")
    kwargs = {**_KWARGS.get((stage, model), {}), **{k: v for k, v in (options or {}).items() if v is not None}}
    return getattr(import_module(module), cls)(**kwargs)
