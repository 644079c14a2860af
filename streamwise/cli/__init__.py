"""The ``streamwise`` command line.

- ``streamwise generate --script PATH --out DIR [--ttff S] [--nats URL]``: one podcast.
  Without ``--nats`` it starts an embedded nats-server, a scheduler and one worker per
  stage, and stops them at the end.
- ``streamwise up [--port P] [--nats URL] [--workers tts=2,video=3]``: a worker pool
  that runs until interrupted; prints the bus URL as its first line.
- ``streamwise worker --stage S [--model M] --nats URL``: one worker instance.
- ``streamwise scheduler --nats URL``: one request-scheduler process.

``generate`` and ``watch`` are :mod:`.generate`; the other commands' modules are named after them
(:mod:`.profile`, :mod:`.deploy`, ...).

Exit code 0 on success; on failure a one-line reason on stderr and code 1 (2 for usage).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from ..bus.client import LayoutError, connect, redact
from ..bus.registry import wait_for_stages
from ..bus.server import EmbeddedServer
from ..service.pool import DEFAULT_WORKERS, Pool, emulated_workers, parse_workers
from ..stages.registry import CHAIN_STAGES, STAGES

FORMATS = ("text", "vtt", "srt", "json")
MAX_PLAN_INSTANCES = 32   # `up --plan` starts one emulated worker process per replica: keep one machine usable


def _run(coro) -> object:
    """Run a coroutine on uvloop when available (it is faster for many small messages)."""
    try:
        import uvloop
        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streamwise", description="Stream a generated video podcast over NATS JetStream.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="turn a script, a topic or a document into a streamed podcast")
    g.add_argument("--script", help="script file: 'Speaker: line' text, WebVTT, SRT or JSON")
    g.add_argument("--topic", help="what the show is about: an LLM writes the screenplay, streamed line by line")
    g.add_argument("--document", help="a .txt, .md or .pdf file the LLM writes the show about (alone or with --topic)")
    _llm_options(g)
    g.add_argument("--format", choices=FORMATS, help="script format (default: detect)")
    g.add_argument("--out", required=True, help="output directory (index.m3u8, podcast.mp4, report.json)")
    g.add_argument("--ttff", type=float, default=1.5, help="time-to-first-frame SLO in seconds (default 1.5)")
    g.add_argument("--nats", help="URL of a running bus with a worker pool (default: start an embedded one)")
    g.add_argument("--tenant", default="default")
    g.add_argument("--creds", help="NATS credentials file (a tenant's, from streamwise auth init; default "
                                   "$STREAMWISE_CREDS); needs --nats")
    g.add_argument("--title", help="show title (default: from the script)")
    g.add_argument("--voice", action="append", default=[], metavar="SPEAKER=VOICE",
                   help="the voice of a speaker: heart, joe, or with a pitch ratio joe@0.9 (repeatable)")
    g.add_argument("--look", action="append", default=[], metavar="SPEAKER=TEXT",
                   help="how a speaker looks, e.g. 'Socrates=an old bearded man in a toga' (repeatable)")
    g.add_argument("--size", default="640x400", help="WIDTHxHEIGHT in pixels, multiples of 8 (default 640x400)")
    g.add_argument("--fps", type=float, default=25.0,
                   help="frames per second: 24, 25, 30, 50, 60 ... (a frame must be a whole number of audio "
                        "samples at 22050 or 48000 Hz; default 25)")
    g.add_argument("--segment", type=float, default=2.0, help="segment length in seconds (default 2)")
    g.add_argument("--first-segment", type=float, default=1.0,
                   help="length of the first segment in seconds (default 1; shorter starts sooner)")
    g.add_argument("--max-clip", type=float, default=3.5, help="longest talking-head clip in seconds (default 3.5)")
    g.add_argument("--timeout", type=float, default=120.0, help="fail after this many seconds without progress")
    g.add_argument("--quiet", action="store_true", help="no progress output (also when stdout is not a terminal)")

    wa = sub.add_parser("watch", help="stream a request submitted elsewhere (from its first segment) into a directory")
    wa.add_argument("request_id", help="the request's id (generate prints it; any client's request_id)")
    wa.add_argument("--nats", required=True, help="URL of the bus the request was submitted to")
    wa.add_argument("--out", required=True, help="output directory (index.m3u8, podcast.mp4, report.json)")
    wa.add_argument("--tenant", default="default")
    wa.add_argument("--creds", help="NATS credentials file (a tenant's or viewer's; default $STREAMWISE_CREDS)")
    wa.add_argument("--timeout", type=float, default=120.0, help="fail after this many seconds without progress")
    wa.add_argument("--quiet", action="store_true", help="no progress output")

    u = sub.add_parser("up", help="run a bus + scheduler + worker pool until interrupted")
    u.add_argument("--port", type=int, help="port of the embedded nats-server (default: a free one)")
    u.add_argument("--nats", help="use this running server instead of an embedded one")
    u.add_argument("--workers", help=f"instances per stage, e.g. tts=2,video=3 (default: image=2 and one of every "
                                     f"other stage; stages: {', '.join(STAGES)})")
    u.add_argument("--emulate", action="append", default=[], metavar="MODEL:HARDWARE:GPUS",
                   help="also start an emulated GPU video instance, e.g. fantasytalking:gb200:40 (repeatable)")
    u.add_argument("--plan", help="a provisioner plan (streamwise provision --out): one emulated GPU video instance per replica")
    _llm_options(u)   # with --llm / --llm-model the screenplay workers are LLM workers (topics, documents and scripts)
    u.add_argument("--auth", metavar="DIR",
                   help="authenticated bus: an auth directory (streamwise auth init); the embedded server runs with "
                        "DIR/nats.conf and each process with its own role's credentials")

    w = sub.add_parser("worker", help="run one worker instance")
    w.add_argument("--stage", required=True, choices=STAGES + CHAIN_STAGES)
    w.add_argument("--model", help="model of the stage (default: the stage's CPU model)")
    w.add_argument("--hardware", default="cpu")
    w.add_argument("--gpus", type=int, default=0)
    w.add_argument("--instance", help="instance id (default: <stage>-<host>-<pid>-<rand>)")
    w.add_argument("--emulate", action="store_true",
                   help="stand in for a GPU model: CPU-rung output, the model's profiled time (marked emulated)")
    _llm_options(w)
    w.add_argument("--nats", default=os.environ.get("STREAMWISE_NATS"),
                   help="bus URL (default $STREAMWISE_NATS: keeps a URL with a password out of the command line)")
    w.add_argument("--creds", help="NATS credentials file (the worker role's; default $STREAMWISE_CREDS)")
    w.add_argument("--health-port", type=int, help="serve /healthz, /readyz, /metrics on this port (default: off)")

    s = sub.add_parser("scheduler", help="run one request-scheduler process")
    s.add_argument("--nats", default=os.environ.get("STREAMWISE_NATS"),
                   help="bus URL (default $STREAMWISE_NATS: keeps a URL with a password out of the command line)")
    s.add_argument("--creds", help="NATS credentials file (the scheduler role's; default $STREAMWISE_CREDS)")
    s.add_argument("--policy", choices=("edf", "fifo"), default="edf",
                   help="dispatch order: earliest deadline first (default) or the FIFO baseline")
    s.add_argument("--no-cache", action="store_true", help="do not use or fill the result cache")
    s.add_argument("--stats", help="write dispatch-overhead samples (JSON) to this file on exit")
    s.add_argument("--health-port", type=int,
                   help="serve /healthz, /readyz and the demand signal on /metrics on this port (default: off)")

    b = sub.add_parser("bench", help="measure TTFF, realtime factor and peak memory of one podcast")
    b.add_argument("--script", help="script file (default: examples/two_minutes.txt)")
    b.add_argument("--topic", help="measure the topic path instead: an LLM screenplay worker writes the show "
                                   "(with the --llm options); TTFF includes the opening that needs no LLM")
    _llm_options(b)
    b.add_argument("--out", help="output directory (default: a temporary one)")
    b.add_argument("--size", default="640x400")
    b.add_argument("--fps", type=float, default=25.0)
    b.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    b.add_argument("--requests", help="scheduler benchmark: concurrent request counts, e.g. 1,4,16")
    b.add_argument("--policy", default="edf,fifo", help="scheduler benchmark: policies to compare (edf,fifo)")
    b.add_argument("--emulate", action="append", default=[],
                   help="scheduler benchmark: add an emulated GPU video instance MODEL:HARDWARE:GPUS (repeatable)")
    b.add_argument("--dispatch", action="store_true",
                   help="with --requests: measure only the scheduler's own cost per task, its tasks answered at "
                        "once by a synthetic load generator (no media is produced)")
    from ..sim.cli import add_parsers as sim_parsers   # simulate, provision, bench-sim (issue 4)
    p.set_defaults(sim_handlers=sim_parsers(sub))
    from .profile import add_parser as profile_parser   # profile a GPU adapter (issue 5)
    profile_parser(sub)
    from ..bench.faults import add_parser as faults_parser   # the fault matrix (issue 9)
    faults_parser(sub)
    from .timeline import add_parser as timeline_parser   # the Gantt chart of a request (issue 13)
    timeline_parser(sub)
    from .deploy import add_parser as deploy_parser   # Kubernetes manifests from a plan (issue 14)
    deploy_parser(sub)
    from .script import add_parser as script_parser   # see how a script is read (issue 12)
    script_parser(sub)
    from .auth import add_parser as auth_parser   # auth init, layout (issue 11)
    auth_parser(sub)
    from .serve import add_parser as serve_parser   # the HTTP gateway and its page (issue 13)
    serve_parser(sub)
    from .simpool import add_parser as simpool_parser   # the live request model simulated (issue 10)
    simpool_parser(sub)
    return p


def _llm_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--llm", choices=("vllm", "openai", "transformers"),
                   help="screenplay LLM backend (default: vllm when importable, else transformers; openai with --llm-url)")
    p.add_argument("--llm-model", help="LLM checkpoint: a name from configs/models.yaml (default smollm2-135m), a "
                                       "Hugging Face directory or a .gguf file; for --llm openai, the server's model id")
    p.add_argument("--llm-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (vllm serve)")
    p.add_argument("--llm-max-tokens", type=int, help="cap on generated tokens per screenplay (default 700)")


def _llm_args(args) -> list[str]:
    """The worker command-line options that carry ``args``' LLM choices."""
    out = []
    for flag, value in (("--llm", args.llm), ("--llm-model", args.llm_model), ("--llm-url", args.llm_url),
                        ("--llm-max-tokens", args.llm_max_tokens)):
        if value is not None:
            out += [flag, str(value)]
    return out


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"streamwise: --size {text!r}: expected WIDTHxHEIGHT, e.g. 640x400") from None
    return w, h


