"""Agent definitions: who the agents are, what tools they may use, and their limits."""

from agents._definition import Agent
from agents._registry import AgentRegistry, UnknownAgentError, default_registry
from agents.scripting import Script, ScriptedCall, ScriptedReply, ScriptView, sequence

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
