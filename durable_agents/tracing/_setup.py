"""The tracer provider and the Temporal plugins that turn tracing on for a client and its
workers."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from temporalio.contrib.opentelemetry import (
    OpenTelemetryPlugin,
    ReplaySafeTracerProvider,
    create_tracer_provider,
)
from temporalio.plugin import SimplePlugin

from durable_agents.tracing._activities import GenAiInterceptor
from durable_agents.tracing._settings import TracingSettings

DEFAULT_SERVICE_NAME = "durable-agents"
"""``service.name`` unless ``OTEL_SERVICE_NAME`` (or ``OTEL_RESOURCE_ATTRIBUTES``) names one."""


def resource() -> Resource:
    """``service.name`` and the SDK's defaults, with ``OTEL_RESOURCE_ATTRIBUTES`` and
    ``OTEL_SERVICE_NAME`` applied."""
    from_env = OTELResourceDetector().detect()
    return Resource.create(
        {} if from_env.attributes.get(SERVICE_NAME) else {SERVICE_NAME: DEFAULT_SERVICE_NAME}
    )


def span_exporter(settings: TracingSettings) -> SpanExporter | None:
    """The exporter ``settings`` ask for; ``None`` for ``none``."""
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    if settings.exporter == "none":
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # Endpoint, headers, timeout, compression and TLS from the OTEL_EXPORTER_OTLP_* variables.
    return OTLPSpanExporter()


def tracer_provider(
    settings: TracingSettings, exporter: SpanExporter | None = None
) -> ReplaySafeTracerProvider:
    """A replay-safe provider (the SDK's ``create_tracer_provider``: deterministic span ids in
    workflows, nothing ended while replaying) that batches spans to ``exporter``, default the
    one ``settings`` ask for. It flushes at interpreter exit."""
    provider = create_tracer_provider(resource=resource())
    chosen = exporter if exporter is not None else span_exporter(settings)
    if chosen is not None:
        provider.add_span_processor(BatchSpanProcessor(chosen))
    return provider


def tracing_plugins(settings: TracingSettings) -> list[SimplePlugin]:
    """The plugins for ``Client.connect(plugins=...)``: the SDK's ``OpenTelemetryPlugin``
    (context propagation from the starter through workflows, child workflows and activities,
    and the SDK's own spans) and ours, for the GenAI spans of model and tool calls. Workers
    built on the client get both. Empty when tracing is off."""
    if not settings.enabled:
        return []
    return [
        OpenTelemetryPlugin(add_temporal_spans=settings.temporal_spans),
        SimplePlugin(
            "durable-agents.tracing",
            interceptors=[GenAiInterceptor(capture_content=settings.capture_content)],
        ),
    ]


def install_tracing(settings: TracingSettings | None = None) -> list[SimplePlugin]:
    """Tracing from the environment: when on, make the process's tracer provider (once per
    process) and return the plugins for the client; when off, return ``[]``.

    Raises:
        RuntimeError: Another, not replay-safe, global tracer provider is already set.
    """
    settings = settings if settings is not None else TracingSettings.from_env()
    if not settings.enabled:
        return []
    current = trace.get_tracer_provider()
    if not isinstance(current, ReplaySafeTracerProvider):
        if not isinstance(current, trace.ProxyTracerProvider):
            raise RuntimeError(
                f"a global tracer provider ({type(current).__name__}) is already set; Temporal "
                "workers need one from temporalio.contrib.opentelemetry.create_tracer_provider()"
            )
        trace.set_tracer_provider(tracer_provider(settings))
    return tracing_plugins(settings)
