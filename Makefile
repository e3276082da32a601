# Data plane activation. `make synth` and `make test` set everything up on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CUSTOMER ?=
CDKTF_OUT ?= cdktf.out
OUTPUTS ?= outputs
CDKTF := cdktf --output $(CDKTF_OUT)

export CHECKPOINT_DISABLE := 1
export JSII_NODE := $(CURDIR)/node_modules/node/bin/node
export TF_CLI_CONFIG_FILE := $(CURDIR)/.terraformrc
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup synth test plan deploy destroy clean require-customer

setup: $(VENV)/.installed node_modules/.installed .terraformrc

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

.terraformrc: $(VENV)/.installed dataplane/toolchain.py FORCE
	$(PY) -m dataplane terraformrc

FORCE:

synth: setup
	$(PY) main.py

test: setup
	$(PY) -m pytest

require-customer:
	@test -n "$(CUSTOMER)" || { echo "usage: make $(MAKECMDGOALS) CUSTOMER=<name>" >&2; exit 2; }

plan: require-customer setup
	$(CDKTF) plan $(CUSTOMER)

deploy: require-customer setup
	mkdir -p $(OUTPUTS)
	$(CDKTF) deploy $(CUSTOMER) --auto-approve --outputs-file $(OUTPUTS)/$(CUSTOMER).json

destroy: require-customer setup
	$(CDKTF) destroy $(CUSTOMER) --auto-approve

clean:
	rm -rf cdktf.out .terraformrc
