"""Budgets as deterministic workflow state: reserve before, settle after, grant to children.

Every workflow that runs agents keeps one ``BudgetBook`` (``AgentRunner.budget``), shared by its
agents. Before a model call starts, its worst case is reserved: the request's input tokens,
estimated conservatively from its size, plus ``max_tokens`` of output, at the price recorded
with the run. A call whose worst case does not fit does not start (``BudgetExhausted``; the
agent loop ends the run ``budget_exhausted`` with its partial output). Afterwards the actual
usage settles the reservation. A child (sub-agent, a pattern's agent) gets a *grant*: a slice of
what is left, reserved here while it runs, passed to it as its own limit, and settled at what it
reports having spent when it ends (the whole grant if it failed and cannot say). So siblings
running at once can never spend more together than their parent had.

Spend is tracked even without limits, so ``status`` and the ``AgentCostUSD`` search attribute
show the cost of a whole tree of runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from durable_agents.contracts import AgentResult, ModelRequest, Usage
    from durable_agents.contracts.budget import Budget, ChildBudget
    from durable_agents.contracts.pricing import ModelPrice

EPSILON_USD = 1e-9
"""Rounding room when comparing dollar amounts."""

USD_DIGITS = 12
"""Dollar sums are rounded to this many places, so a refunded grant leaves exactly nothing."""


def _usd(value: float) -> float:
    return max(0.0, round(value, USD_DIGITS))


INPUT_BYTES_PER_TOKEN = 2
"""Conservative: real tokenizers average 3-4 bytes of English or code per token, so half the
request's bytes over-estimates its input tokens (the reservation is a worst case)."""

REQUEST_OVERHEAD_TOKENS = 64

ENDED_CHILDREN_KEPT = 50
"""Ended children listed in a budget's breakdown (the latest; the totals include all)."""


class BudgetExhausted(Exception):
    """The next model call's worst case does not fit in what is left of the budget."""


def tokens_of(usage: Usage) -> int:
    return (
        usage.input_tokens
        + usage.output_tokens
        + usage.cache_read_tokens
        + usage.cache_write_tokens
    )


def estimate_input_tokens(request: ModelRequest) -> int:
    """An upper estimate of the request's input tokens, from its size (deterministic)."""
    sent = request.model_dump_json(include={"system", "messages", "tools", "output_schema"})
    return len(sent.encode()) // INPUT_BYTES_PER_TOKEN + REQUEST_OVERHEAD_TOKENS


@dataclass
class Reservation:
    usd: float
    tokens: int


