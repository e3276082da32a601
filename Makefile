# Data plane activation. `make synth` and `make test` set everything up on first use.
#
# Variables given on the command line reach recipes only as environment variables, quoted
# ("$$CUSTOMER"), never as make text: `$(value ...)` keeps make from expanding them, so no value
# can become make or shell code. CUSTOMER is checked against the fleet before anything runs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
CUSTOMER ?=
BASE ?=
CDKTF_OUT ?= cdktf.out
OUTPUTS ?= outputs
REVIEW_ARGS ?=
override CUSTOMER := $(value CUSTOMER)
override BASE := $(value BASE)
override CDKTF_OUT := $(value CDKTF_OUT)
override OUTPUTS := $(value OUTPUTS)
override REVIEW_ARGS := $(value REVIEW_ARGS)
export CUSTOMER BASE CDKTF_OUT OUTPUTS REVIEW_ARGS

# The tools' own environment (the pinned cdktf CLI and Node 22, .terraformrc, no telemetry) is set in
# one place, dataplane/runtime/toolchain.py; every recipe runs them through the project's Python.

.PHONY: setup synth test plan deploy destroy adopt unlock clean require-customer

setup: $(VENV)/.installed node_modules/.installed .terraformrc

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# checkov's dependencies conflict with our pins (boto3, moto): it gets a venv of its own, used
# only by the security gate (`make test`, `make gate`).
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

.terraformrc: $(VENV)/.installed dataplane/runtime/toolchain.py FORCE
	@$(PY) -m dataplane terraformrc

FORCE:

synth: setup
	@CDKTF_OUTDIR="$$CDKTF_OUT" $(PY) -O main.py

test: setup $(CHECKOV_VENV)/.installed
	$(PY) -m pytest

require-customer: $(VENV)/.installed
	@test -n "$$CUSTOMER" || { echo "usage: make $(firstword $(MAKECMDGOALS)) CUSTOMER=<name>" >&2; exit 2; }
	@$(PY) -m dataplane customer -- "$$CUSTOMER"

plan: require-customer setup
	$(PY) -m dataplane cdktf plan "$$CUSTOMER" --output="$$CDKTF_OUT"

# Synthesize, adopt what an interrupted deploy left unrecorded (dataplane/ops/adopt.py), then deploy,
# all in a private directory beside CDKTF_OUT (dataplane/ops/deploy.py).
deploy: require-customer setup
	$(PY) -m dataplane deploy --outdir="$$CDKTF_OUT" --outputs-dir="$$OUTPUTS" -- "$$CUSTOMER"

# What a deploy would adopt, without deploying.
adopt: require-customer setup
	$(PY) -m dataplane adopt --outdir="$$CDKTF_OUT" -- "$$CUSTOMER"

# Show the S3 state lock a killed deploy left behind and release it once the engineer confirms.
unlock: require-customer setup
	$(PY) -m dataplane unlock --outdir="$$CDKTF_OUT" -- "$$CUSTOMER"

destroy: require-customer setup
	$(PY) -m dataplane cdktf destroy "$$CUSTOMER" --auto-approve --output="$$CDKTF_OUT"

.PHONY: review gate

# Synthesize BASE in a temporary worktree (with this checkout's node_modules) and the working tree as
# head, then report what changes.
# Only the report reaches stdout (with make -s): `make -s review BASE=origin/main > review.md`.
# REVIEW_ARGS is split into words with globbing off: arguments only, never shell code.
review: $(VENV)/.installed node_modules/.installed
	@test -n "$$BASE" || { echo "usage: make review BASE=<git ref> [REVIEW_ARGS='--format json | --affected']" >&2; exit 2; }
	@commit=$$(git rev-parse --verify --quiet --end-of-options "$$BASE^{commit}") || { \
	  printf "BASE '%s' is not a git commit (git rev-parse --verify)\n" "$$BASE" >&2; exit 2; }; \
	tmp=$$(mktemp -d) && trap 'git worktree remove --force "$$tmp/base" 2>/dev/null; rm -rf "$$tmp"' EXIT && \
	git worktree add --quiet --detach "$$tmp/base" "$$commit" && ln -s "$(CURDIR)/node_modules" "$$tmp/base/" && \
	(cd "$$tmp/base" && CDKTF_OUTDIR="$$tmp/base.out" "$(CURDIR)/$(PY)" main.py >&2) && \
	CDKTF_OUTDIR="$$tmp/head.out" $(PY) main.py >&2 && \
	set -f && $(PY) -m dataplane review --base "$$tmp/base.out" --head "$$tmp/head.out" $$REVIEW_ARGS

# The security gate alone, on `make synth`'s output (`make test` runs it on the fixtures too).
gate: synth $(CHECKOV_VENV)/.installed
	$(PY) -m dataplane gate "$$CDKTF_OUT"

# Stock versus fast provider import: synth wall time and peak memory; writes bench/RESULTS.md.
.PHONY: bench
bench: setup
	$(PY) -m bench.run

clean:
	rm -rf cdktf.out .terraformrc
