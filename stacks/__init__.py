"""One Terraform stack per customer."""

from stacks.data_plane_stack import DataPlaneStack

__all__ = ["DataPlaneStack"]
