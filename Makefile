# Portcullis build, test and CI entry points. `make help` lists the targets.

# Trivy (a later dependency) imports encoding/json/v2: every go command that
# compiles it needs this experiment. GOTOOLCHAIN=local: a dependency that needs
# a newer Go fails instead of downloading a toolchain.
export GOEXPERIMENT := jsonv2
export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

# The versioned tools cache shared with .ci/tools.sh.
export PORTCULLIS_TOOLS ?= $(HOME)/.cache/portcullis/tools-v1
TOOLS_BIN := $(PORTCULLIS_TOOLS)/bin

GO ?= go
FUZZTIME ?= 10s
ADDR ?= 127.0.0.1:5000
WEBHOOK_ADDR ?= 127.0.0.1:8443
DATA ?= ./portcullis-data

# phase NAME: a banner so `make test` output shows where it is.
phase = @printf '\n==> %s\n' "$(1)"

.PHONY: help build run demo tools test vet unit conformance fuzz bench lint clean

help:
	@echo 'targets:'
	@echo '  build        bin/portcullis'
	@echo '  run          build, then serve on $(ADDR) with data in $(DATA)'
	@echo '  demo         the README worked example end to end (docs/demo.sh): sign, deny, promote, verify, admit, audit'
	@echo '  tools        install the pinned test tools into $(TOOLS_BIN)'
	@echo '  test         tools, lint, go test -race, conformance'
	@echo '  vet, unit    one phase of test'
	@echo '  conformance  OCI distribution-spec conformance against bin/portcullis'
	@echo '  fuzz         every Fuzz target for FUZZTIME (default $(FUZZTIME))'
	@echo '  bench        portcullis vs the distribution registry, side by side'
	@echo '  lint         gofmt -l, go vet, go mod tidy -diff: each must find nothing'

build:
	$(call phase,build: bin/portcullis)
	$(GO) build -buildvcs=auto -o bin/portcullis ./cmd/portcullis

CONFIG ?=

run: build
	@printf '%s\n' \
	  "Portcullis: registry on http://$(ADDR); staging/* is free, prod/* is written only through the gate." \
	  "Promote a signed image (cosign v2 or v3, crane; the README worked example, which make demo runs):" \
	  "  cosign generate-key-pair                                   # cosign.key, cosign.pub" \
	  "  printf 'trust:\n  authorities:\n    - name: demo\n      keys: [cosign.pub]\n' > portcullis.yaml" \
	  "  make run CONFIG=portcullis.yaml                            # restart with the key trusted" \
	  "  IMG=\$$(crane append -f layer.tar -t $(ADDR)/staging/demo:1)" \
	  "  cosign sign --key cosign.key --tlog-upload=false --yes \$$IMG   # v3: add --use-signing-config=false" \
	  "  crane copy \$$IMG $(ADDR)/prod/demo:1                       # allowed; unsigned images are DENIED" \
	  "  portcullis verify --key cosign.pub $(ADDR)/prod/demo:1" \
	  "Admission webhook on https://$(WEBHOOK_ADDR) (/validate, /mutate; CA in $(DATA)/webhook/ca.crt; docs/webhook.md)." \
	  "  UNAUTHENTICATED (local mode, --webhook-insecure-no-auth): anyone on this host is answered. In a cluster set" \
	  "  webhook.auth.clientCAFile (the API server's client certificate) or webhook.auth.tokenFile." \
	  ""
	bin/portcullis serve --addr $(ADDR) --webhook-addr $(WEBHOOK_ADDR) --webhook-insecure-no-auth --data $(DATA) $(if $(CONFIG),--config $(CONFIG))

# demo: a fresh server on free ports with its data in a temporary directory,
# the pinned crane and cosign v3; stops at the first step that fails.
demo: tools build
	$(call phase,demo: docs/demo.sh)
	PATH="$(TOOLS_BIN):$$PATH" PORTCULLIS=bin/portcullis docs/demo.sh

# The scanner tests build a Go program against these golang.org/x/text
# versions offline (GOPROXY=off): fetch them into the module cache first.
TEST_MODULES := golang.org/x/text@v0.32.0 golang.org/x/text@v0.38.0

tools:
	$(call phase,tools)
	.ci/tools.sh
	$(GO) mod download $(TEST_MODULES)

GO_TEST = PATH="$(TOOLS_BIN):$$PATH" $(GO) test -race -count=1 -timeout 30m ./...

# test runs every phase in order; make test re-running tools is a no-op when
# the cache is complete.
test: tools
	$(MAKE) --no-print-directory lint
	$(call phase,tests: go test -race ./...)
	$(GO_TEST)
	$(MAKE) --no-print-directory conformance
	@printf '\n==> test: all phases passed\n'

vet:
	$(call phase,vet: go vet ./...)
	$(GO) vet ./...

unit: tools
	$(call phase,tests: go test -race ./...)
	$(GO_TEST)

conformance: build
	$(call phase,conformance: OCI distribution-spec 1.1)
	PORTCULLIS_BIN=bin/portcullis .ci/conformance.sh

fuzz:
	$(call phase,fuzz: each target for $(FUZZTIME))
	FUZZTIME=$(FUZZTIME) .ci/fuzz.sh

bench: build
	$(call phase,bench: portcullis vs distribution)
	PORTCULLIS_BIN=bin/portcullis .ci/bench.sh

# lint fails on the first finding: gofmt on every .go file in the tree,
# committed or not (testdata is left alone), go vet, and a go.mod/go.sum
# that `go mod tidy` would change.
lint:
	$(call phase,lint: gofmt -l + go vet + go mod tidy -diff)
	@out=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -print0 | xargs -0 -r gofmt -l); \
	if [[ -n $$out ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi; echo "gofmt: clean"
	$(GO) vet ./...
	@echo "go vet: clean"
	@if ! $(GO) mod tidy -diff; then echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; fi; echo "go mod tidy: clean"

clean:
	rm -rf bin conformance-results
