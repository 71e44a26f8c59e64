"""OpenTelemetry GenAI traces: what a backend receives over OTLP/HTTP, and that replays, cache
evictions and a worker killed -9 never send a span twice.

Spans go through the real exporter (``OTLPSpanExporter``, protobuf over HTTP) to
``tests.otlp_receiver``, which decodes them as a collector would.

"No duplicates", precisely:

1. No span id arrives twice. Workflow-side span ids come from the workflow's deterministic
   random, so a replay that ended a span again would send the same id again.
2. Workflow-side spans match history one to one: per workflow one ``invoke_agent`` and one
   ``RunWorkflow``, and as many ``StartActivity:<type>`` spans as history has scheduled
   activities of that type.
3. Activity-side spans (``chat``, ``execute_tool``) are per *attempt*: at most one per
   (conversation, idempotency key, attempt), and every completed activity in history has the
   span of the attempt that completed it. An attempt cut short by the kill leaves no span (its
   worker died before ending it); its retry has its own, with a higher ``durable_agents.attempt``.

Delivery is at most once: a kill -9 loses spans its worker ended in its last export interval
(nothing flushes them, and a replay never sends them again). The kill test therefore kills once
the worker's earlier spans have arrived, and then expects every span, exactly once.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.providers.scripted import ScriptedProvider
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.contracts.approvals import ApprovalSignal
from durable_agents.plugin import SHIPPED_WORKFLOWS, AgentsPlugin
from durable_agents.tracing import TracingSettings, tracer_provider, tracing_plugins
from tests.conftest import running_worker
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.worker_processes import WorkerProcess, completed_model_calls, wait_for_poller

CONTENT_ATTRIBUTES = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
)


class _Switch(SpanProcessor):
    """The session's one tracer provider sends finished spans to the current test's exporter
    (OpenTelemetry allows one global provider per process), and drops them between tests."""

    def __init__(self) -> None:
        self.target: BatchSpanProcessor | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.target is not None:
            self.target.on_end(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.target.force_flush(timeout_millis) if self.target is not None else True


@pytest.fixture(scope="session")
def span_switch() -> _Switch:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, ReplaySafeTracerProvider):
        provider = tracer_provider(TracingSettings(enabled=True, exporter="none"))
        trace.set_tracer_provider(provider)
    switch = _Switch()
    provider.add_span_processor(switch)
    return switch


@pytest.fixture
def receiver(span_switch: _Switch) -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        span_switch.target = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=receiver.traces_url), schedule_delay_millis=50
        )
        yield receiver
        span_switch.force_flush()
        span_switch.target, target = None, span_switch.target
        target.shutdown()


async def traced_client(env: WorkflowEnvironment, *, capture_content: bool = False) -> Client:
    settings = TracingSettings(enabled=True, capture_content=capture_content)
    return await Client.connect(
        env.client.service_client.config.target_host,
        namespace="default",
        data_converter=pydantic_data_converter,
        plugins=tracing_plugins(settings),
    )


@pytest.fixture
async def traced(temporal_env: WorkflowEnvironment, span_switch: _Switch) -> Client:
    return await traced_client(temporal_env)


def flushed(switch: _Switch, receiver: OtlpReceiver) -> list[ReceivedSpan]:
    switch.force_flush()
    return receiver.snapshot()


# -- helpers: one run's spans ---------------------------------------------------------------


def workflow_of(span: ReceivedSpan) -> str:
    """The workflow a span belongs to: the GenAI conversation id, or the SDK's attribute."""
    return str(
        span.attributes.get("gen_ai.conversation.id")
        or span.attributes.get("temporalWorkflowID")
        or ""
    )


def ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def one(spans: list[ReceivedSpan], name: str, workflow_id: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name and workflow_of(s) == workflow_id]
    assert len(found) == 1, f"{len(found)} spans {name!r} for {workflow_id}"
    return found[0]


def counts(spans: list[ReceivedSpan]) -> dict[str, int]:
    return dict(sorted(Counter(s.name for s in spans).items()))


async def scheduled(handle: WorkflowHandle[object, object]) -> Counter[str]:
    """Activity types scheduled in ``handle``'s history, counted."""
    found: Counter[str] = Counter()
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            found[event.activity_task_scheduled_event_attributes.activity_type.name] += 1
    return found


async def completed_attempts(handle: WorkflowHandle[object, object]) -> list[tuple[str, int]]:
    """(activity type, attempt) of every activity that completed in ``handle``'s history."""
    types: dict[int, str] = {}
    attempts: dict[int, int] = {}
    done = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            types[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name
            )
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            attempts[attrs.scheduled_event_id] = attrs.attempt
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sched = event.activity_task_completed_event_attributes.scheduled_event_id
            done.append((types[sched], attempts[sched]))
    return done


