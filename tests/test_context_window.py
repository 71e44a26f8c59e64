"""Context-window management: blocks, the four strategies, token estimates and summaries.

Pure functions, tested directly; hypothesis drives the invariants with random conversations
(random fan-out of tool calls, result order and sizes). One test runs the planner inside
Temporal's workflow sandbox.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Sequence
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.worker import Worker

from activities.providers.anthropic_provider import to_anthropic_messages
from activities.providers.openai_provider import to_openai_messages
from activities.providers.scripted import (
    CHARS_PER_TOKEN,
    SUMMARY_MAX_CHARS,
    ScriptedProvider,
    extractive_summary,
)
from durable_agents.contracts.context import ContextPolicy, ContextState, ContextStrategy
from durable_agents.contracts.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from durable_agents.contracts.model import ModelRequest
from durable_agents.conversation import (
    SUMMARY_HEADER,
    ContextPlan,
    apply_summary,
    blocks,
    compact,
    estimate_message_tokens,
    estimate_text_tokens,
    estimate_tokens,
    is_summary_message,
    plan_context,
    read_summary_request,
    summary_message,
    summary_request,
)
from durable_agents.testing import ScriptBook, ScriptedReply, ScriptView
from tests.context_sandbox import ContextPlanInSandbox, plan_with_fake_summaries

STRATEGIES: tuple[ContextStrategy, ...] = get_args(ContextStrategy)
MODELS = (
    "anthropic:claude-sonnet-4-6",
    "openai:gpt-4.1-mini",
    "compatible:llama3.1",
    "scripted",
    "unheard-of:model",
)
MODEL = "anthropic:claude-sonnet-4-6"


# --- building conversations -----------------------------------------------------------------


def words(size: int, seed: int = 0) -> str:
    """``size`` characters of filler text, different per seed."""
    return (f"word{seed} " * (size // 6 + 1))[:size]


def turn(step: int, size: int = 100, fan_out: int = 1) -> list[Message]:
    """One loop step: an assistant reply with ``fan_out`` calls, then their results."""
    calls = [
        ToolCall(id=f"call_{step}_{i}", name=f"tool_{i}", arguments=json.dumps({"step": step}))
        for i in range(fan_out)
    ]
    results: list[Message] = [
        ToolResultMessage(tool_call_id=c.id, name=c.name, content=words(size, step)) for c in calls
    ]
    return [AssistantMessage(text=f"step {step}", tool_calls=calls), *results]


def conversation(steps: int, size: int = 100, task: str = "the task") -> list[Message]:
    messages: list[Message] = [UserMessage(text=task)]
    for step in range(1, steps + 1):
        messages += turn(step, size)
    return messages


@st.composite
def conversations(draw: st.DrawFn, trailing_calls: bool = False) -> list[Message]:
    """A task, then random turns: tool calls with fan-out 1-4 (results in any order), plain
    replies and follow-up user messages, of random sizes (now and then huge or non-Latin)."""
    tiers = {"small": st.integers(0, 300), "medium": st.integers(0, 3_000), "huge": st.just(30_000)}
    tier = st.sampled_from(["small"] * 6 + ["medium"] * 3 + ["huge"])

    def text(seed: int) -> str:
        base = words(draw(tiers[draw(tier)]), seed)
        return base.replace("o", "ö") if draw(st.booleans()) else base

    messages: list[Message] = [UserMessage(text=text(0) or "task")]
    for step in range(1, draw(st.integers(0, 25)) + 1):
        kind = draw(st.sampled_from(["tools", "tools", "tools", "text", "user"]))
        if kind == "user":
            messages.append(UserMessage(text=text(step)))
        elif kind == "text":
            messages.append(AssistantMessage(text=text(step)))
        else:
            calls = [
                ToolCall(id=f"call_{step}_{i}", name=f"tool_{i}", arguments=text(step))
                for i in range(draw(st.integers(1, 4)))
            ]
            messages.append(AssistantMessage(text=text(step), tool_calls=calls))
            for i in draw(st.permutations(range(len(calls)))):
                messages.append(
                    ToolResultMessage(
                        tool_call_id=calls[i].id,
                        name=calls[i].name,
                        content=text(step),
                        is_error=draw(st.booleans()),
                    )
                )
    if trailing_calls and draw(st.booleans()):
        messages.append(AssistantMessage(tool_calls=[ToolCall(id="call_last_0", name="tool_0")]))
    return messages


@st.composite
def policies(draw: st.DrawFn, strategy: ContextStrategy | None = None) -> ContextPolicy:
    budget = draw(st.integers(50, 30_000))
    return ContextPolicy(
        strategy=strategy or draw(st.sampled_from(STRATEGIES[::-1])),
        max_context_tokens=budget,
        keep_recent_turns=draw(st.integers(1, 8)),
        fold_every_turns=draw(st.integers(1, 3)),
        summary_max_tokens=draw(st.integers(1, min(budget - 1, 2_000))),
    )


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --- the workflow's recipe, with the scripted summarizer ------------------------------------


def plan_and_summarize(
    messages: Sequence[Message], policy: ContextPolicy, state: ContextState, model: str
) -> tuple[ContextPlan, int]:
    """Plan; while a summary is needed, fold with the scripted summarizer and plan again.

    Returns the final plan and how many summary calls it took.
    """
    plan = plan_context(messages, policy, state, model)
    calls = 0
    while plan.needs_summary:
        request = summary_request(
            plan.to_fold,
            state,
            policy,
            agent="tester",
            agent_model=model,
            step=1,
            idempotency_key=f"summary-{calls}",
            task=messages[0].text if isinstance(messages[0], UserMessage) else "",
        )
        state = apply_summary(state, extractive_summary(request), len(plan.to_fold))
        plan = plan_context(messages, policy, state, model)
        calls += 1
        assert calls <= len(messages), "every summary call folds at least one message"
    return plan, calls


# --- invariants -----------------------------------------------------------------------------


def sent_tail(plan: ContextPlan, full: Sequence[Message]) -> list[Message]:
    """What ``plan`` sends after the task and the summary message, checked to be a suffix of
    the conversation ``full`` that starts at a block boundary."""
    assert plan.send[0] is full[0], "the task is always sent first"
    tail = plan.send[1:]
    if tail and is_summary_message(tail[0]):
        tail = tail[1:]
    assert all(not is_summary_message(m) for m in tail)
    start = len(full) - len(tail)
    assert all(a is b for a, b in zip(tail, full[start:], strict=True)), "a suffix, in order"
    boundaries = {1}
    for block in blocks(full[1:]):
        boundaries.add(max(boundaries) + len(block))
    assert start in boundaries, f"the window starts mid-block at {start}"
    if len(full) > 1:
        assert tail, "the latest block is always sent"
    return tail


def assert_calls_paired(send: Sequence[Message], full: Sequence[Message]) -> None:
    """No result without its call; no call without its result (when the result exists)."""
    answered = {m.tool_call_id for m in full if isinstance(m, ToolResultMessage)}
    issued: set[str] = set()
    sent_results = {m.tool_call_id for m in send if isinstance(m, ToolResultMessage)}
    for message in send:
        if isinstance(message, AssistantMessage):
            for call in message.tool_calls:
                issued.add(call.id)
                if call.id in answered:
                    assert call.id in sent_results, f"call {call.id} sent without its result"
        elif isinstance(message, ToolResultMessage):
            assert message.tool_call_id in issued, f"result {message.tool_call_id} orphaned"


def assert_valid_for_providers(send: Sequence[Message]) -> None:
    """Both adapters' wire formats hold together: Anthropic's roles alternate and each
    tool_result answers a tool_use of the turn right before; OpenAI's tool messages each answer
    the latest assistant's calls, all of them, before anything else."""
    turns: list[Any] = to_anthropic_messages(send)
    assert turns[0]["role"] == "user"
    for before, after in itertools.pairwise(turns):
        assert before["role"] != after["role"]
        uses = {b["id"] for b in before["content"] if b["type"] == "tool_use"}
        results = {b["tool_use_id"] for b in after["content"] if b["type"] == "tool_result"}
        assert uses == results
    pending: set[str] = set()
    for wire in to_openai_messages("system", send):
        message: Any = wire
        if message["role"] == "tool":
            pending.remove(message["tool_call_id"])
            continue
        assert not pending, f"calls {pending} unanswered"
        pending = {call["id"] for call in message.get("tool_calls") or []}
    assert not pending


