"""The command line: start agents, follow them, read their status and results.

    python starter.py run finops "Why did the cloud bill spike?"   start and follow to the result
    python starter.py start finops "..."                            start, print the workflow id
    python starter.py run parallel '{"branches": [...]}'            a pattern, followed (tree)
    python starter.py patterns                                      the patterns and examples
    python starter.py status WORKFLOW_ID                            the ``status`` query
    python starter.py cost WORKFLOW_ID                              spend: limit, per child
    python starter.py result WORKFLOW_ID                            wait for and print the result
    python starter.py cancel WORKFLOW_ID                            request cancellation
    python starter.py steps WORKFLOW_ID                             a run's steps, from history
    python starter.py fork WORKFLOW_ID --at-step N                  a new run from step N on
    python starter.py pending                                       runs waiting for a human
    python starter.py approve WORKFLOW_ID [APPROVAL] --as NAME      approve a gated tool call
    python starter.py reject WORKFLOW_ID [APPROVAL] --as NAME --reason TEXT
    python starter.py agents                                        the agents this project serves
    python starter.py server start|stop|status                      the embedded dev server
    python starter.py replay-check [--since 7d]                     replay recent runs (pre-deploy)

Every command takes ``--json`` for machine-readable output. With ``TEMPORAL_ADDRESS`` unset the
embedded dev server is used (started if needed), and ``run`` runs a worker inside the command
when no worker is polling the task queue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from durable_agents.agents import UnknownAgentError, default_registry
from durable_agents.cli import fork, patterns
from durable_agents.cli.follow import RunFollower, describe_call
from durable_agents.cli.history import HistoryError, RunSteps, read_run
from durable_agents.contracts import (
    AgentInput,
    AgentResult,
    AgentStatusView,
    PendingApproval,
)
from durable_agents.contracts.approvals import DecideRequest, DecideResult
from durable_agents.contracts.budget import Budget
from durable_agents.runtime.client import (
    connect,
    embedded_codec_server,
    embedded_server,
    start_embedded_services,
)
from durable_agents.runtime.settings import TemporalSettings
from examples import AGENT_MODULES


class CliError(Exception):
    """A problem the user can fix; printed without a traceback, exit code 2."""


def emit(as_json: bool, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if as_json else text, flush=True)


async def has_pollers(client: Client, task_queue: str) -> bool:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len(response.pollers) > 0


@contextlib.asynccontextmanager
async def hosted_worker(
    client: Client, settings: TemporalSettings, args: argparse.Namespace
) -> AsyncIterator[None]:
    """In embedded mode ``run`` hosts a worker for as long as it follows the run.

    So one command is enough on a fresh machine. A separately started ``worker.py`` simply
    shares the work. (Asking the server whether a worker is polling is no help: it reports
    pollers for minutes after they are gone.) With ``TEMPORAL_ADDRESS`` set, workers are yours.
    """
    if not settings.embedded or args.no_worker or args.start_only:
        if not await has_pollers(client, settings.task_queue):
            print(
                f"warning: no worker has polled task queue {settings.task_queue!r} recently; "
                "the run waits until one does (python worker.py)",
                file=sys.stderr,
            )
        yield
        return
    from durable_agents.runtime.search_attributes import ensure_agent_status_attribute
    from worker import build_worker  # imported here: only `run` in embedded mode needs it

    status_attribute = await ensure_agent_status_attribute(client)
    async with build_worker(client, settings.task_queue, status_search_attribute=status_attribute):
        yield


SUMMARY_TASK_CHARS = 100
"""How much of the task the workflow list's summary column shows."""


def start_metadata(agent_input: AgentInput) -> tuple[str, str]:
    """The run's summary and details (Markdown) in the Web UI: which agent, on what."""
    task = " ".join(agent_input.task.split())
    if len(task) > SUMMARY_TASK_CHARS:
        task = task[: SUMMARY_TASK_CHARS - 1] + "…"
    details = [f"**Agent:** {agent_input.agent}"]
    if agent_input.model:
        details.append(f"**Model:** {agent_input.model}")
    if agent_input.max_steps:
        details.append(f"**Max steps:** {agent_input.max_steps}")
    details.append(f"**Task:** {agent_input.task[:2000]}")
    return f"{agent_input.agent}: {task}", "\n\n".join(details)


