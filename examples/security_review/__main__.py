"""``python -m examples.security_review [--approve-as NAME | --reject-as NAME] [--no-fix]``

Resets the review's working copy (``$SECURITY_REVIEW_ROOT``, default
``.data/security-review/sample_app``) from the shipped sample app, starts the embedded dev
server if needed, runs a worker for ``SecurityReviewWorkflow`` in this process, and follows the
review: its progress, the approval of the verified fix (given by ``--approve-as``, refused by
``--reject-as``, or left to you with the ``temporal workflow signal`` command printed), then
the risk assessment and the change applied.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from temporalio.client import WorkflowHandle

from durable_agents.contracts import PendingApproval
from durable_agents.runtime.client import connect
from durable_agents.runtime.settings import TemporalSettings
from examples._run_example import follow
from examples.security_review.models import (
    ReviewProgress,
    SecurityReviewInput,
    SecurityReviewResult,
)
from examples.security_review.report import diff, render
from examples.security_review.tools import confine, reset_working_copy, review_root
from examples.security_review.workflow import SecurityReviewWorkflow


class ProgressPrinter:
    """Prints the review's ``progress`` whenever it changes."""

    def __init__(self) -> None:
        self.last: ReviewProgress | None = None

    async def __call__(self, handle: WorkflowHandle[Any, Any]) -> None:
        progress = await handle.query("progress", result_type=ReviewProgress)
        if progress != self.last:
            self.last = progress
            print(f"[{progress.phase}] {progress.detail}")


def show_fix(approval: PendingApproval) -> str:
    """An ``apply_fix`` approval as the diff it would write (read from the working copy)."""
    file, content = approval.arguments.get("file"), approval.arguments.get("content")
    if approval.tool != "apply_fix" or not isinstance(file, str) or not isinstance(content, str):
        return f"{approval.tool}({approval.arguments})"
    try:
        before = confine(review_root(), file).read_text()
    except Exception as err:  # only the preview fails: the approval is still shown and decided
        return f"apply_fix to {file} (cannot show the diff: {err})"
    return f"apply_fix to {file}, this change:\n{diff(before, content, file)}"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m examples.security_review", description=__doc__.split("\n\n")[1]
    )
    decision = parser.add_mutually_exclusive_group()
    decision.add_argument("--approve-as", metavar="NAME", help="approve applying the fix as NAME")
    decision.add_argument("--reject-as", metavar="NAME", help="reject applying the fix as NAME")
    parser.add_argument("--no-fix", action="store_true", help="review only, fix nothing")
    args = parser.parse_args()

    root = reset_working_copy()
    print(f"Reviewing {root} (a fresh copy of examples/security_review/sample_app)")

    async def run() -> None:
        client = await connect(TemporalSettings.from_env())
        result = await follow(
            client,
            SecurityReviewWorkflow,
            SecurityReviewInput(fix=not args.no_fix),
            args.approve_as,
            reject_as=args.reject_as,
            result_type=SecurityReviewResult,
            on_poll=ProgressPrinter(),
            show_approval=show_fix,
        )
        print()
        print(render(result))

    asyncio.run(run())
    os._exit(0)  # skip the SDK runtime's teardown, as starter.py does


if __name__ == "__main__":
    main()