async def assert_no_duplicates(
    spans: list[ReceivedSpan], client: Client, workflow_ids: list[str]
) -> None:
    """The three rules in the module docstring, for each workflow of one run."""
    ids = Counter(s.span_id for s in spans)
    assert not [i for i, n in ids.items() if n > 1], "a span id arrived twice"
    for workflow_id in workflow_ids:
        handle = client.get_workflow_handle(workflow_id)
        mine = [s for s in spans if workflow_of(s) == workflow_id]
        names = Counter(s.name for s in mine)
        assert names["RunWorkflow:AgentWorkflow"] == 1, (workflow_id, names)
        assert sum(1 for n in names if n.startswith("invoke_agent ")) == 1, (workflow_id, names)
        for activity_type, n in (await scheduled(handle)).items():
            if activity_type == "load_agent":
                continue  # a local activity: no StartActivity span of its own
            assert names[f"StartActivity:{activity_type}"] == n, (workflow_id, activity_type)
        genai = Counter(
            (
                s.name,
                s.attributes["durable_agents.idempotency_key"],
                s.attributes["durable_agents.attempt"],
            )
            for s in mine
            if s.name.startswith(("chat ", "execute_tool "))
        )
        assert max(genai.values(), default=1) == 1, f"an attempt was traced twice: {genai}"
        attempts = Counter(
            (
                "chat" if s.name.startswith("chat ") else "tool",
                s.attributes["durable_agents.attempt"],
            )
            for s in mine
            if s.name.startswith(("chat ", "execute_tool ")) and s.status_code != 2
        )
        for activity_type, attempt in await completed_attempts(handle):
            kind = "chat" if activity_type == "call_model" else "tool"
            assert attempts[(kind, attempt)] > 0, f"no span for {activity_type} #{attempt}"
            attempts[(kind, attempt)] -= 1


# -- the tests ------------------------------------------------------------------------------


async def test_delegator_run_is_one_trace_of_genai_spans(
    traced: Client,
    receiver: OtlpReceiver,
    span_switch: _Switch,
    task_queue: str,
    registry: AgentRegistry,
) -> None:
    """A run with a sub-agent arrives as one trace: ``invoke_agent delegator`` with its
    ``chat`` spans, the child's ``invoke_agent test-adder`` inside it with ``chat`` and
    ``execute_tool add`` spans inside that; GenAI attributes and ours are set, and no message
    content is recorded (not opted in)."""
    async with running_worker(traced, task_queue, registry):
        handle = await traced.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="delegator", task="add"),
            id=f"trace-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        result = await handle.result()
    assert result.status == "completed"
    child_id = f"{handle.id}/test-adder-1-call_1_0"
    child = await traced.get_workflow_handle(child_id, result_type=AgentResult).result()
    spans = flushed(span_switch, receiver)
    print("\nspans of one delegator run:", len(spans), counts(spans))

    by_id = {s.span_id: s for s in spans}
    start = one(spans, "StartWorkflow:AgentWorkflow", handle.id)
    assert start.parent_span_id == ""  # the trace starts at the start call
    assert {s.trace_id for s in spans} == {start.trace_id}
    parent = one(spans, "invoke_agent delegator", handle.id)
    sub = one(spans, "invoke_agent test-adder", child_id)
    assert parent in ancestors(sub, by_id)
    assert parent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert parent.attributes["gen_ai.agent.name"] == "delegator"
    assert parent.attributes["durable_agents.status"] == "completed"
    assert parent.attributes["durable_agents.steps"] == result.steps == 2
    assert parent.attributes["durable_agents.cost_usd"] == pytest.approx(result.cost_usd)
    assert sub.attributes["durable_agents.steps"] == child.steps
    assert sub.attributes["gen_ai.usage.input_tokens"] == child.usage.input_tokens

    chats = [s for s in spans if s.name == "chat scripted"]
    assert len(chats) == 4  # two steps in the parent, two in the child
    for chat in chats:
        owner = parent if workflow_of(chat) == handle.id else sub
        assert owner in ancestors(chat, by_id)
        attrs = chat.attributes
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == "scripted"
        assert attrs["gen_ai.request.model"] == "scripted"
        assert attrs["gen_ai.response.model"]
        assert attrs["gen_ai.usage.input_tokens"] > 0
        assert attrs["gen_ai.usage.output_tokens"] > 0
        assert "gen_ai.usage.cache_read.input_tokens" in attrs
        assert "gen_ai.usage.cache_creation.input_tokens" in attrs
        assert attrs["durable_agents.attempt"] == 1
        assert attrs["durable_agents.step"] in (1, 2)
        assert attrs["durable_agents.idempotency_key"].endswith(
            f"/model/{attrs['durable_agents.step']}"
        )
        assert "durable_agents.cost_usd" in attrs
    tools = [s for s in spans if s.name == "execute_tool add"]
    assert len(tools) == 2
    for tool in tools:
        assert sub in ancestors(tool, by_id)
        assert workflow_of(tool) == child_id
        assert tool.attributes["gen_ai.tool.name"] == "add"
        assert tool.attributes["gen_ai.tool.call.id"]
        assert tool.attributes["durable_agents.tool.is_error"] is False
        assert tool.attributes["durable_agents.step"] == 1
    assert not [k for s in spans for k in s.attributes if k in CONTENT_ATTRIBUTES]
    assert {s.service for s in spans} == {"durable-agents"}