def check_agent(name: str) -> None:
    try:
        default_registry(AGENT_MODULES).get(name)
    except UnknownAgentError as err:
        raise CliError(str(err)) from None


async def decide(handle: WorkflowHandle[Any, Any], request: DecideRequest) -> DecideResult:
    try:
        result: DecideResult = await handle.execute_update(
            "decide", request, result_type=DecideResult
        )
        return result
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise CliError(f"decision refused: {getattr(cause, 'message', cause)}") from None


async def handle_approval(
    handle: WorkflowHandle[Any, Any],
    approval: PendingApproval,
    approve_as: str | None,
    quiet: bool = False,
) -> None:
    """In a terminal, ask; otherwise approve as ``approve_as`` if given, or say how to decide.

    With ``quiet`` (``--json``) messages go to stderr so stdout stays one JSON document.
    """
    out = sys.stderr if quiet else sys.stdout
    if sys.stdin.isatty():
        default_name = approve_as or os.environ.get("USER", "operator")
        answer = await asyncio.to_thread(
            input, f"  approve {approval.id} as {default_name}? [y/N/reason to reject] "
        )
        answer = answer.strip()
        if answer.lower() in ("y", "yes"):
            request = DecideRequest(
                approval_id=approval.id, approver=default_name, decision="approve"
            )
        else:
            request = DecideRequest(
                approval_id=approval.id,
                approver=default_name,
                decision="reject",
                comment="" if answer.lower() in ("", "n", "no") else answer,
            )
        result = await decide(handle, request)
        print(f"  {result.decision}d {approval.id} as {result.approver}", file=out)
    elif approve_as:
        await decide(
            handle,
            DecideRequest(
                approval_id=approval.id,
                approver=approve_as,
                decision="approve",
                comment="approved automatically by starter.py --approve-as (no terminal)",
            ),
        )
        print(
            f"  approved {approval.id} automatically as {approve_as!r} (--approve-as, no terminal)",
            file=out,
        )
    else:
        print(
            f"  decide with: python starter.py approve {handle.id} {approval.id} --as NAME\n"
            f"           or: python starter.py reject {handle.id} {approval.id} --as NAME "
            "--reason TEXT",
            file=out,
        )


async def follow(
    client: Client,
    handle: WorkflowHandle[Any, Any],
    quiet: bool,
    approve_as: str | None = None,
    stream: bool = False,
) -> None:
    """Print each step of the run and of every workflow under it as it happens; with
    ``stream``, the model's text too, as it is generated (on stderr with ``--json``)."""

    async def on_approval(owner: WorkflowHandle[Any, Any], approval: PendingApproval) -> None:
        await handle_approval(owner, approval, approve_as, quiet)

    out = sys.stderr if quiet else sys.stdout
    if stream:
        from durable_agents.cli.live import follow_streamed

        await follow_streamed(client, handle, out, on_approval)
        return
    await RunFollower(client, out=out, on_approval=on_approval, steps=not quiet).follow(handle)


async def wait_result(handle: WorkflowHandle[Any, Any]) -> tuple[Any, str | None]:
    try:
        return await handle.result(), None
    except WorkflowFailureError as err:
        cause = err.cause
        message = str(cause.message if hasattr(cause, "message") else cause)
        return None, message


def codec_line(settings: TemporalSettings) -> str | None:
    """How to point the ``temporal`` CLI at the embedded codec server, if there is one."""
    codec = embedded_codec_server(settings) if settings.embedded else None
    return codec.cli_environment() if codec is not None else None


