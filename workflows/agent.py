"""``AgentWorkflow``: one agent, run to its end, as its own workflow.

A thin shell over the library's workflow-side API (``durable_agents.runner``): the loop is
``AgentLoop``, the ``status`` query, ``approve``/``reject`` signals and ``decide`` update come
from ``AgentHost``, exactly as in a workflow a user writes. What this shell adds: its input is
``AgentInput`` read by hand (a missing, null or malformed input fails the run with a message
instead of failing its workflow task forever), and its agent may continue as new.
"""

from __future__ import annotations

import pydantic
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from durable_agents.contracts import AgentResult
    from durable_agents.runner.host import AgentHost
    from durable_agents.runner.inbound import read_input, unknown_field_warnings
    from durable_agents.streaming.workflow_side import AgentStream


@workflow.defn(
    name="AgentWorkflow",
    # Invalid input (a missing "task", a negative max_steps) fails the run with the validation
    # message instead of failing the workflow task, which Temporal would retry forever.
    failure_exception_types=[pydantic.ValidationError],
)
class AgentWorkflow(AgentHost):
    @workflow.init
    def __init__(self, raw_input: object = None, *unexpected: object) -> None:
        # A run started with "stream": true gets its stream here, before any signal or poll for
        # it is handled; other runs get none (no handlers, nothing new in their history).
        self.agents.stream = AgentStream.for_input(raw_input)

    @workflow.run
    async def run(self, raw_input: object = None, *unexpected: object) -> AgentResult:
        # Decoded by hand, not by the SDK from type hints: a start with no input, two inputs or
        # null must fail the run with a message, not fail its workflow task forever.
        input = read_input(raw_input, unexpected)
        loop = self.agents.main_loop()
        loop.warnings = unknown_field_warnings(raw_input)
        for warning in loop.warnings:
            workflow.logger.warning(warning)
        stream = self.agents.stream
        if stream is None:
            return await loop.run(input)
        try:
            result = await loop.run(input)
        except workflow.ContinueAsNewError:
            raise  # the stream goes on in the next run
        except BaseException:
            await stream.close(loop.status, loop.steps)
            raise
        await stream.close(result.status, result.steps)
        return result
