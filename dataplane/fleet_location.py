"""Where the fleet's files live: one answer, read by every command.

Each location is resolved once, in this order: its default (the synth output's is `output` in `cdktf.json`, where
`cdktf synth` writes too), then the environment variable of the Makefile variable's name (the sandbox's env file sets
every one of them), then a command's flag (the CLI's defaults come from here). Local state sits beside the synth
output (`<its parent>/<stateDir>/<customer>.tfstate`), so it follows the synth output.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

from dataplane.project import PROJECT_ROOT

ENVIRONMENT = {"synth_out": "CDKTF_OUT", "outputs": "OUTPUTS", "records": "RECORDS", "plans": "PLANS",
               "rollouts": "ROLLOUTS", "base_out": "BASE_OUT", "bootstrap": "BOOTSTRAP_OUT"}
"""Each location's environment variable: the Makefile's variable of the same name, which make exports."""


@dataclass(frozen=True)
class FleetLocation:
    synth_out: Path = Path("cdktf.out")
    """The synthesized fleet (`make synth`); local state and the private workspaces sit beside it."""
    outputs: Path = Path("outputs")
    """Each deployed customer's outputs, `<customer>.json`."""
    records: Path = Path("activations")
    """Activation records, `<customer>.json` and `.md`."""
    plans: Path = Path("plans")
    """Saved plans of `plan-stacks`, read by `review --plans`."""
    rollouts: Path = Path("rollouts")
    """Rollout records and their logs."""
    base_out: Path = Path("base.out")
    """The base of a review, synthesized from a git ref."""
    bootstrap: Path = Path("bootstrap")
    """Each customer's bootstrap template and page."""

    def variables(self) -> dict[str, str]:
        """The environment that points every command at these locations (what the sandbox writes)."""
        return {ENVIRONMENT[f.name]: str(getattr(self, f.name)) for f in fields(self)}

    def under(self, root: Path) -> FleetLocation:
        """The same layout with every location inside `root`."""
        return FleetLocation(**{f.name: root / getattr(self, f.name).name for f in fields(self)})


def fleet_location(environ: Mapping[str, str] | None = None) -> FleetLocation:
    """The locations of this project's fleet: defaults, `cdktf.json`'s `output`, then the environment."""
    environ = os.environ if environ is None else environ
    found = {"synth_out": Path(_cdktf_output())} if _cdktf_output() else {}
    found |= {name: Path(environ[variable]) for name, variable in ENVIRONMENT.items() if environ.get(variable)}
    return FleetLocation(**found)


def _cdktf_output() -> str | None:
    try:
        output = json.loads((PROJECT_ROOT / "cdktf.json").read_text()).get("output")
    except (OSError, ValueError):
        return None  # the settings loader names a broken cdktf.json; the default stands meanwhile
    return output if isinstance(output, str) and output else None
