"""durable-agents: AI agents as Temporal workflows, every model and tool call an activity.

The library lives in subpackages (imported explicitly, so a workflow's sandbox loads only what
it uses): ``agents`` (``Agent``, discovery), ``tools`` (``@tool``), ``contracts`` (the pydantic
models every input, result and activity uses), ``runner`` (what a workflow uses to run agents),
``effects``, ``mcp_tools``, ``conversation``, ``payload_storage``, ``codec`` and ``runtime``.
The workflows it ships are in the top-level ``workflows`` package, its activities in
``activities``; the demo agents in ``examples``.
"""
