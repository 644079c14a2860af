"""Which code and which checkpoints serve each GPU model: the ``adapters`` section of ``configs/models.yaml``.

Each entry names the adapter family (``adapter``), the diffusers pipeline class it drives
(``pipeline``, documentation and a check), the checkpoint ids it loads (all resolved locally by
:mod:`streamwise.stages.gpu.weights`, never downloaded) and its defaults (denoising steps,
guidance, dtype). The quality knobs of a task (size, steps, frames, fps) override the defaults per
call. The model constraints (fps, 1+4n frames, size multiples) stay in the ``models`` section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...core.constraints import ConfigError, read_config

ADAPTERS = ("flux", "flux-kontext", "wan-i2v-audio", "framepack", "realesrgan", "kokoro")
_CHECKPOINT_KEYS = ("checkpoint", "transformer", "image_encoder", "audio_encoder", "audio_weights")


@dataclass(frozen=True)
class AdapterSpec:
    """One GPU model's adapter config. ``checkpoints`` maps a role (``checkpoint``, ``transformer``,
    ``image_encoder``, ``audio_encoder``, ``audio_weights``) to a checkpoint id (``org/name`` or
    ``org/name/file``); ``options`` holds everything else (``default_steps``, ``guidance_scale``,
    ``dtype``, ``prompt``, ...)."""

    model: str
    adapter: str
    pipeline: str | None
    checkpoints: dict[str, str]
    options: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """An option, or ``default``."""
        return self.options.get(key, default)


def load_specs(name: str = "models.yaml", data: Any = None) -> dict[str, AdapterSpec]:
    """Adapter specs by model name from the ``adapters`` section of ``configs/<name>``.

    Raises:
        ConfigError: a missing section, an unknown adapter family or a missing ``checkpoint``; the
            message names the file and key.
    """
    if data is None:
        data = read_config(name)
    section = data.get("adapters") if isinstance(data, dict) else None
    if not isinstance(section, dict) or not section:
        raise ConfigError(f"{name}: adapters: must be a mapping of GPU model name -> adapter config")
    specs = {}
    for model, entry in section.items():
        where = f"{name}: adapters.{model}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a mapping, got {entry!r}")
        adapter = entry.get("adapter")
        if adapter not in ADAPTERS:
            raise ConfigError(f"{where}.adapter: must be one of {ADAPTERS}, got {adapter!r}")
        if not isinstance(entry.get("checkpoint"), str):
            raise ConfigError(f"{where}.checkpoint: the checkpoint id is required (org/name or org/name/file)")
        checkpoints = {k: str(entry[k]) for k in _CHECKPOINT_KEYS if entry.get(k)}
        options = {k: v for k, v in entry.items() if k not in _CHECKPOINT_KEYS and k not in ("adapter", "pipeline")}
        specs[str(model)] = AdapterSpec(str(model), adapter, entry.get("pipeline"), checkpoints, options)
    return specs


def spec_for(model: str) -> AdapterSpec:
    """The adapter spec of ``model`` from the packaged ``configs/models.yaml``.

    Raises:
        KeyError: ``model`` has no adapter entry (the message lists the configured ones).
    """
    specs = load_specs()
    if model not in specs:
        raise KeyError(f"no GPU adapter configured for model {model!r}; configured: {', '.join(sorted(specs))}")
    return specs[model]