def result_text(result: AgentResult, url: str | None, cli: str | None = None) -> str:
    lines = [
        "",
        "-" * 72,
        f"status:  {result.status}",
        f"steps:   {result.steps}",
        f"tokens:  {result.usage.input_tokens} in / {result.usage.output_tokens} out",
        f"cost:    ${result.cost_usd:.4f} ({result.model})",
        *(
            [f"budget:  {budget_text('', result.budget).removeprefix(': ')}"]
            if result.budget is not None and result.budget.limited
            else []
        ),
        "",
        result.output,
    ]
    if url:
        lines += ["", f"Web UI: {url}"]
    if cli:
        lines += [f"Temporal CLI (to read offloaded payloads too): {cli}"]
    return "\n".join(lines)


def run_request(args: argparse.Namespace) -> tuple[str, BaseModel, type[BaseModel], str, str]:
    """What ``run``/``start`` starts: (workflow type, input, result type, summary, details).

    ``NAME`` is an agent (the task is text) or a pattern (``parallel``, ``PipelineWorkflow``...;
    the task is its input as JSON), checked here so mistakes are clear errors, not failed runs.
    """
    pattern = patterns.find(args.agent)
    if pattern is None:
        check_agent(args.agent)
        agent_input = AgentInput(
            agent=args.agent,
            task=args.task,
            model=args.model,
            max_steps=args.max_steps,
            budget_usd=args.budget_usd,
            budget_tokens=args.budget_tokens,
            stream=args.stream,
        )
        return ("AgentWorkflow", agent_input, AgentResult, *start_metadata(agent_input))
    if args.stream:
        raise CliError(
            "--stream streams one agent's run; a pattern's agents run as child workflows, "
            "followed step by step without it"
        )
    try:
        value = pattern.parse(args.task)
    except ValueError as err:
        raise CliError(f"{err}\nexample: {json.dumps(pattern.example)}") from None
    for agent in pattern.agents(value):
        check_agent(agent)
    return (pattern.workflow_type, value, pattern.result_model, *patterns.summary(pattern, value))


def any_result_text(result: BaseModel, url: str | None, cli: str | None) -> str:
    if isinstance(result, AgentResult):
        return result_text(result, url, cli)
    text = patterns.result_text(result.model_dump(mode="json"))
    return text + (f"\n\nWeb UI: {url}" if url else "") + (f"\nTemporal CLI: {cli}" if cli else "")


async def pattern_attribute(
    client: Client, pattern: patterns.Pattern | None
) -> TypedSearchAttributes | None:
    """``AgentPattern`` for a pattern run, so ``--query 'AgentPattern = "..."'`` finds it."""
    from durable_agents.runtime.search_attributes import (
        AGENT_PATTERN,
        ensure_agent_status_attribute,
    )

    if pattern is None or not await ensure_agent_status_attribute(client):
        return None
    key = SearchAttributeKey.for_keyword(AGENT_PATTERN)
    return TypedSearchAttributes([SearchAttributePair(key, pattern.workflow_type)])


async def cmd_run(args: argparse.Namespace, settings: TemporalSettings) -> int:
    workflow_type, workflow_input, result_type, summary, details = run_request(args)
    client = await connect(settings)
    pattern = patterns.find(args.agent)
    name = pattern.name if pattern else args.agent
    workflow_id = args.id or f"{name}-{uuid.uuid4().hex[:8]}"
    async with hosted_worker(client, settings, args):
        handle = await client.start_workflow(
            workflow_type, workflow_input, id=workflow_id, task_queue=settings.task_queue,
            result_type=result_type, static_summary=summary, static_details=details,
            search_attributes=await pattern_attribute(client, pattern),
        )  # fmt: skip
        url = settings.workflow_url(workflow_id, handle.result_run_id)
        if not args.json:
            where = f"; follow it in the Web UI: {url}" if url else ""
            print(f"Started {workflow_id} ({name}){where}")
        if not args.start_only:
            # The id, not this run: after continue-as-new the latest run answers.
            latest = client.get_workflow_handle(workflow_id, result_type=result_type)
            await follow(
                client, latest, quiet=args.json, approve_as=args.approve_as, stream=args.stream
            )
            result, error = await wait_result(handle)
        else:
            result, error = None, None
    data = {"workflow_id": workflow_id, "run_id": handle.result_run_id, "web_ui": url}
    if args.start_only:
        emit(args.json, data, workflow_id)
        return 0
    if result is None:
        emit(args.json, {**data, "status": "failed", "error": error}, f"\nfailed: {error}\n{url}")
        return 1
    emit(
        args.json,
        {**data, **result.model_dump(mode="json")},
        any_result_text(result, url, codec_line(settings)),
    )
    return 0


