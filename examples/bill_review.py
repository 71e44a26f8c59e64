"""``BillReview``: a user-written workflow on the library's API (the README's example).

    python -m examples.bill_review "Our bill spiked, what happened?" [--approve-as NAME]

Starts the embedded dev server if needed, runs a worker for this workflow (``AgentsPlugin``),
starts the workflow and follows it; the finops child waits for approval of its cluster stop,
given by ``--approve-as`` or by ``temporal workflow signal`` (the command is printed).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from durable_agents.runner.host import AgentHost
    from examples.triage import Triage


@workflow.defn
class BillReview(AgentHost):
    @workflow.run
    async def run(self, complaint: str) -> str:
        # Inline: the triage agent's calls are in this workflow's history; its answer is typed.
        triage = await self.agents.run("triage", complaint, output_type=Triage)
        decision = triage.output_as(Triage)
        if decision.route != "finops":
            return f"Not a cost question ({decision.reason})."
        # A child workflow: own history and Web UI page, cancelled with this one. Its approval
        # shows in this workflow's `status` and is decided by this workflow's id.
        report = await self.agents.run("finops", decision.question, child=True)
        return f"{decision.reason}; FinOps says:\n{report.output}"


if __name__ == "__main__":
    from examples._run_example import main

    main(BillReview)
