"""Transport, auth and lifecycle faults end to end: each fault of the fake LLMOps Eval
server against the real binary, checking the exit code, the message, and that no run
is started twice and the request count stays bounded."""

import json
import os
import subprocess
import time
import xml.etree.ElementTree as ElementTree

import pytest

from conftest import (
    auth_requests,
    binary_path,
    configure,
    start_requests,
    status_polls,
    BASE_CONFIG,
    CRASH_MARKERS,
    PASSWORD,
    SECOND_PAIR,
)

# Fault path patterns, searched by the fake in the request path.
RUN_PATTERN = "^/api/evaluations/[^/]+$"
RESULTS_PATTERN = "^/api/evaluations/[^/]+/results$"
START_PATTERN = "^/api/projects/[^/]+/evaluations$"


def results_fetches(server):
    return [entry for entry in server.requests() if entry["method"] == "GET" and entry["path"].endswith("/results")]


def applied_faults(server):
    return [entry for entry in server.get("/__fake/events") if entry["event"] == "fault_applied"]


def server_runs(server):
    return server.get("/__fake/runs")


def assert_no_crash(result):
    assert result.exit_code >= 0, result
    for marker in CRASH_MARKERS:
        assert marker not in result.stderr, result


def assert_one_run_started(server):
    runs = server_runs(server)
    assert len(runs) == 1, [(run["name"], run["status"]) for run in runs]


def pair(result, label):
    matches = [entry for entry in result.json()["pairs"] if entry["label"] == label]
    assert len(matches) == 1, result.json()["pairs"]
    return matches[0]


def timed_run(run_agent, arguments, **options):
    started = time.monotonic()
    result = run_agent(arguments, **options)
    return result, time.monotonic() - started


# Sessions


def test_unauthorized_mid_poll_refreshes_once(llmops_server, run_agent):
    server = llmops_server({"auth": {"expire_tokens_after_requests": 8}, "runs": [{"polls_before_final": 4}]})

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    events = [entry["event"] for entry in server.get("/__fake/events")]
    assert "tokens_invalidated" in events
    assert "logout_all_sessions" not in events
    assert len(auth_requests(server, "/api/auth/refresh")) == 1
    assert len(auth_requests(server, "/api/auth/login")) == 1
    assert len([entry for entry in server.requests() if entry["status"] == 401]) == 1
    assert len(start_requests(server)) == 1
    assert_one_run_started(server)


def test_revoked_refresh_token_logs_in_again(llmops_server, run_agent):
    server = llmops_server(
        {
            "auth": {"expire_tokens_after_requests": 8, "revoke_refresh_tokens": True},
            "runs": [{"polls_before_final": 4}],
        }
    )

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert len(auth_requests(server, "/api/auth/refresh")) == 1
    assert len(auth_requests(server, "/api/auth/login")) == 2
    assert len(start_requests(server)) == 1
    assert_one_run_started(server)


def test_short_token_lifetime_is_renewed(llmops_server, run_agent):
    server = llmops_server({"auth": {"token_ttl_seconds": 1}, "runs": [{"complete_after_seconds": 2.5}]})

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    renewals = len(auth_requests(server, "/api/auth/refresh")) + len(auth_requests(server, "/api/auth/login")) - 1
    assert renewals >= 1
    authenticated = [entry for entry in server.requests() if not entry["path"].startswith("/api/auth/")]
    # A token that lasts one second may need a renewal before every request, but never more.
    assert renewals <= len(authenticated) + 1
    assert len(start_requests(server)) == 1
    assert_one_run_started(server)


# Transient statuses and broken connections


def test_rate_limit_waits_for_retry_after(llmops_server, run_agent):
    fault = {"method": "GET", "path_regex": RUN_PATTERN, "kind": "status", "status": 429, "retry_after": 3, "times": 1}
    server = llmops_server({"faults": [fault]})

    result, elapsed = timed_run(run_agent, ["run"], config=configure(retry_seconds=5), server=server)

    assert result.exit_code == 0, result
    statuses = [entry["status"] for entry in status_polls(server)]
    assert statuses[:2] == [429, 200]
    assert len(statuses) <= 3
    assert len(start_requests(server)) == 1
    # Without the fault the job takes about 0.1 s and the agent's own first backoff is at most
    # 1 s, so only a wait for Retry-After makes the job last 3 s.
    assert elapsed >= 2.9, f"took {elapsed:.2f} s"
    assert elapsed < 6, f"took {elapsed:.2f} s"