async def cmd_status(args: argparse.Namespace, settings: TemporalSettings) -> int:
    client = await connect(settings)
    view = await client.get_workflow_handle(args.workflow_id).query(
        "status", result_type=AgentStatusView
    )
    text = (
        f"{args.workflow_id}: {view.status} ({view.phase.replace('_', ' ')}), "
        f"step {view.steps}/{view.max_steps}, ${view.cost_usd:.4f}, "
        f"{len(view.pending_approvals)} pending approvals"
    )
    emit(args.json, view.model_dump(mode="json"), text)
    return 0


def budget_text(workflow_id: str, budget: Budget | None) -> str:
    if budget is None:
        return f"{workflow_id}: no spend recorded"
    limit = []
    if budget.limit_usd is not None:
        limit.append(f"${budget.limit_usd:.4f}")
    if budget.limit_tokens is not None:
        limit.append(f"{budget.limit_tokens:,} tokens")
    lines = [
        f"{workflow_id}: spent ${budget.spent_usd:.4f} ({budget.spent_tokens:,} tokens), "
        f"reserved ${budget.reserved_usd:.4f} ({budget.reserved_tokens:,} tokens), "
        f"limit {' and '.join(limit) or 'none'}"
    ]
    if budget.unpriced_calls:
        lines.append(f"  {budget.unpriced_calls} model calls of unknown price (tokens only)")
    if budget.exhausted:
        lines.append(f"  stopped: {budget.exhausted}")
    for child in budget.children:
        granted = f"${child.granted_usd:.4f}" if child.granted_usd is not None else "unlimited"
        state = "running" if child.open else "ended"
        lines.append(
            f"  {child.label:<32} granted {granted:>10}  spent ${child.spent_usd:.4f} "
            f"({child.spent_tokens:,} tokens)  {state}"
        )
    return "\n".join(lines)


async def cmd_cost(args: argparse.Namespace, settings: TemporalSettings) -> int:
    client = await connect(settings)
    handle = client.get_workflow_handle(args.workflow_id)
    description = await handle.describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        budget = (await handle.query("status", result_type=AgentStatusView)).budget
    else:  # closed: its result says (no worker needed to answer a query)
        closed = client.get_workflow_handle(args.workflow_id, result_type=dict)
        try:
            ended: dict[str, Any] = await closed.result()
        except WorkflowFailureError:
            raise CliError(f"{args.workflow_id} failed: it has no result to read") from None
        budget = Budget.model_validate(ended["budget"]) if ended.get("budget") else None
    data = budget.model_dump(mode="json") if budget else None
    emit(args.json, data, budget_text(args.workflow_id, budget))
    return 0


async def cmd_result(args: argparse.Namespace, settings: TemporalSettings) -> int:
    client = await connect(settings)
    description = await client.get_workflow_handle(args.workflow_id).describe()
    pattern = patterns.find(description.workflow_type)
    result_type = pattern.result_model if pattern else AgentResult
    handle = client.get_workflow_handle(args.workflow_id, result_type=result_type)
    result, error = await wait_result(handle)
    url = settings.workflow_url(args.workflow_id)
    if result is None:
        emit(args.json, {"status": "failed", "error": error}, f"failed: {error}")
        return 1
    emit(args.json, result.model_dump(mode="json"), any_result_text(result, url, None))
    return 0