class BudgetBook:
    def __init__(self, state: Budget | None = None) -> None:
        self.state = state if state is not None else Budget()

    def limit(self, usd: float | None, tokens: int | None) -> None:
        """Apply limits (the tighter one wins where one is already set)."""
        state = self.state
        if usd is not None:
            state.limit_usd = usd if state.limit_usd is None else min(state.limit_usd, usd)
        if tokens is not None:
            state.limit_tokens = (
                tokens if state.limit_tokens is None else min(state.limit_tokens, tokens)
            )

    # -- model calls -----------------------------------------------------------------------

    def reserve_call(self, request: ModelRequest, price: ModelPrice | None) -> Reservation:
        """Set aside the call's worst case, or raise ``BudgetExhausted`` if it does not fit."""
        state = self.state
        input_tokens = estimate_input_tokens(request)
        tokens = input_tokens + request.max_tokens
        usd = price.worst_case(input_tokens, request.max_tokens) if price is not None else 0.0
        left_tokens, left_usd = state.available_tokens(), state.available_usd()
        if left_tokens is not None and tokens > left_tokens:
            self._exhausted(
                f"the next model call may use up to {tokens:,} tokens; {left_tokens:,} of "
                f"{state.limit_tokens:,} left"
            )
        if left_usd is not None and price is not None and usd > left_usd + EPSILON_USD:
            self._exhausted(
                f"the next model call may cost up to ${usd:.4f} ({request.model}); "
                f"${left_usd:.4f} of ${state.limit_usd:.4f} left"
            )
        state.reserved_usd = _usd(state.reserved_usd + usd)
        state.reserved_tokens += tokens
        return Reservation(usd=usd, tokens=tokens)

    def _exhausted(self, why: str) -> None:
        self.state.exhausted = why
        raise BudgetExhausted(why)

    def release(self, reservation: Reservation) -> None:
        """The call did not happen (it failed or was cancelled): give its reservation back."""
        self.state.reserved_usd = _usd(self.state.reserved_usd - reservation.usd)
        self.state.reserved_tokens = max(0, self.state.reserved_tokens - reservation.tokens)

    def settle_call(self, reservation: Reservation, usage: Usage, cost_usd: float | None) -> None:
        """Replace the reservation with what the call used (``cost_usd`` None: unpriced)."""
        self.release(reservation)
        self.state.spent_tokens += tokens_of(usage)
        if cost_usd is None:
            self.state.unpriced_calls += 1
        else:
            self.state.spent_usd = _usd(self.state.spent_usd + cost_usd)

    # -- children --------------------------------------------------------------------------

    def share(self, ways: int) -> tuple[float | None, int | None]:
        """An even ``ways``-way split of what is left (for children started together)."""
        usd, tokens = self.state.available_usd(), self.state.available_tokens()
        ways = max(1, ways)
        return (
            usd / ways if usd is not None else None,
            tokens // ways if tokens is not None else None,
        )

    def grant(
        self,
        label: str,
        workflow_id: str,
        usd: float | None = None,
        tokens: int | None = None,
    ) -> ChildBudget:
        """Reserve a slice for a child: at most ``usd``/``tokens`` (default: all that is left),
        never more than is left. Unlimited dimensions grant nothing (the child is unlimited)."""
        state = self.state
        left_usd, left_tokens = state.available_usd(), state.available_tokens()
        granted_usd = (
            None if left_usd is None else min(left_usd, usd if usd is not None else left_usd)
        )
        granted_tokens = (
            None
            if left_tokens is None
            else min(left_tokens, tokens if tokens is not None else left_tokens)
        )
        child = ChildBudget(
            label=label,
            workflow_id=workflow_id,
            granted_usd=granted_usd,
            granted_tokens=granted_tokens,
        )
        state.reserved_usd = _usd(state.reserved_usd + (granted_usd or 0.0))
        state.reserved_tokens += granted_tokens or 0
        state.children.append(child)
        return child

    def settle_child(self, child: ChildBudget, result: AgentResult | None) -> None:
        """The child ended: count what it spent (``result`` None: it failed and cannot say, so
        its whole grant counts) and give back the rest of its grant."""
        if not child.open:
            return
        state = self.state
        state.reserved_usd = _usd(state.reserved_usd - (child.granted_usd or 0.0))
        state.reserved_tokens = max(0, state.reserved_tokens - (child.granted_tokens or 0))
        if result is None:
            child.spent_usd = child.granted_usd or 0.0
            child.spent_tokens = child.granted_tokens or 0
        elif result.budget is not None:
            child.spent_usd, child.spent_tokens = (
                result.budget.spent_usd,
                result.budget.spent_tokens,
            )
            state.unpriced_calls += result.budget.unpriced_calls
        else:
            child.spent_usd, child.spent_tokens = result.cost_usd, tokens_of(result.usage)
        child.open = False
        state.spent_usd = _usd(state.spent_usd + child.spent_usd)
        state.spent_tokens += child.spent_tokens
        # Keep the breakdown bounded (it is in status, results and continue-as-new input):
        # every open child, and the latest ended ones; the totals count them all.
        ended = [c for c in state.children if not c.open]
        if len(ended) > ENDED_CHILDREN_KEPT:
            dropped = {id(c) for c in ended[: len(ended) - ENDED_CHILDREN_KEPT]}
            state.children = [c for c in state.children if id(c) not in dropped]
