"""Agent definitions: who the agents are, what tools they may use, and their limits."""

from durable_agents.agents._definition import Agent
from durable_agents.agents._registry import AgentRegistry, UnknownAgentError, default_registry
from durable_agents.agents.scripting import (
    Script,
    ScriptedCall,
    ScriptedReply,
    ScriptView,
    sequence,
)

__all__ = [
    "Agent",
    "AgentRegistry",
    "Script",
    "ScriptView",
    "ScriptedCall",
    "ScriptedReply",
    "UnknownAgentError",
    "default_registry",
    "sequence",
]
