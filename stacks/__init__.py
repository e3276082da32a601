"""One Terraform stack per customer."""

import dataplane  # noqa: F401  (first: it prepares the jsii runtime)
from stacks.data_plane_stack import DataPlaneStack

__all__ = ["DataPlaneStack"]
