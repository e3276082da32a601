"""`python -m dataplane matrix plan|apply|destroy --base B --head H`, `matrix drift --head H`: the pipeline's GitHub
Actions job matrices.

From the base and head synth outputs, compared as `review` compares them (drift: every stack of the head):

- `plan`: `{"include": [{"batch": "0/3", "index": 0}, ...]}`, batches of at most `--per-job` stacks covering every
  stack the change touches (`planned`: added, changed and removed ones); job `i` of `n` runs
  `python -m dataplane plan-stacks --batch i/n`, which plans `batch_of(planned, i, n)`. More batches than `--max-jobs`
  would be are merged into fewer, larger ones, and no batch is ever empty.
- `drift`: batches as `plan`'s, of every stack, for `python -m dataplane drift --batch i/n`.
- `apply`: the added and changed stacks; `destroy`: the removed ones. One job per customer,
  `{"customers": "acme", "group": "acme"}`, while they are at most `--max-jobs`; beyond, contiguous batches of the
  sorted names, as few customers each as fit, `{"customers": "c0001 c0002", "group": "c0001..c0002"}`
  (`customers` separated by spaces, for `make destroy-each CUSTOMERS=...`, which destroys them one after another;
  `group`, at most 82 characters, names the job's concurrency group: the customer, else the batch's first and last).
  Any number of customers fits: never an empty job, each customer in exactly one.

The JSON is compact and sorted: the same inputs print the same bytes. `--github-output` also appends
`matrix=<json>` and `count=<n>` to the step's output file (`$GITHUB_OUTPUT`); for `apply`, also
`approve-each-wave=true|false`, the settings' `rollout.approveEachWave`, which the apply workflow's wave jobs read.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Literal, Sequence

from dataplane.config.errors import ConfigError
from dataplane.config.settings import load_settings
from dataplane.ops.pipeline import review
from dataplane.project import GITHUB_OUTPUT_ENV

Kind = Literal["plan", "apply", "destroy", "drift"]

GITHUB_MATRIX_LIMIT = 256
"""GitHub runs at most this many jobs from one matrix."""


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def batch_of(names: Sequence[str], index: int, count: int) -> list[str]:
    """The `index`-th (0-based) of `count` contiguous chunks of the sorted `names`, ceil(len/count) each (may be empty).

    >>> batch_of(["c", "a", "b"], 1, 2)
    ['c']
    """
    if not 0 <= index < count:
        raise ValueError(f"batch {index}/{count}: needs 0 <= i < n")
    size = _ceil_div(len(names), count)
    return sorted(names)[index * size:(index + 1) * size]


def batch_count(total: int, per_job: int, max_jobs: int) -> int:
    """How many plan jobs for `total` stacks: at most `per_job` stacks each unless that needs more than `max_jobs`
    jobs, and never an empty job (`batch_of` with this count leaves none)."""
    if total == 0:
        return 0
    size = _ceil_div(total, min(max_jobs, _ceil_div(total, per_job)))
    return _ceil_div(total, size)


def planned(report: review.Report) -> list[str]:
    """The stacks a pull request plans, sorted: added and changed ones, and removed ones (planned as destroys)."""
    return sorted(report.affected + report.named("removed"))


def matrix(kind: Kind, report: review.Report, per_job: int = 20, max_jobs: int = GITHUB_MATRIX_LIMIT) -> list[dict]:
    """The matrix's `include` entries for `kind`, at most `max_jobs` (`per_job`: stacks per plan or drift job)."""
    if kind in ("plan", "drift"):
        count = batch_count(len(planned(report) if kind == "plan" else report.stacks), per_job, max_jobs)
        return [{"batch": f"{i}/{count}", "index": i} for i in range(count)]
    names = report.affected if kind == "apply" else report.named("removed")
    count = batch_count(len(names), 1, max_jobs)
    return [_customers(batch_of(names, i, count)) for i in range(count)]


def _customers(batch: list[str]) -> dict:
    """One apply or destroy job: its customers, and its concurrency group (the customer, else the batch's range)."""
    return {"customers": " ".join(batch), "group": batch[0] if len(batch) == 1 else f"{batch[0]}..{batch[-1]}"}


def as_json(include: list[dict]) -> str:
    return json.dumps({"include": include}, sort_keys=True, separators=(",", ":"))


def fleet(head: Path) -> review.Report:
    """Every stack of the synth output `head`, as a review of no change: what drift checks."""
    return review.Report([review.StackReview(name, "unchanged") for name in sorted(review.load_stacks(head))])


def run(kind: Kind, base: Path | None, head: Path, per_job: int, max_jobs: int, github_output: bool) -> int:
    """Print the matrix (and append it, with the settings the workflow reads, to `$GITHUB_OUTPUT`); 0 done, 2 bad
    input or settings."""
    if problem := _bad_input(per_job, max_jobs, github_output):
        print(f"matrix: {problem}", file=sys.stderr)
        return 2
    try:
        include = matrix(kind, fleet(head) if base is None else review.review(base, head), per_job, max_jobs)
        outputs = {"matrix": as_json(include), "count": len(include)}
        if kind == "apply" and github_output:
            outputs["approve-each-wave"] = json.dumps(load_settings().rollout.approve_each_wave)
    except (review.ReviewError, ConfigError) as e:
        print(f"matrix: {e}", file=sys.stderr)
        return 2
    print(outputs["matrix"])
    if github_output:
        try:
            with open(os.environ[GITHUB_OUTPUT_ENV], "a", encoding="utf-8") as out:
                out.write("".join(f"{name}={value}\n" for name, value in outputs.items()))
        except OSError as e:
            print(f"matrix: {GITHUB_OUTPUT_ENV} {e.filename}: {e.strerror}", file=sys.stderr)
            return 2
    return 0


def _bad_input(per_job: int, max_jobs: int, github_output: bool) -> str | None:
    if per_job < 1:
        return "--per-job must be at least 1"
    if not 1 <= max_jobs <= GITHUB_MATRIX_LIMIT:
        return f"--max-jobs must be 1 to {GITHUB_MATRIX_LIMIT}"
    if github_output and not os.environ.get(GITHUB_OUTPUT_ENV):
        return f"--github-output: {GITHUB_OUTPUT_ENV} is not set (GitHub Actions sets it in a step)"
    return None
