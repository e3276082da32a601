"""Reusable constructs for a data plane, one module each: the cross-account role
(`cross_account_role`), the network (`data_plane_network`), the peering (`vpc_peering`), the
tamper alarm (`tamper_alarm`).

Each takes one validated props object (`props`) and the provider(s) to use; none creates
providers or backends. What operations need to know about their resources is in `facts`,
which imports neither cdktf nor the provider, so this package imports nothing itself.
"""
