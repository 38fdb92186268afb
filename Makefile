# mirrord: build, run, test, install.
#   make run       set up, build (release) and duplex once on the built-in defaults
#   make test      set up and run every test: the lint, unit and end-to-end (swift test), the command
#                  line, the spare on another host (network namespaces), and the service under a
#                  real systemd (systemd-nspawn); needs root
#   make lint      check the sources against .swift-format (swift-format, shipped with the toolchain)
#   make embed-test  build and run Tests/EmbeddingPackage, an outside package that depends on the
#                  library products MirrorCore, MirrorEmulation and MirrorLinux (part of make test)
#   make docs      the API documentation of those three products as DocC archives in .build/docs
#                  (symbol graphs + docc, no plugin); any docc warning fails it
#   make format    rewrite the sources as .swift-format says
#   make fuzz      fuzz the configuration loader, the trace reader and the release log's reader
#                  with libFuzzer (FUZZ_SECONDS each, default 60; findings in .build-fuzz/)
#   make bench     build mirrord-bench (release) and run it: the hot paths against baselines
#                  measured in the same run (BENCH_ARGS="--only harvest --json" passes flags)
#   make man       build the manual pages mirrord(8), mirrorctl(8), mirrord.conf(5)
#   make install   install mirrord and mirrorctl, their man pages and shell completions, unit,
#                  journal catalog and default configuration, and, not active, the proxy for a
#                  spare on another host (mirrord-spare-proxy.socket and .service, and in DOCDIR
#                  mirrord's drop-in for it, systemd/spare-proxy.conf)
#                  and the OCF resource agent ocf:mirrord:mirrord for Pacemaker (OCFDIR)
#                  (PREFIX=/usr/local, DESTDIR= honoured; an existing configuration is kept)
#   make cluster-test  the agent under Corosync + Pacemaker in two systemd-nspawn hosts (root)

SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
# Release builds link the Swift runtime statically, so the installed binary runs on a machine
# without the Swift toolchain.
RELEASE_FLAGS := -c release --static-swift-stdlib
RELEASE_BIN := .build/release/mirrord

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
DOCDIR ?= $(PREFIX)/share/doc/mirrord
UNITDIR ?= /etc/systemd/system
CATALOGDIR ?= /usr/lib/systemd/catalog
CONFDIR ?= /etc/mirrord
COMPLETIONDIR ?= $(PREFIX)/share
MANDIR ?= $(PREFIX)/share/man
# The OCF resource agent ocf:mirrord:mirrord, where Pacemaker looks (not under PREFIX).
OCFDIR ?= /usr/lib/ocf/resource.d

.PHONY: all setup setup-test build release run bench test lint format unit-test embed-test cli-test remote-test systemd-test agent-test cluster-test fuzz \
	man docs install clean

all: release

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh test

build: setup
	$(SWIFT) build

# Release build, with a check that our own sources compile without a single warning.
release: setup
	@$(SWIFT) build $(RELEASE_FLAGS) 2>&1 | tee .build-release.log | grep -E '(^error|error:|Sources/.*warning:)' || true
	@! grep -E 'Sources/.*warning:' .build-release.log
	@test -x $(RELEASE_BIN)

# The main job: one duplex of 1 GiB on the built-in defaults, progress on stderr, summary as JSON.
run: release
	@$(RELEASE_BIN) --once --json

# The bench, its own executable (never installed): built in release like mirrord, static Swift
# runtime included, then run with BENCH_ARGS (e.g. BENCH_ARGS="--only convergence --json").
BENCH_ARGS ?=
BENCH_BIN := .build/release/mirrord-bench
bench: setup
	@$(SWIFT) build $(RELEASE_FLAGS) --product mirrord-bench 2>&1 | tee .build-bench.log | grep -E '(^error|error:|Sources/.*warning:)' || true
	@! grep -E 'Sources/.*warning:' .build-bench.log
	@test -x $(BENCH_BIN)
	$(BENCH_BIN) $(BENCH_ARGS)

# The style check: every Swift file as .swift-format has it (line length 120), no finding.
FORMAT_PATHS := Package.swift Sources Tests Fuzz
lint:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMAT_PATHS)

format:
	$(SWIFT) format --in-place --recursive --parallel $(FORMAT_PATHS)

