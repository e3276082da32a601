"""The AWS emulator for tests: the sandbox's moto server (`dataplane/ops/sandbox.py`) on a free port of 127.0.0.1.

moto maps credentials from `sts:AssumeRole` to the account of the assumed role, so one server
serves several accounts (the data-plane account and the customer's peer account).
"""

from __future__ import annotations

import json

from dataplane.ops.sandbox import FAKE_KEYS, SCRUBBED, Emulator

__all__ = ["FAKE_KEYS", "SCRUBBED", "Emulator", "dump"]


def dump(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
