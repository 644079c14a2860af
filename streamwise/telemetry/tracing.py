"""OpenTelemetry traces across the bus: one trace per request, one span per task.

The scheduler opens a ``request`` span when it accepts a request and ends it when the
podcast is done; every task it dispatches carries the W3C ``traceparent`` of that span in
its NATS headers, and the worker that runs it records a ``<stage>`` span (node, instance,
deadline slack) as its child. Without configuration the OpenTelemetry API is a no-op.
``STREAMWISE_TRACE=console`` prints finished spans to stderr; ``STREAMWISE_TRACE=<path>``
appends them to a file as JSON, one span per line.
"""

from __future__ import annotations

import os
import sys

from opentelemetry import propagate, trace
from opentelemetry.context import Context

_configured = False


def setup(service: str) -> None:
    """Install a tracer provider for this process if ``$STREAMWISE_TRACE`` asks for one (idempotent)."""
    global _configured
    target = os.environ.get("STREAMWISE_TRACE")
    if _configured or not target:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    out = sys.stderr if target == "console" else open(target, "a", buffering=1)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(
        out=out, formatter=lambda span: span.to_json(indent=None) + "\n")))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer() -> trace.Tracer:
    return trace.get_tracer("streamwise")


def inject(span: trace.Span | None) -> dict[str, str]:
    """NATS headers carrying ``span``'s context (empty when tracing is off)."""
    headers: dict[str, str] = {}
    if span is not None and span.get_span_context().is_valid:
        propagate.inject(headers, context=trace.set_span_in_context(span))
    return headers


def extract(headers: dict[str, str] | None) -> Context:
    """The parent context carried in a message's headers."""
    return propagate.extract(headers or {})


def read_trace(path: str, request_id: str | None = None) -> list[dict]:
    """The request spans in a ``$STREAMWISE_TRACE`` file (one JSON span a line, as :func:`setup` writes them),
    each as ``{"request_id", "trace_id", "duration_s", "tasks": [...]}`` with its task spans in start order:
    ``{"stage", "node", "instance", "service", "slack_s", "start_s" (from the request span's start), "duration_s",
    "attempt"}``. ``request_id`` keeps that request only. Lines that are not spans are skipped."""
    import json
    from datetime import datetime

    def seconds(stamp: str) -> float:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    spans = []
    with open(path, encoding="utf-8") as fh:
        for row in fh:
            try:
                span = json.loads(row)
                span["context"]["trace_id"], span["start_time"]
            except (ValueError, KeyError, TypeError):
                continue
            spans.append(span)
    requests = []
    for root in spans:
        attrs = root.get("attributes") or {}
        if root.get("name") != "request" or (request_id and attrs.get("streamwise.request_id") != request_id):
            continue
        t0, trace_id = seconds(root["start_time"]), root["context"]["trace_id"]
        tasks = sorted(({"stage": s["name"], "node": s["attributes"].get("streamwise.node"),
                         "instance": s["attributes"].get("streamwise.instance"),
                         "service": (s.get("resource") or {}).get("attributes", {}).get("service.name"),
                         "slack_s": round(float(s["attributes"].get("streamwise.slack_s", 0.0)), 3),
                         "attempt": s["attributes"].get("streamwise.attempt"),
                         "start_s": round(seconds(s["start_time"]) - t0, 3),
                         "duration_s": round(seconds(s["end_time"]) - seconds(s["start_time"]), 3)}
                        for s in spans if s is not root and s["context"]["trace_id"] == trace_id
                        and s.get("parent_id") == root["context"]["span_id"]), key=lambda t: t["start_s"])
        requests.append({"request_id": attrs.get("streamwise.request_id"), "trace_id": trace_id,
                         "duration_s": round(seconds(root["end_time"]) - t0, 3), "tasks": tasks})
    return requests


def main(argv: list[str] | None = None) -> int:
    """``python -m streamwise.telemetry.tracing FILE [REQUEST_ID]``: each request's trace as a table (stage,
    node, instance, start and duration in s from the request's start, deadline slack in s)."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m streamwise.telemetry.tracing TRACE.jsonl [REQUEST_ID]", file=sys.stderr)
        return 2
    for req in read_trace(args[0], args[1] if len(args) > 1 else None):
        print(f"request {req['request_id']} (trace {req['trace_id']}): {len(req['tasks'])} task spans, "
              f"{req['duration_s']:.2f} s")
        print(f"  {'stage':<10} {'node':<22} {'instance':<28} {'start':>8} {'took':>7} {'slack':>8}")
        for t in req["tasks"]:
            print(f"  {t['stage']:<10} {str(t['node'])[:22]:<22} {str(t['instance'])[:28]:<28} {t['start_s']:>7.2f}s "
                  f"{t['duration_s']:>6.2f}s {t['slack_s']:>7.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
