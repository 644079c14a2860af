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