def _use_creds(path: str | None, nats: str | None = "") -> None:
    """``--creds FILE`` of a worker or scheduler: its :func:`connect` reads ``$STREAMWISE_CREDS``.

    Raises:
        ValueError: no ``--nats`` (nor ``$STREAMWISE_NATS``), or an unreadable credentials file.
    """
    if not nats:
        raise ValueError("give --nats URL (or set $STREAMWISE_NATS)")
    if path:
        if not os.access(path, os.R_OK):
            raise ValueError(f"--creds {path}: not a readable file")
        os.environ["STREAMWISE_CREDS"] = path


def cmd_worker(args) -> int:
    from ..stages.registry import make_adapter

    _use_creds(args.creds, args.nats)
    from ..stages.runtime.worker import serve

    options = None
    if args.stage == "screenplay" and args.model == "llm":
        options = {"backend": args.llm, "llm_model": args.llm_model, "url": args.llm_url,
                   "max_tokens": args.llm_max_tokens}
    adapter = make_adapter(args.stage, args.model, emulate=args.emulate, hardware=args.hardware, gpus=args.gpus,
                           options=options)
    # serve() handles SIGTERM/SIGINT itself: it drains (finishes or hands back what it holds)
    _run(serve(args.nats, adapter, instance=args.instance, hardware=args.hardware, gpus=args.gpus,
               emulated=args.emulate, health_port=args.health_port))
    return 0


