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

.PHONY: install checkov browser test demo render scan schema validate clean help

help:
	@echo "make demo     render + scan the example baseline, then verify, remediate and migrate a sandbox account"
	@echo "make test     install everything and run the whole test suite"
	@echo "make install  create $(VENV) with harden and its test extras"

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

install: $(BIN)/harden
checkov: $(CHECKOV_VENV)/bin/checkov

# Debian's chromium for the HTML report's browser test (about 40 s to install here). Only where
# apt-get runs as root; elsewhere (or when the install fails) that test is skipped, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium with apt-get (log: $(PIP_LOG))"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >> $(PIP_LOG) 2>&1 \
	      || echo "could not install chromium: the HTML browser test will be skipped"; \
	  else echo "no chromium and no root apt-get: the HTML browser test will be skipped"; fi; }

test: install checkov browser
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

render: install
	env -u AWS_ENDPOINT_URL $(BIN)/harden render --config examples/harden.toml --out terraform

scan: install checkov
	$(BIN)/harden scan terraform

# The main job on the offline sandbox: render and scan the example baseline, then the whole
# story on a seeded, insecure emulated account (examples/demo.sh): verify finds drift,
# remediate shows and applies its fixes, ebs migrate encrypts volumes in use, verify again.
demo: install checkov
	env -u AWS_ENDPOINT_URL $(BIN)/harden render --config examples/harden.toml --out terraform
	$(BIN)/harden scan terraform
	COLUMNS=$${COLUMNS:-150} HARDEN=$(BIN)/harden $(BIN)/harden sandbox exec --config-out .sandbox.toml -- \
	  bash examples/demo.sh .sandbox.toml

# hashicorp/aws schema for offline validation, from the cdktf bindings (tool-only; the ~60 MB
# wheel is cached in ~/.cache/harden/cdktf). Re-run after changing which resource types the
# templates use, and commit tests/data/aws_provider_schema.json.
schema: install
	$(BIN)/python tools/extract_schema.py --download --version $(CDKTF_AWS_VERSION) --out tests/data/aws_provider_schema.json

validate: install
	$(BIN)/harden validate terraform

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .terraformrc $(PIP_LOG)
