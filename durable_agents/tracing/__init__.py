"""OpenTelemetry traces of agent runs, by the GenAI semantic conventions.

Spans: ``invoke_agent {agent}`` for each agent run (workflow code), ``chat {model}`` for each
model call attempt and ``execute_tool {tool}`` for each tool call attempt (activities), and
``approval {tool}`` for each human decision; with the SDK's own ``StartWorkflow`` /
``RunWorkflow`` / ``StartActivity`` / ``RunActivity`` spans around them. One trace per run,
sub-agents (child workflows) inside their parent's. Replay-safe: built on
``temporalio.contrib.opentelemetry``, a worker restart, a cache eviction or a replay ends no
span twice. See ``docs/tracing.md``.

On when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (or ``DURABLE_AGENTS_TRACING=on``);
``runtime.client.connect`` applies it to the worker's and the starter's clients::

    client = await Client.connect(address, plugins=install_tracing())
"""

from durable_agents.tracing._activities import GenAiInterceptor
from durable_agents.tracing._attributes import TRACER_NAME
from durable_agents.tracing._settings import ExporterKind, TracingSettings
from durable_agents.tracing._setup import (
    DEFAULT_SERVICE_NAME,
    install_tracing,
    resource,
    span_exporter,
    tracer_provider,
    tracing_plugins,
)
from durable_agents.tracing._workflow import AgentRunView, agent_span, trace_approval

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "TRACER_NAME",
    "AgentRunView",
    "ExporterKind",
    "GenAiInterceptor",
    "TracingSettings",
    "agent_span",
    "install_tracing",
    "resource",
    "span_exporter",
    "trace_approval",
    "tracer_provider",
    "tracing_plugins",
]