def test_rate_limit_is_retried(llmops_server, run_agent):
    server = llmops_server(
        {"faults": [{"method": "GET", "path_regex": RUN_PATTERN, "kind": "status", "status": 429, "times": 1}]}
    )

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert [entry["status"] for entry in status_polls(server)][:2] == [429, 200]
    assert len(status_polls(server)) <= 3
    assert len(start_requests(server)) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_gateway_error_on_status_is_retried(llmops_server, run_agent, status):
    server = llmops_server(
        {"faults": [{"method": "GET", "path_regex": RUN_PATTERN, "kind": "status", "status": status, "times": 1}]}
    )

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert len(applied_faults(server)) == 1
    assert [entry["status"] for entry in status_polls(server)][:2] == [status, 200]
    assert len(status_polls(server)) <= 4
    assert len(start_requests(server)) == 1


def test_unavailable_results_page_is_retried(llmops_server, run_agent):
    server = llmops_server(
        {"faults": [{"method": "GET", "path_regex": RESULTS_PATTERN, "kind": "status", "status": 503, "times": 1}]}
    )

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert len(result.json()["pairs"][0]["cases"]) == 20
    assert len(results_fetches(server)) == 2
    assert len(start_requests(server)) == 1


def test_connection_reset_is_retried(llmops_server, run_agent):
    server = llmops_server({"faults": [{"method": "GET", "path_regex": RUN_PATTERN, "kind": "reset", "times": 1}]})

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert len(applied_faults(server)) == 1
    assert len(status_polls(server)) <= 4
    assert len(start_requests(server)) == 1
    assert_no_crash(result)


def test_slow_response_is_retried(llmops_server, run_agent):
    server = llmops_server(
        {"faults": [{"method": "GET", "path_regex": RUN_PATTERN, "kind": "delay", "delay_seconds": 2.5, "times": 1}]}
    )

    result, elapsed = timed_run(run_agent, ["run"], config=configure(request_timeout=1), server=server)

    assert result.exit_code == 0, result
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert len(applied_faults(server)) == 1
    assert len(start_requests(server)) == 1


def test_server_slower_than_timeout_gives_up(llmops_server, run_agent):
    server = llmops_server(
        {"faults": [{"method": "GET", "path_regex": RUN_PATTERN, "kind": "delay", "delay_seconds": 3}]}
    )
    config = configure(retry_seconds=1, request_timeout=1)

    result, elapsed = timed_run(run_agent, ["run"], config=config, server=server)

    assert result.exit_code == 3, result
    assert elapsed < 6, f"took {elapsed:.1f} s"
    assert "GET /api/evaluations/" in result.stderr
    assert "timed out" in result.stderr
    assert "timed out" in result.file("llmops-report.md")
    assert len(applied_faults(server)) <= 3
    assert len(start_requests(server)) == 1
    assert_no_crash(result)


# Bodies the agent cannot use


def test_malformed_json_names_request(llmops_server, run_agent):
    server = llmops_server({"faults": [{"method": "GET", "path_regex": RUN_PATTERN, "kind": "malformed_json"}]})

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 3, result
    run_id = server_runs(server)[0]["id"]
    assert f"GET /api/evaluations/{run_id}" in result.stderr
    assert "not JSON" in result.stderr
    assert "not JSON" in result.file("llmops-report.md")
    assert len(applied_faults(server)) <= 3
    assert len(start_requests(server)) == 1
    assert_no_crash(result)


def test_html_error_page_names_request(llmops_server, run_agent):
    server = llmops_server({"faults": [{"method": "GET", "path_regex": RUN_PATTERN, "kind": "html"}]})

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 3, result
    run_id = server_runs(server)[0]["id"]
    assert f"GET /api/evaluations/{run_id}" in result.stderr
    assert "HTML" in result.stderr
    assert "502" in result.stderr
    assert "<html>" not in result.stderr
    assert "HTML" in result.file("llmops-report.md")
    assert len(applied_faults(server)) <= 4
    assert len(start_requests(server)) == 1
    assert_no_crash(result)


