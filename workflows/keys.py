"""Idempotency keys for model and tool calls.

A key must be the same on every attempt of one call (retries, a new worker after a crash), and
different for every other call, including calls of a later run that reuses the workflow id and
calls made after continue-as-new (where Temporal's own activity ids restart). The workflow id plus
the *first* run id of the continue-as-new chain names the logical run; the step number (carried
across continue-as-new) and the model's tool-call id name the call within it.
"""

from temporalio import workflow


def run_key() -> str:
    info = workflow.info()
    return f"{info.workflow_id}/{info.first_execution_run_id}"


def model_call_key(step: int) -> str:
    return f"{run_key()}/model/{step}"


def summary_call_key(step: int, summary_call: int) -> str:
    return f"{run_key()}/summary/{step}/{summary_call}"


def tool_call_key(step: int, call_id: str) -> str:
    return f"{run_key()}/tool/{step}/{call_id}"


def escalation_key(approval_id: str) -> str:
    return f"{run_key()}/escalation/{approval_id}"