unit-test: setup-test embed-test
	@$(SWIFT) build --build-tests 2>&1 | tee .build-test.log | grep -E '(^error|error:|(Sources|Tests|Fuzz)/.*warning:)' || true
	@! grep -E '(Sources|Tests|Fuzz)/.*warning:' .build-test.log
	$(SWIFT) test
	.build/debug/mirrord-fuzz configuration Fuzz/corpus/configuration/*
	.build/debug/mirrord-fuzz trace Fuzz/corpus/trace/*
	.build/debug/mirrord-fuzz release-log Fuzz/corpus/release-log/*

# An outside package built against the public API of the three library products only: it tracks an
# emulated machine with uffd (mprotect where uffd cannot run here) and fails unless the harvest
# returns exactly the frames it wrote; it also runs the code of the DocC articles. Its own build
# folder; the root package's `swift test` does not see it (it is no target).
EMBED_SCRATCH := .build-embed
embed-test: setup
	@$(SWIFT) build --package-path Tests/EmbeddingPackage --scratch-path $(EMBED_SCRATCH) 2>&1 | \
	  tee .build-embed.log | grep -E '(^error|error:|warning:)' || true
	@! grep -E '(error:|warning:)' .build-embed.log
	$(EMBED_SCRATCH)/debug/EmbedCheck

cli-test: release
	Tests/cli/cli-test.sh $(RELEASE_BIN)

# The spare on another host, end to end (root: network namespaces): the primary killed at
# random moments and taken over with no released store lost (the primary putting the epochs in
# place, then `mirrord standby` doing it on the backup host); after a takeover, replication the
# other way; link faults survived; nbds:// (TLS
# with certificates) to a TLS-only nbd-server, cleartext refused.
remote-test: release setup-test
	@$(SWIFT) build $(RELEASE_FLAGS) --product mirrord-check 2>&1 | tee .build-check.log | grep -E '(^error|error:)' || true
	@test -x .build/release/mirrord-check
	Tests/remote/host-failure.sh .build/release
	STANDBY=1 ROUNDS=10 Tests/remote/host-failure.sh .build/release
	Tests/remote/reverse.sh .build/release
	Tests/remote/link-faults.sh .build/release
	STANDBY=1 Tests/remote/link-faults.sh .build/release
	Tests/remote/tls.sh .build/release

systemd-test: release setup-test
	Tests/systemd/systemd-test.sh

# The OCF agent's decisions without a cluster (root: its state is in /run): stand-ins for what it
# calls answer as each case says: a promote refused for a newer peer export, the silent and the
# fenced peer, the start anew, the demote that probes nothing after its last epoch committed.
agent-test:
	Tests/cluster/agent-test.sh

# Pacemaker decides who runs (root): two systemd-nspawn hosts with Corosync and Pacemaker, the
# promotable ocf:mirrord:mirrord, fencing by the test's own agent; ocf-tester, then the Promoted
# host killed 5 times: time to CPUs running on the survivor, no released store lost, rejoin; a
# switch-over; the primary's mirrord process killed (the newest epoch taken over, none lost).
cluster-test: release setup-test
	@$(SWIFT) build $(RELEASE_FLAGS) --product mirrord-check 2>&1 | tee .build-check.log | grep -E '(^error|error:)' || true
	@test -x .build/release/mirrord-check
	Tests/cluster/cluster-test.sh .build/release

# Every test: the lint first, then unit and end-to-end tests, the command line, the service
# under real systemd, and the cluster.
test: lint unit-test cli-test remote-test systemd-test agent-test cluster-test

# Coverage-guided fuzzing of the parsers of outside input, each for FUZZ_SECONDS, from the
# seed corpus in Fuzz/corpus (new inputs go to .build-fuzz/, not into the repository). A crash
# stops with the input saved as .build-fuzz/crash-…; make it a regression test.
FUZZ_SECONDS ?= 60
FUZZ_BIN := .build-fuzz/debug/mirrord-fuzz
fuzz: setup
	@mkdir -p .build-fuzz
	@$(SWIFT) build --scratch-path .build-fuzz --product mirrord-fuzz --sanitize=fuzzer --sanitize=address -Xswiftc -DFUZZING \
	  >.build-fuzz/build.log 2>&1 || { grep -E 'error' .build-fuzz/build.log; echo "fuzz: the build failed (.build-fuzz/build.log)"; exit 1; }
	@grep -E 'Build of|Build complete' .build-fuzz/build.log || true
	@for target in configuration trace release-log; do \
	  mkdir -p .build-fuzz/corpus-$$target; \
	  echo "fuzz: $$target for $(FUZZ_SECONDS)s"; \
	  FUZZ_TARGET=$$target $(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 -rss_limit_mb=4096 \
	    -artifact_prefix=.build-fuzz/ -print_final_stats=1 .build-fuzz/corpus-$$target Fuzz/corpus/$$target 2>&1 | \
	    grep -E 'Done|stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY|Test unit written' || exit 1; \
	  test -z "$$(ls .build-fuzz/crash-* .build-fuzz/timeout-* .build-fuzz/oom-* 2>/dev/null)" || exit 1; \
	done

# The API documentation of the library products, without the swift-docc-plugin: a debug build of
# their modules, their public symbol graphs (swift-symbolgraph-extract), then docc convert of each
# catalog into .build/docs/<Module>.doccarchive, failing on any warning (a broken ``link`` in a
# doc comment or an article). Links across modules are written as code voice, not ``links``.
DOC_MODULES := MirrorCore MirrorEmulation MirrorLinux
DOCC ?= $(shell command -v docc 2>/dev/null || echo /opt/swift/usr/bin/docc)
SYMBOLGRAPH_EXTRACT ?= $(shell command -v swift-symbolgraph-extract 2>/dev/null || \
	echo /opt/swift/usr/bin/swift-symbolgraph-extract)
docs: setup
	@for module in $(DOC_MODULES); do $(SWIFT) build --target $$module || exit 1; done
	@bin=$$($(SWIFT) build --show-bin-path) && triple=$$($(SWIFT) -print-target-info | \
	  sed -n 's/.*"triple": "\(.*\)".*/\1/p' | head -1) && rm -rf .build/docs && \
	for module in $(DOC_MODULES); do \
	  mkdir -p .build/docs/symbol-graphs/$$module && \
	  $(SYMBOLGRAPH_EXTRACT) -module-name $$module -target $$triple -I $$bin/Modules \
	    -Xcc -fmodule-map-file=$$bin/CMirrorShims.build/module.modulemap \
	    -Xcc -fmodule-map-file=$$bin/CMirrorLinux.build/module.modulemap \
	    -minimum-access-level public -output-dir .build/docs/symbol-graphs/$$module && \
	  $(DOCC) convert Sources/$$module/$$module.docc \
	    --additional-symbol-graph-dir .build/docs/symbol-graphs/$$module \
	    --output-path .build/docs/$$module.doccarchive --warnings-as-errors || exit 1; \
	  echo "docs: .build/docs/$$module.doccarchive"; \
	done

