"""Data plane activation: customer model, project settings and operations.

Importing this package prepares the jsii runtime (see `dataplane.toolchain`), so every entry
point imports it before cdktf. Nothing here imports cdktf itself.
"""

from dataplane.toolchain import prepare_jsii

prepare_jsii()
