# dspy-grpc: one entry point for every routine task. `make help` lists them.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)

HOST ?= 127.0.0.1
PORT ?= 50051

GRPCURL_VERSION := v1.9.3

.PHONY: help install tools serve test lint generate check-generated breaking check

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV) ## Install the server, the Python client and the dev tools from uv.lock into .venv
	$(UV) sync --frozen --quiet

tools: $(TOOLS)/bin/grpcurl ## Install grpcurl into .tools/bin (needs Go; used by the README examples test)

$(TOOLS)/bin/grpcurl:
	GOBIN=$(abspath $(TOOLS))/bin go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

serve: install ## Start the server on embedded defaults (SQLite in ./data, in-memory cache) on $(HOST):$(PORT)
	$(VENV)/bin/dspy-grpc serve --host $(HOST) --port $(PORT)

test: install ## Run every test (unit, integration, parity)
	$(VENV)/bin/python -m pytest -q

lint: install ## buf lint (STANDARD) on the protos
	$(VENV)/bin/buf lint

generate: install ## Regenerate the client code from proto/ (commit the result)
	rm -rf clients/python/dspy_grpc/v1
	$(VENV)/bin/buf generate

check-generated: generate ## Fail if regenerating changes any committed file
	@git add -N clients >/dev/null 2>&1 || true
	@git diff --exit-code --stat -- clients || (echo "generated code is stale: run 'make generate' and commit" && exit 1)

breaking: install ## buf breaking against main (FILE rules)
	$(VENV)/bin/buf breaking --against '.git#branch=main'

check: lint check-generated test ## What CI runs
