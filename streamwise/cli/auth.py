"""``streamwise auth init DIR --tenants a,b`` and ``streamwise layout`` (issue 11).

- ``auth init`` writes ``DIR/nats.conf`` (operator mode, MEMORY resolver, the ``STREAMWISE``
  account with JetStream) and one NATS ``.creds`` file per role (``admin``, ``scheduler``,
  ``worker``, ``worker-<model>`` for every model of ``--models``, ``tenant-<t>``,
  ``viewer-<t>``), mode 0600; run again with more tenants to add
  them, with ``--rotate`` to issue every credential anew and revoke the old ones
  (``docs/security.md``).
- ``layout`` creates the bus layout (streams, buckets, object stores, one upload store per
  tenant, one task stream ``SW_TASKS_<model>`` per model) with admin credentials: on an
  authenticated bus no other role may.
"""

from __future__ import annotations

import os
import sys


def add_parser(sub) -> None:
    a = sub.add_parser("auth", help="credentials and permissions of an authenticated bus")
    asub = a.add_subparsers(dest="auth_command", required=True)
    i = asub.add_parser("init", help="write DIR/nats.conf and one .creds file per role")
    i.add_argument("dir", help="directory to write (created, mode 0700)")
    i.add_argument("--tenants", required=True, help="comma-separated tenant names, e.g. a,b")
    i.add_argument("--models", default=None,
                   help="comma-separated worker models, one worker-<model>.creds each (default: every model the "
                        "stage registry serves)")
    i.add_argument("--rotate", action="store_true",
                   help="issue every user's credentials anew and revoke the old ones (restart the server after)")
    i.set_defaults(handler=cmd_auth_init)

    lay = sub.add_parser("layout", help="create the bus layout (admin credentials on an authenticated bus)")
    lay.add_argument("--nats", default=os.environ.get("STREAMWISE_NATS"), help="bus URL (default $STREAMWISE_NATS)")
    lay.add_argument("--creds", help="admin credentials file (default $STREAMWISE_CREDS)")
    lay.add_argument("--tenants", default="", help="tenants whose upload stores to create, e.g. a,b")
    lay.add_argument("--models", default=None,
                     help="comma-separated models whose task streams to create (default: the auth directory's, "
                          "else every model the stage registry serves)")
    lay.add_argument("--auth", help="an auth directory: its admin.creds, its tenants and its models")
    lay.set_defaults(handler=cmd_layout)


def registry_models(names: str | None = None) -> dict[str, str]:
    """Model -> stage of the stage registry (``stages/registry.py``), all of them or the
    comma-separated ``names``.

    Raises:
        ValueError: a name no worker serves (the message lists the models).
    """
    from ..stages.registry import ADAPTERS

    known = {model: stage for stage, model in ADAPTERS}
    if names is None:
        return known
    out = {}
    for name in filter(None, (n.strip() for n in names.split(","))):
        if name not in known:
            raise ValueError(f"--models: no worker serves model {name!r}; models are {', '.join(known)}")
        out[name] = known[name]
    return out


def cmd_auth_init(args) -> int:
    from ..bus.auth import init_auth

    try:
        models = registry_models(args.models)
        d = init_auth(args.dir, args.tenants.split(","), rotate=args.rotate, models=models)
    except ValueError as exc:   # AuthError is one
        print(f"streamwise auth: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {d.conf} and {len(d.users)} credentials files in {d.path} (tenants: {', '.join(d.tenants)})")
    if args.rotate:
        print("old credentials are refused once the server is restarted with the new nats.conf")
    return 0


def cmd_layout(args) -> int:
    from ..bus.auth import load_auth_dir
    from . import _run

    tenants = [t for t in args.tenants.split(",") if t.strip()]
    creds = args.creds
    try:
        models = list(registry_models(args.models)) if args.models else []
        if args.auth:
            d = load_auth_dir(args.auth)
            creds = creds or str(d.creds("admin"))
            tenants = tenants or list(d.tenants)
            models = models or list(d.models)
        models = models or list(registry_models())
    except ValueError as exc:   # AuthError is one
        print(f"streamwise layout: {exc}", file=sys.stderr)
        return 2
    if not args.nats:
        print("streamwise layout: give --nats URL (or set $STREAMWISE_NATS)", file=sys.stderr)
        return 2
    try:
        _run(create_layout(args.nats, creds, tenants, models))
    except (ConnectionError, RuntimeError, PermissionError) as exc:
        print(f"streamwise layout: {exc}", file=sys.stderr)
        return 1
    print(f"layout ready (upload stores for: {', '.join(tenants) or 'no tenants'}; task streams for "
          f"{len(models)} models)")
    return 0


async def create_layout(url: str, creds: str | None, tenants: list[str] | tuple[str, ...],
                        models: list[str] | tuple[str, ...] | None = None) -> None:
    """Connect with ``creds`` (the admin's) and create what is missing of the layout, with one
    upload store per tenant and one task stream per model (default: every model of the stage
    registry; :func:`streamwise.bus.layout.ensure_layout`).

    Raises:
        ConnectionError: the bus is unreachable or refuses the credentials.
    """
    from ..bus.client import connect, ensure_layout

    bus = await connect(url, name="streamwise-layout", creds=creds, layout="create")
    try:
        await ensure_layout(bus.js, bus.replicas, tenants=tuple(tenants),
                            models=tuple(models if models is not None else registry_models()))
    finally:
        await bus.close()


def pool_creds(auth) -> dict[str, str]:
    """The ``creds`` map of :class:`~streamwise.service.pool.Pool` for an auth directory: the
    scheduler's, the all-models worker's and each ``worker-<model>``'s."""
    creds = {"scheduler": str(auth.creds("scheduler")), "worker": str(auth.creds("worker"))}
    for model in auth.models:
        creds[f"worker-{model}"] = str(auth.creds("worker", model=model))
    return creds


def auth_args(auth_dir: str, role: str) -> list[str]:
    """``["--creds", DIR/<role>.creds]`` for a pool process of ``role``."""
    from ..bus.auth import load_auth_dir

    return ["--creds", str(load_auth_dir(auth_dir).creds(role))]

