# Data plane activation. `make synth` and `make test` set everything up on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
CUSTOMER ?=
CDKTF_OUT ?= cdktf.out
OUTPUTS ?= outputs
CDKTF := cdktf --output $(CDKTF_OUT)

export CHECKPOINT_DISABLE := 1
export JSII_NODE := $(CURDIR)/node_modules/node/bin/node
export TF_CLI_CONFIG_FILE := $(CURDIR)/.terraformrc
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup synth test plan deploy destroy clean require-customer

setup: $(VENV)/.installed $(CHECKOV_VENV)/.installed node_modules/.installed .terraformrc

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# checkov's dependencies conflict with our pins (boto3, moto): it gets a venv of its own.
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

.terraformrc: $(VENV)/.installed dataplane/toolchain.py FORCE
	$(PY) -m dataplane terraformrc

FORCE:

synth: setup
	$(PY) -O main.py

test: setup
	$(PY) -m pytest

require-customer:
	@test -n "$(CUSTOMER)" || { echo "usage: make $(MAKECMDGOALS) CUSTOMER=<name>" >&2; exit 2; }

plan: require-customer setup
	$(CDKTF) plan $(CUSTOMER)

# Synthesize, adopt what an interrupted deploy left unrecorded (dataplane/adopt.py), then deploy.
deploy: require-customer setup
	mkdir -p $(OUTPUTS)
	CDKTF_OUTDIR=$(CDKTF_OUT) $(PY) main.py
	$(PY) -m dataplane adopt $(CUSTOMER) --outdir $(CDKTF_OUT)
	$(CDKTF) deploy $(CUSTOMER) --skip-synth --auto-approve --outputs-file $(OUTPUTS)/$(CUSTOMER).json; \
	status=$$?; rm -f $(CDKTF_OUT)/stacks/$(CUSTOMER)/adopt.tf.json; exit $$status

destroy: require-customer setup
	$(CDKTF) destroy $(CUSTOMER) --auto-approve

.PHONY: review gate
BASE ?=
REVIEW_ARGS ?=

# Synthesize BASE in a temporary worktree and the working tree as head, then report what changes.
# Only the report reaches stdout (with make -s): `make -s review BASE=origin/main > review.md`.
review: $(VENV)/.installed node_modules/.installed
	@test -n "$(BASE)" || { echo "usage: make review BASE=<git ref> [REVIEW_ARGS='--format json | --affected']" >&2; exit 2; }
	@tmp=$$(mktemp -d) && trap 'git worktree remove --force "$$tmp/base" 2>/dev/null; rm -rf "$$tmp"' EXIT && \
	git worktree add --quiet --detach "$$tmp/base" "$(BASE)" && \
	(cd "$$tmp/base" && CDKTF_OUTDIR="$$tmp/base.out" $(CURDIR)/$(PY) main.py) && \
	CDKTF_OUTDIR="$$tmp/head.out" $(PY) main.py && \
	$(PY) -m dataplane review --base "$$tmp/base.out" --head "$$tmp/head.out" $(REVIEW_ARGS)

# The security gate alone, on `make synth`'s output (`make test` runs it on the examples too).
gate: synth
	$(PY) -m dataplane.security_gate cdktf.out

# Stock versus fast provider import: synth wall time and peak memory; writes bench/RESULTS.md.
.PHONY: bench
bench: setup
	$(PY) -m bench.run

clean:
	rm -rf cdktf.out .terraformrc