async def cmd_cancel(args: argparse.Namespace, settings: TemporalSettings) -> int:
    client = await connect(settings)
    await client.get_workflow_handle(args.workflow_id).cancel()
    emit(args.json, {"workflow_id": args.workflow_id, "cancel_requested": True},
         f"cancellation requested for {args.workflow_id}")  # fmt: skip
    return 0


async def cmd_pending(args: argparse.Namespace, settings: TemporalSettings) -> int:
    client = await connect(settings)
    found: list[dict[str, Any]] = []
    query = 'AgentStatus = "awaiting_approval" AND ExecutionStatus = "Running"'
    async for execution in client.list_workflows(query):
        view = await client.get_workflow_handle(execution.id).query(
            "status", result_type=AgentStatusView
        )
        for approval in view.pending_approvals:
            if approval.workflow_id is not None:
                continue  # a sub-agent's: its own workflow is listed too
            found.append({**approval.model_dump(mode="json"), "workflow_id": execution.id})
    text = "\n".join(
        f"{p['workflow_id']}  {p['id']}  {p['tool']}({json.dumps(p['arguments'])})  "
        f"deadline {p['deadline']}" + ("  escalated" if p["escalated"] else "")
        for p in found
    )
    emit(args.json, found, text or "no approvals pending")
    return 0


async def cmd_decide(args: argparse.Namespace, settings: TemporalSettings) -> int:
    client = await connect(settings)
    arguments = None
    if getattr(args, "args", None):
        try:
            arguments = json.loads(args.args)
        except ValueError as err:
            raise CliError(f"--args is not valid JSON: {err}") from None
        if not isinstance(arguments, dict):
            raise CliError("--args must be a JSON object")
    request = DecideRequest(
        approval_id=args.approval_id,
        approver=args.approver,
        decision=args.decision,
        arguments=arguments,
        comment=getattr(args, "reason", None) or args.comment or "",
    )
    result = await decide(client.get_workflow_handle(args.workflow_id), request)
    emit(
        args.json,
        result.model_dump(mode="json"),
        f"{result.decision}d {result.approval_id} ({result.tool}) as {result.approver}",
    )
    return 0


def steps_text(view: RunSteps) -> str:
    runs = len(view.run_ids)
    lines = [
        f"{view.workflow_id}: {view.agent}, {view.status}, {len(view.steps)} steps in {runs} "
        f"run{'s' if runs > 1 else ''}",
        f"task: {' '.join(view.task.split())[:200]}",
    ]
    if view.forked_from is not None:
        origin = view.forked_from
        lines.append(f"fork of {origin.workflow_id} (run {origin.run_id}) at step {origin.step}")
    for step in view.steps:
        lines += ["", f"step {step.step} · {step.model} · run {step.run_id[:8]}"]
        if step.text:
            lines.append("  model: " + " ".join(step.text.split()))
        lines += [describe_call(call) for call in step.tool_calls]
        for approval in step.approvals:
            decided = (
                f"{approval.decision}d by {approval.approver}"
                + (f" ({approval.comment})" if approval.comment else "")
                if approval.decision
                else "pending"
            )
            lines.append(f"  approval {approval.id} ({approval.tool}): {decided}")
    return "\n".join(lines)


async def cmd_steps(args: argparse.Namespace, settings: TemporalSettings) -> int:
    client = await connect(settings)
    try:
        run = await read_run(client, args.workflow_id)
        if args.conversation is not None:
            messages = fork.conversation_after(run, args.conversation)
            emit(
                args.json,
                [m.model_dump(mode="json") for m in messages],
                f"conversation after step {args.conversation} (indexes for --edit-message):\n"
                + "\n".join(fork.describe_message(i, m) for i, m in enumerate(messages)),
            )
            return 0
    except HistoryError as err:
        raise CliError(str(err)) from None
    view = run.view()
    emit(args.json, view.model_dump(mode="json"), steps_text(view))
    return 0


