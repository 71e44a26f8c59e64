"""Idempotency keys for model and tool calls.

A key must be the same on every attempt of one call (retries, a new worker after a crash), and
different for every other call, including calls of a later run that reuses the workflow id and
calls made after continue-as-new (where Temporal's own activity ids restart). The workflow id plus
the *first* run id of the continue-as-new chain names the logical run; the step number (carried
across continue-as-new) and the model's tool-call id name the call within it.

An agent run *inline* in a workflow that runs several (``AgentRunner.run``) adds its scope, a
label unique within the workflow (``planner-1``), so two agents' step 1 are different calls.
``AgentWorkflow``'s own agent has no scope: its keys are what they always were.
"""

from temporalio import workflow


def run_key(scope: str = "") -> str:
    info = workflow.info()
    key = f"{info.workflow_id}/{info.first_execution_run_id}"
    return f"{key}/{scope}" if scope else key


def model_call_key(step: int, scope: str = "") -> str:
    return f"{run_key(scope)}/model/{step}"


def summary_call_key(step: int, summary_call: int, scope: str = "") -> str:
    return f"{run_key(scope)}/summary/{step}/{summary_call}"


def tool_call_key(step: int, call_id: str, scope: str = "") -> str:
    return f"{run_key(scope)}/tool/{step}/{call_id}"


def escalation_key(approval_id: str) -> str:
    return f"{run_key()}/escalation/{approval_id}"
