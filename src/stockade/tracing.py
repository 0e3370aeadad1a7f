"""OpenTelemetry traces of a job's life: submit, claim, launch, run, record.

Optional in three ways:

* without the ``opentelemetry`` API installed every function here does
  nothing (``span`` yields ``None``, ``carrier`` is ``{}``);
* with the API but no SDK tracer provider set (no exporter configured),
  they do nothing either (:func:`active`): not even a caller's
  ``traceparent`` is kept;
* :func:`configure` installs the SDK's tracer provider with an exporter
  when asked, by ``OTEL_TRACES_EXPORTER`` (``console``, or ``otlp`` with the
  OTLP exporter package installed) or by its argument; the exporter then
  reads its other standard ``OTEL_*`` variables itself.

A job keeps the W3C trace context it was submitted in (``traceparent``,
``tracestate``) in its frozen spec, so whichever worker runs it continues
that trace: the run span's parent is the submit span, even on another
machine. We use the OpenTelemetry API rather than writing spans by hand: it
is the standard every tracing backend reads, and its propagator is the W3C
format a caller's HTTP client sends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "TRACER", "active", "carrier", "configure", "ended_span", "span", "tracer", "use_provider",
]  # fmt: skip

log = logging.getLogger("stockade.tracing")

#: The instrumentation scope of stockade's spans.
TRACER = "stockade"
_HEADERS = ("traceparent", "tracestate")
#: The provider :func:`use_provider` chose (``provider``), instead of the global one.
_chosen: dict[str, Any] = {}


def use_provider(provider: Any) -> None:
    """Make stockade's spans with ``provider`` (an SDK ``TracerProvider``)
    rather than the global one; ``None`` goes back to the global one. For an
    application embedding stockade, and for tests (the SDK's in-memory
    exporter), since the global provider can be set only once."""
    _chosen["provider"] = provider
    _chosen.pop("active", None)


def tracer() -> Any:
    """stockade's tracer, or ``None`` when spans are not recorded (:func:`active`)."""
    if not active():
        return None
    trace = _api()
    provider = _chosen.get("provider")
    if provider is not None:
        return provider.get_tracer(TRACER)
    return trace.get_tracer(TRACER)


def _api() -> Any:
    """The ``opentelemetry.trace`` module, or ``None`` when not installed."""
    if "api" not in _chosen:
        try:
            from opentelemetry import trace
        except ImportError:
            trace = None  # type: ignore[assignment]
        _chosen["api"] = trace
    return _chosen["api"]


def active() -> bool:
    """Whether spans are recorded: a provider was chosen (:func:`use_provider`)
    or an SDK's set globally (:func:`configure`, or the embedding program).
    Otherwise every function here returns at once: a span of the API's no-op
    provider still costs tens of microseconds, on every job of a busy worker."""
    found = _chosen.get("active")
    if found is None:  # answered once: the global provider is set once, and before any job
        found = _chosen["active"] = _provider_set()
    return bool(found)


def _provider_set() -> bool:
    if _chosen.get("provider") is not None:
        return True
    if "opentelemetry.trace" not in sys.modules:
        return False  # no one set a global provider without importing the API (saves its import)
    trace = _api()
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def _context(parent: Mapping[str, str] | None) -> Any:
    """The context a W3C carrier (``traceparent`` and ``tracestate``) names;
    ``None`` (the current one) for no carrier."""
    if not parent:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    wanted = {k.lower(): v for k, v in parent.items() if k.lower() in _HEADERS}
    return TraceContextTextMapPropagator().extract(wanted) if wanted else None


@contextlib.contextmanager
def span(
    name: str,
    parent: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """A span, current for the block, child of ``parent`` (a W3C carrier,
    such as a request's headers or a job's stored context) or of the current
    span; ``None`` without the API."""
    found = tracer()
    if found is None:
        yield None
        return
    values = {k: v for k, v in (attributes or {}).items() if v is not None}
    with found.start_as_current_span(name, context=_context(parent), attributes=values) as s:
        yield s


def ended_span(
    name: str, start: float, end: float, parent: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> None:  # fmt: skip
    """A span that already happened (``start``/``end``: epoch seconds), such as
    a job's wait between its claim and its launch."""
    found = tracer()
    if found is None:
        return
    values = {k: v for k, v in (attributes or {}).items() if v is not None}
    s = found.start_span(
        name, context=_context(parent), attributes=values, start_time=int(start * 1e9)
    )
    s.end(end_time=int(max(start, end) * 1e9))


def carrier() -> dict[str, str]:
    """The current span's W3C context (``traceparent``, maybe ``tracestate``),
    to store on a job or pass on; ``{}`` when there is none."""
    if not active():
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    found: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(found)
    return found


def configure(exporter: str | None = None) -> bool:
    """Export spans with the SDK if asked (``exporter`` or ``OTEL_TRACES_EXPORTER``:
    ``console`` or ``otlp``); whether spans are now exported. Off by default."""
    wanted = (exporter or os.environ.get("OTEL_TRACES_EXPORTER", "")).strip().lower()
    if wanted in ("", "none"):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    except ImportError:
        log.warning("tracing asked for (%s) but the OpenTelemetry SDK is not installed: "
                    "pip install 'stockade[otel]'", wanted)  # fmt: skip
        return False
    made: SpanExporter
    if wanted == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        made = ConsoleSpanExporter()
    elif wanted == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("OTEL_TRACES_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http")
            return False
        made = OTLPSpanExporter()
    else:
        log.warning("unknown OTEL_TRACES_EXPORTER %r: use console or otlp", wanted)
        return False
    service = os.environ.get("OTEL_SERVICE_NAME", "stockade")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(made))
    trace.set_tracer_provider(provider)
    _chosen.pop("active", None)
    return True
