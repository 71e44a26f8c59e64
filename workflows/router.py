"""``RouterWorkflow``: conditional branching on an agent's typed decision.

The router agent answers with ``{"label": ..., "reason": ...}``, the label constrained to the
routes' labels by the output schema (so a wrong label is sent back for repair); the chosen
route's agent then runs as a child workflow on the task. A decision that still names no known
label goes to ``default``, or fails the run with ``UnknownRoute`` naming what was chosen and
what exists. Decision and route are in the history and the result.
"""

from __future__ import annotations

from typing import Any

import pydantic
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from durable_agents.contracts.patterns import RouterInput, RouterResult
    from durable_agents.runner.host import AgentHost


def decision_schema(labels: list[str]) -> dict[str, Any]:
    return {
        "title": "Route",
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": labels},
            "reason": {"type": "string"},
        },
        "required": ["label"],
    }


@workflow.defn(name="RouterWorkflow", failure_exception_types=[pydantic.ValidationError])
class RouterWorkflow(AgentHost):
    @workflow.run
    async def run(self, input: RouterInput) -> RouterResult:
        self.agents.set_budget(input.budget_usd, input.budget_tokens)
        labels = sorted(input.routes)
        routing = await self.agents.run(
            input.router,
            f"{input.task}\n\nChoose one route: {', '.join(labels)}.",
            output_schema=decision_schema(labels),
        )
        decision = routing.output_json if isinstance(routing.output_json, dict) else {}
        label = decision.get("label")
        agent = input.routes.get(label) if isinstance(label, str) else None
        used_default = agent is None
        if agent is None:
            if input.default is None:
                raise ApplicationError(
                    f"the router chose {label!r} (status {routing.status}: {routing.output!r}); "
                    f"routes: {', '.join(labels)}; no default",
                    type="UnknownRoute",
                    non_retryable=True,
                )
            agent = input.default
        workflow.set_current_details(f"routed to {agent} ({label or 'default'})")
        result = await self.agents.run(agent, input.task, child=True)
        return RouterResult(
            label=label if isinstance(label, str) and not used_default else None,
            reason=str(decision.get("reason", "")),
            agent=agent,
            used_default=used_default,
            status=result.status,
            output=result.output,
            output_json=result.output_json,
            workflow_id=self.agents.children[-1].workflow_id or "",
            cost_usd=routing.cost_usd + result.cost_usd,
        )
