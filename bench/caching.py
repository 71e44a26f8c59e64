"""Billed input cost per step of a growing conversation, Anthropic prompt caching on vs off.

    python -m bench.caching [--steps 50] [--result-chars 2000]

One agent-shaped conversation (a system prompt and tools of about 1,500 tokens; each step the
model calls a tool and the result, ``--result-chars`` long, joins the conversation) is run
``--steps`` steps through ``AnthropicProvider`` and the real SDK against the loopback API with
prompt-cache accounting (``tests/fakes/prompt_cache.py``: hits only for identical prefixes up to
a breakpoint, a minimum cacheable length, writes billed at the write price). Three settings side
by side in one run, each on an empty cache, same conversation: ``off`` (no breakpoints),
``system`` (last tool and system prompt only, this project's behaviour before conversation
caching) and ``conversation`` (the default). The figure is each step's billed input cost (plain
input, cache reads and cache writes at their list prices; output excluded), at
``claude-sonnet-4-6`` list prices from the price table; the ratio is off over each setting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from statistics import mean
from typing import Any

import anthropic

from activities.providers.anthropic_provider import AnthropicProvider, PromptCaching
from activities.providers.pricing import price_for
from bench import RESULTS
from durable_agents.contracts.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from durable_agents.contracts.model import ModelRequest
from durable_agents.contracts.pricing import ModelPrice
from durable_agents.contracts.tools import ToolSchema
from tests.fakes.llm_server import FakeLLMServer, FakeToolCall, Reply
from tests.fakes.prompt_cache import PromptCache

MODEL = "claude-sonnet-4-6"
SETTINGS: tuple[PromptCaching, ...] = ("off", "system", "conversation")
REPORTED_STEPS = (1, 10, 25, 50)
SYSTEM = (
    "You are an operations analyst. Work through the records one at a time with the tools, "
    "check each against the policy, and report discrepancies with their evidence. "
) * 30
TOOLS = [
    ToolSchema(
        name=name,
        description=f"{description} Returns JSON. " * 4,
        parameters={
            "type": "object",
            "properties": {"id": {"type": "integer", "description": "The record's number."}},
            "required": ["id"],
        },
    )
    for name, description in [
        ("lookup_record", "Fetch one record by its number, with every field."),
        ("check_policy", "Check one record against the current policy."),
        ("record_finding", "Record a discrepancy with its evidence."),
    ]
]


def input_cost(price: ModelPrice, usage: Usage) -> float:
    """What the input side of a call is billed: plain, cache reads and cache writes."""
    return price.cost(usage.model_copy(update={"output_tokens": 0}))


def tool_result(step: int, chars: int) -> str:
    row = f'{{"id": {step}, "amount": {step * 37 % 1000}, "status": "open"}}, '
    return (f"record {step}: " + row * (chars // len(row) + 1))[:chars]


async def run(
    server: FakeLLMServer, caching: PromptCaching, steps: int, result_chars: int
) -> list[Usage]:
    """One conversation of ``steps`` calls on an empty cache; each call's usage."""
    server.prompt_cache = PromptCache()
    client = anthropic.AsyncAnthropic(api_key="bench", base_url=server.base_url, max_retries=0)
    provider = AnthropicProvider(client, prompt_caching=caching)
    messages: list[Message] = [UserMessage(text="Review the open records, one by one.")]
    usages: list[Usage] = []
    for step in range(1, steps + 1):
        request = ModelRequest(
            agent="bench-caching",
            model=f"anthropic:{MODEL}",
            system=SYSTEM,
            messages=messages,
            tools=TOOLS,
            max_tokens=1024,
            idempotency_key=f"bench-caching:{step}",
            step=step,
        )
        response = await provider.complete(request, MODEL)
        usages.append(response.usage)
        # Ids fixed by step, so every setting sends the same conversation.
        call = ToolCall(id=f"toolu_{step:04d}", name="lookup_record", arguments=f'{{"id": {step}}}')
        messages.append(AssistantMessage(text=response.text, tool_calls=[call]))
        messages.append(
            ToolResultMessage(
                tool_call_id=call.id, name=call.name, content=tool_result(step, result_chars)
            )
        )
    await client.close()
    return usages


async def main(steps: int = 50, result_chars: int = 2_000) -> dict[str, Any]:
    price = price_for(MODEL)
    if price is None:
        raise SystemExit(f"{MODEL!r} is not in the price table")
    reply = Reply(text="Next record.", tool_calls=(FakeToolCall("lookup_record", {"id": 1}),))
    figures: dict[str, Any] = {}
    with FakeLLMServer(default=reply, prompt_cache=PromptCache()) as server:
        for caching in SETTINGS:
            usages = await run(server, caching, steps, result_chars)
            costs = [input_cost(price, usage) for usage in usages]
            total = Usage()
            for usage in usages:
                total = total.plus(usage)
            figures[caching] = {
                "mean_usd_per_step": mean(costs),
                "at_step_usd": {n: costs[n - 1] for n in REPORTED_STEPS if n <= steps},
                "per_step_usd": costs,
                "tokens": total.model_dump(exclude={"output_tokens"}),
            }
    off = figures["off"]["mean_usd_per_step"]
    ratios: dict[str, float] = {
        caching: off / figures[caching]["mean_usd_per_step"] for caching in SETTINGS
    }
    _print(figures, ratios, steps, result_chars)
    result = {
        "model": MODEL,
        "steps": steps,
        "result_chars": result_chars,
        "settings": figures,
        "ratio_off_over": ratios,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "caching.json").write_text(json.dumps(result, indent=2))
    return result


def _print(
    figures: dict[str, Any], ratios: dict[str, float], steps: int, result_chars: int
) -> None:
    print(
        f"\nbilled input cost per step, {steps}-step conversation (+{result_chars} chars a step), "
        f"{MODEL} list prices, USD"
    )
    print(f"{'':>14}" + "".join(f"{caching:>14}" for caching in SETTINGS))
    for n in [n for n in REPORTED_STEPS if n <= steps]:
        print(
            f"{'step ' + str(n):>14}"
            + "".join(f"{figures[c]['at_step_usd'][n]:>14.5f}" for c in SETTINGS)
        )
    print(f"{'mean':>14}" + "".join(f"{figures[c]['mean_usd_per_step']:>14.5f}" for c in SETTINGS))
    print(f"{'off / setting':>14}" + "".join(f"{ratios[c]:>13.2f}x" for c in SETTINGS))
    for caching in SETTINGS:
        tokens = figures[caching]["tokens"]
        print(
            f"{caching:>14}: {tokens['input_tokens']:>9} plain input, "
            f"{tokens['cache_read_tokens']:>9} cache read, "
            f"{tokens['cache_write_tokens']:>7} cache write tokens"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--result-chars", type=int, default=2_000)
    options = parser.parse_args()
    asyncio.run(main(options.steps, options.result_chars))
