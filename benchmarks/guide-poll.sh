#!/usr/bin/env bash
# The CI recipe of the LLMOps Eval documentation (website/docs/cicd-integration.md in the
# platform's repository): log in, start one evaluation, then read its status every 10 s,
# 30 times at most. Written again here with only the fixes without which it cannot work
# against the real API:
#   - the start body has the required `name`, `evaluationMode` LIVE_GENERATION,
#     `targetLlmEndpointId` in place of `endpointId`, a judge for the judged metric, and
#     metric ids looked up by code in place of lower-case code strings;
#   - the run id and status are read from `.data`, because those responses are wrapped;
#   - CANCELLED stops the loop like FAILED, and running out of tries exits non-zero.
# The request bodies are built with `jq -n` so that no value needs shell quoting.
#
# Environment: LLMOPS_API_URL, LLMOPS_CI_EMAIL, LLMOPS_CI_PASSWORD, PROJECT_ID, DATASET_ID,
# ENDPOINT_ID, JUDGE_ID, RUN_NAME; POLL_SECONDS (default 10) and POLL_TRIES (default 30).
set -u

poll_seconds="${POLL_SECONDS:-10}"
poll_tries="${POLL_TRIES:-30}"

login_body=$(jq -n --arg email "$LLMOPS_CI_EMAIL" --arg password "$LLMOPS_CI_PASSWORD" \
  '{email: $email, password: $password}')
TOKEN=$(curl -s -X POST "$LLMOPS_API_URL/api/auth/login" \
  -H "Content-Type: application/json" \
  -d "$login_body" | jq -r '.accessToken')

METRICS=$(curl -s "$LLMOPS_API_URL/api/projects/$PROJECT_ID/metrics" \
  -H "Authorization: Bearer $TOKEN" \
  | jq -c '[.data[] | select(.code == "FAITHFULNESS" or .code == "BLEU") | {metricId: .id}]')

start_body=$(jq -n --arg name "$RUN_NAME" --arg dataset "$DATASET_ID" --arg endpoint "$ENDPOINT_ID" \
  --arg judge "$JUDGE_ID" --argjson metrics "$METRICS" \
  '{name: $name, datasetId: $dataset, evaluationMode: "LIVE_GENERATION",
    targetLlmEndpointId: $endpoint, judgeLlmEndpointId: $judge, metrics: $metrics}')
RESPONSE=$(curl -s -X POST "$LLMOPS_API_URL/api/projects/$PROJECT_ID/evaluations" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d "$start_body")
EVALUATION_ID=$(echo "$RESPONSE" | jq -r '.data.id')

for i in $(seq 1 "$poll_tries"); do
  STATUS=$(curl -s "$LLMOPS_API_URL/api/evaluations/$EVALUATION_ID" \
    -H "Authorization: Bearer $TOKEN" | jq -r '.data.status')
  echo "Status: $STATUS"
  if [ "$STATUS" = "COMPLETED" ]; then exit 0; fi
  if [ "$STATUS" = "FAILED" ] || [ "$STATUS" = "CANCELLED" ]; then exit 1; fi
  sleep "$poll_seconds"
done
echo "Still $STATUS after $poll_tries polls" >&2
exit 1
