"""Offline validation of rendered manifests: ``streamwise deploy validate DIR``.

- Kubernetes objects against the Kubernetes JSON schemas that ``kubernetes-validate`` ships
  (strict: unknown fields are errors), for one Kubernetes version (default 1.32);
- KEDA ``ScaledObject``s against KEDA's CRD schema as the ``cloudcoil-models-keda`` package's
  pydantic models (generated from KEDA's CRDs, 2.16), plus a check that no field is unknown to it;
- ``kubectl kustomize DIR`` when kubectl is on the PATH (the base builds).

The validators are in the ``dev`` extra (``pip install streamwise[dev]``); without them
:func:`validate_dir` raises a one-line error saying what to install.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

K8S_VERSION = "1.32"
#: Files of a rendered directory that are not Kubernetes objects.
NOT_MANIFESTS = ("kustomization.yaml", "nats-values.yaml")


def _unknown_fields(given: Any, known: Any, path: str = "") -> list[str]:
    """Paths of keys in ``given`` that the model's dump ``known`` does not have."""
    out = []
    if isinstance(given, dict) and isinstance(known, dict):
        for k, v in given.items():
            if k not in known:
                out.append(f"{path}.{k}".lstrip("."))
            else:
                out += _unknown_fields(v, known[k], f"{path}.{k}")
    elif isinstance(given, list) and isinstance(known, list):
        for i, (a, b) in enumerate(zip(given, known)):
            out += _unknown_fields(a, b, f"{path}[{i}]")
    return out


def validate_keda(doc: dict[str, Any]) -> list[str]:
    """Errors of one KEDA object (``ScaledObject``) against the cloudcoil KEDA models (empty: valid).

    Raises:
        RuntimeError: ``cloudcoil-models-keda`` is not installed.
    """
    try:
        from cloudcoil.models.keda import v1alpha1
        from pydantic import ValidationError
    except ImportError:
        raise RuntimeError("validating KEDA objects needs cloudcoil-models-keda (pip install streamwise[dev])") from None
    kind = doc.get("kind")
    model = getattr(v1alpha1, str(kind), None)
    if model is None or doc.get("apiVersion") != "keda.sh/v1alpha1":
        return [f"{kind}: not a keda.sh/v1alpha1 kind the KEDA models know"]
    try:
        obj = model.model_validate(doc)
    except ValidationError as exc:
        return [f"{kind} {doc.get('metadata', {}).get('name')}: {e['loc']}: {e['msg']}" for e in exc.errors()]
    dumped = obj.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return [f"{kind} {doc['metadata'].get('name')}: unknown field {f}" for f in _unknown_fields(doc, dumped)]


def validate_doc(doc: dict[str, Any], k8s_version: str = K8S_VERSION) -> list[str]:
    """Errors of one object (empty: valid): KEDA kinds by :func:`validate_keda`, the rest by
    ``kubernetes_validate.validate(..., strict=True)``.

    Raises:
        RuntimeError: ``kubernetes-validate`` is not installed.
    """
    if str(doc.get("apiVersion", "")).startswith("keda.sh/"):
        return validate_keda(doc)
    try:
        import kubernetes_validate
    except ImportError:
        raise RuntimeError("validating manifests needs kubernetes-validate (pip install streamwise[dev])") from None
    name = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
    try:
        kubernetes_validate.validate(doc, k8s_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{name}: {'.'.join(str(p) for p in exc.path)}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{name}: no Kubernetes {k8s_version} schema for {doc.get('apiVersion')} {doc.get('kind')}"]
    return []


def validate_dir(path: str | Path, k8s_version: str = K8S_VERSION) -> tuple[int, list[str]]:
    """Validate every object of every ``*.yaml`` in ``path`` but :data:`NOT_MANIFESTS`; returns
    ``(objects checked, errors)``, each error prefixed with its file.

    Raises:
        RuntimeError: a validator is not installed.
        FileNotFoundError: ``path`` has no YAML file.
    """
    files = sorted(p for p in Path(path).glob("*.yaml") if p.name not in NOT_MANIFESTS)
    if not files:
        raise FileNotFoundError(f"no manifests (*.yaml) in {path}")
    count, errors = 0, []
    for f in files:
        for doc in yaml.safe_load_all(f.read_text(encoding="utf-8")):
            if doc is None:
                continue
            count += 1
            errors += [f"{f.name}: {e}" for e in validate_doc(doc, k8s_version)]
    return count, errors


def kustomize(path: str | Path, kubectl: str | None = None) -> str | None:
    """``kubectl kustomize path`` (the built YAML), or ``None`` when kubectl is not on the PATH.

    Raises:
        RuntimeError: kustomize failed (its message).
    """
    kubectl = kubectl or shutil.which("kubectl")
    if not kubectl:
        return None
    r = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path}: {r.stderr.strip()}")
    return r.stdout
