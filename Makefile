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
CUSTOMERS ?=
BASE ?=
# Empty: the tool's own default (dataplane/fleet_location.py: cdktf.json's `output`, else cdktf.out).
CDKTF_OUT ?=
OUTPUTS ?= outputs
REVIEW_ARGS ?=
BASE_OUT ?= base.out
PLANS ?= plans
PORT ?=
RECORDS ?= activations
ROLLOUTS ?= rollouts
ROLLOUT_ARGS ?=
BOOTSTRAP_OUT ?= bootstrap
YES ?=
override CUSTOMER := $(value CUSTOMER)
override CUSTOMERS := $(value CUSTOMERS)
override BASE := $(value BASE)
override CDKTF_OUT := $(value CDKTF_OUT)
override OUTPUTS := $(value OUTPUTS)
override REVIEW_ARGS := $(value REVIEW_ARGS)
override BASE_OUT := $(value BASE_OUT)
override PLANS := $(value PLANS)
override PORT := $(value PORT)
override RECORDS := $(value RECORDS)
override ROLLOUTS := $(value ROLLOUTS)
override ROLLOUT_ARGS := $(value ROLLOUT_ARGS)
override BOOTSTRAP_OUT := $(value BOOTSTRAP_OUT)
override YES := $(value YES)
export CUSTOMER BASE CDKTF_OUT OUTPUTS REVIEW_ARGS BASE_OUT PLANS PORT RECORDS YES ROLLOUTS ROLLOUT_ARGS
export BOOTSTRAP_OUT CUSTOMERS

# The tools' own environment (the pinned cdktf CLI and Node 22, .terraformrc, no telemetry) is set in
# one place, dataplane/runtime/toolchain.py; every recipe runs them through the project's Python.

.PHONY: help setup synth test test-quick plan deploy destroy adopt unlock clean require-customer activate drift sandbox
.DEFAULT_GOAL := help

# Every target with its one line (the text after `##` on its rule); what plain `make` prints.
help: ## list the targets
	@awk -F':[^#]*## ' '/^[a-z-]+:[^=]*## / { printf "  %-15s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

setup: $(VENV)/.installed node_modules/.installed .terraformrc ## install the venv, the pinned cdktf CLI and Node, and .terraformrc (the other targets run it)

# pip compiles bytecode for plain `python` only: the optimized bytecode `python -O` reads (the synth's) is compiled
# here once, so that no synth compiles jsii, cdktf and the provider anew (about 1 s each; the machine may forbid
# writing bytecode at run time: PYTHONDONTWRITEBYTECODE).
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -O -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" > /dev/null
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

synth: setup ## synthesize every customer into CDKTF_OUT (else cdktf.json's output, else cdktf.out)
	@CDKTF_OUTDIR="$$CDKTF_OUT" $(PY) -O main.py

test: setup $(CHECKOV_VENV)/.installed ## run the whole test suite (unit, synth, terraform, security gate, end to end against moto)
	$(PY) -m pytest

# The inner loop: everything but the tests that deploy against the emulator (tests/conftest.py marks them) and the
# three that synthesize a fleet several times over (marked heavy).
test-quick: setup $(CHECKOV_VENV)/.installed ## the suite without deploys and the three heaviest synths (unit, snapshots, synth): under 90 s
	$(PY) -m pytest -m "not deploys and not heavy" --numprocesses=2

require-customer: $(VENV)/.installed
	@test -n "$$CUSTOMER" || { echo "usage: make $(firstword $(MAKECMDGOALS)) CUSTOMER=<name>" >&2; exit 2; }
	@$(PY) -m dataplane customer -- "$$CUSTOMER"

# terraform plan of the one customer, synthesized alone in a private directory beside CDKTF_OUT
# (`cdktf plan <customer>` works too, but synthesizes the whole fleet and starts the cdktf CLI first).
plan: require-customer setup ## terraform plan of one customer: make plan CUSTOMER=<name>
	$(PY) -m dataplane plan $${CDKTF_OUT:+--outdir="$$CDKTF_OUT"} -- "$$CUSTOMER"