def check_plan(
    plan: ContextPlan, full: Sequence[Message], policy: ContextPolicy, model: str
) -> list[Message]:
    tail = sent_tail(plan, full)
    assert_calls_paired(plan.send, full)
    assert plan.estimated_tokens == estimate_tokens(plan.send, model)
    assert plan.state.estimated_tokens == plan.estimated_tokens
    if len(full) > 1:
        latest = blocks(full[1:])[-1]
        assert tail[-len(latest) :] == latest
        if policy.strategy != "keep_all":
            minimum = plan.send[: len(plan.send) - len(tail)] + latest
            if estimate_tokens(minimum, model) <= policy.max_context_tokens:
                assert plan.estimated_tokens <= policy.max_context_tokens
            else:
                assert tail == latest, "over budget, only the minimum is sent"
    return tail


# --- blocks ---------------------------------------------------------------------------------


def test_blocks_keep_calls_with_their_results() -> None:
    """A reply with fan-out is one block with all its results; user messages and plain replies
    are blocks of their own."""
    messages = [
        UserMessage(text="task"),
        *turn(1, fan_out=3),
        AssistantMessage(text="done?"),
        UserMessage(text="more"),
        *turn(2),
    ]
    assert [len(b) for b in blocks(messages)] == [1, 4, 1, 1, 2]
    assert [m for b in blocks(messages) for m in b] == messages


