"""Where a model's weights are: an explicit path, ``$STREAMWISE_MODELS/<id>``, or the Hugging Face cache.

Nothing is ever downloaded here. A checkpoint is named by its Hugging Face id (``org/name`` for a
repository, ``org/name/file`` for one file of it, as in ``configs/models.yaml``); :func:`resolve`
looks in order at

1. an explicit path (a worker's ``--weights`` or an adapter's ``paths`` argument),
2. ``$STREAMWISE_MODELS/<org>/<name>[/<file>]``, then ``$STREAMWISE_MODELS/<name>[/<file>]``,
3. the local Hugging Face cache (``local_files_only=True``; ``$HF_HOME`` / ``$HF_HUB_CACHE``),

and raises :class:`MissingCheckpointError` naming the model, every place looked at and the
commands that provide the weights.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "STREAMWISE_MODELS"


class MissingCheckpointError(FileNotFoundError):
    """A model's weights were not found locally. The message names the model, the checkpoint id,
    every place looked at and how to provide the weights (``hf download`` or ``$STREAMWISE_MODELS``)."""

    def __init__(self, model: str, checkpoint: str, looked: list[str]) -> None:
        self.model, self.checkpoint, self.looked = model, checkpoint, looked
        repo, file = split_id(checkpoint)
        target = f"$STREAMWISE_MODELS/{repo}"
        get = (f"huggingface-cli download {repo} {file} --local-dir {target}" if file
               else f"huggingface-cli download {repo} --local-dir {target}")
        lines = "\n".join(f"  - {p}" for p in looked)
        super().__init__(
            f"model {model!r}: checkpoint {checkpoint!r} not found locally (nothing is downloaded at run time).\n"
            f"Looked in:\n{lines}\n"
            f"Provide it with `{get}` (with STREAMWISE_MODELS set to a folder of checkpoints), "
            f"or put it in the Hugging Face cache (`huggingface-cli download {repo}`), "
            f"or pass an explicit path.")


def split_id(checkpoint: str) -> tuple[str, str | None]:
    """``"org/name"`` -> (``"org/name"``, None); ``"org/name/sub/file.ext"`` -> (``"org/name"``, ``"sub/file.ext"``)."""
    parts = checkpoint.strip("/").split("/")
    if len(parts) <= 2:
        return "/".join(parts), None
    return "/".join(parts[:2]), "/".join(parts[2:])


def _exists(path: Path, file: str | None) -> bool:
    return path.is_file() if file else path.is_dir() and any(path.iterdir())


def resolve(checkpoint: str, *, model: str = "", explicit: str | os.PathLike | None = None,
            models_dir: str | os.PathLike | None = None) -> Path:
    """The local path of ``checkpoint`` (a folder for a repository id, a file for ``org/name/file``).

    ``model`` is the StreamWise model name used in the error; ``models_dir`` overrides
    ``$STREAMWISE_MODELS``.

    Raises:
        MissingCheckpointError: not found in any of the places (see the module docstring).
    """
    repo, file = split_id(checkpoint)
    looked: list[str] = []
    if explicit is not None:
        p = Path(explicit).expanduser()
        c = p / file if file and p.is_dir() else p
        if c.is_file() or (c.is_dir() and any(c.iterdir())):
            return c
        looked.append(f"{c} (explicit path)")
    base = models_dir if models_dir is not None else os.environ.get(ENV)
    if base:
        for sub in (repo, repo.split("/")[-1]):
            c = Path(base).expanduser() / sub
            c = c / file if file else c
            if _exists(c, file):
                return c
            looked.append(f"{c} (${ENV})")
    else:
        looked.append(f"${ENV} (not set)")
    cached = _from_hf_cache(repo, file)
    if cached is not None:
        return cached
    looked.append(f"Hugging Face cache {_hf_cache_dir()} (local files only)")
    raise MissingCheckpointError(model or repo, checkpoint, looked)


def _hf_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:
        return os.environ.get("HF_HUB_CACHE") or os.path.expanduser("~/.cache/huggingface/hub")


def _from_hf_cache(repo: str, file: str | None) -> Path | None:
    """The cached snapshot (or file) of ``repo`` without any network access, or None."""
    try:
        from huggingface_hub import hf_hub_download, snapshot_download
    except ImportError:
        return None
    try:
        if file:
            return Path(hf_hub_download(repo, file, local_files_only=True))
        return Path(snapshot_download(repo, local_files_only=True))
    except Exception:  # LocalEntryNotFoundError, an invalid id, a partial cache: not there
        return None
