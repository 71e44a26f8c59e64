"""Where the Temporal service is and which queue the agents use, from the environment.

``TEMPORAL_ADDRESS`` set: connect there and never start anything. Unset: the *embedded* mode,
``localhost:7233``, with a dev server started on demand (see ``runtime.devserver``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from durable_agents.contracts import TASK_QUEUE

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_ADDRESS = "localhost:7233"
EMBEDDED_UI_PORT = 8233


@dataclass(frozen=True)
class TemporalSettings:
    address: str
    """``host:port`` of the Temporal frontend."""
    namespace: str
    task_queue: str
    embedded: bool
    """True when ``TEMPORAL_ADDRESS`` is unset and a local dev server may be started."""
    state_dir: Path
    """Where the embedded dev server keeps its database, log and pid file."""
    ui_url: str | None
    """Base URL of the Temporal Web UI, when known."""

    @classmethod
    def from_env(cls) -> TemporalSettings:
        address = os.environ.get("TEMPORAL_ADDRESS", "").strip()
        state_dir = Path(os.environ.get("DURABLE_AGENTS_STATE_DIR", PROJECT_ROOT / ".temporal"))
        ui_url = os.environ.get("TEMPORAL_UI_URL") or None
        if not address and ui_url is None:
            ui_url = f"http://localhost:{EMBEDDED_UI_PORT}"
        return cls(
            address=address or EMBEDDED_ADDRESS,
            namespace=os.environ.get("TEMPORAL_NAMESPACE", "default"),
            task_queue=os.environ.get("AGENTS_TASK_QUEUE", TASK_QUEUE),
            embedded=not address,
            state_dir=state_dir,
            ui_url=ui_url,
        )

    def workflow_url(self, workflow_id: str, run_id: str | None = None) -> str | None:
        if self.ui_url is None:
            return None
        url = f"{self.ui_url.rstrip('/')}/namespaces/{self.namespace}/workflows/{workflow_id}"
        return f"{url}/{run_id}/history" if run_id else url
