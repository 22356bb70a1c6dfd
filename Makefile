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
GHZ_VERSION := v0.120.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
TS_CLIENT := clients/typescript
GO_CLIENT := clients/go

.PHONY: help install install-clients tools go-tools serve test lint generate check-generated breaking check bench-optimize bench-lm bench-telemetry bench-soak bench-retrieve bench-replicas bench-predict bench-load ghz

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV) ## Install the server, the Python client and the dev tools from uv.lock into .venv
	$(UV) sync --frozen --quiet

install-clients: $(TS_CLIENT)/node_modules/.package-lock.json ## Install the TypeScript (npm ci) and Go (go mod download) clients' dependencies
	cd $(GO_CLIENT) && go mod download

$(TS_CLIENT)/node_modules/.package-lock.json: $(TS_CLIENT)/package-lock.json
	cd $(TS_CLIENT) && npm ci --no-audit --no-fund

tools: $(TOOLS)/bin/grpcurl ## Install grpcurl into .tools/bin (needs Go; used by the README examples test)

go-tools: $(TOOLS)/stamps/protoc-gen-go@$(PROTOC_GEN_GO_VERSION) $(TOOLS)/stamps/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION) ## Install the pinned Go code generators into .tools/bin

$(TOOLS)/stamps/protoc-gen-go@$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(abspath $(TOOLS))/bin go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@mkdir -p $(@D) && touch $@

$(TOOLS)/stamps/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(abspath $(TOOLS))/bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@mkdir -p $(@D) && touch $@

$(TOOLS)/bin/grpcurl:
	GOBIN=$(abspath $(TOOLS))/bin go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

ghz: $(TOOLS)/stamps/ghz@$(GHZ_VERSION) ## Install the ghz gRPC load generator into .tools/bin (needs Go; used by bench-load)

$(TOOLS)/stamps/ghz@$(GHZ_VERSION):
	GOBIN=$(abspath $(TOOLS))/bin go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)
	@mkdir -p $(@D) && touch $@

serve: install ## Start the server on embedded defaults (SQLite in ./data, in-memory cache) on $(HOST):$(PORT)
	$(VENV)/bin/dspy-grpc serve --host $(HOST) --port $(PORT)

test: install install-clients ## Run every test (unit, integration, parity, conformance from Python, TypeScript, Go and grpcurl); lists what was skipped and why
	$(VENV)/bin/python -m pytest -q

lint: install ## buf lint (STANDARD) on the protos
	$(VENV)/bin/buf lint

generate: install install-clients go-tools ## Regenerate the Python, TypeScript and Go client code from proto/ (commit the result)
	rm -rf clients/python/dspy_grpc/v1 $(TS_CLIENT)/src/gen $(GO_CLIENT)/gen
	$(VENV)/bin/buf generate
	$(VENV)/bin/buf generate --template buf.gen.status.yaml

check-generated: generate ## Fail if regenerating changes any committed file
	@git add -N clients >/dev/null 2>&1 || true
	@git diff --exit-code --stat -- clients || (echo "generated code is stale: run 'make generate' and commit" && exit 1)

breaking: install ## buf breaking against main (FILE rules)
	$(VENV)/bin/buf breaking --against '.git#branch=main'

check: lint check-generated test ## What CI runs

bench-optimize: install ## Benchmark optimization jobs (100 examples, mock LM at 100 ms) vs dspy 3.4.1
	$(VENV)/bin/python -m bench.optimize

bench-lm: install ## Benchmark LMService.Complete vs direct httpx to the mock: overhead p50/p99, calls/s at 64 in flight
	$(VENV)/bin/python -m bench.lm_gateway

bench-telemetry: install ## Cost of the telemetry path of one Predict (spans, metrics, dashboard activity), off and on
	$(VENV)/bin/python -m bench.telemetry

bench-soak: install ## Soak: Predict, StreamPredict and jobs mixed (10 min; DURATION=120 for less): RSS growth, Predict p99 with/without a large job
	$(VENV)/bin/python -m bench.soak --duration $(or $(DURATION),600)
bench-retrieve: install ## Benchmark BM25 corpora (100,000 docs: load, index build, memory, top-10 p50/p99, queries/s) and multi-hop overhead vs LM time
	$(VENV)/bin/python -m bench.retrieve
bench-replicas: install ## Many replicas on PostgreSQL: Predict calls/s through 1 vs 2 processes, kill -9 takeover time, rolling-restart duplicates
	$(VENV)/bin/python -m bench.replicas

bench-predict: install ## Benchmark Predict over gRPC vs dspy 3.4.1 in-process (mock LM, cache off): latency, calls/s, cache hits
	$(VENV)/bin/python -m bench.predict

bench-load: install ghz ## Predict under load with ghz (64/0 ms, 200/200 ms, 1000/500 ms in flight/LM latency): server CPU ms/call, calls/s ÷ LM-bound limit, p50/p99 minus LM latency, cache-hit p50, vs a bare grpc.aio server and the mock alone
	$(VENV)/bin/python -m bench.load