async def test_message_content_only_when_opted_in(
    temporal_env: WorkflowEnvironment,
    span_switch: _Switch,
    receiver: OtlpReceiver,
    task_queue: str,
    registry: AgentRegistry,
) -> None:
    """With content capture on, ``chat`` spans carry the prompt and the completion and
    ``execute_tool`` spans the arguments and the result, in the conventions' JSON shapes."""
    client = await traced_client(temporal_env, capture_content=True)
    async with running_worker(client, task_queue, registry):
        await client.execute_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-adder", task="add 1+2 and 40+2"),
            id=f"trace-content-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
    spans = flushed(span_switch, receiver)
    first = next(
        s for s in spans if s.name == "chat scripted" and s.attributes["durable_agents.step"] == 1
    )
    assert "add 1+2 and 40+2" in first.attributes["gen_ai.input.messages"]
    assert '"type":"tool_call"' in first.attributes["gen_ai.output.messages"]
    assert "You add numbers." in first.attributes["gen_ai.system_instructions"]
    tool = next(s for s in spans if s.name == "execute_tool add")
    assert '"a"' in tool.attributes["gen_ai.tool.call.arguments"]
    assert "sum" in tool.attributes["gen_ai.tool.call.result"]


async def test_untraced_worker_sends_nothing_though_a_provider_is_set(
    client: Client,
    receiver: OtlpReceiver,
    span_switch: _Switch,
    task_queue: str,
    registry: AgentRegistry,
) -> None:
    """Workflow spans are made only on workers with the tracing plugins: a process-wide tracer
    provider set up by other code (replay-safe or not) gets nothing from an untraced worker."""
    async with running_worker(client, task_queue, registry):
        await client.execute_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-adder", task="add"),
            id=f"untraced-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
    assert flushed(span_switch, receiver) == []


async def test_approval_decision_and_approver_are_traced(
    traced: Client,
    receiver: OtlpReceiver,
    span_switch: _Switch,
    task_queue: str,
    registry: AgentRegistry,
) -> None:
    """A human decision is an ``approval {tool}`` span under the run's ``invoke_agent`` span,
    from the request to the decision, with the decision and who made it."""
    async with running_worker(traced, task_queue, registry):
        handle = await traced.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-gatekeeper", task="pay"),
            id=f"trace-approval-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        for _ in range(200):
            view = await handle.query("status", result_type=AgentStatusView)
            if view.pending_approvals:
                break
            await asyncio.sleep(0.05)
        await handle.signal("approve", ApprovalSignal(approver="alice", comment="ok"))
        assert (await handle.result()).status == "completed"
    spans = flushed(span_switch, receiver)
    by_id = {s.span_id: s for s in spans}
    approval = one(spans, "approval transfer", handle.id)
    assert approval.attributes["durable_agents.approval.decision"] == "approve"
    assert approval.attributes["durable_agents.approval.approver"] == "alice"
    assert approval.attributes["durable_agents.approval.timed_out"] is False
    assert approval.attributes["gen_ai.tool.name"] == "transfer"
    assert approval.end_ns >= approval.start_ns
    assert one(spans, "invoke_agent test-gatekeeper", handle.id) in ancestors(approval, by_id)


