"""Pydantic contracts shared by the starter, the workflows and the activities."""

from contracts.agent_io import (
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
from contracts.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from contracts.model import ModelRequest, ModelResponse, StopReason
from contracts.tools import ToolEffect, ToolOutcome, ToolRequest, ToolSchema

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
