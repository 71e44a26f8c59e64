"""The ``AgentStatus`` search attribute, so ``temporal workflow list --query`` finds runs by state.

Upserting an attribute the server does not know fails the workflow task (and Temporal retries
that forever), so the worker makes sure the attribute exists before it tells runs to use it.
"""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError

AGENT_STATUS = "AgentStatus"

log = logging.getLogger(__name__)


async def ensure_agent_status_attribute(client: Client) -> bool:
    """Register ``AgentStatus`` (Keyword) if missing. Returns whether runs may use it."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        if AGENT_STATUS in listed.custom_attributes:
            return True
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={AGENT_STATUS: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
            )
        )
        return True
    except RPCError as err:
        log.warning(
            "search attribute %s is not available (%s); runs will not set it. Register it with: "
            "temporal operator search-attribute create --name %s --type Keyword",
            AGENT_STATUS,
            err.message,
            AGENT_STATUS,
        )
        return False