async def test_forced_replays_send_no_new_spans(
    traced: Client,
    receiver: OtlpReceiver,
    span_switch: _Switch,
    task_queue: str,
    registry: AgentRegistry,
) -> None:
    """A delegator run on a worker that caches no workflow (every workflow task replays the
    whole history), then a full replay of each finished workflow by a query and by a
    ``Replayer`` with tracing on: the span count is the same before and after, and every span
    is sent once (the rules in the module docstring)."""
    plugin = AgentsPlugin(
        registry=registry,
        providers={"scripted": ScriptedProvider(registry.scripts)},
        mcp_servers={},
        data_converter=traced.data_converter,
    )
    async with Worker(traced, task_queue=task_queue, plugins=[plugin], max_cached_workflows=0):
        handle = await traced.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="delegator", task="add"),
            id=f"trace-replay-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        assert (await handle.result()).status == "completed"
        workflow_ids = [handle.id, f"{handle.id}/test-adder-1-call_1_0"]
        before = flushed(span_switch, receiver)
        await assert_no_duplicates(before, traced, workflow_ids)
        # A query on a finished workflow replays its whole history on the worker.
        for workflow_id in workflow_ids:
            await traced.get_workflow_handle(workflow_id).query(
                "status", result_type=AgentStatusView
            )
    replayer = Replayer(
        workflows=list(SHIPPED_WORKFLOWS),
        data_converter=pydantic_data_converter,
        plugins=tracing_plugins(TracingSettings(enabled=True)),
    )
    for workflow_id in workflow_ids:
        history = await traced.get_workflow_handle(workflow_id).fetch_history()
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None
    after = flushed(span_switch, receiver)
    queries = [s for s in after if s.name.startswith(("HandleQuery:", "QueryWorkflow:"))]
    print(
        f"\nspans before the forced replays: {len(before)}; after: {len(after)}, of which "
        f"{len(queries)} are the queries' own ({counts(queries)})"
    )
    assert len(after) - len(queries) == len(before)
    assert {s.span_id for s in after} - {s.span_id for s in queries} == {s.span_id for s in before}
    await assert_no_duplicates(after, traced, workflow_ids)


@pytest.mark.slow
async def test_kill9_mid_run_sends_each_span_once(
    temporal_env: WorkflowEnvironment,
    span_switch: _Switch,
    receiver: OtlpReceiver,
    task_queue: str,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    """Real ``worker.py`` processes export to the receiver (``OTEL_EXPORTER_OTLP_ENDPOINT``);
    the first is killed -9 while the sub-agent runs, a second replays parent and child and
    finishes them. The run's spans arrive with no duplicates, all in one trace."""
    client = await traced_client(temporal_env)
    env = {
        **worker_env,
        "DURABLE_AGENTS_MODULES": "tests.agents_for_tests,tests.composition_agents",
        "SCRIPTED_MODEL_LATENCY_MS": "1500",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_SERVICE_NAME": "durable-agents-worker",
    }
    env.pop("DURABLE_AGENTS_TRACING", None)
    workers.append(WorkerProcess(env, tmp_path / "worker-1.log"))
    await wait_for_poller(client, task_queue)
    handle = await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent="delegator", task="add"),
        id=f"trace-crash-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=AgentResult,
    )
    child = client.get_workflow_handle(
        f"{handle.id}/test-adder-1-call_1_0", result_type=AgentResult
    )
    # Kill while the sub-agent's second model call is in flight, once the worker has exported
    # what it ended before (a kill -9 loses spans ended in the last export interval: nothing
    # flushes them; see docs/tracing.md).
    receiver.wait_for(lambda got: sum(1 for s in got if s.name == "execute_tool add") == 2, 60)
    await asyncio.sleep(0.2)
    assert len(await completed_model_calls(child)) == 1
    workers[0].kill9()
    killed_at = len(receiver.snapshot())
    workers.append(WorkerProcess(env, tmp_path / "worker-2.log"))
    result = await asyncio.wait_for(handle.result(), timeout=180)
    assert result.status == "completed"
    workflow_ids = [handle.id, child.id]
    spans = receiver.wait_for(
        lambda got: sum(1 for s in got if s.name.startswith("invoke_agent ")) >= 2
    )
    await asyncio.sleep(0.5)  # anything still in flight
    spans = flushed(span_switch, receiver)
    print(
        f"\nspans after kill -9 and resume: {len(spans)} ({killed_at} sent before the kill): "
        f"{counts(spans)}"
    )
    await assert_no_duplicates(spans, client, workflow_ids)
    assert len({s.trace_id for s in spans}) == 1
    # One tree: spans the second worker ended (re-created in replay with their first ids) are
    # the parents of those the first worker ended before it died.
    by_id = {s.span_id: s for s in spans}
    assert [s.name for s in spans if s.parent_span_id and s.parent_span_id not in by_id] == []
    retried = [
        (workflow_of(s).rsplit("/", 1)[-1], s.name, s.attributes["durable_agents.step"])
        for s in spans
        if s.attributes.get("durable_agents.attempt", 1) > 1
    ]
    print("attempts retried after the kill:", retried)
    assert (child.id.rsplit("/", 1)[-1], "chat scripted", 2) in retried
    assert {s.service for s in spans} == {"durable-agents", "durable-agents-worker"}
    assert os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") is None  # the test process untouched
