#!/usr/bin/env bash
# Starts `llmops-ci run` with the action's inputs. The step runs this script with exec and
# the script execs llmops-ci, so the binary is the step's process and receives the runner's
# SIGINT when the job is cancelled.
set -euo pipefail

binary="${LLMOPS_ACTION_BINARY:?LLMOPS_ACTION_BINARY is not set; the install step did not run}"
arguments=(run)
if [ -n "${LLMOPS_ACTION_CONFIG:-}" ]; then
    arguments+=(--config "$LLMOPS_ACTION_CONFIG")
fi
if [ -n "${LLMOPS_ACTION_COMMENT:-}" ]; then
    arguments+=(--comment "$LLMOPS_ACTION_COMMENT")
fi
case "${LLMOPS_ACTION_FRESH:-false}" in
    true) arguments+=(--fresh) ;;
    false | "") ;;
    *)
        echo "::error title=llmops-ci::invalid fresh input '$LLMOPS_ACTION_FRESH': expected true or false"
        exit 2
        ;;
esac
if [ -n "${LLMOPS_ACTION_ARGS:-}" ]; then
    # read splits at spaces, tabs and newlines and expands no globs or variables.
    read -r -d '' -a extra_arguments <<<"$LLMOPS_ACTION_ARGS" || true
    arguments+=("${extra_arguments[@]}")
fi
exec "$binary" "${arguments[@]}"
