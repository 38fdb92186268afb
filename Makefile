# mirrord: build, run, test. `make run` duplexes once on the built-in defaults; `make test` runs
# every test. Both set up what they need first (scripts/setup.sh).

SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
RELEASE_BIN := .build/release/mirrord

.PHONY: all setup build release run test unit-test cli-test clean

all: release

setup:
	@scripts/setup.sh

build: setup
	$(SWIFT) build

# Release build, with a check that our own sources compile without a single warning.
release: setup
	@$(SWIFT) build -c release 2>&1 | tee .build-release.log | grep -E '^(error|warning|.*Sources/.*(error|warning):)' || true
	@! grep -E 'Sources/.*warning:' .build-release.log
	@test -x $(RELEASE_BIN)

# The main job: one duplex of 1 GiB on the built-in defaults, progress on stderr, summary as JSON.
run: release
	$(RELEASE_BIN) --once --json

unit-test: setup
	$(SWIFT) build --build-tests 2>&1 | tee .build-test.log | grep -E 'error|Sources/.*warning:' || true
	@! grep -E '(Sources|Tests)/.*warning:' .build-test.log
	$(SWIFT) test

cli-test: release
	Tests/cli/cli-test.sh $(RELEASE_BIN)

# Every test: unit and end-to-end tests (swift test), then the command line on the release build.
test: unit-test cli-test

clean:
	rm -rf .build .build-*.log
