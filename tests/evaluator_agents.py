"""Agents for the evaluator pattern tests, with their scripts (registered by
``tests.agents_for_tests``)."""

from __future__ import annotations

from durable_agents.agents import Agent
from durable_agents.testing import ScriptBook

EVALUATOR_SCRIPTS = ScriptBook()
EVALUATOR_AGENTS: list[Agent] = []
