"""How synth runs: the project's toolchain, the fast provider import, parallel shards.

`prepare()` readies the jsii runtime and the provider import; entry points that build stacks
(`main.py`, the tests' session) call it before they import cdktf. Importing this package does nothing.
"""

from __future__ import annotations


def prepare() -> None:
    """Run jsii on the project's Node 22 and load only the provider modules in use; call before importing cdktf."""
    from dataplane.runtime import provider_import, toolchain

    toolchain.prepare_jsii()
    provider_import.install()
