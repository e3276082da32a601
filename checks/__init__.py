"""Our own checkov checks, loaded with `--external-checks-dir checks` (see .checkov.yaml)."""
