# helpwatch: build, test, evaluate and benchmark.
# `make test` is the test command of the README and CI; `make eval` runs the quality gates on
# ../shared/data (skipped with a message when that folder is absent).

GO      ?= go
BIN     ?= bin/helpwatch
DATA    ?= ../shared/data
FUZZTIME ?= 20s

.PHONY: all build test test-postgres eval bench fuzz lint clean

all: lint test build

build:
	$(GO) build -o $(BIN) ./cmd/helpwatch

test:
	$(GO) test -count=1 -timeout 5m ./...

# The packages that use a store, once more with every store on PostgreSQL (HELPWATCH_TEST_PG;
# `make test` already runs the store's own behaviour tests and the team tests on it).
test-postgres:
	HELPWATCH_STORE_BACKEND=postgres $(GO) test -count=1 -timeout 5m ./watcher/pipeline/ ./watcher/queue/ \
		./watcher/enrich/ ./watcher/site/ ./watcher/report/ ./watcher/abuse/ ./watcher/console/ ./watcher/notify/ ./watcher/export/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

eval: build
	@BIN=$(BIN) DATA=$(DATA) sh .ci/eval

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./rules/ ./watcher/... ./cmd/...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzNormalize$$' -fuzztime $(FUZZTIME) ./rules/
	$(GO) test -run '^$$' -fuzz '^FuzzScore$$' -fuzztime $(FUZZTIME) ./rules/
	$(GO) test -run '^$$' -fuzz '^FuzzParseRules$$' -fuzztime $(FUZZTIME) ./rules/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMessage$$' -fuzztime $(FUZZTIME) ./watcher/source/
	$(GO) test -run '^$$' -fuzz '^FuzzParseMerkleTreeLeaf$$' -fuzztime $(FUZZTIME) ./watcher/source/ctlog/
	$(GO) test -run '^$$' -fuzz '^FuzzReadSqueezed$$' -fuzztime $(FUZZTIME) ./watcher/site/
	$(GO) test -run '^$$' -fuzz '^FuzzCutTileLeaf$$' -fuzztime $(FUZZTIME) ./watcher/source/ctlog/
	$(GO) test -run '^$$' -fuzz '^FuzzAnalyze$$' -fuzztime $(FUZZTIME) ./watcher/site/
	$(GO) test -run '^$$' -fuzz '^FuzzWHOISText$$' -fuzztime $(FUZZTIME) ./watcher/enrich/
	$(GO) test -run '^$$' -fuzz '^FuzzWHOISReferral$$' -fuzztime $(FUZZTIME) ./watcher/enrich/

clean:
	rm -rf bin