def test_success_false_shows_server_message(llmops_server, run_agent):
    message = "Evaluation engine is in maintenance mode"
    server = llmops_server(
        {"faults": [{"method": "GET", "path_regex": RUN_PATTERN, "kind": "success_false", "message": message}]}
    )

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 3, result
    assert message in result.stderr
    assert message in result.stdout
    assert message in pair(result, "support-bot")["problem"]
    assert len(applied_faults(server)) <= 3
    assert len(start_requests(server)) == 1
    assert_no_crash(result)


def test_abandoned_run_cancel_names_cause(llmops_server, run_agent):
    server = llmops_server({"faults": [{"method": "GET", "path_regex": RUN_PATTERN, "kind": "malformed_json"}]})

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 3, result
    cancel_lines = [line for line in result.stderr.splitlines() if "Cancelled the run" in line]
    assert len(cancel_lines) == 1, result
    assert "deadline" not in cancel_lines[0]


# Runs that do not end


def test_unknown_status_reported_by_deadline(llmops_server, run_agent):
    server = llmops_server({"runs": [{"final_status": "ARCHIVED"}]})

    result, elapsed = timed_run(run_agent, ["run"], config=configure(timeout_minutes=0.02), server=server)

    assert result.exit_code == 3, result
    assert elapsed < 1.2 + 4, f"took {elapsed:.1f} s"
    assert "ARCHIVED" in result.stderr
    assert "ARCHIVED" in result.stdout
    assert "timed out" in result.stdout
    assert pair(result, "support-bot")["state"] == "timed-out"
    # Polls back off from 0.05 s to 0.2 s with jitter down to half of each delay, so 1.2 s
    # allows about 13 of them. The bound is twice that.
    assert len(status_polls(server)) <= 26
    assert len(start_requests(server)) == 1
    assert_no_crash(result)


def test_stuck_run_is_cancelled_at_deadline(llmops_server, run_agent):
    server = llmops_server({"runs": [{"match": {"name": "support-bot"}, "final_status": "STUCK"}]})
    config = configure(SECOND_PAIR, timeout_minutes=0.02)

    result, elapsed = timed_run(run_agent, ["run"], config=config, server=server)

    assert result.exit_code == 3, result
    assert elapsed < 1.2 + 4, f"took {elapsed:.1f} s"
    statuses = {run["name"]: run["status"] for run in server_runs(server)}
    assert statuses == {"support-bot": "CANCELLED", "edge-bot": "COMPLETED"}
    cancels = [entry for entry in server.requests() if entry["path"].endswith("/cancel")]
    assert len(cancels) == 1
    assert pair(result, "support-bot")["state"] == "timed-out"
    assert pair(result, "edge-bot")["outcome"] == "pass"
    assert "timed out" in result.stdout
    assert "PENDING" in result.stdout
    assert "edge-bot" in result.file("llmops-report.md")
    assert '"runs": []' in result.file(".llmops-ci/state.json")
    assert len(status_polls(server)) <= 26 + 1
    assert len(start_requests(server)) == 2