async def cmd_fork(args: argparse.Namespace, settings: TemporalSettings) -> int:
    """A new AgentWorkflow from the original's conversation after ``--at-step``, followed."""
    client = await connect(settings)
    try:
        run = await read_run(client, args.workflow_id)
        edits = [fork.MessageEdit.parse(raw) for raw in args.edit_message]
        messages = fork.conversation_after(run, args.at_step)
        fork_input = fork.fork_input(
            run, args.at_step, fork.apply_edits(messages, args.task, edits), args.model
        )
    except HistoryError as err:
        raise CliError(str(err)) from None
    origin = fork_input.forked_from
    assert origin is not None
    workflow_id = args.id or f"{run.input.agent}-fork-{uuid.uuid4().hex[:8]}"
    summary = f"fork of {origin.workflow_id} at step {origin.step}"
    details = start_metadata(fork_input)[1] + (
        f"\n\n**Forked from:** {origin.workflow_id} (run {origin.run_id}) after step "
        f"{origin.step}" + "".join(f"; message {e.index} edited" for e in edits)
    )
    async with hosted_worker(client, settings, args):
        handle = await client.start_workflow(
            "AgentWorkflow", fork_input, id=workflow_id, task_queue=settings.task_queue,
            result_type=AgentResult, static_summary=summary, static_details=details,
            memo={"forked_from": origin.model_dump(mode="json")},
        )  # fmt: skip
        url = settings.workflow_url(workflow_id, handle.result_run_id)
        if not args.json:
            print(f"Started {workflow_id}: {summary}" + (f"; Web UI: {url}" if url else ""))
        result, error = None, None
        if not args.start_only:
            latest = client.get_workflow_handle(workflow_id, result_type=AgentResult)
            await follow(client, latest, quiet=args.json, approve_as=args.approve_as)
            result, error = await wait_result(handle)
    data = {
        "workflow_id": workflow_id,
        "run_id": handle.result_run_id,
        "web_ui": url,
        "forked_from": origin.model_dump(mode="json"),
    }
    if args.start_only:
        emit(args.json, data, workflow_id)
        return 0
    if result is None:
        emit(args.json, {**data, "status": "failed", "error": error}, f"\nfailed: {error}")
        return 1
    emit(args.json, {**data, **result.model_dump(mode="json")}, result_text(result, url))
    return 0


async def cmd_agents(args: argparse.Namespace, settings: TemporalSettings) -> int:
    registry = default_registry(AGENT_MODULES)
    agents = registry.all()
    data = [
        {
            "name": a.name,
            "description": a.description,
            "model": a.model,
            "max_steps": a.max_steps,
            "offline": a.name in registry.scripts,
            "tools": [{"name": t.name, "effect": t.effect} for t in a.tools],
        }
        for a in agents
    ]
    width = max((len(a.name) for a in agents), default=0) + 1
    text = "\n".join(
        f"{a.name:<{width}} {a.description}\n{'':<{width}} tools: "
        + (", ".join(t.name for t in a.tools) or "none")
        for a in agents
    )
    emit(args.json, data, text)
    return 0


async def cmd_patterns(args: argparse.Namespace, settings: TemporalSettings) -> int:
    data = [
        {
            "name": p.name,
            "workflow_type": p.workflow_type,
            "description": p.description,
            "input_schema": p.input_model.model_json_schema(),
            "example": p.example,
        }
        for p in patterns.PATTERNS
    ]
    blocks = []
    for p in patterns.PATTERNS:
        example = json.dumps(p.example)
        blocks.append(
            f"{p.name} ({p.workflow_type})\n  {p.description}\n"
            f"  python starter.py run {p.name} '{example}'\n"
            f"  temporal workflow start --type {p.workflow_type} --task-queue "
            f"{settings.task_queue} --input '{example}'"
        )
    emit(args.json, data, "\n\n".join(blocks))
    return 0