def test_blocks_trailing_call_without_results_is_its_own_block() -> None:
    """A reply whose results are not in yet stands alone (and is the latest block)."""
    pending = AssistantMessage(tool_calls=[ToolCall(id="x", name="t")])
    assert blocks([*turn(1), pending]) == [turn(1), [pending]]


def test_blocks_span_anything_between_a_call_and_its_result() -> None:
    """Out-of-order input: a message between a call and its result joins their block; a result
    answering no call stays with the message before it."""
    step = turn(1)
    interleaved = [step[0], UserMessage(text="interrupt"), step[1]]
    assert blocks(interleaved) == [interleaved]
    orphan = ToolResultMessage(tool_call_id="nobody", name="t", content="?")
    assert blocks([UserMessage(text="q"), orphan, *turn(2)]) == [
        [UserMessage(text="q"), orphan],
        turn(2),
    ]
    assert blocks([]) == []


@given(conversations(trailing_calls=True))
@PROPERTY_SETTINGS
def test_blocks_partition_the_conversation(messages: list[Message]) -> None:
    """Blocks concatenate back to the input, and no result is in a different block from its
    call."""
    cut = blocks(messages)
    assert [m for b in cut for m in b] == messages
    for block in cut:
        assert_calls_paired(block, messages)


# --- keep_all -------------------------------------------------------------------------------


def test_keep_all_sends_everything_even_over_budget() -> None:
    """The default policy is today's behaviour: every message, nothing to fold."""
    messages = conversation(30, size=2_000)
    policy = ContextPolicy(max_context_tokens=100, summary_max_tokens=10)
    assert policy.strategy == "keep_all"
    plan = plan_context(messages, policy, ContextState(), MODEL)
    assert plan.send == messages
    assert not plan.needs_summary
    assert plan.state.folded_messages == 0


