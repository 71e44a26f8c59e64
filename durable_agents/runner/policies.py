"""Timeouts and retry policies for every activity the agent loop calls, and the three timeouts
that decide how soon a run resumes after its worker dies.

Named here, once, so a reader sees in one place how long the loop waits and how hard it retries.

How soon a run resumes after ``kill -9`` of its worker (``python -m bench.resume``): Temporal
learns that a worker died only from a timeout, and which one depends on what the run was doing:

- a model or tool activity in progress: its heartbeat timeout (``MODEL_CALL_HEARTBEAT_TIMEOUT``,
  ``TOOL_CALL_HEARTBEAT_TIMEOUT``), then its retry interval; the workflow task that follows its
  result then waits out the sticky timeout below;
- a workflow task queued for the dead worker (its *sticky* queue, where the worker that has the
  run cached gets its next task): ``STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT``, after which any
  worker gets it from the run's task queue and replays the history;
- a workflow task in progress (local tool calls run inside one): ``WORKFLOW_TASK_TIMEOUT``.

Each is a trade: shorter means a faster resume, and more false alarms when a live worker is slow
(CPU-starved, a long garbage collection, a blocked event loop), each of which costs work but
never correctness. The values below resume a run in about 5 s and leave a live worker several
times its usual latency before anything is declared dead.
"""

import dataclasses
from datetime import timedelta

from temporalio.common import RetryPolicy

from durable_agents.contracts.tools import ToolSchema

LOAD_AGENT_TIMEOUT = timedelta(seconds=10)
LOAD_AGENT_RETRY = RetryPolicy(maximum_attempts=3)

HEARTBEAT_TIMEOUT = timedelta(seconds=3)
"""How long a model or tool activity may go without a heartbeat before its attempt is taken as
lost and retried on another worker. The activities beat every second
(``activities._heartbeat``); the SDK sends at most one beat per 80% of this timeout to the
server, so 3 s leaves 0.6 s for a beat's round trip and a second of event-loop stall. Shorter:
a busy worker's live call is retried too (a repeated model call is paid twice; a repeated tool
call is guarded by its idempotency key). Longer: a run whose worker died mid-call waits longer
(it was 10 s)."""

MODEL_CALL_TIMEOUT = timedelta(minutes=5)
MODEL_CALL_HEARTBEAT_TIMEOUT = HEARTBEAT_TIMEOUT
MODEL_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=20,
)
"""Provider errors decide retryability (``activities.providers.errors``); ``Retry-After`` from a
429 overrides the backoff through ``next_retry_delay``. 20 attempts are about 15 minutes of
backoff: a provider outage or an overloaded Temporal fails the run only after that (an agent
with ``fallback_models`` moves on after its ``model_attempts`` instead). It was 8 (about 2
minutes), and with the 3 s heartbeat timeout an overloaded box failed runs that were merely
waiting: 1,000 runs of instant model calls on one worker (``python -m bench.throughput``'s
x1000 round) had runs fail with ``ModelCallFailed ... activity Heartbeat timeout`` after their
8th attempt, the server too busy to record completions within 3 s; with 20 all 1,000
completed (1,400 retried attempts of about 10,000)."""

TOOL_CALL_TIMEOUT = timedelta(minutes=2)
TOOL_CALL_HEARTBEAT_TIMEOUT = HEARTBEAT_TIMEOUT
"""A tool that can go silent for longer (a sync tool that blocks its thread is fine: the beat
runs on the event loop) sets its own ``@tool(heartbeat_timeout=...)``."""
TOOL_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
"""Tool errors the model should see are results, not failures; this covers crashes and
transient faults. After the last attempt the model is told the tool failed."""


LOCAL_TOOL_MAX_TIMEOUT = timedelta(seconds=10)
"""Longest timeout a local tool may have (``Tool.local``), and the start-to-close timeout of a
``local=True`` tool that sets none. A local call holds its workflow task open while it runs:
the worker extends the task every ``0.8 x WORKFLOW_TASK_TIMEOUT`` (an extra workflow task each
time), and the run's queries, signals and cancellation wait for that, so local calls are for
tools of milliseconds to a few seconds. Longer tools run as regular activities."""


def tool_call_options(schema: ToolSchema) -> tuple[timedelta, timedelta, RetryPolicy]:
    """Start-to-close timeout, heartbeat timeout and retry policy of one tool's calls: the
    tool's own settings (``@tool(timeout=..., heartbeat_timeout=..., max_attempts=...)``), else
    the defaults above."""
    timeout = (
        timedelta(seconds=schema.timeout_seconds) if schema.timeout_seconds else TOOL_CALL_TIMEOUT
    )
    heartbeat = (
        timedelta(seconds=schema.heartbeat_timeout_seconds)
        if schema.heartbeat_timeout_seconds
        else TOOL_CALL_HEARTBEAT_TIMEOUT
    )
    retry = (
        dataclasses.replace(TOOL_CALL_RETRY, maximum_attempts=schema.max_attempts)
        if schema.max_attempts
        else TOOL_CALL_RETRY
    )
    return timeout, heartbeat, retry


def local_tool_call_options(schema: ToolSchema) -> tuple[timedelta, RetryPolicy]:
    """Start-to-close timeout and retry policy of a local tool's calls (no heartbeat timeout:
    local activities do not heartbeat; a dead worker shows by its workflow task timing out)."""
    timeout, _, retry = tool_call_options(schema)
    return (timeout if schema.timeout_seconds else LOCAL_TOOL_MAX_TIMEOUT), retry


LIST_MCP_TOOLS_TIMEOUT = timedelta(minutes=1)
LIST_MCP_TOOLS_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
LIST_MCP_TOOLS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
"""A server that stays unreachable through these attempts fails the run with a clear error
rather than leaving it waiting with no tools."""

NOTIFY_TIMEOUT = timedelta(seconds=30)
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
"""Escalation notices retry until delivered (no attempt limit): a failing notifier delays the
second wait rather than letting the default apply without anyone having been told."""


STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT = timedelta(seconds=2)
"""Worker option (``AgentsPlugin`` sets it): how long a workflow task waits on the sticky queue of
the worker that has the run cached before it goes to the run's task queue, where any worker takes it
and replays the history (was the SDK's 10 s). A dead worker's runs move within this. Shorter: a live
worker that is merely busy (every workflow-task slot taken, or starved of CPU) loses tasks to a full
replay, which costs CPU (at most one continue-as-new's worth of history, about 4,000 events) but
changes no decision. 2 s is many times the few milliseconds a sticky task usually waits."""

WORKFLOW_TASK_TIMEOUT = timedelta(seconds=4)
"""Start option (``task_timeout``) of every run and child started through this library
(``runtime.resume_timings`` sets it unless the starter chose one): how long a worker may hold a
workflow task before the server gives it to another (Temporal's default is 10 s; runs started
elsewhere keep theirs). A run whose worker died in the middle of a task moves within this. Shorter:
a live task that takes longer is thrown away and started again elsewhere, and one that always takes
longer never completes. What a task holds: a replay of the history (at most one continue-as-new's
worth), the loop's own work, and its local tool calls, during which the worker extends the task
every 80% of this timeout (``LOCAL_TOOL_MAX_TIMEOUT`` bounds those). 4 s is several times a cold
replay of a full history on a loaded 2-core machine."""
