# Engram. `make run` starts the whole local stack; `make test` runs every test against real
# NATS JetStream (embedded per test) and the real local Neo4j (started here when not running).
SHELL := /bin/bash
GO ?= go
GOLANGCI_LINT_VERSION ?= v2.15.0
NEO4J := deploy/neo4j/neo4j.sh
export NEO4J_URI ?= bolt://127.0.0.1:7687
export NEO4J_USER ?= neo4j
export NEO4J_PASSWORD ?= engram-dev-password
TEST_TIMEOUT ?= 40m

.PHONY: all build test test-go check fmt-check vet lint fuzz run demo bench neo4j-build neo4j-start neo4j-stop neo4j-status clean

all: build

build:
	$(GO) build ./...

## test: gofmt, vet, then every test against real servers (starts Neo4j when it is not running)
test: check neo4j-build neo4j-start test-go

test-go:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

check: fmt-check vet

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './var/*'))"; \
	if [[ -n "$$out" ]]; then echo "gofmt: these files need formatting:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## lint: pinned golangci-lint v2 (installed from the Go module proxy). govulncheck is left out: it needs
## the vulnerability database over the network, which this workplace cannot reach.
lint:
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

## fuzz: the fuzz targets of everything that faces the network (HTTP bodies and parameters,
## CloudEvents headers and data, JWTs, tenant tokens), one after another, not part of make test.
## FUZZTIME per target (default 1000000x: a million executions, 2 to 15 min each on 2 cores; or
## e.g. 10m), FUZZ_PARALLEL workers (1: the box stays usable), FUZZ_TARGETS to pick. A failing input
## is written to the package's testdata/fuzz/<Target>/ and becomes a test case of make test.
FUZZTIME ?= 1000000x
FUZZ_PARALLEL ?= 1
FUZZ_TARGETS ?= internal/auth:FuzzAuthorization internal/auth:FuzzJWT internal/query:FuzzQueryParams internal/query:FuzzLogParams \
	internal/events:FuzzToken internal/events:FuzzDecode internal/events:FuzzDecodeCloudEvent \
	internal/events:FuzzEncodeMatchesSDK internal/events:FuzzCheckJSONFast \
	internal/ingest:FuzzDecodeCommand internal/ingest:FuzzDecodeBatch internal/ingest:FuzzHandler internal/stream:FuzzDoor
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; echo "== $$pkg $$name"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s -parallel $(FUZZ_PARALLEL); \
	done

## run: Neo4j, NATS, ingestor, projector and query; Ctrl-C stops everything
run:
	@deploy/run.sh

## bench: load benchmarks (memctl bench, docs/BENCHMARKS.md). Uses a running stack when NATS_URL /
## INGESTOR_URL / QUERY_URL / PROJECTOR_URL are set, else starts what is missing (Neo4j too, and
## stops what it started); BENCH_FLAGS adds flags, e.g. BENCH_FLAGS="-scenarios reads -users 20000".
bench:
	$(GO) build -o bin/memctl ./cmd/memctl
	bin/memctl bench -out docs/BENCHMARKS.md -json var/bench/bench.json $(BENCH_FLAGS)

## demo: the seed scenario against the running stack (start it with make run)
demo:
	$(GO) run ./cmd/memctl demo

# The launcher jar is built even when another Neo4j already answers: tests that need a Neo4j
# of their own (outage, replay into an empty graph) run it.
neo4j-build:
	@$(NEO4J) build

neo4j-start:
	@$(NEO4J) start

neo4j-stop:
	@$(NEO4J) stop

neo4j-status:
	@$(NEO4J) status

clean: neo4j-stop
	rm -rf var deploy/neo4j/target