@given(conversations(trailing_calls=True), st.sampled_from(MODELS))
@PROPERTY_SETTINGS
def test_keep_all_returns_the_input_unchanged(messages: list[Message], model: str) -> None:
    """Whatever the conversation, keep_all with a fresh state sends exactly the input."""
    plan = plan_context(messages, ContextPolicy(), ContextState(), model)
    assert plan.send == messages
    assert all(a is b for a, b in zip(plan.send, messages, strict=True))
    assert plan.to_fold == []


# --- truncate -------------------------------------------------------------------------------


def test_truncate_sends_the_task_and_the_last_turns() -> None:
    """At most keep_recent_turns turns after the task; the rest are counted as folded."""
    messages = conversation(10)
    policy = ContextPolicy(strategy="truncate", keep_recent_turns=3)
    plan = plan_context(messages, policy, ContextState(), MODEL)
    assert plan.send == [messages[0], *turn(8), *turn(9), *turn(10)]
    assert not plan.needs_summary
    assert plan.state.folded_messages == 14
    assert plan.state.summary == ""


def test_truncate_drops_turns_that_do_not_fit_the_budget() -> None:
    """Fewer turns than keep_recent_turns are sent when they would exceed the budget."""
    messages = conversation(10, size=1_000)
    one_turn = estimate_tokens(turn(10, size=1_000), MODEL)
    budget = estimate_tokens(messages[:1], MODEL) + 2 * one_turn + one_turn // 2
    policy = ContextPolicy(strategy="truncate", keep_recent_turns=5, max_context_tokens=budget)
    plan = plan_context(messages, policy, ContextState(), MODEL)
    assert plan.send[1:] == [*turn(9, size=1_000), *turn(10, size=1_000)]
    assert plan.estimated_tokens <= budget


def test_truncate_never_drops_the_latest_turn() -> None:
    """Even when the latest turn alone exceeds the budget, it is sent (with the task)."""
    messages = [*conversation(3), *turn(4, size=50_000, fan_out=2)]
    policy = ContextPolicy(strategy="truncate", max_context_tokens=1_000, summary_max_tokens=10)
    plan = plan_context(messages, policy, ContextState(), MODEL)
    assert plan.send == [messages[0], *turn(4, size=50_000, fan_out=2)]
    assert plan.estimated_tokens > policy.max_context_tokens


# --- rolling_summary ------------------------------------------------------------------------


def test_rolling_summary_folds_each_turn_that_leaves_the_window() -> None:
    """With a window of 3, the 4th turn pushes the 1st into the summary; the summary message
    goes right after the task."""
    policy = ContextPolicy(strategy="rolling_summary", keep_recent_turns=3)
    state = ContextState()
    assert not plan_context(conversation(3), policy, state, MODEL).needs_summary

    messages = conversation(4)
    plan = plan_context(messages, policy, state, MODEL)
    assert plan.to_fold == turn(1)
    request = summary_request(
        plan.to_fold, state, policy, agent="a", agent_model=MODEL, step=5, idempotency_key="k"
    )
    state = apply_summary(state, "- tool_0 said word1", len(plan.to_fold))
    plan = plan_context(messages, policy, state, MODEL)
    assert not plan.needs_summary
    assert plan.send == [
        messages[0],
        summary_message("- tool_0 said word1"),
        *turn(2),
        *turn(3),
        *turn(4),
    ]
    assert plan.state.folded_messages == 2
    assert plan.state.summary_calls == 1
    assert request.purpose == "summary"


def test_rolling_summary_folds_in_batches() -> None:
    """fold_every_turns=3 lets the window overflow by two turns, then folds three at once."""
    policy = ContextPolicy(strategy="rolling_summary", keep_recent_turns=2, fold_every_turns=3)
    assert not plan_context(conversation(4), policy, ContextState(), MODEL).needs_summary
    plan = plan_context(conversation(5), policy, ContextState(), MODEL)
    assert plan.to_fold == [*turn(1), *turn(2), *turn(3)]