def cmd_scheduler(args) -> int:
    from ..service.run import serve

    _use_creds(args.creds, args.nats)
    # serve() handles SIGTERM/SIGINT itself: active requests are handed over to other schedulers
    _run(serve(args.nats, policy=args.policy, use_cache=not args.no_cache, stats_path=args.stats,
               health_port=args.health_port))
    return 0


def cmd_up(args) -> int:
    workers = parse_workers(args.workers)
    from ..sim.cluster import plan_emulate_specs
    planned = plan_emulate_specs(args.plan) if args.plan else []
    if len(planned) > MAX_PLAN_INSTANCES:
        raise ValueError(f"--plan {args.plan}: {len(planned)} GPU video instances, one process each on this machine "
                         f"(at most {MAX_PLAN_INSTANCES}); use a smaller plan (streamwise provision --budget USD) or "
                         f"deploy it on a cluster (deploy/README.md)")
    extra = emulated_workers(args.emulate + planned)
    llm = args.llm or args.llm_model or args.llm_url
    shown = dict(workers)
    if llm:   # LLM screenplay workers in place of the script parsers (they parse scripts too)
        count = max(workers.get("screenplay", DEFAULT_WORKERS["screenplay"]), 1)
        workers = {**DEFAULT_WORKERS, **workers, "screenplay": 0}
        extra += [(f"screenplay-llm-{i}", ["worker", "--stage", "screenplay", "--model", "llm", *_llm_args(args)])
                  for i in range(count)]
        shown["screenplay"] = f"{count} (llm)"
    creds, admin = {}, None
    if args.auth:   # each role with its own credentials; the admin creates the layout, once
        from ..bus.auth import load_auth_dir

        from .auth import pool_creds

        auth = load_auth_dir(args.auth)
        creds = pool_creds(auth)   # each worker with its model's credentials (worker-<model>.creds)
        admin = str(auth.creds("admin"))
    server = None if args.nats else EmbeddedServer(port=args.port,
                                                   extra_conf=auth.conf.read_text() if args.auth else "").start()
    url = args.nats or server.url
    print(redact(url), flush=True)
    if args.auth:
        from .auth import create_layout

        try:
            _run(create_layout(url, admin, auth.tenants, list(auth.models) or None))
        except BaseException:
            if server:
                server.stop()
            raise
        print(f"authenticated bus ({auth.conf}); tenants {', '.join(auth.tenants)} connect with "
              f"--creds {auth.path}/tenant-<tenant>.creds", flush=True)
    pool = Pool(url, workers, extra=extra, creds=creds).start()
    try:
        _run(_wait_ready(url, pool, 300.0 if llm else 120.0, pool.stages() | ({"screenplay"} if llm else set()),
                         creds=admin))
        print(f"ready: {', '.join(f'{s}={n}' for s, n in shown.items())} (Ctrl-C to stop)", flush=True)
        while True:   # supervise: a child that dies is restarted, with a backoff, and the log says so
            pool.supervise(log=lambda line: print(line, flush=True))
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        pool.stop()
        if server:
            server.stop()


