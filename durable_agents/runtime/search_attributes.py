"""Search attributes, so ``temporal workflow list --query`` finds runs by state and cost:
``AgentStatus`` (Keyword), ``AgentCostUSD`` (Double: the spend of the run and the runs below it),
``AgentTokens`` (Int), ``AgentName`` and ``AgentModel`` (Keyword, set by each agent run) and
``AgentPattern`` (Keyword, the pattern workflow type, set by ``starter.py`` when it starts one).

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
AGENT_COST_USD = "AgentCostUSD"
AGENT_TOKENS = "AgentTokens"
AGENT_NAME = "AgentName"
AGENT_MODEL = "AgentModel"
AGENT_PATTERN = "AgentPattern"
ATTRIBUTES = {
    AGENT_STATUS: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    AGENT_COST_USD: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    AGENT_TOKENS: IndexedValueType.INDEXED_VALUE_TYPE_INT,
    AGENT_NAME: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    AGENT_MODEL: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    AGENT_PATTERN: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
}

log = logging.getLogger(__name__)


async def ensure_agent_status_attribute(client: Client) -> bool:
    """Register ``AgentStatus``, ``AgentCostUSD`` and ``AgentTokens`` where missing. Returns
    whether runs may use them."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        missing = {k: v for k, v in ATTRIBUTES.items() if k not in listed.custom_attributes}
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
        return True
    except RPCError as err:
        log.warning(
            "search attributes %s are not available (%s); runs will not set them. Register "
            "them with: temporal operator search-attribute create --name AgentStatus --type "
            "Keyword (and AgentCostUSD Double, AgentTokens Int, AgentName, AgentModel, "
            "AgentPattern Keyword)",
            ", ".join(ATTRIBUTES),
            err.message,
        )
        return False