def test_rolling_summary_folds_early_when_over_budget() -> None:
    """Big turns are folded before the window is full, leaving room for the summary."""
    messages = conversation(4, size=4_000)
    policy = ContextPolicy(
        strategy="rolling_summary",
        keep_recent_turns=10,
        max_context_tokens=3_000,
        summary_max_tokens=500,
    )
    plan, calls = plan_and_summarize(messages, policy, ContextState(), MODEL)
    assert calls == 1
    assert plan.send[1:] == [summary_message(plan.state.summary), *turn(4, size=4_000)]
    assert plan.estimated_tokens <= 3_000


# --- summarize ------------------------------------------------------------------------------


def test_summarize_waits_for_the_budget() -> None:
    """Under budget nothing is folded, however many turns there are."""
    messages = conversation(40, size=20)
    policy = ContextPolicy(strategy="summarize", keep_recent_turns=2)
    plan = plan_context(messages, policy, ContextState(), MODEL)
    assert plan.send == messages
    assert not plan.needs_summary


def test_summarize_folds_all_but_the_recent_turns_when_over_budget() -> None:
    """Over budget: everything but the task and the last keep_recent_turns turns is folded into
    one summary, then messages accumulate again until the next fold."""
    policy = ContextPolicy(
        strategy="summarize", keep_recent_turns=3, max_context_tokens=5_000, summary_max_tokens=500
    )
    messages = conversation(20, size=800)
    assert estimate_tokens(messages, MODEL) > 5_000
    plan = plan_context(messages, policy, ContextState(), MODEL)
    assert plan.to_fold == messages[1:-6]

    plan, calls = plan_and_summarize(messages, policy, ContextState(), MODEL)
    assert calls == 1
    assert plan.send[2:] == messages[-6:]
    assert plan.state.folded_messages == len(messages) - 7

    grown = [*messages, *turn(21, size=800)]
    later = plan_context(grown, policy, plan.state, MODEL)
    assert not later.needs_summary
    assert later.send[2:] == grown[-8:]


def test_a_summary_left_over_from_another_strategy_is_still_sent() -> None:
    """A state carrying a summary keeps it in front of the window under any strategy."""
    state = ContextState(summary="earlier: cluster gpu-7 idle", folded_messages=4)
    messages = conversation(6)
    for strategy in STRATEGIES:
        plan = plan_context(messages, ContextPolicy(strategy=strategy), state, MODEL)
        assert plan.send[:2] == [messages[0], summary_message("earlier: cluster gpu-7 idle")]
        assert plan.send[2:] == messages[5:]


# --- invariants under random conversations --------------------------------------------------


@given(conversations(), policies(), st.sampled_from(MODELS))
@PROPERTY_SETTINGS
def test_one_plan_keeps_task_latest_block_pairs_and_budget(
    messages: list[Message], policy: ContextPolicy, model: str
) -> None:
    """A single plan (and the plan after its summaries) never splits a call from its result,
    always sends the task and the latest block, and stays within budget whenever the task, the
    summary and the latest block fit; both providers' wire formats accept it."""
    first = plan_context(messages, policy, ContextState(), model)
    if policy.strategy in ("keep_all", "truncate"):
        assert not first.needs_summary
    if first.needs_summary:
        boundary = 1 + len(first.to_fold)
        assert first.to_fold == messages[1:boundary], "the oldest messages, right after the task"
        assert boundary < len(messages), "the latest block is never folded"
    check_plan(first, messages, policy, model)
    final, _ = plan_and_summarize(messages, policy, ContextState(), model)
    check_plan(final, messages, policy, model)
    assert_valid_for_providers(final.send)