async def cmd_server(args: argparse.Namespace, settings: TemporalSettings) -> int:
    if not settings.embedded:
        raise CliError(
            f"TEMPORAL_ADDRESS is set ({settings.address}): no embedded server to manage"
        )
    server = embedded_server(settings)
    codec = embedded_codec_server(settings)
    if args.action == "start":
        started = await start_embedded_services(settings)
        state = "started" if started else "already running"
    elif args.action == "stop":
        if codec is not None:
            codec.stop()
        state = "stopped" if server.stop() else "not running (or not started by this project)"
    else:
        from durable_agents.runtime.devserver import port_open

        state = "running" if port_open(server.host, server.port) else "not running"
    data = {"state": state, "address": server.address, "web_ui": settings.ui_url,
            "db": str(server.db_file), "log": str(server.log_file),
            "codec_server": codec.url if codec else None}  # fmt: skip
    text = f"Temporal dev server {state}: {server.address}, Web UI {settings.ui_url}"
    if codec is not None and args.action != "stop":
        text += f"\ncodec server {codec.url}; for the temporal CLI: {codec.cli_environment()}"
    emit(args.json, data, text)
    return 0


async def cmd_replay_check(args: argparse.Namespace, settings: TemporalSettings) -> int:
    """Replay recent runs of every served workflow type against this code; 1 on any failure."""
    from durable_agents.cli import replay_check
    from worker import example_workflows

    try:
        overrides = [replay_check.load_workflow(spec) for spec in args.workflow]
        since = parse_duration(args.since)
    except (replay_check.ReplayCheckError, ValueError) as err:
        raise CliError(str(err)) from None
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    workflows = replay_check.served_workflows(example_workflows(), overrides)
    try:
        client = await connect(settings, start_embedded=False)
    except RuntimeError as err:  # the SDK's "Failed client connect: ..."
        raise CliError(f"cannot reach Temporal at {settings.address}: {err}") from None
    replayer = replay_check.build_replayer(client, default_registry(AGENT_MODULES), workflows)
    reports = await replay_check.check(
        client, replayer, [replay_check.workflow_type(cls) for cls in workflows],
        task_queue=settings.task_queue, since=since, limit=args.limit, query=args.query,
    )  # fmt: skip
    failed = sum(r.failed for r in reports)
    summary = (
        f"replay-check: {sum(r.replayed for r in reports)} runs replayed, {failed} failed "
        f"(started in the last {args.since} on task queue {settings.task_queue!r})"
    )
    emit(
        args.json,
        {"ok": failed == 0, "reports": [r.as_json() for r in reports]},
        "\n".join([*(r.text() for r in reports), summary]),
    )
    return 1 if failed else 0


