"""Agents for the pattern pattern tests, with their scripts (registered by
``tests.agents_for_tests``)."""

from __future__ import annotations

from durable_agents.agents import Agent
from durable_agents.testing import ScriptBook

PATTERN_SCRIPTS = ScriptBook()
PATTERN_AGENTS: list[Agent] = []
