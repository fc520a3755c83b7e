#!/usr/bin/env bash
# Runs make targets one after another and says how long each took, also when one fails, so the
# README's figures for `make test` come from the run itself.
# Usage: scripts/stages.sh TARGET...
set -uo pipefail
times=()
report() {
  printf '[stages] %s\n' "${times[@]}" >&2
  printf '[stages] total %d s\n' "$SECONDS" >&2
}
for target in "$@"; do
  start=$SECONDS
  "${MAKE:-make}" --no-print-directory "$target"
  status=$?
  times+=("$target $((SECONDS - start)) s")
  if [ "$status" -ne 0 ]; then
    times+=("($target failed)")
    report
    exit "$status"
  fi
done
report