def test_server_lost_mid_poll_keeps_state(llmops_server, tmp_path):
    server = llmops_server({"runs": [{"final_status": "STUCK"}]})
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "llmops.yml").write_text(configure(retry_seconds=1))
    state_path = folder / ".llmops-ci" / "state.json"
    variables = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "LLMOPS_CI_PASSWORD": PASSWORD,
        "LLMOPS_API_URL": server.url,
    }
    process = subprocess.Popen(
        [binary_path(), "run"],
        cwd=folder,
        env=variables,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (state_path.exists() and '"label"' in state_path.read_text()):
        time.sleep(0.05)
    run_id = server_runs(server)[0]["id"]
    server.stop()
    stopped = time.monotonic()
    stdout, stderr = process.communicate(timeout=60)
    elapsed = time.monotonic() - stopped

    assert process.returncode == 3, stderr
    assert elapsed < 6, f"took {elapsed:.1f} s"
    assert f"GET /api/evaluations/{run_id}" in stderr
    assert "Could not cancel the run" in stderr
    assert run_id in stdout
    # The run could not be cancelled, so a later `llmops-ci cancel` step must still find it.
    assert [entry["id"] for entry in json.loads(state_path.read_text())["runs"]] == [run_id]
    for marker in CRASH_MARKERS:
        assert marker not in stderr


def test_endless_results_are_bounded(llmops_server, run_agent):
    server = llmops_server({"runs": [{"results": "endless"}]})

    result, elapsed = timed_run(run_agent, ["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert 2 <= len(results_fetches(server)) <= 5
    assert "Stopped reading results" in result.stderr
    assert len(start_requests(server)) == 1


# Payloads


LONG_OUTPUT = "長い出力 🚀🔥 " * 20000
ODD_OUTPUTS = [LONG_OUTPUT, "答え：東京 😀 | pipe", "<script>alert(1)</script> `code` **bold**"]


@pytest.mark.parametrize(
    "gate, expected_code",
    [("", 0), ("gate:\n  thresholds:\n    faithfulness: { min: 0.95 }\n", 1)],
    ids=["passing", "failing"],
)
def test_large_non_ascii_outputs_render(llmops_server, run_agent, gate, expected_code):
    server = llmops_server({"runs": [{"case_outputs": ODD_OUTPUTS}]})

    result = run_agent(["run"], config=configure(tail=gate), server=server)

    assert result.exit_code == expected_code, result
    report = result.file("llmops-report.md")
    assert report == result.stdout
    assert "東京 😀" in report
    assert "\\| pipe" in report
    assert "<script>" not in report
    assert "長い出力 🚀🔥" in report
    # Each long output has 160 000 characters, and the report shows only the start of each.
    assert len(report.encode("utf-8")) < 100_000
    outputs = {case["output"] for case in pair(result, "support-bot")["cases"]}
    assert "答え：東京 😀 | pipe" in outputs
    ElementTree.fromstring(result.file("llmops-junit.xml").encode("utf-8"))
    assert len(start_requests(server)) == 1


# Starting a run


@pytest.mark.parametrize(
    "fault",
    [{"kind": "status", "status": 502}, {"kind": "html"}, {"kind": "reset"}],
    ids=["status-502", "html-502", "reset"],
)
def test_failed_start_request_starts_one_run(llmops_server, run_agent, fault):
    server = llmops_server({"faults": [{"method": "POST", "path_regex": START_PATTERN, "times": 1, **fault}]})

    result, elapsed = timed_run(run_agent, ["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert len(start_requests(server)) == 2
    assert_one_run_started(server)
    assert result.json()["pairs"][0]["run"]["id"] == server_runs(server)[0]["id"]


def test_slow_start_request_starts_one_run(llmops_server, run_agent):
    # Runs need two polls, so that the agent's own look at the duplicate does not finish it.
    server = llmops_server(
        {
            "faults": [{"method": "POST", "path_regex": START_PATTERN, "kind": "delay", "delay_seconds": 4, "times": 1}],
            "runs": [{"match": {"name": "support-bot"}, "polls_before_final": 2}],
        }
    )

    result = run_agent(["run"], config=configure(request_timeout=1), server=server)

    assert result.exit_code == 0, result
    # The delayed request is logged once the fake has handled it, after its delay.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(start_requests(server)) < 2:
        time.sleep(0.1)
    live = [run for run in server_runs(server) if run["status"] != "CANCELLED"]
    assert len(live) == 1, [(run["name"], run["status"]) for run in server_runs(server)]


# Policies and page shapes


def test_via_dto_page_shape_works(llmops_server, run_agent):
    server = llmops_server({"page_shape": "via_dto"})

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert len(pair(result, "support-bot")["cases"]) == 20
    assert len(start_requests(server)) == 1


def test_failed_run_warn_policy_exits_zero(llmops_server, run_agent):
    message = "engine worker ran out of memory"
    server = llmops_server({"runs": [{"final_status": "FAILED", "error_message": message}]})

    result = run_agent(["run"], config=configure(tail="gate:\n  failed_run: warn\n"), server=server)

    assert result.exit_code == 0, result
    assert result.json()["verdict"] == "warned"
    assert message in result.stdout
    assert pair(result, "support-bot")["outcome"] == "warn"
    assert len(start_requests(server)) == 1


def test_warn_exit_code_option_applies(llmops_server, run_agent):
    server = llmops_server({"runs": [{"final_status": "FAILED"}]})

    result = run_agent(
        ["run", "--warn-exit-code", "78"], config=configure(tail="gate:\n  failed_run: warn\n"), server=server
    )

    assert result.exit_code == 78, result
    assert result.json()["verdict"] == "warned"
    assert os.path.exists(result.workdir / "llmops-junit.xml")
