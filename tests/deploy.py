"""Deploy example customers for real, through the cdktf CLI, against the emulator.

A customer's pre-existing resources (its VPC, route tables, the accepter role) are created in
the emulator first, as the sandbox creates them; their ids are generated there, so the example
file is staged with them.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil

from dataplane.config.customer import Customer, load_customer
from dataplane.config.settings import Settings
from dataplane.ops.sandbox import create_customer_side
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT
from dataplane.runtime.toolchain import tool_environment
from tests.emulator import Emulator


@dataclass(frozen=True)
class Deployment:
    """One customer staged in `workdir`, ready for `cdktf` commands against the emulator."""

    customer: Customer
    workdir: Path
    env: dict[str, str]

    @property
    def outputs_file(self) -> Path:
        return self.workdir / f"{self.customer.name}.json"

    @property
    def state_file(self) -> Path:
        return self.workdir / "terraform-state" / f"{self.customer.name}.tfstate"

    def cdktf(self, command: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run `npx cdktf <command> <customer>` from the project, output under `workdir`."""
        argv = ["npx", "cdktf", command, self.customer.name, "--output", str(self.workdir / "cdktf.out"), *args]
        result = subprocess.run(argv, cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, timeout=900)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def deploy(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.cdktf("deploy", "--auto-approve", "--outputs-file", str(self.outputs_file), *args, check=check)

    def make(self, target: str, *variables: str, **env: str) -> subprocess.CompletedProcess:
        """Run `make <target> CUSTOMER=<customer> [variables]` with synth output, outputs file and records under
        `workdir` (never the project's own)."""
        argv = ["make", "--no-print-directory", target, f"CUSTOMER={self.customer.name}",
                f"CDKTF_OUT={self.workdir / 'cdktf.out'}", f"OUTPUTS={self.workdir}",
                f"RECORDS={self.workdir / 'activations'}", *variables]
        return subprocess.run(argv, cwd=PROJECT_ROOT, env={**self.env, **env}, capture_output=True, text=True,
                              timeout=900)

    def outputs(self) -> dict:
        return json.loads(self.outputs_file.read_text())[self.customer.name]


def stage(emulator: Emulator, example: Customer, settings: Settings, workdir: Path) -> Deployment:
    """Create what the customer already has, and write its file with the emulator's ids."""
    customers = workdir / "customers"
    customers.mkdir(parents=True)
    path = customers / f"{example.name}.toml"
    path.write_text(create_customer_side(emulator, example, (PROJECT_ROOT / example.source).read_text()))
    env = emulator.env(example.account_id, example.region, tool_environment())
    env[CUSTOMERS_DIR_ENV] = str(customers)
    return Deployment(load_customer(path, settings.control_plane_account_id), workdir, env)


def freeze(process: subprocess.Popen) -> list[psutil.Process]:
    """Suspend `process` and everything it started, top-down (a stopped process starts no children)."""
    frozen, frontier = [], [psutil.Process(process.pid)]
    while frontier:
        member = frontier.pop()
        with contextlib.suppress(psutil.NoSuchProcess):
            member.suspend()
            frozen.append(member)
            frontier += member.children()
    return frozen


def kill(frozen: list[psutil.Process]) -> None:
    """SIGKILL a frozen process tree, as a crash would: nothing in it runs another instruction."""
    for member in frozen:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(frozen, timeout=30)


def kill_when(deployment: Deployment, ready: Callable[[], bool], timeout: float = 300) -> None:
    """Start `cdktf deploy`, and once `ready()` holds, kill it and everything it started, as a crash would.

    The tree is frozen first, so terraform and its provider plugin die too and nothing keeps
    creating resources after the "crash".
    """
    argv = ["npx", "cdktf", "deploy", deployment.customer.name, "--output", str(deployment.workdir / "cdktf.out"),
            "--auto-approve"]
    process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=deployment.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None and time.monotonic() < deadline, "deploy ended before the fault point"
        time.sleep(0.05)
    kill(freeze(process))
    process.wait()
