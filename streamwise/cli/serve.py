"""``streamwise serve [--host H] [--port P] [--nats URL]``: the HTTP gateway and its web page.

Without ``--nats`` it starts what ``streamwise up`` starts (an embedded nats-server, a scheduler
and a worker pool, ``--workers`` / ``--llm`` as there) and stops it on exit, so ``streamwise
serve`` alone is a working site. Prints the page's URL once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import sys


def add_parser(sub) -> None:
    s = sub.add_parser("serve", help="HTTP gateway + web page: submit a podcast, watch it while it is generated")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    s.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    s.add_argument("--nats", help="URL of a running bus with a worker pool (default: start an embedded one)")
    s.add_argument("--creds", help="NATS credentials file (.creds) for --nats")
    s.add_argument("--tenant", default="default", help="tenant the gateway submits and reads requests under")
    s.add_argument("--workers", help="with the embedded pool: instances per stage, e.g. tts=2,video=3")
    from . import _llm_options
    _llm_options(s)
    s.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the gateway until interrupted (Ctrl-C / SIGTERM). Exit 1 with a one-line reason when the
    bus cannot be reached or the port is taken."""
    from ..bus.server import EmbeddedServer
    from ..service.pool import DEFAULT_WORKERS, Pool, parse_workers
    from . import _exit_on_sigterm, _llm_args, _run, _wait_ready

    _exit_on_sigterm()
    server = pool = None
    try:
        if args.nats:
            url = args.nats
        else:
            workers = parse_workers(args.workers)
            extra = []
            llm = args.llm or args.llm_model or args.llm_url
            if llm:   # LLM screenplay workers (they parse scripts too), as `streamwise up --llm` does
                count = max(workers.get("screenplay", DEFAULT_WORKERS["screenplay"]), 1)
                workers = {**workers, "screenplay": 0}
                extra = [(f"screenplay-llm-{i}", ["worker", "--stage", "screenplay", "--model", "llm",
                                                  *_llm_args(args)]) for i in range(count)]
            print("starting embedded bus and workers ...", file=sys.stderr, flush=True)
            server = EmbeddedServer().start()
            url = server.url
            pool = Pool(url, workers, extra=extra).start()
            _run(_wait_ready(url, pool, 300.0 if llm else 120.0, pool.stages() | ({"screenplay"} if llm else set())))
            print(f"bus {url} ready", file=sys.stderr, flush=True)
        _run(_serve(url, args, pool))
        return 0
    except (ConnectionError, TimeoutError, OSError, RuntimeError) as exc:
        where = " (is the port in use? try --port)" if getattr(exc, "errno", None) == errno.EADDRINUSE else ""
        print(f"streamwise serve: {exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if pool:
            pool.stop()
        if server:
            server.stop()


async def _serve(url: str, args: argparse.Namespace, pool) -> None:
    from ..bus.client import connect
    from ..gateway import serve

    # creds= (not nats-py's user_credentials): the bus reads the role from them, so a tenant's gateway binds
    # to the layout instead of trying to create it
    bus = await connect(url, name="streamwise-gateway", creds=args.creds)
    stop = asyncio.Event()

    async def supervise() -> None:   # the embedded pool: restart a child that died, as `up` does
        while pool is not None and not stop.is_set():
            pool.supervise(log=lambda line: print(line, file=sys.stderr, flush=True))
            await asyncio.sleep(0.5)

    watcher = asyncio.create_task(supervise())
    try:
        await serve(bus, host=args.host, port=args.port, tenant=args.tenant, stop=stop,
                    ready=lambda page: print(page, flush=True))
    finally:
        stop.set()
        watcher.cancel()
        await bus.close()