async def _wait_ready(url: str, pool: Pool | None, timeout_s: float, stages: set[str] | None = None,
                      creds: str | None = None) -> None:
    bus = await connect(url, name="streamwise-wait", creds=creds)
    try:
        if bus.instances is None:   # a tenant's credentials may not read the heartbeats: the request waits instead
            return
        wait = asyncio.create_task(wait_for_stages(bus.instances, stages or pool.stages(), timeout_s))
        while not wait.done():
            if pool:
                pool.check()
            await asyncio.sleep(0.05)
        wait.result()
    finally:
        await bus.close()


def cmd_bench(args) -> int:
    import json

    from ..bench import DEFAULT_SCRIPT, print_figures, run_bench

    if args.requests and args.dispatch:
        from ..bench import SHORT_SCRIPT
        from ..bench.dispatch import print_dispatch_rows, run_dispatch_bench

        rows = run_dispatch_bench([int(n) for n in args.requests.split(",")], args.policy.split(","),
                                  script=Path(args.script) if args.script else SHORT_SCRIPT)
        print(json.dumps(rows) if args.json else "", end="\n" if args.json else "")
        if not args.json:
            print_dispatch_rows(rows)
        return 0
    if args.requests:
        from ..bench import SHORT_SCRIPT, print_scheduler_rows, run_scheduler_bench

        rows = run_scheduler_bench([int(n) for n in args.requests.split(",")], args.policy.split(","),
                                   script=Path(args.script) if args.script else SHORT_SCRIPT, emulate=args.emulate)
        print(json.dumps(rows) if args.json else "", end="\n" if args.json else "")
        if not args.json:
            print_scheduler_rows(rows)
        return 0
    out = Path(args.out or tempfile.mkdtemp(prefix="streamwise-bench-"))
    figures = run_bench(Path(args.script) if args.script else DEFAULT_SCRIPT, out, size=_size(args.size), fps=args.fps,
                        topic=args.topic, llm_args=_llm_args(args))
    print(json.dumps(figures) if args.json else "", end="\n" if args.json else "")
    if not args.json:
        print_figures(figures)
    return 0


def _exit_on_sigterm() -> None:
    """SIGTERM (e.g. `kill`, a container stop) ends like Ctrl-C: ``finally`` blocks stop the
    nats-server and worker processes this command started, instead of orphaning them."""
    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)   # one is enough: let the clean-up finish
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("generate", "up", "bench", "faults"):
        _exit_on_sigterm()
    if args.verbose:
        os.environ["STREAMWISE_LOG_LEVEL"] = "DEBUG"   # inherited by the pool's child processes
    logging.basicConfig(level=os.environ.get("STREAMWISE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("nats").setLevel(logging.WARNING)
    from .generate import cmd_generate, cmd_watch

    handlers = {"generate": cmd_generate, "watch": cmd_watch, "up": cmd_up, "worker": cmd_worker,
                "scheduler": cmd_scheduler, "bench": cmd_bench}
    handlers.update(args.sim_handlers)
    if getattr(args, "handler", None):
        handlers[args.command] = args.handler
    if args.command == "profile":
        from .profile import cmd_profile
        handlers["profile"] = cmd_profile
    try:
        return handlers[args.command](args)
    except ValueError as exc:
        print(f"streamwise: {exc}", file=sys.stderr)
        return 2
    except (ConnectionError, LayoutError, PermissionError) as exc:   # unreachable bus, refused credentials, no layout
        print(f"streamwise: {redact(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("streamwise: interrupted", file=sys.stderr)
        return 130
