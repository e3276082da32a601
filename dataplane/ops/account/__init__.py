"""Checks and set-up in a customer's AWS account: preflight, verify, bootstrap, assuming roles."""
