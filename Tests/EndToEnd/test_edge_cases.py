"""Edge cases a new user met: each must be a clear error or a recorded outcome, never a silent pass."""

import json

from conftest import BASE_CONFIG, PASSWORD


def test_threshold_key_from_variable_duplicates_literal_key(llmops_server, run_agent):
    config = BASE_CONFIG + "gate:\n  thresholds:\n    faithfulness: { min: 0.99 }\n    ${M}: { min: 0.1 }\n"

    result = run_agent(["validate"], config=config, environment={"M": "faithfulness", "LLMOPS_API_URL": "http://127.0.0.1:9"})

    assert result.exit_code == 2, result
    assert "thresholds twice" in result.stderr


def test_credentials_in_server_url_are_rejected(run_agent):
    config = BASE_CONFIG.replace("url: ${LLMOPS_API_URL}", "url: http://ci:${LLMOPS_CI_PASSWORD}@127.0.0.1:9")

    result = run_agent(["validate"], config=config)

    assert result.exit_code == 2, result
    assert "server.url" in result.stderr
    assert "user name or password" in result.stderr
    assert PASSWORD not in result.stderr


def test_validate_checks_pair_cap(run_agent):
    config = BASE_CONFIG.replace("dataset: golden-qa", "datasets: [golden-qa, edge-cases]") + "report:\n  max_pairs: 1\n"

    result = run_agent(["validate"], config=config, environment={"LLMOPS_API_URL": "http://127.0.0.1:9"})

    assert result.exit_code == 2, result
    assert "report.max_pairs" in result.stderr


def test_missing_baseline_file_stops_before_any_run(llmops_server, run_agent):
    server = llmops_server()
    config = BASE_CONFIG + "gate:\n  regression:\n    baseline: file:previous-results.json\n"

    result = run_agent(["run"], config=config, server=server)

    assert result.exit_code == 2, result
    assert "previous-results.json" in result.stderr
    starts = [entry for entry in server.requests() if entry["method"] == "POST" and entry["path"].endswith("/evaluations")]
    assert starts == []


def test_damaged_state_file_is_an_error(run_agent, tmp_path):
    state = tmp_path / "state.json"
    state.write_text("{")

    result = run_agent(["cancel", "--state", str(state)], config=BASE_CONFIG, environment={"LLMOPS_API_URL": "http://127.0.0.1:9"})

    assert result.exit_code == 2, result
    assert "not valid JSON" in result.stderr
    assert "DecodingError" not in result.stderr


def test_missing_state_file_means_nothing_to_cancel(run_agent, tmp_path):
    result = run_agent(["cancel", "--state", str(tmp_path / "absent.json")], config=BASE_CONFIG)

    assert result.exit_code == 0, result


def test_no_command_is_a_usage_error(run_agent):
    result = run_agent([])

    assert result.exit_code == 2, result
    assert "--help" in result.stderr


def test_unreachable_server_records_incomplete_verdict(run_agent, tmp_path):
    summary = tmp_path / "summary.md"
    outputs = tmp_path / "outputs.txt"
    environment = {
        "LLMOPS_API_URL": "http://127.0.0.1:9",
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_API_URL": "http://127.0.0.1:9",
    }
    config = BASE_CONFIG.replace("retry_seconds: 2", "retry_seconds: 0")

    result = run_agent(["run"], config=config, environment=environment)

    assert result.exit_code == 3, result
    assert "could not finish" in summary.read_text()
    assert "verdict=incomplete" in outputs.read_text()
    assert PASSWORD not in summary.read_text()


def test_state_file_lists_every_started_run(llmops_server, run_agent):
    server = llmops_server({"runs": [{"match": {"name": "support-bot"}, "final_status": "STUCK"}]})
    config = (
        BASE_CONFIG.replace("dataset: golden-qa", "datasets: [golden-qa, edge-cases]")
        .replace("endpoint: gpt-4o-prod", "endpoints: [gpt-4o-prod, llama-3-canary]")
        .replace("timeout_minutes: 1", "timeout_minutes: 0.01")
    )

    result = run_agent(["run", "--state", "state.json"], config=config, server=server)

    assert result.exit_code == 3, result
    cancelled = [run for run in server.get("/__fake/runs") if run["status"] == "CANCELLED"]
    assert len(cancelled) == 4
    assert json.loads(result.file("state.json"))["runs"] == []
