"""The main job's required behaviour end to end: gate verdicts, exit codes and their precedence,
unreachable servers and how pairs share one session, against the fake LLMOps Eval server."""

import socket
import statistics
import time

import pytest

from conftest import (
    auth_requests,
    configure,
    replace_once,
    start_requests,
    status_polls,
    BASE_CONFIG,
    CRASH_MARKERS,
    SECOND_PAIR,
    START_PATH,
)


MATRIX = """\
  - name: matrix
    datasets: [golden-qa, edge-cases]
    endpoints: [gpt-4o-prod, llama-3-canary]
    metrics: [bleu]
"""


def closed_port():
    """Return a loopback port that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_no_crash(result):
    assert result.exit_code >= 0, result
    for marker in CRASH_MARKERS:
        assert marker not in result.stderr, result


def pair(result, label):
    matches = [entry for entry in result.json()["pairs"] if entry["label"] == label]
    assert len(matches) == 1, result.json()["pairs"]
    return matches[0]


def metric(pair_entry, code):
    matches = [entry for entry in pair_entry["metrics"] if entry["code"] == code]
    assert len(matches) == 1, pair_entry["metrics"]
    return matches[0]


# Gate verdicts


def test_threshold_failure_names_pair_and_metric(llmops_server, run_agent):
    server = llmops_server()
    config = configure(tail="gate:\n  thresholds:\n    faithfulness: { min: 0.95 }\n")

    result = run_agent(["run"], config=config, server=server)

    assert result.exit_code == 1, result
    assert "support-bot" in result.stdout
    assert "FAITHFULNESS" in result.stdout
    assert "0.95" in result.stdout
    report = result.file("llmops-report.md")
    assert "support-bot" in report
    assert "FAITHFULNESS" in report
    assert result.json()["verdict"] == "failed"
    assert result.json()["exitCode"] == 1
    faithfulness = metric(pair(result, "support-bot"), "FAITHFULNESS")
    assert faithfulness["outcome"] == "fail"
    assert any("0.95" in reason for reason in faithfulness["reasons"])
    assert metric(pair(result, "support-bot"), "BLEU")["outcome"] == "pass"
    junit = result.file("llmops-junit.xml")
    assert 'failures="1"' in junit
    assert "FAITHFULNESS" in junit
    assert len(start_requests(server)) == 1


def test_failed_evaluation_shows_server_error(llmops_server, run_agent):
    message = "Judge endpoint gpt-4o-judge answered 401 from the provider"
    server = llmops_server({"runs": [{"final_status": "FAILED", "error_message": message}]})

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 3, result
    assert message in result.stdout
    assert message in result.stderr
    assert message in result.file("llmops-report.md")
    entry = pair(result, "support-bot")
    assert entry["state"] == "failed"
    assert message in entry["problem"]
    assert result.json()["exitCode"] == 3
    assert message in result.file("llmops-junit.xml")
    assert len(start_requests(server)) == 1
    results_fetches = [entry for entry in server.requests() if entry["path"].endswith("/results")]
    assert results_fetches == []
    assert_no_crash(result)


def test_null_scores_count_as_no_data(llmops_server, run_agent):
    server = llmops_server({"runs": [{"null_score_cases": 5, "overall_score": None}]})

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    bleu = metric(pair(result, "support-bot"), "BLEU")
    assert bleu["scoredCases"] == 15
    assert bleu["erroredCases"] == 5
    served = server.get("/__fake/runs")[0]["results"]
    scores = [
        score["score"]
        for case in served
        for score in case["scores"]
        if score["metricCode"] == "BLEU" and score["score"] is not None
    ]
    assert len(scores) == 15
    # A null score read as 0 would pull the mean down by a quarter.
    assert bleu["mean"] == pytest.approx(statistics.mean(scores), abs=1e-6)


def test_all_null_scores_fail_as_no_data(llmops_server, run_agent):
    server = llmops_server({"runs": [{"null_score_cases": 20, "overall_score": None}]})

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 1, result
    entry = pair(result, "support-bot")
    assert entry["outcome"] == "no-data"
    assert metric(entry, "FAITHFULNESS")["mean"] is None
    assert metric(entry, "BLEU")["mean"] is None
    assert "no data" in result.stdout


# Exit code precedence: 2, then 1, then 3.


@pytest.mark.parametrize("final_status", ["FAILED", "STUCK"])
def test_gate_failure_wins_over_unfinished_pair(llmops_server, run_agent, final_status):
    server = llmops_server({"runs": [{"match": {"name": "support-bot"}, "final_status": final_status}]})
    config = configure(SECOND_PAIR, timeout_minutes=0.02, tail="gate:\n  thresholds:\n    bleu: { min: 0.95 }\n")

    result = run_agent(["run"], config=config, server=server)

    assert result.exit_code == 1, result
    assert result.json()["verdict"] == "failed"
    assert metric(pair(result, "edge-bot"), "BLEU")["outcome"] == "fail"
    assert pair(result, "support-bot")["state"] in ("failed", "timed-out")
    assert len(start_requests(server)) == 2


def test_unfinished_pair_wins_over_pass(llmops_server, run_agent):
    server = llmops_server({"runs": [{"match": {"name": "support-bot"}, "final_status": "FAILED"}]})

    result = run_agent(["run"], config=configure(SECOND_PAIR), server=server)

    assert result.exit_code == 3, result
    assert pair(result, "edge-bot")["outcome"] == "pass"
    assert pair(result, "support-bot")["state"] == "failed"
    assert len(start_requests(server)) == 2


def test_config_error_wins_and_sends_nothing(llmops_server, run_agent):
    server = llmops_server({"runs": [{"final_status": "FAILED"}]})
    config = configure(tail="gate:\n  thresholds:\n    bleu: { minn: 0.95 }\n")

    result = run_agent(["run"], config=config, server=server)

    assert result.exit_code == 2, result
    assert "minn" in result.stderr
    assert server.requests() == []


# Unreachable servers


def test_unreachable_server_exits_three_quickly(run_agent):
    port = closed_port()
    started = time.monotonic()

    result = run_agent(
        ["run"], config=configure(retry_seconds=1), environment={"LLMOPS_API_URL": f"http://127.0.0.1:{port}"}
    )

    elapsed = time.monotonic() - started
    assert result.exit_code == 3, result
    assert elapsed < 10, f"took {elapsed:.1f} s"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result
    assert lines[0].startswith("error:")
    assert f"127.0.0.1:{port}" in lines[0]
    assert result.stdout == ""
    assert_no_crash(result)


def test_unreachable_server_default_retry_is_bounded(run_agent):
    port = closed_port()
    config = replace_once(BASE_CONFIG, "  retry_seconds: 2\n", "")
    started = time.monotonic()

    result = run_agent(
        ["run"], config=config, environment={"LLMOPS_API_URL": f"http://127.0.0.1:{port}"}, timeout=90
    )

    elapsed = time.monotonic() - started
    assert result.exit_code == 3, result
    assert elapsed < 60, f"took {elapsed:.1f} s"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result
    assert f"127.0.0.1:{port}" in lines[0]
    assert_no_crash(result)


def test_invalid_login_email_exits_two(llmops_server, run_agent):
    server = llmops_server()
    config = replace_once(BASE_CONFIG, "email: ci@example.com", "email: not-an-email")

    result = run_agent(["run"], config=config, server=server)

    assert "email" in result.stderr
    assert start_requests(server) == []
    assert result.exit_code == 2, result


# Several pairs


def test_pairs_share_one_session_renewal(llmops_server, run_agent):
    server = llmops_server(
        {"auth": {"expire_tokens_after_requests": 14}, "runs": [{"polls_before_final": 6}]}
    )

    result = run_agent(["run"], config=configure(MATRIX), server=server)

    assert result.exit_code == 0, result
    assert result.json()["counts"]["pairs"] == 5
    assert len(start_requests(server)) == 5
    events = [entry["event"] for entry in server.get("/__fake/events")]
    assert "tokens_invalidated" in events
    assert len(auth_requests(server, "/api/auth/refresh")) == 1
    assert len(auth_requests(server, "/api/auth/login")) == 1
    rejected = [entry for entry in server.requests() if entry["status"] == 401]
    assert 1 <= len(rejected) <= 5


def test_max_concurrent_runs_one_at_a_time(llmops_server, run_agent):
    server = llmops_server({"runs": [{"polls_before_final": 2}]})
    config = configure(MATRIX) + "  max_concurrent: 1\n"

    result = run_agent(["run"], config=config, server=server)

    assert result.exit_code == 0, result
    assert len(start_requests(server)) == 5
    # With one run at a time, each start follows the previous run's last results fetch.
    active = 0
    max_active = 0
    for entry in server.requests():
        if entry["method"] == "POST" and START_PATH.match(entry["path"]):
            active += 1
            max_active = max(max_active, active)
        elif entry["method"] == "GET" and entry["path"].endswith("/results"):
            active -= 1
    assert max_active == 1


def test_polls_stay_bounded(llmops_server, run_agent):
    server = llmops_server({"runs": [{"polls_before_final": 3}]})

    result = run_agent(["run"], config=configure(MATRIX), server=server)

    assert result.exit_code == 0, result
    # Each run ends on its fourth poll, and the bound leaves one more request per pair.
    assert len(status_polls(server)) <= 5 * 4 + 5
    assert len(server.requests()) <= 60
