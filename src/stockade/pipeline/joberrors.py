"""Failed jobs that no test result accounts for, as ``error`` results.

A build that fails stops a Go run before any test: without this, ``--junit``
would be an empty report and the counts would say nothing failed. Like
gotestsum, each such job becomes one result with status ``error``: its
package the job's item (else its step), its name the job's, its output the
job's reason and the tail of its log.
"""

from __future__ import annotations

from stockade.pipeline.model import RunState, Status
from stockade.pipeline.test2json import TestCase

__all__ = ["job_errors"]


def job_errors(run: RunState) -> list[TestCase]:
    """One ``error`` case per failed job that has no failed (or error) test of its own."""
    out: list[TestCase] = []
    for job in run.jobs():
        if job.status is not Status.FAILED or any(
            c.status in ("failed", "error") for c in job.tests
        ):
            continue
        output = [f"{job.reason or 'failed'}\n", *(f"{line}\n" for line in job.tail)]
        elapsed = job.duration or 0.0
        out.append(TestCase(job.key or job.step, job.name, "error", elapsed, output))
    return out
