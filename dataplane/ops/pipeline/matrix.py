"""`python -m dataplane matrix plan|apply|destroy --base B --head H`, `matrix drift --head H`: the pipeline's GitHub
Actions job matrices.

From the base and head synth outputs, compared as `review` compares them (drift: every stack of the head):

- `plan`: `{"include": [{"batch": "0/3", "index": 0}, ...]}`, batches of at most `--per-job` stacks covering every
  stack the change touches (`planned`: added, changed and removed ones); job `i` of `n` runs
  `python -m dataplane plan-stacks --batch i/n`, which plans `batch_of(planned, i, n)`. More batches than `--max-jobs`
  would be are merged into fewer, larger ones, and no batch is ever empty.
- `drift`: batches as `plan`'s, of every stack, for `python -m dataplane drift --batch i/n`.
- `apply`: one `{"customer": name}` per added or changed stack; `destroy`: one per removed stack. More customers
  than `--max-jobs` is refused (exit 1): split the change.

The JSON is compact and sorted: the same inputs print the same bytes. `--github-output` also appends
`matrix=<json>` and `count=<n>` to the step's output file (`$GITHUB_OUTPUT`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Literal, Sequence

from dataplane.ops.pipeline import review
from dataplane.project import GITHUB_OUTPUT_ENV

Kind = Literal["plan", "apply", "destroy", "drift"]

GITHUB_MATRIX_LIMIT = 256
"""GitHub runs at most this many jobs from one matrix."""


class MatrixError(Exception):
    """More customers than one matrix can hold."""


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
    """The matrix's `include` entries for `kind`; a `MatrixError` for more customers than `max_jobs`."""
    if kind in ("plan", "drift"):
        count = batch_count(len(planned(report) if kind == "plan" else report.stacks), per_job, max_jobs)
        return [{"batch": f"{i}/{count}", "index": i} for i in range(count)]
    names = report.affected if kind == "apply" else report.named("removed")
    if len(names) > max_jobs:
        raise MatrixError(f"{len(names)} customers to {kind}, more than the {max_jobs} jobs of one matrix: "
                          f"split the change into pull requests of at most {max_jobs} customers")
    return [{"customer": name} for name in names]


def as_json(include: list[dict]) -> str:
    return json.dumps({"include": include}, sort_keys=True, separators=(",", ":"))


def fleet(head: Path) -> review.Report:
    """Every stack of the synth output `head`, as a review of no change: what drift checks."""
    return review.Report([review.StackReview(name, "unchanged") for name in sorted(review.load_stacks(head))])


def run(kind: Kind, base: Path | None, head: Path, per_job: int, max_jobs: int, github_output: bool) -> int:
    """Print the matrix (and append it to `$GITHUB_OUTPUT`); 0 done, 1 too many customers, 2 bad input."""
    if problem := _bad_input(per_job, max_jobs, github_output):
        print(f"matrix: {problem}", file=sys.stderr)
        return 2
    try:
        include = matrix(kind, fleet(head) if base is None else review.review(base, head), per_job, max_jobs)
    except review.ReviewError as e:
        print(f"matrix: {e}", file=sys.stderr)
        return 2
    except MatrixError as e:
        print(f"matrix {kind}: {e}", file=sys.stderr)
        return 1
    text = as_json(include)
    print(text)
    if github_output:
        try:
            with open(os.environ[GITHUB_OUTPUT_ENV], "a", encoding="utf-8") as out:
                out.write(f"matrix={text}\ncount={len(include)}\n")
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