@given(conversations(), policies(), st.sampled_from(MODELS), st.data())
@PROPERTY_SETTINGS
def test_a_whole_run_step_by_step(
    messages: list[Message], policy: ContextPolicy, model: str, data: st.DataObject
) -> None:
    """As the workflow runs it: one plan per turn, state carried over, sometimes compacted (as
    before continue-as-new). The window only moves forward, the state counts exactly the
    messages left behind, and the scripted summary stays bounded."""
    state = ContextState()
    held: list[Message] = [messages[0]]
    full: list[Message] = [messages[0]]
    last_start = 1
    for block in blocks(messages[1:]):
        held += block
        full += block
        plan, _ = plan_and_summarize(held, policy, state, model)
        tail = check_plan(plan, full, policy, model)
        start = len(full) - len(tail)
        assert start >= last_start, "a message that left the context never comes back"
        last_start = start
        state = plan.state
        assert state.folded_messages == start - 1
        limit = min(SUMMARY_MAX_CHARS, policy.summary_max_tokens * CHARS_PER_TOKEN)
        assert len(state.summary.encode()) <= limit
        if data.draw(st.booleans()):
            held, state = compact(held, state)
            assert held == [full[0], *tail]
            again = plan_context(held, policy, state, model)
            assert again.send == plan.send, "compacting changes nothing the model sees"


# --- summary requests -----------------------------------------------------------------------


def test_summary_request_is_a_tool_free_call_with_the_summary_budget() -> None:
    """The request: summary model (or the agent's), no tools, max_tokens from the policy,
    the previous summary and one rendered message per folded message."""
    policy = ContextPolicy(
        strategy="summarize", summary_model="openai:gpt-4.1-nano", summary_max_tokens=300
    )
    state = ContextState(summary="- found idle cluster gpu-7", folded_messages=3)
    folded = turn(4, fan_out=2)
    request = summary_request(
        folded,
        state,
        policy,
        agent="finops",
        agent_model=MODEL,
        step=9,
        idempotency_key="run/summary/9",
        task="Why did the bill spike?",
    )
    assert request.model == "openai:gpt-4.1-nano"
    assert request.tools == []
    assert request.max_tokens == 300
    assert (request.purpose, request.step, request.agent) == ("summary", 9, "finops")
    assert request.idempotency_key == "run/summary/9"
    assert all(isinstance(m, UserMessage) for m in request.messages)
    for kept in ("ids", "numbers", "decisions", "pending"):
        assert kept in request.system
    assert "300 tokens" in request.messages[-1].text  # type: ignore[union-attr]

    read = read_summary_request(request)
    assert read.task == "Why did the bill spike?"
    assert read.previous_summary == "- found idle cluster gpu-7"
    assert [e.header for e in read.entries] == [
        "assistant, calling tool_0, tool_1",
        "result of tool_0 (call_4_0)",
        "result of tool_1 (call_4_1)",
    ]
    assert read.entries[1].body == words(100, 4)

    default = summary_request(
        folded,
        ContextState(),
        ContextPolicy(),
        agent="a",
        agent_model=MODEL,
        step=1,
        idempotency_key="k",
    )
    assert default.model == MODEL
    assert read_summary_request(default).previous_summary == ""


def test_summary_request_clips_huge_messages_and_refuses_nothing_to_fold() -> None:
    """One giant tool result is shown by its head and tail; an empty fold is a bug."""
    huge = [*turn(1, size=100_000)]
    request = summary_request(
        huge,
        ContextState(),
        ContextPolicy(),
        agent="a",
        agent_model=MODEL,
        step=1,
        idempotency_key="k",
        max_chars_per_message=1_000,
    )
    body = read_summary_request(request).entries[1].body
    assert len(body) < 1_100
    assert "characters omitted" in body
    with pytest.raises(ValueError, match="at least one message"):
        summary_request(
            [],
            ContextState(),
            ContextPolicy(),
            agent="a",
            agent_model=MODEL,
            step=1,
            idempotency_key="k",
        )


