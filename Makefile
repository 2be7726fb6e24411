# Mynetwork: `make demo` runs a real mesh, `make test` runs every test.
GO      ?= go
BIN     := bin/mynetwork
# Every package but e2e runs under the race detector: most of them start goroutines.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v /e2e)

.PHONY: build test unit e2e lint cross bench bench-mesh soak fuzz demo demo-kernel clean install uninstall check-service

# The version 'mynetwork version' prints: the nearest tag, commits since and
# the commit ("v0.4.0-3-gd9eff1c-dirty"), or the commit alone without tags.
# The commit is given too: Go's build info has none in a git worktree or
# under -buildvcs=false. Outside a git checkout both are left empty.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/mynetwork/mynetwork/internal/buildinfo.Version=$(VERSION) \
           -X github.com/mynetwork/mynetwork/internal/buildinfo.Commit=$(COMMIT)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mynetwork

# Unit tests (race detector on), then the end-to-end tests on network
# namespaces, which need root (MYNETWORK_E2E=1 makes a skip a failure).
test: lint cross check-service unit fuzz e2e

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

cross:
	GOOS=darwin  $(GO) build -o /dev/null ./cmd/mynetwork
	GOOS=windows $(GO) build -o /dev/null ./cmd/mynetwork

unit:
	$(GO) test -count=1 -race $(UNIT_PKGS)

e2e:
	$(GO) test -count=1 -v -timeout 30m ./e2e/

# Go benchmarks of the packet path (0 allocs/op), the packet stream per
# transport and the userspace stack, then the namespace benchmark's table
# (root).
bench: build
	$(GO) test -run='^$$' -bench=. -benchmem ./internal/engine/ ./p2p/tunnel/ ./netstack/
	$(GO) build -o bin/wgref ./scripts/wgref
	MYNETWORK_BIN=$(BIN) WGREF_BIN=bin/wgref ./scripts/bench.sh

# Full meshes of 20, 50 and 100 kernel-mode nodes in namespaces (root; not
# in CI): time to full mesh, first ping of random pairs, and idle RSS, CPU
# and traffic per node, as a Markdown table. BENCH_MESH_SIZES, BENCH_MESH_IDLE
# and the rest: see scripts/bench-mesh.sh.
bench-mesh: build
	MYNETWORK_BIN=$(BIN) ./scripts/bench-mesh.sh

# Bounded soak, not part of every CI run: 1,000 connect/disconnect cycles of
# a peer; goroutines and heap must come back to their baseline.
soak:
	$(GO) test -tags soak -count=1 -v -run TestSoak -timeout 30m ./p2p/

demo: build
	MYNETWORK_BIN=$(BIN) ./scripts/demo.sh

demo-kernel: build
	MYNETWORK_BIN=$(BIN) ./scripts/demo-kernel.sh

clean:
	rm -rf bin

# The binary and the systemd units (a system template per interface, a user
# template for userspace mode), each unit's ExecStart naming where the binary
# went. The unit folders under /usr/local are on systemd's search path too.
# It installs what make build made, so that sudo make install neither needs
# Go on root's PATH nor leaves root's files in the checkout.
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSTEMDUSERDIR ?= $(PREFIX)/lib/systemd/user

install:
	@test -x $(BIN) || { echo "$(BIN) is missing: run make build first (as yourself, not root)" >&2; exit 1; }
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/mynetwork
	install -d -m 0755 $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSTEMDUSERDIR)
	sed 's|/usr/local/bin/mynetwork|$(BINDIR)/mynetwork|' dist/systemd/mynetwork@.service \
	  >$(DESTDIR)$(SYSTEMDUNITDIR)/mynetwork@.service
	sed 's|/usr/local/bin/mynetwork|$(BINDIR)/mynetwork|' dist/systemd/mynetwork-userspace@.service \
	  >$(DESTDIR)$(SYSTEMDUSERDIR)/mynetwork-userspace@.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/mynetwork@.service $(DESTDIR)$(SYSTEMDUSERDIR)/mynetwork-userspace@.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mynetwork $(DESTDIR)$(SYSTEMDUNITDIR)/mynetwork@.service \
	  $(DESTDIR)$(SYSTEMDUSERDIR)/mynetwork-userspace@.service

# make install into a temporary folder, the units checked by
# systemd-analyze verify where it exists (CI=true: a failure fails), then
# make uninstall.
check-service: build
	./scripts/check-service.sh

# Fuzz each hostile-input target for FUZZTIME, a count of executions by
# default: a time limit fails with "context deadline exceeded" when a busy
# machine starts the fuzz workers slowly. The
# corpus lives in each package's testdata/fuzz, and plain go test runs it.
# FUZZMINTIME caps the minimisation of each new input, which otherwise
# takes up to 60s and stops all fuzzing meanwhile (golang/go#48820).
FUZZTIME    ?= 20000x
FUZZMINTIME ?= 2s
.PHONY: fuzz
fuzz:
	$(GO) test -run=^$$ -fuzz=^FuzzReadFrame$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./p2p/tunnel
	$(GO) test -run=^$$ -fuzz=^FuzzVirtioHdr$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/packet
	$(GO) test -run=^$$ -fuzz=^FuzzReceive$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./p2p/tunnel
	$(GO) test -run=^$$ -fuzz=^FuzzAddrsMessage$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./p2p
	$(GO) test -run=^$$ -fuzz=^FuzzPacketAddrs$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/engine
	$(GO) test -run=^$$ -fuzz=^FuzzEngineInbound$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/engine
	$(GO) test -run=^$$ -fuzz=^FuzzParse$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./config
	$(GO) test -run=^$$ -fuzz=^FuzzSOCKS5Request$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./socks
	$(GO) test -run=^$$ -fuzz=^FuzzControlAPI$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/control
	$(GO) test -run=^$$ -fuzz=^FuzzCertificate$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/member
	$(GO) test -run=^$$ -fuzz=^FuzzRevocation$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/member
	$(GO) test -run=^$$ -fuzz=^FuzzRecords$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/member
	$(GO) test -run=^$$ -fuzz=^FuzzInvitation$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/member
	$(GO) test -run=^$$ -fuzz=^FuzzJoinAnswer$$ -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/membership
