"""One way to get a Temporal client, for the worker, the starter and the tests."""

from __future__ import annotations

import os
import sys

from temporalio.client import Client

from runtime.converter import data_converter_from_env
from runtime.devserver import DevServer
from runtime.settings import EMBEDDED_UI_PORT, TemporalSettings

SEARCH_ATTRIBUTES: dict[str, str] = {"AgentStatus": "Keyword"}
"""Custom search attributes the embedded server registers at start."""


def embedded_server(settings: TemporalSettings) -> DevServer:
    host, _, port = settings.address.rpartition(":")
    return DevServer(
        state_dir=settings.state_dir,
        host="127.0.0.1" if host in ("localhost", "") else host,
        port=int(port),
        ui_port=EMBEDDED_UI_PORT,
        namespace=settings.namespace,
        search_attributes=SEARCH_ATTRIBUTES,
        ui_codec_endpoint=os.environ.get("TEMPORAL_UI_CODEC_ENDPOINT") or None,
    )


async def connect(
    settings: TemporalSettings | None = None, *, start_embedded: bool = True
) -> Client:
    """Connect with the project's data converter (``runtime.converter``); in embedded mode start
    the dev server if needed."""
    settings = settings or TemporalSettings.from_env()
    if settings.embedded and start_embedded:
        started = await embedded_server(settings).ensure_running()
        if started:
            print(
                f"Started the embedded Temporal dev server at {settings.address} "
                f"(Web UI {settings.ui_url}, data in {settings.state_dir}); "
                "stop it with: python starter.py server stop",
                file=sys.stderr,
                flush=True,
            )
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=data_converter_from_env(),
    )