def test_apply_summary_counts_the_fold_and_keeps_the_old_summary_on_an_empty_answer() -> None:
    """The answer replaces the summary; an empty answer keeps the previous one."""
    state = apply_summary(ContextState(), "  - first  \n", 5)
    assert (state.summary, state.folded_messages, state.summary_calls) == ("- first", 5, 1)
    state = apply_summary(state, "   ", 2)
    assert (state.summary, state.folded_messages, state.summary_calls) == ("- first", 7, 2)
    with pytest.raises(ValueError, match="positive"):
        apply_summary(state, "x", 0)


def test_summary_message_is_recognisable() -> None:
    message = summary_message("facts")
    assert message.text.startswith(SUMMARY_HEADER)
    assert is_summary_message(message)
    assert not is_summary_message(UserMessage(text="facts"))
    assert not is_summary_message(AssistantMessage(text=SUMMARY_HEADER))


# --- the scripted summarizer ----------------------------------------------------------------


def summary_call(to_fold: list[Message], previous: str = "", max_tokens: int = 1_024) -> Any:
    policy = ContextPolicy(summary_model="scripted", summary_max_tokens=max_tokens)
    return summary_request(
        to_fold,
        ContextState(summary=previous),
        policy,
        agent="nobody",
        agent_model=MODEL,
        step=3,
        idempotency_key="k",
    )


async def test_scripted_model_summarizes_without_the_agent_script() -> None:
    """A summary request is answered even for an agent the worker does not know, one line per
    folded message, after the previous summary's lines."""
    provider = ScriptedProvider(ScriptBook())
    request = summary_call(turn(2, fan_out=2), previous="- earlier line")
    response = await provider.complete(request, "")
    lines = response.text.splitlines()
    assert lines[0] == "- earlier line"
    assert lines[1].startswith("- assistant, calling tool_0, tool_1: step 2")
    assert lines[2].startswith("- result of tool_0 (call_2_0): word2")
    assert len(lines) == 4
    assert response.tool_calls == []
    assert response.usage.input_tokens > 0
    assert (await provider.complete(request, "")).text == response.text


@given(
    st.lists(st.integers(0, 5_000), min_size=1, max_size=40),
    st.text(max_size=3_000),
    st.integers(1, 4_000),
)
@PROPERTY_SETTINGS
def test_scripted_summary_is_deterministic_and_bounded(
    sizes: list[int], previous: str, max_tokens: int
) -> None:
    """Same request, same summary; never more than the line cap, nor more bytes than both the
    global cap and max_tokens allow, whatever the previous summary was."""
    folded = [m for step, size in enumerate(sizes) for m in turn(step, size)]
    request = summary_call(folded, previous, max_tokens)
    text = extractive_summary(request)
    assert text == extractive_summary(request.model_copy(deep=True))
    assert len(text.encode()) <= min(SUMMARY_MAX_CHARS, max_tokens * CHARS_PER_TOKEN)
    assert len(text.splitlines()) <= 60
    assert all(len(line) <= 200 for line in text.splitlines()[-len(folded) :])


async def test_scripted_model_tells_scripts_the_step() -> None:
    """Scripts see ModelRequest.step as ScriptView.step, while turn still counts replies."""
    seen: list[tuple[int, int]] = []

    def script(view: ScriptView) -> ScriptedReply:
        seen.append((view.step, view.turn))
        return ScriptedReply(text="ok")

    provider = ScriptedProvider(ScriptBook({"counter": script}))
    request = ModelRequest(
        agent="counter",
        model="scripted",
        system="s",
        messages=[UserMessage(text="task"), *turn(6)],
        idempotency_key="k",
        step=7,
    )
    await provider.complete(request, "")
    assert seen == [(7, 1)]
    assert ScriptView(messages=[]).step == 0


def test_model_requests_recorded_before_purpose_still_decode() -> None:
    """Histories written before ``purpose`` existed decode as ordinary turns."""
    old = {
        "agent": "a",
        "model": "scripted",
        "system": "",
        "messages": [{"role": "user", "text": "hi"}],
        "idempotency_key": "k",
        "step": 1,
    }
    assert ModelRequest.model_validate(old).purpose == "turn"


