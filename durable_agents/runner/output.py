"""Typed output: checking a final answer against the output schema, and what the model reads
when it must repair one. Pure and deterministic (jsonschema), so it runs in workflow code."""

from __future__ import annotations

import json
import re
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import jsonschema

    from durable_agents.contracts import AgentSpec


def check_output(spec: AgentSpec, text: str) -> tuple[Any, str | None]:
    """``(value, None)`` when ``text`` is JSON matching ``spec.output_schema``; otherwise
    ``(None, what is wrong)``, for the model to repair."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as err:
        return None, f"the reply is not JSON ({err})"
    try:
        jsonschema.validate(value, spec.output_schema or {})
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "(the answer)"
        return None, f"{where}: {err.message}"
    except RecursionError:
        return None, "the reply is nested too deeply"
    return value, None


def repair_prompt(spec: AgentSpec, error: str) -> str:
    """What the model reads after a final answer that failed the output schema."""
    return (
        f"Your final answer does not match the required {spec.output_name} schema: {error}. "
        "Answer again with only a JSON object that matches the schema."
    )


def checked_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` if it is a usable JSON schema, else the run fails (``InvalidOutputSchema``)
    instead of a workflow task failing on it forever."""
    if schema.get("type") != "object":
        raise ApplicationError(
            'output_schema must describe a JSON object ("type": "object"): providers ask for '
            "structured answers as objects",
            type="InvalidOutputSchema",
            non_retryable=True,
        )
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except (jsonschema.SchemaError, RecursionError) as err:
        raise ApplicationError(
            f"output_schema is not a valid JSON schema: {getattr(err, 'message', err)}",
            type="InvalidOutputSchema",
            non_retryable=True,
        ) from None
    return schema


def output_name(schema: dict[str, Any]) -> str:
    """A name for the answer that providers accept: the schema's title, or ``final_answer``."""
    title = schema.get("title")
    name = re.sub(r"[^A-Za-z0-9_-]", "_", title)[:64] if isinstance(title, str) else ""
    return name or "final_answer"