def parse_duration(text: str) -> timedelta:
    """``90m``, ``36h``, ``7d`` -> a timedelta."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) < 1:
        raise ValueError(f"{text!r} is not a duration like 90m, 36h or 7d")
    return timedelta(**{units[unit]: int(number)})


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="starter.py", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    for name, start_only in (("run", False), ("start", True)):
        p = command(
            name,
            "start an agent or a pattern" + ("" if start_only else " and follow it to the end"),
        )
        p.add_argument("agent", help="an agent, or a pattern (see `patterns`)")
        p.add_argument("task", help="the task; for a pattern, its input as JSON")
        p.add_argument(
            "--model", help="provider:model, e.g. scripted or anthropic:claude-sonnet-4-5"
        )
        p.add_argument("--max-steps", type=int)
        p.add_argument(
            "--budget-usd", type=float, help="stop (budget_exhausted) before spending more"
        )
        p.add_argument("--budget-tokens", type=int, help="stop before using more tokens")
        p.add_argument(
            "--stream", action="store_true",
            help="stream the model's text as it is generated (the run records its stream)",
        )  # fmt: skip
        p.add_argument("--id", help="workflow id (default: AGENT-<random>)")
        p.add_argument(
            "--approve-as",
            metavar="NAME",
            help="approver name for prompts; without a terminal, approve gated calls as NAME",
        )
        p.add_argument(
            "--no-worker",
            action="store_true",
            help="embedded mode: do not host a worker in this command (use python worker.py)",
        )
        p.set_defaults(handler=cmd_run, start_only=start_only)
    for name, handler, help in (
        ("status", cmd_status, "query a run's status"),
        ("cost", cmd_cost, "a run's spend against its budget, per child"),
        ("result", cmd_result, "wait for a run's result"),
        ("cancel", cmd_cancel, "cancel a run (it ends with status 'cancelled')"),
    ):
        p = command(name, help)
        p.add_argument("workflow_id")
        p.set_defaults(handler=handler)
    command("pending", "list runs waiting for an approval").set_defaults(handler=cmd_pending)
    p = command("steps", "a run's steps from its history: model text, tool calls, approvals")
    p.add_argument("workflow_id")
    p.add_argument(
        "--conversation", type=int, metavar="N",
        help="print the conversation after step N instead (what `fork --at-step N` starts from)",
    )  # fmt: skip
    p.set_defaults(handler=cmd_steps)
    p = command("fork", "start a new run from a run's conversation after one of its steps")
    p.add_argument("workflow_id")
    p.add_argument("--at-step", type=int, required=True, metavar="N", help="0: from the start")
    p.add_argument("--task", help="replace the first user message")
    p.add_argument(
        "--edit-message", action="append", default=[], metavar="K=TEXT",
        help="replace message K's text (see `steps ID --conversation N`); repeatable",
    )  # fmt: skip
    p.add_argument("--model", help="the fork's model (default: the original's)")
    p.add_argument("--id", help="workflow id (default: AGENT-fork-<random>)")
    p.add_argument("--approve-as", metavar="NAME", help="as for `run`")
    p.add_argument("--no-follow", dest="start_only", action="store_true",
                   help="start it and print its id")  # fmt: skip
    p.add_argument("--no-worker", action="store_true", help="as for `run`")
    p.set_defaults(handler=cmd_fork)
    for decision in ("approve", "reject"):
        p = command(decision, f"{decision} a pending tool call (via the validated update)")
        p.add_argument("workflow_id")
        p.add_argument("approval_id", nargs="?", help="omit when exactly one is pending")
        p.add_argument("--as", dest="approver", required=True, help="who decides")
        p.add_argument("--comment", default="")
        if decision == "approve":
            p.add_argument("--args", help="edited arguments as a JSON object")
        else:
            p.add_argument("--reason", required=True, help="what the model is told")
        p.set_defaults(handler=cmd_decide, decision=decision)
    command("agents", "list the agents").set_defaults(handler=cmd_agents)
    command("patterns", "list the multi-agent patterns, with examples").set_defaults(
        handler=cmd_patterns
    )
    p = command("replay-check", "replay recent runs against this code: run before a deploy")
    p.add_argument("--since", default="7d", help="runs started this recently (90m, 36h, 7d)")
    p.add_argument("--limit", type=int, default=50, help="runs per workflow type (default 50)")
    p.add_argument("--query", help="a visibility query ANDed in, e.g. ExecutionStatus='Running'")
    p.add_argument(
        "--workflow", action="append", default=[], metavar="MODULE:CLASS",
        help="also replay with this workflow class (replaces a served one of the same type)",
    )  # fmt: skip
    p.set_defaults(handler=cmd_replay_check)
    p = command("server", "manage the embedded Temporal dev server")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.set_defaults(handler=cmd_server)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "max_steps", None) is not None and args.max_steps < 1:
        print("error: --max-steps must be at least 1", file=sys.stderr)
        return 2
    settings = TemporalSettings.from_env()
    try:
        code: int = asyncio.run(args.handler(args, settings))
        return code
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RPCError as err:
        print(f"error: Temporal refused the request: {err.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say
        return 0


if __name__ == "__main__":
    exit_code = main()
    # Leave without interpreter teardown: tearing down the SDK's Rust runtime after an update
    # call has been seen to crash the process (SIGSEGV) after all work and output were done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
