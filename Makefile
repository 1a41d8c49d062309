# harden: the two commands a newcomer needs are `make demo` and `make test`.
# Everything is installed from PyPI into project-local virtual environments;
# nothing depends on what is installed on the machine besides python3.

PYTHON      ?= python3
VENV        ?= .venv
CHECKOV_VENV?= .venv-checkov
# checkov pins boto3 1.35 and ships its own `hcl2`: it lives in an environment of its own.
CHECKOV_VERSION ?= 3.3.30
PIP_LOG     := .install.log
BIN         := $(VENV)/bin
# Terraform's CLI config: harden uses $TF_CLI_CONFIG_FILE when it names a file (a provider
# mirror, say), else one of its own under ~/.cache/harden; CHECKPOINT_DISABLE stops phoning home.
export CHECKPOINT_DISABLE := 1
export HARDEN_CHECKOV ?= $(CURDIR)/$(CHECKOV_VENV)/bin/checkov

CDKTF_AWS_VERSION ?= 21.22.1

.PHONY: install checkov browser test test-wheel demo render scan schema validate clean help

# `make help` lists every target that has a `## ` comment; a test checks that each one has.
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/harden: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing harden into $(VENV) (log: $(PIP_LOG))"
	@$(BIN)/python -m pip install -q --upgrade pip > $(PIP_LOG) 2>&1 || { cat $(PIP_LOG); exit 1; }
	@$(BIN)/python -m pip install -q -e '.[test]' >> $(PIP_LOG) 2>&1 || { cat $(PIP_LOG); exit 1; }
	@touch $@

$(CHECKOV_VENV)/bin/checkov:
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	@echo "installing checkov $(CHECKOV_VERSION) into $(CHECKOV_VENV) (log: $(PIP_LOG))"
	@$(CHECKOV_VENV)/bin/python -m pip install -q 'checkov==$(CHECKOV_VERSION)' >> $(PIP_LOG) 2>&1 || { cat $(PIP_LOG); exit 1; }
	@touch $@

install: $(BIN)/harden ## create .venv with harden (editable) and its test extras
checkov: $(CHECKOV_VENV)/bin/checkov ## create .venv-checkov with checkov (it pins an old boto3)

# Debian's chromium for the HTML report's browser test (about 40 s to install here). Only where
# apt-get runs as root; elsewhere (or when the install fails) that test is skipped, saying why.
browser: ## install Debian's chromium for the HTML report's browser test (root only)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium with apt-get (log: $(PIP_LOG))"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >> $(PIP_LOG) 2>&1 \
	      || echo "could not install chromium: the HTML browser test will be skipped"; \
	  else echo "no chromium and no root apt-get: the HTML browser test will be skipped"; fi; }

test: install checkov browser ## install everything and run the test suite (all but the wheel test)
	$(BIN)/python -m pytest -n 2 -m "not wheel" $(PYTEST_ARGS)

# Builds the wheel, installs it into a fresh venv outside the repository and runs render,
# validate and verify from there (about a minute: pip installs every dependency from its cache).
test-wheel: install ## build the wheel, install it in a fresh venv, render + validate + verify with it
	$(BIN)/python -m pytest -m wheel $(PYTEST_ARGS)

render: install ## refresh the committed example rendering (terraform/) after changing templates
	env -u AWS_ENDPOINT_URL $(BIN)/harden render --config examples/harden.toml --dir terraform

scan: install checkov ## scan terraform/ with checkov and harden's custom checks
	$(BIN)/harden scan terraform

# The main job on the offline sandbox: render and scan the example baseline, then the whole
# story on a seeded, insecure emulated account (examples/demo.sh): verify finds drift,
# remediate shows and applies its fixes, ebs migrate encrypts volumes in use, verify again.
demo: install checkov ## render + scan the example, then verify, remediate and migrate a sandbox account
	env -u AWS_ENDPOINT_URL $(BIN)/harden render --config examples/harden.toml --dir terraform
	$(BIN)/harden scan terraform
	COLUMNS=$${COLUMNS:-150} HARDEN=$(BIN)/harden $(BIN)/harden sandbox exec --config-out .sandbox.toml -- \
	  bash examples/demo.sh .sandbox.toml

# hashicorp/aws schema for offline validation, from the cdktf bindings (tool-only; the ~60 MB
# wheel is cached in ~/.cache/harden/cdktf). Re-run after changing which resource types the
# templates use, and commit tests/data/aws_provider_schema.json.
schema: install ## regenerate tests/data/aws_provider_schema.json from the CDKTF bindings
	$(BIN)/python tools/extract_schema.py --download --version $(CDKTF_AWS_VERSION) --out tests/data/aws_provider_schema.json

validate: install ## check terraform/ offline against the AWS provider schema
	$(BIN)/harden validate terraform

clean: ## remove the virtual environments and caches
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .terraformrc $(PIP_LOG)
