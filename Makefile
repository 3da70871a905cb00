# Hall — see README.md. Every target works on a fresh clone with Go 1.26.
GO        ?= go
STATICCHECK ?= $(GO) tool staticcheck
BIN       := bin
HALL      := $(BIN)/hall
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
FUZZTIME  ?= 10s
PLUGINS   := $(filter-out internal,$(notdir $(wildcard plugins/*)))

.PHONY: all build test bench fuzz demo plugins lint crossbuild clean preflight

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(HALL) ./cmd/hall

# The whole test suite: vet, formatting, unit/integration tests (they build
# the CLI binary and the .wasm fixtures they need themselves). preflight
# first: what the suite needs from the system, in one message (installed
# when run as root on Debian); staticcheck is pinned in go.mod (go tool).
test: preflight lint crossbuild
	@[ -d testdata/mcp-node/node_modules ] || npm ci --prefix testdata/mcp-node --no-audit --no-fund
	@[ -d testdata/verifier-node/node_modules ] || npm ci --prefix testdata/verifier-node --no-audit --no-fund
	$(GO) test -count=1 -timeout 30m ./...
	$(GO) test -race -count=1 -timeout 30m $(RACE_PKGS)

# The packages with concurrent state (pools, group commit, the server, the
# Hall facade) also run under the race detector.
RACE_PKGS := ./host/ ./internal/ledger/ ./internal/sandbox/ ./host/server/ ./internal/artifact/ ./internal/auth/ ./internal/cpushare/

# Every package, and its tests (go vet type-checks them), builds for the
# other supported targets (README.md, "Platforms"): a file that reaches
# for one platform's syscall fields fails here, not on a user's machine.
CROSS_TARGETS := linux/arm64 darwin/arm64 windows/amd64
crossbuild:
	@for t in $(CROSS_TARGETS); do \
		echo "crossbuild $$t"; \
		GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build ./... && GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) vet ./... || exit 1; \
	done

preflight:
	@scripts/preflight

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(STATICCHECK) ./...

# Benchmarks (issue 12), one `go test -bench` step at a time: each step's
# output is kept in bin/bench/<step>.txt, the machine and its load are
# stamped at the start and at the end, and benchreport sets every figure
# beside its anchor measured in the same run (internal/benchreport/areas.go)
# in bin/bench/report.md. `make bench-readme` then copies the tables into
# the generated blocks of docs/PERFORMANCE.md. The -benchtime
# values keep the run short (17 minutes on the 2-core development machine
# at load average ~15): fixed counts for the benchmarks whose one operation
# is long (a process, a 100,000-receipt ledger, a load test of 10,000
# requests), the default second for the others. A new benchmark needs a step here (and a
# row in areas.go to appear in the tables; report.md lists every result).
BENCH_DIR := $(BIN)/bench
define bench_step
	$(GO) test -run '^$$' $(2) 2>&1 | tee $(BENCH_DIR)/$(1).txt
endef
.PHONY: bench-readme
bench: SHELL := /bin/bash
bench: .SHELLFLAGS := -o pipefail -c
bench:
	@rm -rf $(BENCH_DIR) && mkdir -p $(BENCH_DIR)
	$(GO) build -o $(BIN)/benchreport ./internal/benchreport
	$(BIN)/benchreport stamp $(BENCH_DIR)/start.env
	@# The bare engine first, Hall.Decide and dispatch over it next.
	$(call bench_step,01-engine,-bench . -benchmem ./internal/router/ ./internal/policy/ ./internal/auth/)
	$(call bench_step,02-hall,-bench 'BenchmarkHallDecide|BenchmarkDispatch|BenchmarkHallRunProcess' -benchmem ./host/)
	$(call bench_step,03-sandbox,-bench 'BenchmarkCall|BenchmarkLoopTermination' -benchmem ./internal/sandbox/)
	$(call bench_step,04-compile,-bench BenchmarkCompileHostile -benchmem -benchtime 3x ./internal/sandbox/)
	@# Footprint: 1,000 loaded workers of one module, once per package.
	$(call bench_step,05-footprint,-bench BenchmarkIdleWorkers -benchtime 1x ./host/ ./internal/sandbox/)
	@# hall run / the floor program, alternated: medians of 20 pairs.
	$(call bench_step,06-floor,-bench BenchmarkHallRunFloor -benchtime 20x ./host/)
	# Cores shared between tenants: a benign p99 under 8 CPU loops, over alone.
	$(call bench_step,06b-fair-cpu,-bench BenchmarkFairCPU -benchtime 5x ./host/)
	$(call bench_step,07-ledger,-bench 'BenchmarkAppend|BenchmarkDispatchPair|BenchmarkRecordDecisionParallel|BenchmarkRecordDispatchParallel|BenchmarkVerify$$|BenchmarkSignatureVerify' -benchmem ./internal/ledger/)
	$(call bench_step,08-verify,-bench 'BenchmarkVerifyReceipts|BenchmarkVerifyEvidence' -benchmem -benchtime 1x ./internal/ledger/)
	@# 32 connections, every answer checked: exactly 10,000 requests, 2,000
	@# for the summarizer (at ~500/s, 10,000 would take a sixth of the run).
	$(call bench_step,09-http,-bench 'BenchmarkRouteHTTP|BenchmarkRunHTTP/wat-noop' -benchmem -benchtime 10000x ./host/server/)
	$(call bench_step,10-http-summarizer,-bench 'BenchmarkRunHTTP/summarizer' -benchmem -benchtime 2000x ./host/server/)
	$(call bench_step,11-mcp,-bench BenchmarkMCPOverhead -benchtime 2000x ./host/mcp/)
	$(call bench_step,12-sdk,-bench . -benchmem ./sdk/)
	@# Tracing on (always-on sampler, OTLP/HTTP to a local receiver) against
	@# off, alternated in rounds, 32 connections: 2,000 requests each.
	$(call bench_step,13-tracing,-bench 'BenchmarkTracingOverhead|BenchmarkSpanExport' -benchtime 2000x ./host/server/ ./internal/tracing/)
	@# One hop (hall_invoke) against a direct Hall.Run of the same worker, alternated.
	$(call bench_step,14-chain,-bench BenchmarkChainHop -benchtime 1000x ./host/)
	@# Postgres beside SQLite (issue 22), fsync on both: route/run at c=32, once and alternated
	@# in 6 rounds (median ratio), round trips per request, 1 vs 8 tenants, 3 nodes vs 1.
	$(call bench_step,15-postgres,-bench BenchmarkPostgresHTTP -benchtime 2000x ./host/server/)
	$(BIN)/benchreport stamp $(BENCH_DIR)/end.env
	$(BIN)/benchreport report -dir $(BENCH_DIR)

# The README's generated blocks, from the last `make bench` (bin/bench).
bench-readme:
	$(GO) run ./internal/benchreport readme -dir $(BENCH_DIR) -readme docs/PERFORMANCE.md

# The soak test (issue 10), long: hostile workers dispatched from several
# goroutines against the real `hall serve` while a benign tenant keeps
# dispatching, for SOAK_SECONDS; the figures are logged and written to
# bin/soak.json (`make test` runs the same test for 8 s). SOAK_HOSTILE=0
# measures the benign tenant alone.
.PHONY: soak
SOAK_SECONDS ?= 60
SOAK_HOSTILE ?= 8
soak:
	@mkdir -p $(BIN)
	HALL_SOAK_SECONDS=$(SOAK_SECONDS) HALL_SOAK_HOSTILE=$(SOAK_HOSTILE) HALL_SOAK_REPORT=$(CURDIR)/$(BIN)/soak.json \
		$(GO) test -count=1 -run '^TestSoak$$' -v -timeout 30m ./cmd/hall

# Every fuzz target of the module (each `func Fuzz...` in a _test.go
# file, found here, so a new one is never missed) runs for FUZZTIME, one
# at a time (go test allows one -fuzz target per run).
fuzz:
	@targets=$$(grep -rHo '^func Fuzz[A-Za-z0-9_]*' --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.git .); \
	targets=$$(echo "$$targets" | sed -E 's|^(\./)?(.*)/[^/]*:func (Fuzz.*)$$|\2:\3|' | sort -u); \
	n=$$(echo "$$targets" | wc -l); echo "$$n fuzz targets"; \
	for t in $$targets; do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; \
	done

# First-party worker plugins, built with the standard Go toolchain.
plugins:
	@mkdir -p $(BIN)/plugins
	@for p in $(PLUGINS); do \
		echo "building plugins/$$p -> $(BIN)/plugins/$$p.wasm"; \
		GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $(BIN)/plugins/$$p.wasm ./plugins/$$p || exit 1; \
	done

# End to end on the embedded defaults, in a scratch Hall (bin/demo): build
# the summarizer worker with `hall build` (record embedded; the source tree
# is left as it is), enroll it (stored by digest, compiled, record written),
# route a request, run it on the quick start's document inside the sandbox,
# list the evidence receipt and verify the receipt chain. Each command is
# echoed exactly as it is run. Then the research pipeline in bin/demo/research.
DEMO := bin/demo
DEMO_STEPS := \
	"hall build ../../plugins/summarizer --no-input" \
	"hall enroll summarizer.wasm" \
	"hall route --capability cap.doc.summarize --tenant org.acme" \
	"hall run cap.doc.summarize --tenant org.acme < document.txt" \
	"hall receipts" \
	"hall audit verify"
demo: build
	@rm -rf $(DEMO) && mkdir -p $(DEMO) && cp examples/quickstart/rules.json examples/quickstart/document.txt $(DEMO)/
	@cd $(DEMO) && export PATH="$(CURDIR)/$(BIN):$$PATH" && for step in $(DEMO_STEPS); do \
		echo "\$$ $$step"; eval "$$step" || exit 1; \
	done
	@# The research pipeline (issue 23): one governed chain of six workers
	@# against a local web site (examples/research/demo.sh).
	@mkdir -p $(DEMO)/research && cd $(DEMO)/research && PATH="$(CURDIR)/$(BIN):$$PATH" sh $(CURDIR)/examples/research/demo.sh $(CURDIR)

clean:
	rm -rf $(BIN)
