# mcp-cognito-kit. Every target sets itself up: a fresh machine needs Python 3.11+, Node.js 20+ (with npm) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The official MCP TypeScript SDK client for the e2e suite, pinned by its lockfile.
TS_E2E     := tests/e2e/ts
NODE_STAMP := $(TS_E2E)/node_modules/.installed
# The e2e suite's real headless browser (tests/e2e/test_account_page_browser.py): Debian's chromium,
# driven by playwright-core; no browser is ever downloaded by npm.
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM_PATH := $(CHROMIUM)

.PHONY: dev test lint fmt unit token admin bench clean synth deploy destroy browser

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
		|| { echo "mcp-cognito-kit needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# `npm ci` empties node_modules first, so the stamp inside it survives only a complete install.
$(NODE_STAMP): $(TS_E2E)/package.json $(TS_E2E)/package-lock.json
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null \
		|| { echo "the e2e suite needs Node.js 20 or newer (node and npm on PATH)"; exit 1; }
	cd $(TS_E2E) && npm ci --no-audit --no-fund
	@touch $@

## browser: install Debian's chromium for the e2e browser test when it is missing (non-interactive apt-get)
browser:
	@test -x "$(CHROMIUM)" && exit 0; \
	echo "installing Debian's chromium for the e2e browser test (apt-get install -y chromium)"; \
	if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	{ command -v apt-get >/dev/null 2>&1 \
	  && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
	  && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
	|| { echo "could not install chromium: install it (Debian/Ubuntu: apt-get install chromium) or set CHROMIUM=/path/to/chromium"; exit 1; }; \
	test -x "$(CHROMIUM)" || { echo "chromium installed, but not at $(CHROMIUM): set CHROMIUM=/path/to/chromium"; exit 1; }

## dev: run the whole kit on localhost (moto + Cognito emulator + all functions) serving the app named by
## cdk.json's kit:app (KIT_APP_PATH=<folder> overrides it); Ctrl-C stops it
dev: $(STAMP)
	$(BIN)/python -m local

## test: lint, type-check and run every test suite (unit, integration, e2e, infra, fault), in parallel
## (pytest-xdist; the tests are independent: each worker starts its own local stack on free ports),
## then the app's own tests (the folder named by kit:app, or KIT_APP_PATH) in a process of their own
PYTEST_WORKERS ?= auto
test: $(STAMP) $(NODE_STAMP) browser lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)
	$(BIN)/python -m local.app_tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

## token: print an access token from the running `make dev` stack (USER_EMAIL=..., SCOPE="...")
USER_EMAIL ?= alice@example.com
token: $(STAMP)
	@$(BIN)/python -m local.devtoken $(USER_EMAIL) $(if $(SCOPE),--scope "$(SCOPE)")

## admin: the operator's CLI, mcp-kit-admin (ARGS="--local grants list --user alice@example.com";
##        ARGS="--stack NAME ..." for a deployed stack with your AWS credentials); README, Admin CLI
admin: $(STAMP)
	@$(BIN)/mcp-kit-admin $(ARGS)

## bench: the performance table (init, cold start, auth check, warm ratios, asset sizes) with targets, in one run
bench: $(STAMP)
	$(BIN)/python scripts/bench_mcp.py

# CDK CLI >= 2.1148 reads aws-cdk-lib 2.275's cloud assembly (npm "latest" = 3.0.0 cannot). Needs Node 22+.
CDK ?= npx --yes aws-cdk@2
CDK_RUN = PATH="$(CURDIR)/$(BIN):$$PATH" $(CDK) --no-notices

## synth: CloudFormation template into cdk.out/ offline (no AWS credentials, no Docker); prints asset sizes.
##        CDK_ARGS="-c kit:key=value ..." takes the CDK CLI's context flags (README, Deploy to AWS > Commands)
synth: $(STAMP)
	CDK_OUTDIR=cdk.out $(BIN)/python app.py $(CDK_ARGS)

## deploy: deploy to the account/region of your AWS credentials (CDK_ARGS="-c kit:stageName=prod ...")
deploy: $(STAMP)
	$(CDK_RUN) deploy --require-approval broadening $(CDK_ARGS)

## destroy: delete the stack (retained data stays unless deployed with -c kit:retainData=false)
destroy: $(STAMP)
	$(CDK_RUN) destroy $(CDK_ARGS)

clean:
	rm -rf $(VENV) $(TS_E2E)/node_modules cdk.out build .pytest_cache .mypy_cache .ruff_cache