# --- token estimates ------------------------------------------------------------------------


@given(st.text(max_size=2_000), st.text(max_size=2_000), st.sampled_from(MODELS))
@PROPERTY_SETTINGS
def test_token_estimates_grow_with_text(text: str, more: str, model: str) -> None:
    """Appending text never lowers an estimate, of a text or of any message holding it."""
    assert estimate_text_tokens(text, model) <= estimate_text_tokens(text + more, model)
    for make in (
        lambda t: UserMessage(text=t),
        lambda t: AssistantMessage(text=t, tool_calls=[ToolCall(id="c", name="n", arguments=t)]),
        lambda t: ToolResultMessage(tool_call_id="c", name="n", content=t),
    ):
        assert estimate_message_tokens(make(text), model) <= estimate_message_tokens(
            make(text + more), model
        )


def test_token_estimates_per_provider() -> None:
    """Empty text is free; overheads count; Claude's ratio is more conservative than OpenAI's;
    an unknown provider gets the most conservative profile; non-Latin text costs more."""
    assert estimate_text_tokens("", MODEL) == 0
    prose = words(3_500)
    assert estimate_text_tokens(prose, "openai:gpt-4.1-mini") == 1_000
    assert estimate_text_tokens(prose, MODEL) > estimate_text_tokens(prose, "openai:gpt-4.1")
    assert estimate_text_tokens(prose, "scripted") == 875
    assert estimate_text_tokens(prose, "who:knows") >= estimate_text_tokens(prose, MODEL)
    assert estimate_text_tokens("数" * 100, MODEL) > estimate_text_tokens("a" * 100, MODEL)
    bare = AssistantMessage(text="x")
    calling = AssistantMessage(text="x", tool_calls=[ToolCall(id="c", name="", arguments="")])
    assert estimate_message_tokens(calling, MODEL) > estimate_message_tokens(bare, MODEL)
    assert estimate_tokens([bare, bare], MODEL) > 2 * estimate_message_tokens(bare, MODEL)


# --- contracts ------------------------------------------------------------------------------


def test_context_policy_defaults_and_validation() -> None:
    """Defaults keep today's behaviour; sizes must be positive and the summary must fit."""
    policy = ContextPolicy()
    assert policy.strategy == "keep_all"
    assert policy.summary_model is None
    assert not policy.summarizes
    assert ContextPolicy(strategy="summarize").summarizes
    for bad in (
        {"max_context_tokens": 0},
        {"keep_recent_turns": 0},
        {"fold_every_turns": -1},
        {"summary_max_tokens": 0},
        {"strategy": "forget_everything"},
        {"max_context_tokens": 1_000, "summary_max_tokens": 1_000},
    ):
        with pytest.raises(ValidationError):
            ContextPolicy.model_validate(bad)
    with pytest.raises(ValidationError, match="discarded_messages"):
        ContextState(folded_messages=1, discarded_messages=2)
    state = ContextState(summary="s", folded_messages=9, discarded_messages=4)
    assert state.pending_folded == 5
    assert ContextState.model_validate_json(state.model_dump_json()) == state


# --- the workflow sandbox -------------------------------------------------------------------


async def test_the_planner_runs_inside_the_workflow_sandbox(client: Client) -> None:
    """Planning and folding inside a sandboxed workflow gives the same state as outside it."""
    task_queue = f"context-{uuid.uuid4()}"
    policy = ContextPolicy(
        strategy="rolling_summary",
        keep_recent_turns=4,
        max_context_tokens=2_000,
        summary_max_tokens=200,
    )
    async with Worker(client, task_queue=task_queue, workflows=[ContextPlanInSandbox]):
        state = await client.execute_workflow(
            ContextPlanInSandbox.run, policy, id=f"context-{uuid.uuid4()}", task_queue=task_queue
        )
    assert state == plan_with_fake_summaries(policy)
    assert state.summary_calls >= 1
