"""One way to get a Temporal client, for the worker, the starter and the tests."""

from __future__ import annotations

import os
import sys

from temporalio.client import Client

from durable_agents.runtime.codecserver import CodecSidecar
from durable_agents.runtime.converter import data_converter_from_env
from durable_agents.runtime.devserver import DevServer
from durable_agents.runtime.resume_timings import ResumeTimings
from durable_agents.runtime.settings import EMBEDDED_UI_PORT, TemporalSettings
from durable_agents.tracing import install_tracing

SEARCH_ATTRIBUTES: dict[str, str] = {"AgentStatus": "Keyword"}
"""Custom search attributes the embedded server registers at start."""


def embedded_codec_server(settings: TemporalSettings) -> CodecSidecar | None:
    """The codec server that runs next to the embedded dev server, unless turned off."""
    return CodecSidecar.from_env(settings.state_dir, settings.namespace, EMBEDDED_UI_PORT)


def embedded_server(settings: TemporalSettings) -> DevServer:
    """The embedded dev server; its Web UI uses ``TEMPORAL_UI_CODEC_ENDPOINT`` if set, else the
    embedded codec server."""
    host, _, port = settings.address.rpartition(":")
    codec = embedded_codec_server(settings)
    ui_codec_endpoint = os.environ.get("TEMPORAL_UI_CODEC_ENDPOINT") or (
        codec.ui_endpoint if codec is not None else None
    )
    return DevServer(
        state_dir=settings.state_dir,
        host="127.0.0.1" if host in ("localhost", "") else host,
        port=int(port),
        ui_port=EMBEDDED_UI_PORT,
        namespace=settings.namespace,
        search_attributes=SEARCH_ATTRIBUTES,
        ui_codec_endpoint=ui_codec_endpoint,
    )


async def start_embedded_services(settings: TemporalSettings) -> bool:
    """Start the embedded dev server and its codec server, each unless already running.
    Returns True if the dev server was started."""
    started = await embedded_server(settings).ensure_running()
    codec = embedded_codec_server(settings)
    codec_started = codec is not None and await codec.ensure_running()
    if started:
        print(
            f"Started the embedded Temporal dev server at {settings.address} "
            f"(Web UI {settings.ui_url}, data in {settings.state_dir}); "
            "stop it with: python starter.py server stop",
            file=sys.stderr,
            flush=True,
        )
    if codec_started and codec is not None:
        print(
            f"Started the codec server at {codec.url}: the Web UI shows offloaded payloads; "
            f"for the temporal CLI: {codec.cli_environment()}",
            file=sys.stderr,
            flush=True,
        )
    return started


async def connect(
    settings: TemporalSettings | None = None, *, start_embedded: bool = True
) -> Client:
    """Connect with the project's data converter (``runtime.converter``) and, when the environment
    turns it on, tracing (``durable_agents.tracing``: workers built on this client trace too);
    in embedded mode start the dev server if needed."""
    settings = settings or TemporalSettings.from_env()
    if settings.embedded and start_embedded:
        await start_embedded_services(settings)
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=data_converter_from_env(),
        plugins=install_tracing(),
        interceptors=[ResumeTimings()],  # runs started here resume fast after a worker dies
    )
