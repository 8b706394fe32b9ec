#!/usr/bin/env bash
# Cancels on the LLMOps Eval server the runs that a cancelled `llmops-ci run` left behind,
# as recorded in its default state file. Exits 0 when nothing is left to cancel.
set -euo pipefail

binary="${LLMOPS_ACTION_BINARY:?LLMOPS_ACTION_BINARY is not set; the install step did not run}"
state=".llmops-ci/state.json"
if [ ! -f "$state" ]; then
    echo "No $state in $(pwd), so no remote run is left to cancel."
    exit 0
fi
arguments=(cancel --state "$state")
if [ -n "${LLMOPS_ACTION_CONFIG:-}" ]; then
    arguments+=(--config "$LLMOPS_ACTION_CONFIG")
fi
exec "$binary" "${arguments[@]}"