# mirrord(8), mirrorctl(8) and mirrord.conf(5) into .build/man (checked with mandoc when present).
man: release
	@SWIFT=$(SWIFT) scripts/man.sh .build/man

# A spare on another host is reached through systemd-socket-proxyd (mirrord keeps its sandbox with no
# network): the proxy's units are installed, not enabled, and mirrord's drop-in for them goes to
# DOCDIR, not active, since only a host with such a spare needs them; their comments say how.
install: release man
	install -D -m 0644 .build/man/mirrord.8 $(DESTDIR)$(MANDIR)/man8/mirrord.8
	install -D -m 0644 .build/man/mirrorctl.8 $(DESTDIR)$(MANDIR)/man8/mirrorctl.8
	install -D -m 0644 .build/man/mirrord.conf.5 $(DESTDIR)$(MANDIR)/man5/mirrord.conf.5
	install -D -m 0755 $(RELEASE_BIN) $(DESTDIR)$(BINDIR)/mirrord
	install -D -m 0755 .build/release/mirrorctl $(DESTDIR)$(BINDIR)/mirrorctl
	for tool in mirrord mirrorctl; do \
		install -d $(DESTDIR)$(COMPLETIONDIR)/bash-completion/completions $(DESTDIR)$(COMPLETIONDIR)/zsh/vendor-completions \
			$(DESTDIR)$(COMPLETIONDIR)/fish/vendor_completions.d && \
		.build/release/$$tool --generate-completion-script bash > $(DESTDIR)$(COMPLETIONDIR)/bash-completion/completions/$$tool && \
		.build/release/$$tool --generate-completion-script zsh > $(DESTDIR)$(COMPLETIONDIR)/zsh/vendor-completions/_$$tool && \
		.build/release/$$tool --generate-completion-script fish > $(DESTDIR)$(COMPLETIONDIR)/fish/vendor_completions.d/$$tool.fish \
		|| exit 1; \
	done
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/bin/mirrord|$(BINDIR)/mirrord|' -e 's|/usr/local/share/doc/mirrord|$(DOCDIR)|' \
		systemd/mirrord.service > $(DESTDIR)$(UNITDIR)/mirrord.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mirrord.service
	install -D -m 0644 systemd/mirrord.catalog $(DESTDIR)$(CATALOGDIR)/mirrord.catalog
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	for unit in mirrord-spare-proxy.socket mirrord-spare-proxy.service; do \
		sed -e 's|/usr/local/share/doc/mirrord|$(DOCDIR)|' systemd/$$unit > $(DESTDIR)$(UNITDIR)/$$unit && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit || exit 1; \
	done
	sed -e 's|/usr/local/share/doc/mirrord|$(DOCDIR)|' systemd/spare-proxy.conf > $(DESTDIR)$(DOCDIR)/spare-proxy.conf
	sed -e 's|^OCF_RESKEY_bindir_default=.*|OCF_RESKEY_bindir_default=$(BINDIR)|' ocf/mirrord > .build/ocf-mirrord
	install -D -m 0755 .build/ocf-mirrord $(DESTDIR)$(OCFDIR)/mirrord/mirrord
	chmod 0644 $(DESTDIR)$(DOCDIR)/spare-proxy.conf
	@if [ -e $(DESTDIR)$(CONFDIR)/mirrord.conf ]; then \
		echo "keeping the existing $(DESTDIR)$(CONFDIR)/mirrord.conf (new defaults: config/mirrord.conf)"; \
	else install -D -m 0644 config/mirrord.conf $(DESTDIR)$(CONFDIR)/mirrord.conf; fi
	@if [ -z "$(DESTDIR)" ] && command -v journalctl >/dev/null; then journalctl --update-catalog || true; fi

clean:
	rm -rf .build .build-*.log
