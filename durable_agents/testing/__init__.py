"""The testing kit: scripts for the offline ``scripted`` model, attached from outside the agents.

An ``Agent`` says who an agent is; it carries no script. What the offline ``scripted`` model
replies for an agent is a ``Script`` (``ScriptView -> ScriptedReply``, or ``sequence(...)`` of
canned replies) filed under the agent's name in a ``ScriptBook``. Declare a book at the top level
of an agent module and discovery brings it with the module's agents; in a test, hand one to
``AgentRegistry(agents, scripts=book)`` or to ``ScriptedProvider(book)``.
"""

from durable_agents.testing._book import ScriptBook
from durable_agents.testing.scripting import (
    Script,
    ScriptedCall,
    ScriptedReply,
    ScriptView,
    sequence,
)

__all__ = [
    "Script",
    "ScriptBook",
    "ScriptView",
    "ScriptedCall",
    "ScriptedReply",
    "sequence",
]
