"""Tool registry and the tools shipped with the project."""

from durable_agents.tools._registry import (
    Tool,
    ToolContext,
    ToolError,
    ToolFunction,
    render_result,
    tool,
)

__all__ = ["Tool", "ToolContext", "ToolError", "ToolFunction", "render_result", "tool"]
