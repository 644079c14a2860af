"""``streamwise generate`` (one podcast from a script, a topic or a document; without ``--nats`` on
an embedded bus and worker pool it starts and stops) and ``streamwise watch`` (a request submitted
elsewhere, from its first segment). The parser and the other commands are in :mod:`streamwise.cli`."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ..bus.client import connect, redact
from ..bus.messages import Request
from ..bus.server import EmbeddedServer
from ..service.pool import DEFAULT_WORKERS, Pool
from ..stages.registry import STAGES
from . import _llm_args, _run, _size, _wait_ready


def cmd_generate(args) -> int:
    from ..client import GenerateError, new_request_id
    from ..client.progress import ProgressView, progress_wanted

    width, height = _size(args.size)
    llm = bool(args.topic or args.document)
    if bool(args.script) == llm:
        print("streamwise generate: give either --script, or --topic and/or --document", file=sys.stderr)
        return 2
    if args.script:
        from ..script import ScriptError, decode_script, parse_script
        from ..stages.cpu.screenplay import check_script_limits

        script = Path(args.script)
        try:
            data = script.read_bytes()
        except OSError as exc:
            print(f"streamwise: cannot read script {script}: {exc.strerror}", file=sys.stderr)
            return 1
        from ..bus.limits import LIMITS

        if len(data) > LIMITS.script_bytes:
            print(f"streamwise: script {script}: {len(data):,} bytes, over the limit of {LIMITS.script_bytes:,} "
                  f"bytes (configs/limits.yaml)", file=sys.stderr)
            return 1
        try:
            text = decode_script(data, str(script))
            if not text.strip():
                print(f"streamwise: script {script} is empty", file=sys.stderr)
                return 1
            # the screenplay worker parses it again; reading it here reports a bad script at once,
            # before a bus and workers start
            play = parse_script(text, path=str(script), fmt=args.format)
            check_script_limits(play, str(script))
        except ScriptError as exc:
            print(f"streamwise: {exc}", file=sys.stderr)
            return 1
        for notice in play.notices[:5]:   # read as narration, a paragraph not placed: said once, here
            print(f"streamwise: notice: {notice}", file=sys.stderr)
        if len(play.notices) > 5:
            print(f"streamwise: ... and {len(play.notices) - 5} more notices (streamwise script {script} "
                  f"shows them all)", file=sys.stderr)
        source = dict(script=text, script_format=args.format, script_name=str(script))
    else:
        from ..llm.format import DocumentError, read_document

        doc_path = args.document
        try:
            document = read_document(doc_path) if doc_path else None
        except DocumentError as exc:
            print(f"streamwise: {exc}", file=sys.stderr)
            return 1
        source = dict(topic=args.topic, document=document, document_name=doc_path,
                      script_name=doc_path or "topic")
    voices = {}
    for item in args.voice:
        speaker, sep, voice = item.partition("=")
        if not sep or not speaker.strip() or not voice.strip():
            print(f"streamwise generate: --voice {item!r}: expected SPEAKER=VOICE, e.g. --voice Ada=heart",
                  file=sys.stderr)
            return 2
        voices[speaker.strip()] = voice.strip()
    looks = {}
    for item in args.look:
        speaker, sep, text = item.partition("=")
        if not sep or not speaker.strip() or not text.strip():
            print(f"streamwise generate: --look {item!r}: expected SPEAKER=TEXT, e.g. --look 'Ada=a woman with "
                  "red hair'", file=sys.stderr)
            return 2
        looks[speaker.strip()] = text.strip()[:300]
    request = Request(request_id=new_request_id(), tenant=args.tenant, submitted_at=0.0, title=args.title, voices=voices, looks=looks,
                      ttff_s=args.ttff, width=width, height=height, fps=args.fps, segment_s=args.segment,
                      first_segment_s=args.first_segment, max_clip_s=args.max_clip, **source)
    from ..service.admission import check_request

    try:
        check_request(request)   # the scheduler's own check, before a bus and workers start
    except ValueError as exc:
        print(f"streamwise generate: {exc}", file=sys.stderr)
        return 2
    if args.creds and not args.nats:
        print("streamwise generate: --creds needs --nats URL of an authenticated bus", file=sys.stderr)
        return 2
    args.tenant = _creds_tenant(args.creds, args.tenant, "generate")
    view = ProgressView(enabled=progress_wanted(args.quiet))
    started = time.time()
    server = pool = None
    try:
        if args.nats:
            url = args.nats
        else:
            view.note("starting embedded bus and workers ...")
            server = EmbeddedServer().start()
            url = server.url
            workers, extra = None, None
            if llm:   # the screenplay worker is the LLM (it parses scripts too)
                workers = {**DEFAULT_WORKERS, "screenplay": 0}
                extra = [("screenplay-llm", ["worker", "--stage", "screenplay", "--model", "llm", *_llm_args(args)])]
                view.note("loading the screenplay LLM (the first run converts its checkpoint once) ...")
            pool = Pool(url, workers, log_dir=Path(args.out) / "logs", extra=extra).start()
        try:
            stages = ({"scheduler", *STAGES} if not pool else pool.stages() | {"screenplay"})
            _run(_wait_ready(url, pool, (300.0 if llm else 90.0) if pool else 15.0, stages, creds=args.creds))
        except TimeoutError as exc:
            hint = "" if pool else f"; start a pool with: streamwise up --nats {redact(url)}"
            raise TimeoutError(f"{exc}{hint}") from None
        startup = time.time() - started
        view.note(f"bus and workers ready in {startup:.1f} s ({redact(url)})")
        view.note(f"request {request.request_id} (another viewer: streamwise watch {request.request_id} "
                  f"--nats {redact(url)})")
        report = _run(_generate(url, request, args.out, view, args.timeout, pool.check if pool else None,
                                creds=args.creds))
        report.startup_s = round(startup, 3)
        (Path(args.out) / "report.json").write_text(report.to_json())
        view.done(report, args.out)
        return 0
    except (GenerateError, ConnectionError, TimeoutError, RuntimeError, PermissionError) as exc:
        view.stop()
        exc = redact(str(exc))
        where = f" (worker logs: {pool.log_dir})" if pool else ""
        print(f"streamwise: {exc}{where}", file=sys.stderr)
        return 1
    finally:
        view.stop()
        if pool:
            pool.stop()
        if server:
            server.stop()


async def _generate(url, request, out, view, timeout_s, health, creds=None):
    from ..client import generate

    bus = await connect(url, name="streamwise-client", creds=creds)
    try:
        return await generate(bus, request, out, progress=view.update, idle_timeout_s=timeout_s, health=health)
    finally:
        await bus.close()


def _creds_tenant(creds: str | None, tenant: str, command: str) -> str:
    """The tenant a tenant's or viewer's credentials (``--creds`` or ``$STREAMWISE_CREDS``) are
    for: ``--tenant`` defaults to it.

    Raises:
        ValueError: ``--tenant`` names another tenant (the bus would refuse every request).
    """
    from ..bus.auth import AuthError, read_creds_jwt

    creds = creds or os.environ.get("STREAMWISE_CREDS")
    if not creds:
        return tenant
    try:
        name = read_creds_jwt(creds).get("name") or ""
    except AuthError as exc:
        raise ValueError(str(exc)) from None
    role, _, own = name.partition("-")
    if role not in ("tenant", "viewer") or not own:
        return tenant
    if tenant not in ("default", own):
        raise ValueError(f"{command} --tenant {tenant}: the credentials {creds} are {name}'s, for tenant {own}")
    return own


def cmd_watch(args) -> int:
    """``streamwise watch REQUEST_ID --nats URL --out DIR``: :func:`streamwise.client.watch`."""
    from ..client import GenerateError
    from ..client.progress import ProgressView

    args.tenant = _creds_tenant(args.creds, args.tenant, "watch")
    view = ProgressView(enabled=not args.quiet)
    try:
        report = _run(_watch(args.nats, args.request_id, args.out, args.tenant, view, args.timeout, args.creds))
        view.done(report, args.out)
        return 0
    except (GenerateError, ConnectionError, TimeoutError, PermissionError) as exc:
        view.stop()
        print(f"streamwise: {exc}", file=sys.stderr)
        return 1
    finally:
        view.stop()


async def _watch(url, request_id, out, tenant, view, timeout_s, creds=None):
    from ..client import watch

    bus = await connect(url, name="streamwise-viewer", creds=creds)
    try:
        return await watch(bus, request_id, out, tenant=tenant, progress=view.update, idle_timeout_s=timeout_s)
    finally:
        await bus.close()
