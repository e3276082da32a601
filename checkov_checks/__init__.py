"""Our own checkov checks, loaded with `--external-checks-dir checkov_checks` (see .checkov.yaml)."""
