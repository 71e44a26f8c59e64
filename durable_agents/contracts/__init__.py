"""Pydantic contracts shared by the starter, the workflows and the activities."""

from durable_agents.contracts.agent_io import (
    AgentInput,
    AgentResult,
    AgentSpec,
    AgentStatusView,
    PendingApproval,
    Phase,
    RunStatus,
    StepView,
    ToolCallRecord,
)
from durable_agents.contracts.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from durable_agents.contracts.model import ModelRequest, ModelResponse, StopReason
from durable_agents.contracts.tools import ToolEffect, ToolOutcome, ToolRequest, ToolSchema

TASK_QUEUE = "agents"
WORKFLOW_TYPE = "AgentWorkflow"

__all__ = [
    "TASK_QUEUE",
    "WORKFLOW_TYPE",
    "AgentInput",
    "AgentResult",
    "AgentSpec",
    "AgentStatusView",
    "AssistantMessage",
    "Message",
    "ModelRequest",
    "ModelResponse",
    "PendingApproval",
    "Phase",
    "RunStatus",
    "StepView",
    "StopReason",
    "ToolCall",
    "ToolCallRecord",
    "ToolEffect",
    "ToolOutcome",
    "ToolRequest",
    "ToolResultMessage",
    "ToolSchema",
    "Usage",
    "UserMessage",
]
