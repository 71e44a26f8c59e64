"""Whether and how a process traces, read once from the standard OpenTelemetry variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

ExporterKind = Literal["otlp", "console", "none"]
"""``otlp``: OTLP/HTTP protobuf to ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT``; ``console``: spans
printed as JSON to stdout; ``none``: spans made and dropped (to measure the cost of tracing)."""

_EXPORTERS: dict[str, ExporterKind] = {"otlp": "otlp", "console": "console", "none": "none"}
_ON = frozenset({"1", "true", "on", "yes"})
_OFF = frozenset({"0", "false", "off", "no"})


@dataclass(frozen=True)
class TracingSettings:
    """What ``install_tracing`` sets up. ``TracingSettings.from_env()`` reads:

    - ``DURABLE_AGENTS_TRACING``: ``on`` / ``off``; unset means on exactly when an OTLP endpoint
      is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``).
      ``OTEL_SDK_DISABLED=true`` turns it off whatever else is set.
    - ``OTEL_TRACES_EXPORTER``: ``otlp`` (default), ``console`` or ``none``.
    - ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``: ``true`` to record prompts,
      completions, tool arguments and results on spans (off by default: they may be sensitive).
    - ``DURABLE_AGENTS_TRACING_TEMPORAL_SPANS``: ``off`` to drop the SDK's own spans
      (``StartWorkflow``, ``RunWorkflow``, ``StartActivity``, ``RunActivity``...) and keep only
      the GenAI ones.

    The exporter itself reads the other standard variables (``OTEL_EXPORTER_OTLP_HEADERS``,
    ``OTEL_EXPORTER_OTLP_TIMEOUT``, ``OTEL_BSP_SCHEDULE_DELAY``, ``OTEL_SERVICE_NAME``...).
    """

    enabled: bool = False
    """Whether clients and workers get the tracing plugins."""
    exporter: ExporterKind = "otlp"
    """Where finished spans go."""
    capture_content: bool = False
    """Record message and tool content on spans (opt-in)."""
    temporal_spans: bool = True
    """Add the SDK's spans for workflow, activity, signal, query and update handling, so GenAI
    spans sit inside the Temporal picture (schedule-to-start gaps, retries)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TracingSettings:
        env = os.environ if env is None else env
        switch = env.get("DURABLE_AGENTS_TRACING", "").strip().lower()
        if switch and switch not in _ON | _OFF:
            raise ValueError(f"DURABLE_AGENTS_TRACING must be on or off, not {switch!r}")
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        enabled = switch in _ON if switch else bool(endpoint)
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _ON:
            enabled = False
        name = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
        exporter = _EXPORTERS.get(name)
        if exporter is None:
            raise ValueError(f"OTEL_TRACES_EXPORTER must be otlp, console or none, not {name!r}")
        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        if enabled and exporter == "otlp" and protocol.strip() != "http/protobuf":
            # Only the HTTP exporter is installed; sending HTTP to a gRPC port (4317) would
            # fail on every export, so say so at start instead.
            raise ValueError(
                f"OTLP protocol {protocol!r} is not supported: durable-agents exports "
                "http/protobuf (the collector's port 4318, not gRPC's 4317)"
            )
        return cls(
            enabled=enabled,
            exporter=exporter,
            capture_content=env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "")
            .strip()
            .lower()
            in _ON,
            temporal_spans=env.get("DURABLE_AGENTS_TRACING_TEMPORAL_SPANS", "on").strip().lower()
            not in _OFF,
        )