# Synthesize, adopt what an interrupted deploy left unrecorded (dataplane/ops/fleet/adopt.py), then deploy,
# all in a private directory beside CDKTF_OUT (dataplane/ops/fleet/deploy.py).
deploy: require-customer setup ## adopt what an interrupted deploy left, then deploy one customer: make deploy CUSTOMER=<name>
	$(PY) -m dataplane deploy $${CDKTF_OUT:+--outdir="$$CDKTF_OUT"} --outputs-dir="$$OUTPUTS" -- "$$CUSTOMER"

# The customer's first step: the CloudFormation template of its deploy role (least privilege, derived from its stack)
# and the page for its security team, into BOOTSTRAP_OUT (bootstrap).
.PHONY: bootstrap
bootstrap: require-customer setup ## the customer's deploy-role template and page: make bootstrap CUSTOMER=<name>
	$(PY) -m dataplane bootstrap --out="$$BOOTSTRAP_OUT" -- "$$CUSTOMER"

# Preflight, deploy, verify, and the activation record activations/<customer>.{json,md}.
activate: require-customer setup ## preflight, deploy, verify and the activation record: make activate CUSTOMER=<name>
	$(PY) -m dataplane activate $${CDKTF_OUT:+--outdir="$$CDKTF_OUT"} --outputs-dir="$$OUTPUTS" --records-dir="$$RECORDS" -- "$$CUSTOMER"

# Refresh-only plans of every deployed customer: in sync, drifted, not deployed. Exit 2 on drift.
drift: synth ## refresh-only plans of every deployed customer (exit 2 on drift)
	$(PY) -m dataplane drift $${CDKTF_OUT:+--outdir="$$CDKTF_OUT"}

# A change to the whole fleet: plan every stack, then apply the changed ones canary first and in waves (settings
# `rollout`), each verified; the first failure halts it at the end of its wave. Records and logs in ROLLOUTS (rollouts).
# ROLLOUT_ARGS (--dry-run, --resume, --wave N, --jobs N, customers) is split into words with globbing off: arguments
# only, never shell code.
.PHONY: rollout
rollout: synth ## plan the fleet, apply its changes canary first then in waves, halt on a failure: make rollout [ROLLOUT_ARGS=--resume]
	@set -f && $(PY) -m dataplane rollout $${CDKTF_OUT:+--outdir="$$CDKTF_OUT"} --outputs-dir="$$OUTPUTS" --records-dir="$$ROLLOUTS" \
	$$ROLLOUT_ARGS

# A moto server on 127.0.0.1 (PORT, default 4566) with what each customer already has on its side; writes
# .sandbox/env/<customer>.sh for another terminal and prints how to use them. Ctrl-C stops it.
sandbox: setup ## a local AWS emulator with each customer's own resources (PORT, default 4566)
	$(PY) -m dataplane sandbox $${PORT:+--port="$$PORT"}

# What a deploy would adopt, without deploying.
adopt: require-customer setup ## show what a deploy would adopt, without deploying: make adopt CUSTOMER=<name>
	$(PY) -m dataplane adopt $${CDKTF_OUT:+--outdir="$$CDKTF_OUT"} -- "$$CUSTOMER"

# Show the S3 state lock a killed deploy left behind and release it once the engineer confirms.
unlock: require-customer setup ## release the S3 state lock a killed deploy left, once confirmed: make unlock CUSTOMER=<name>
	$(PY) -m dataplane unlock $${CDKTF_OUT:+--outdir="$$CDKTF_OUT"} -- "$$CUSTOMER"

# With BASE, a customer whose file is gone: its stack is synthesized from BASE and destroyed from there. On a
# terminal it asks for the customer's name to be typed; elsewhere (CI) YES=1 says yes.
destroy: setup ## destroy one customer's stack: make destroy CUSTOMER=<name> [BASE=<ref> once its file is gone]
	@test -n "$$CUSTOMER" || { echo "usage: make destroy CUSTOMER=<name> [BASE=<git ref>] [YES=1]" >&2; exit 2; }
	@set -- && if [ "$$YES" = 1 ]; then set -- --yes; fi && \
	$(PY) -m dataplane destroy $${CDKTF_OUT:+--outdir="$$CDKTF_OUT"} --records-dir="$$RECORDS" --outputs-dir="$$OUTPUTS" $${BASE:+--base="$$BASE"} "$$@" \
	-- "$$CUSTOMER"

