"""Data plane activation: customer model, project settings and operations.

Importing this package prepares the jsii runtime (see `dataplane.toolchain`) and the fast
provider import (see `dataplane.provider_import`), so every entry point imports it before
cdktf. Nothing here imports cdktf itself.
"""

from dataplane import provider_import
from dataplane.toolchain import prepare_jsii

prepare_jsii()
provider_import.install()
