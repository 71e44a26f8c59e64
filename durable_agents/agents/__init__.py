"""Agent definitions: who the agents are, what tools they may use, and their limits.

Scripts for the offline ``scripted`` model are not part of a definition: they live in
``durable_agents.testing`` (``ScriptBook``) and are attached from outside.
"""

from durable_agents.agents._definition import Agent
from durable_agents.agents._registry import (
    AgentRegistry,
    UnknownAgentError,
    UnknownCheckError,
    default_registry,
)

__all__ = ["Agent", "AgentRegistry", "UnknownAgentError", "UnknownCheckError", "default_registry"]
