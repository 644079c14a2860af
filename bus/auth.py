"""Bus authentication and least-privilege roles (issue 11; ``docs/security.md``).

StreamWise runs in one NATS account (``STREAMWISE``, JetStream enabled) with five roles,
each a NATS user whose permissions :func:`.permissions.role_permissions` computes (re-exported
here with :func:`.permissions.permissions_markdown`):

- ``admin``: everything; the only role that may create or change streams, buckets and the
  object stores (``streamwise layout``).
- ``scheduler``: consumes ``sw.requests.>``, dispatches ``sw.tasks.>``, reads ``sw.events.>``,
  publishes ``sw.status.>``; the instance and cache KV buckets and the artifact store.
- ``worker``: pulls its tasks from the task stream of every model of the pool
  (``SW_TASKS_<model>``), publishes events and segments, writes heartbeats and artifacts, reads
  the tenants' uploads: one user for all worker models (a pool on one machine);
- ``worker-<model>``: the same for one model only: consumers of ``SW_TASKS_<model>`` only,
  segments only for the mux stage, the tenants' uploads only for the screenplay stage.
- ``tenant-<t>``: publishes ``sw.requests.<t>``, uploads to its own object store
  ``sw_uploads_<t>``, reads ``sw.segments.<t>.>`` and ``sw.status.<t>.>``; nothing else.
- ``viewer-<t>``: reads ``sw.segments.<t>.>`` and ``sw.status.<t>.>``; publishes nothing.

Every user has its own reply-subject prefix ``_INBOX_<user>`` (:func:`bus.subjects.inbox_prefix`)
and may subscribe only below it, so no user can read another's replies or deliveries.

:func:`init_auth` writes a nats-server configuration in operator (decentralised JWT) mode with
a MEMORY resolver and one NATS ``.creds`` file (user JWT + nkey seed) per role; the JWTs are
made with ``nats-jwt`` and the keys with ``nkeys`` (Ed25519). :func:`password_conf` renders
the same permissions as user/password users in a server ``accounts {}`` block, the simple form.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from . import subjects as S
from .permissions import (ROLES, AuthError, Permissions, _user_permissions, permissions_markdown,
                          role_permissions, user_name)

__all__ = ["ACCOUNT", "ROLES", "AuthDir", "AuthError", "Permissions", "init_auth", "load_auth_dir", "password_conf",
           "permissions_markdown", "read_creds_jwt", "role_permissions", "server_conf", "server_settings",
           "too_open", "user_name"]

ACCOUNT = "STREAMWISE"


# --- credentials files -----------------------------------------------------------------------------

CREDS_TEMPLATE = ("-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
                  "************************* IMPORTANT *************************\n"
                  "NKEY Seed printed below can be used to sign and prove identity.\n"
                  "NKEYs are sensitive and should be treated as secrets.\n\n"
                  "-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n"
                  "*************************************************************\n")
"""The NATS ``.creds`` layout (as ``nsc`` writes it; nats-py, the Go client and natscli read it)."""


def read_creds_jwt(path: str | os.PathLike) -> dict:
    """The (unverified) claims of the user JWT in a ``.creds`` file: ``name``, ``sub`` (the
    user's public nkey), ``nats`` (permissions). Used only to pick the connection's inbox
    prefix; the server verifies the JWT.

    Raises:
        AuthError: the file cannot be read or holds no user JWT (one line naming the file).
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise AuthError(f"cannot read credentials file {path}: {exc.strerror}") from None
    lines = [ln.strip() for ln in text.splitlines()]
    try:
        jwt = lines[lines.index("-----BEGIN NATS USER JWT-----") + 1]
        payload = jwt.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, IndexError) as exc:
        raise AuthError(f"credentials file {path} holds no NATS user JWT ({exc})") from None


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start (never readable by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


# --- operator (JWT) mode ----------------------------------------------------------------------------

@dataclass
class AuthDir:
    """What :func:`init_auth` wrote into ``path``: ``nats.conf``, ``<user>.creds`` for every
    user, ``auth.json`` (tenants and public keys, no secrets) and the operator and account seeds
    (``operator.nk``, ``account.nk``, mode 0600) that issue and revoke credentials."""

    path: Path
    tenants: tuple[str, ...]
    users: dict[str, str] = field(default_factory=dict)   # user name -> public nkey
    models: dict[str, str] = field(default_factory=dict)  # model -> stage, one worker-<model> user each

    @property
    def conf(self) -> Path:
        return self.path / "nats.conf"

    def creds(self, role: str, tenant: str | None = None, model: str | None = None) -> Path:
        """Path of a role's ``.creds`` file, e.g. ``creds("tenant", "a")`` -> ``DIR/tenant-a.creds``,
        ``creds("worker", model="piper")`` -> ``DIR/worker-piper.creds``."""
        return self.path / f"{user_name(role, tenant, model)}.creds"

    def worker_creds(self, model: str) -> Path:
        """``worker-<model>.creds`` when this directory has that model's user, else the
        all-models ``worker.creds``."""
        path = self.creds("worker", model=model) if model in self.models else self.creds("worker")
        return path


def load_auth_dir(path: str | os.PathLike) -> AuthDir:
    """Read ``DIR/auth.json`` written by :func:`init_auth`.

    Raises:
        AuthError: not a directory made by ``streamwise auth init`` (one line).
    """
    p = Path(path)
    try:
        meta = json.loads((p / "auth.json").read_text())
    except (OSError, ValueError) as exc:
        raise AuthError(f"{p} is not an auth directory (streamwise auth init {p} --tenants ...): "
                        f"{getattr(exc, 'strerror', None) or exc}") from None
    return AuthDir(path=p, tenants=tuple(meta["tenants"]), users=dict(meta["users"]),
                   models=dict(meta.get("models", {})))


def _load_or_make(path: Path, make):
    import nkeys

    if path.exists():
        return nkeys.from_seed(path.read_bytes().strip())
    kp = make()
    _write_secret(path, kp.seed.decode() + "\n")
    return kp


def init_auth(path: str | os.PathLike, tenants: list[str] | tuple[str, ...], *, rotate: bool = False,
              max_payload_mb: int = 8, models: dict[str, str] | None = None) -> AuthDir:
    """Write (or extend) an auth directory for ``tenants``.

    A new directory gets an operator, a system account, the ``STREAMWISE`` account (JetStream
    enabled, no limits) and one user per role. On an existing directory the operator and
    account keys are kept: users that exist keep their credentials unless their permissions
    changed (the worker users list the tenants' upload stores), new ones (new tenants, new
    models) are issued; with ``rotate`` every user is issued anew and the old user keys are revoked in the
    account JWT (the server must be restarted with the new ``nats.conf``).

    ``models``: model -> stage (``streamwise auth init`` passes every model of the stage
    registry): one ``worker-<model>.creds`` each (:func:`role_permissions` with ``model``), besides
    the all-models ``worker.creds``; they are added to those of an existing directory. They are
    also the task streams (``SW_TASKS_<model>``) the scheduler and the all-models worker may use:
    a directory without models gives those two no task stream at all.

    Raises:
        AuthError: no tenants, or a tenant or model that is not a subject token.
    """
    from nats_jwt.nkeys_ext import create_account_pair, create_operator_pair, create_user_pair
    from nats_jwt.v2.account_claims import AccountClaims
    from nats_jwt.v2.operator_claims import OperatorClaims
    from nats_jwt.v2.types import Permission
    from nats_jwt.v2.user_claims import UserClaims

    tenants = tuple(dict.fromkeys(t.strip() for t in tenants if t.strip()))
    if not tenants:
        raise AuthError("give at least one tenant (--tenants a,b)")
    for t in tenants:
        try:
            S.token(t)
        except ValueError as exc:
            raise AuthError(f"tenant {t!r}: {exc}") from None
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    os.chmod(p, 0o700)
    old = load_auth_dir(p) if (p / "auth.json").exists() else None
    okp = _load_or_make(p / "operator.nk", create_operator_pair)
    skp = _load_or_make(p / "system.nk", create_account_pair)
    akp = _load_or_make(p / "account.nk", create_account_pair)
    all_tenants = tuple(dict.fromkeys((*(old.tenants if old else ()), *tenants)))
    all_models = {**(old.models if old else {}), **(models or {})}

    names = (["admin", "scheduler", "worker"] + [user_name("worker", model=m) for m in all_models]
             + [user_name(r, t) for t in all_tenants for r in ("tenant", "viewer")])
    users = dict(old.users) if old else {}
    revoked_path = p / "revoked.json"
    revoked: dict[str, int] = dict(json.loads(revoked_path.read_text())) if revoked_path.exists() else {}
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    for name in names:
        perms = _user_permissions(name, all_tenants, all_models)
        creds = p / f"{name}.creds"
        # a user whose permissions changed (the workers list every tenant's upload store) is reissued
        stale = creds.exists() and read_creds_jwt(creds).get("nats", {}).get("pub", {}).get("allow") != list(
            perms.pub_allow)
        if name in users and creds.exists() and not rotate and not stale:
            continue
        if name in users and (rotate or stale):
            revoked[users[name]] = now
        ukp = create_user_pair()
        uc = UserClaims(ukp.public_key.decode(), name)
        uc.nats.pub = Permission(allow=list(perms.pub_allow), deny=list(perms.pub_deny))
        uc.nats.sub = Permission(allow=list(perms.sub_allow), deny=list(perms.sub_deny))
        _write_secret(creds, CREDS_TEMPLATE.format(jwt=uc.encode(akp), seed=ukp.seed.decode()))
        users[name] = ukp.public_key.decode()

    oc = OperatorClaims(okp.public_key.decode(), "streamwise")
    oc.nats.system_account = skp.public_key.decode()
    sysc = AccountClaims(skp.public_key.decode(), "SYS")
    ac = AccountClaims(akp.public_key.decode(), ACCOUNT)
    ac.nats.limits.disk_storage = -1      # JetStream enabled for the account, no account-wide cap
    ac.nats.limits.memory_storage = -1    # (every stream has its own bounds: configs/limits.yaml)
    settings = {
        "max_payload": f"{max_payload_mb}MB",
        # a user JWT travels in the CONNECT line: a role with many subjects (the worker reads
        # every tenant's uploads) outgrows the 4 KB default
        "max_control_line": "64KB",
        "operator": oc.encode(okp),
        "system_account": skp.public_key.decode(),
        "resolver": "MEMORY",
        "resolver_preload": {skp.public_key.decode(): sysc.encode(okp),
                             akp.public_key.decode(): _with_revocations(ac.encode(okp), revoked, okp)},
    }
    conf = (f"# nats-server configuration written by `streamwise auth init` (no secrets in this file).\n"
            f"# Run: nats-server -js -c {p / 'nats.conf'}   (or include it in a configuration of your own)\n"
            + server_conf(settings))
    (p / "server.json").write_text(json.dumps(settings, indent=1) + "\n")
    (p / "nats.conf").write_text(conf)
    (p / "revoked.json").write_text(json.dumps(revoked, indent=1) + "\n")
    (p / "auth.json").write_text(json.dumps({"account": akp.public_key.decode(), "tenants": list(all_tenants),
                                             "models": all_models, "users": users}, indent=1) + "\n")
    return AuthDir(path=p, tenants=all_tenants, users=users, models=all_models)


#: Settings of :func:`server_settings` whose values nats-server takes unquoted (sizes, the resolver kind).
_RAW_SETTINGS = ("max_payload", "max_control_line", "resolver")


def server_conf(settings: dict) -> str:
    """The nats-server configuration lines of ``settings`` (:func:`server_settings`): what
    ``DIR/nats.conf`` holds and what :func:`helm_merge` gives the NATS Helm chart."""
    lines = [f"{k}: {settings[k]}" for k in ("max_payload", "max_control_line", "operator", "system_account",
                                            "resolver")]
    preload = "".join(f"  {pub}: {jwt}\n" for pub, jwt in settings["resolver_preload"].items())
    return "\n".join(lines) + f"\nresolver_preload: {{\n{preload}}}\n"


def server_settings(path: str | os.PathLike) -> dict:
    """The server settings an auth directory's ``nats.conf`` was written from (``DIR/server.json``:
    ``max_payload``, ``max_control_line``, ``operator``, ``system_account``, ``resolver``,
    ``resolver_preload``; public JWTs and keys only).

    Raises:
        AuthError: no ``server.json`` (a directory from before it: run ``streamwise auth init`` on it again).
    """
    p = Path(path) / "server.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise AuthError(f"{p}: {getattr(exc, 'strerror', None) or exc}; run `streamwise auth init {Path(path)} "
                        f"--tenants ...` on it again") from None


def helm_merge(settings: dict) -> dict:
    """``settings`` (:func:`server_settings`) as the official NATS Helm chart's ``config.merge``
    value: the chart writes merge keys into its nats.conf as JSON, and a string ``<< X >>``
    unquoted (its documented form for sizes and keywords), so the chart's servers run the same
    operator, accounts and resolver as ``DIR/nats.conf``."""
    return {k: (f"<< {v} >>" if k in _RAW_SETTINGS else v) for k, v in settings.items()}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _with_revocations(jwt: str, revoked: dict[str, int], signer) -> str:
    """``jwt`` (an account JWT) with ``nats.revocations`` = ``revoked`` (user public key -> Unix
    s: JWTs issued at or before it are refused), signed again by ``signer``. nats-jwt 0.2.2
    drops the revocation list when it serialises an account, so it is added here, with the JWT
    id computed as the NATS JWT library does (base32 of SHA-512/256 of the claims)."""
    import hashlib

    if not revoked:
        return jwt
    header, payload, _ = jwt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["nats"]["revocations"] = dict(revoked)
    claims["jti"] = ""
    claims["jti"] = base64.b32encode(hashlib.new("sha512_256", json.dumps(claims).encode()).digest()
                                     ).rstrip(b"=").decode()
    to_sign = f"{header}.{_b64(json.dumps(claims).encode())}"
    return f"{to_sign}.{_b64(signer.sign(to_sign.encode()))}"


# --- user/password mode (the simple form) ----------------------------------------------------------

def _conf_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def password_conf(tenants: list[str] | tuple[str, ...], passwords: dict[str, str],
                  models: dict[str, str] | None = None) -> str:
    """A nats-server ``accounts {}`` block with the same roles as user/password users (the
    simple form: clients connect with ``nats://<user>:<password>@host:port``). ``passwords``
    maps each user name (:func:`user_name`) to its password; a plain password or a bcrypt hash
    (``$2a$...``) as nats-server accepts. ``models``: model -> stage, one ``worker-<model>`` user each.

    Raises:
        AuthError: a user without a password.
    """
    models = dict(models or {})
    names = (["admin", "scheduler", "worker"] + [user_name("worker", model=m) for m in models]
             + [user_name(r, t) for t in tenants for r in ("tenant", "viewer")])
    users = []
    for name in names:
        if name not in passwords:
            raise AuthError(f"no password for user {name}")
        perms = _user_permissions(name, tuple(tenants), models)
        pub = f"allow: {_conf_list(perms.pub_allow)}, deny: {_conf_list(perms.pub_deny)}"
        sub = f"allow: {_conf_list(perms.sub_allow)}, deny: {_conf_list(perms.sub_deny)}"
        users.append(f"      {{ user: {json.dumps(name)}, password: {json.dumps(passwords[name])}, permissions: {{\n"
                     f"          publish: {{ {pub} }}\n          subscribe: {{ {sub} }}\n      }} }}")
    return (f"accounts {{\n  {ACCOUNT}: {{\n    jetstream: enabled\n    users: [\n" + "\n".join(users)
            + "\n    ]\n  }\n}\n")


def too_open(path: str | os.PathLike) -> bool:
    """True when ``path`` is readable or writable by its group or others (a secret should be 0600)."""
    return bool(os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO))