# Several customers one after another, each as `make destroy CUSTOMER=<name>` does (the apply workflow's destroy jobs:
# beyond 256 removed customers, a job destroys a batch). CUSTOMERS is split into words with globbing off: names only,
# never shell code. Every one is tried; the target fails at the end, naming those not destroyed.
.PHONY: destroy-each
destroy-each: setup ## destroy several customers' stacks one after another: make destroy-each CUSTOMERS="<name> ..." [BASE=<ref>]
	@test -n "$$CUSTOMERS" || { echo 'usage: make destroy-each CUSTOMERS="<name> ..." [BASE=<git ref>] [YES=1]' >&2; exit 2; }
	@set -f && failed= && for customer in $$CUSTOMERS; do \
	$(MAKE) --no-print-directory destroy CUSTOMER="$$customer" || failed="$$failed $$customer"; done && \
	if [ -n "$$failed" ]; then echo "destroy-each: not destroyed:$$failed" >&2; exit 1; fi

.PHONY: review gate synth-base plan-affected

# Synthesize git ref BASE as committed (its own settings and customers) into BASE_OUT (base.out).
synth-base: $(VENV)/.installed node_modules/.installed ## synthesize git ref BASE as committed into BASE_OUT (base.out)
	@test -n "$$BASE" || { echo "usage: make $(firstword $(MAKECMDGOALS)) BASE=<git ref>" >&2; exit 2; }
	@$(PY) -m dataplane synth-ref --outdir="$$BASE_OUT" -- "$$BASE"

# Terraform plans of the stacks a change since BASE affects, into PLANS (plans): read them with
# `python -m dataplane review --base base.out --head cdktf.out --plans plans`. Exit 2 when there are changes.
plan-affected: synth-base synth ## terraform plans of every stack a change since BASE affects, into PLANS (plans)
	$(PY) -m dataplane plan-stacks $${CDKTF_OUT:+--outdir="$$CDKTF_OUT"} --affected-from="$$BASE_OUT" --out="$$PLANS"

# Synthesize BASE and the working tree as head, then report what changes (no plan: see plan-affected).
# Only the report reaches stdout (with make -s): `make -s review BASE=origin/main > review.md`.
# REVIEW_ARGS is split into words with globbing off: arguments only, never shell code.
review: $(VENV)/.installed node_modules/.installed ## the review report of the working tree against BASE: make -s review BASE=<ref>
	@test -n "$$BASE" || { echo "usage: make review BASE=<git ref> [REVIEW_ARGS='--format json | --affected']" >&2; exit 2; }
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PY) -m dataplane synth-ref --outdir="$$tmp/base.out" -- "$$BASE" && \
	CDKTF_OUTDIR="$$tmp/head.out" $(PY) main.py >&2 && \
	set -f && $(PY) -m dataplane review --base "$$tmp/base.out" --head "$$tmp/head.out" $$REVIEW_ARGS

# The security gate alone, on `make synth`'s output (`make test` runs it on the fixtures too).
gate: synth $(CHECKOV_VENV)/.installed ## the security gate (checkov and our own checks) on make synth's output
	$(PY) -m dataplane gate $${CDKTF_OUT:+"$$CDKTF_OUT"}

# Stock versus fast provider import: synth wall time and peak memory; plans and drift of a deployed fleet
# (--jobs 1 and 2, with and without the shared plugin cache); plan, deploy and activate of one customer
# against the stock cdktf CLI; a rollout of 20 customers against applying them one after another. Writes
# bench/RESULTS.md.
.PHONY: bench
bench: setup ## benchmarks: synth, plans and drift, activation against the stock CLI, rollout (writes bench/RESULTS.md)
	$(PY) -m bench.run
	$(PY) -m bench.plans
	$(PY) -m bench.activation
	$(PY) -m bench.rollout

clean: ## remove generated output (cdktf.out, base.out, plans, .sandbox, ...)
	rm -rf cdktf.out .cdktf.out.init base.out plans review-parts .sandbox .terraformrc
