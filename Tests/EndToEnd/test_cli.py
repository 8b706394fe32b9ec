"""The command line end to end: commands, options, configuration errors, re-rendering
reports, dry runs, attaching to an earlier attempt's runs, cancelling the runs of a
killed job, and the GitHub Actions outputs."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import (
    binary_path,
    start_requests,
    BASE_CONFIG,
    CRASH_MARKERS,
    FAILING_GATE,
    GITHUB_PUSH,
    PASSWORD,
)


def server_runs(server):
    return server.get("/__fake/runs")


def assert_no_crash(result):
    assert result.exit_code >= 0, result
    for marker in CRASH_MARKERS:
        assert marker not in result.stderr, result


def agent_environment(workdir, server, extra=None):
    """Return the environment run_agent gives the binary, for processes started here."""
    variables = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LLMOPS_CI_PASSWORD": PASSWORD,
        "LLMOPS_API_URL": server.url,
    }
    variables.update(extra or {})
    return variables


def spawn_agent(workdir, arguments, server, extra=None, merge_output=False):
    """Start the binary in the background in `workdir`, which must hold llmops.yml."""
    return subprocess.Popen(
        [binary_path()] + arguments,
        cwd=workdir,
        env=agent_environment(workdir, server, extra),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
        text=True,
    )


def run_in(workdir, arguments, server, extra=None):
    completed = subprocess.run(
        [binary_path()] + arguments,
        cwd=workdir,
        env=agent_environment(workdir, server, extra),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return completed


def wait_for_recorded_run(state_path, timeout=10):
    """Return the run ids in a state file once it lists at least one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            runs = json.loads(state_path.read_text())["runs"]
        except (OSError, ValueError, KeyError):
            runs = []
        if runs:
            return [entry["id"] for entry in runs]
        time.sleep(0.05)
    raise AssertionError(f"no run recorded in {state_path} within {timeout} s")


def new_job_folder(tmp_path, name, config=BASE_CONFIG):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "llmops.yml").write_text(config)
    return folder


# Version, help and usage errors


def test_version_prints_name_and_version(run_agent):
    result = run_agent(["--version"])

    assert result.exit_code == 0, result
    assert re.fullmatch(r"llmops-ci \d+\.\d+\.\d+\S*\n", result.stdout), result.stdout
    assert result.stderr == ""


def test_help_lists_commands(run_agent):
    result = run_agent(["--help"])

    assert result.exit_code == 0, result
    for command in ("run", "validate", "report", "cancel"):
        assert f"llmops-ci {command}" in result.stdout
    assert "Exit codes" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    "arguments, suggestion",
    [
        (["rnu"], "'run'"),
        (["valdate"], "'validate'"),
        (["run", "--dryrun"], "'--dry-run'"),
        (["run", "--formt", "text"], "'--format'"),
        (["report", "--form", "x.json"], "'--from'"),
    ],
    ids=["command", "command-2", "run-option", "run-option-2", "report-option"],
)
def test_mistyped_word_suggests_closest(run_agent, arguments, suggestion):
    result = run_agent(arguments)

    assert result.exit_code == 2, result
    assert f"Did you mean {suggestion}?" in result.stderr
    assert result.stdout == ""


def test_mistyped_global_option_suggests_closest(run_agent):
    result = run_agent(["--versoin"])

    assert result.exit_code == 2, result
    assert "Did you mean '--version'?" in result.stderr


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["run", "--config"], "--config needs a value"),
        (["run", "--format", "html"], "--format takes one of"),
        (["run", "--warn-exit-code", "many"], "--warn-exit-code takes a number"),
        (["report"], "needs --from"),
    ],
    ids=["missing-value", "bad-format", "bad-exit-code", "report-without-from"],
)
def test_bad_arguments_exit_two(run_agent, arguments, message):
    result = run_agent(arguments)

    assert result.exit_code == 2, result
    assert message in result.stderr
    assert result.stdout == ""


# Configuration errors


CONFIG_ERRORS = [
    pytest.param(
        ("  interval_seconds: 0.05", "  intervall_seconds: 0.05"),
        ["polling.intervall_seconds", "Did you mean 'interval_seconds'?"],
        id="unknown-key",
    ),
    pytest.param(
        ("  timeout_minutes: 1", "  timeout_minutes: soon"),
        ["polling.timeout_minutes", "not a number"],
        id="wrong-type",
    ),
    pytest.param(("project: demo\n", "project: demo\nproject: other\n"), ["project", "twice"], id="duplicate-key"),
    pytest.param(
        ("  email: ci@example.com", "   email: ci@example.com"),
        ["email"],
        id="bad-indentation",
    ),
    pytest.param(
        ("${LLMOPS_CI_PASSWORD}", "${LLMOPS_UNSET_SECRET}"),
        ["server.password", "LLMOPS_UNSET_SECRET", "not set"],
        id="unset-variable",
    ),
]


def first_changed_line(before, after):
    """Return the 1-based number of the first line where `after` differs from `before`."""
    for number, (old, new) in enumerate(zip(before.splitlines(), after.splitlines()), start=1):
        if old != new:
            return number
    raise AssertionError("the edit changed no line")


@pytest.mark.parametrize("edit, fragments", CONFIG_ERRORS)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_config_error_names_line_and_key(llmops_server, run_agent, command, edit, fragments):
    server = llmops_server()
    old, new = edit
    assert old in BASE_CONFIG
    config = BASE_CONFIG.replace(old, new, 1)
    line = first_changed_line(BASE_CONFIG, config)

    result = run_agent([command], config=config, server=server)

    assert result.exit_code == 2, result
    assert f"llmops.yml:{line}:" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    lines = [text for text in result.stderr.splitlines() if text.strip()]
    assert len(lines) == 1, result
    assert result.stdout == ""
    assert server.requests() == []
    assert_no_crash(result)


def test_validate_accepts_good_file(llmops_server, run_agent):
    server = llmops_server()

    result = run_agent(["validate"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert "llmops.yml: valid" in result.stdout
    assert server.requests() == []


def test_validate_online_resolves_names(llmops_server, run_agent):
    server = llmops_server()

    good = run_agent(["validate", "--online"], config=BASE_CONFIG, server=server)
    bad = run_agent(["validate", "--online"], config=BASE_CONFIG.replace("bleu]", "bleuu]"), server=server)

    assert good.exit_code == 0, good
    assert bad.exit_code == 2, bad
    assert "BLEUU" in bad.stderr
    assert "Did you mean BLEU?" in bad.stderr
    assert start_requests(server) == []


def test_validate_without_file_exits_two(run_agent):
    result = run_agent(["validate"])

    assert result.exit_code == 2, result
    assert "llmops.yml" in result.stderr
    assert "--config" in result.stderr


# Re-rendering a results file


SCENARIOS = [
    pytest.param(None, "", 0, id="passed"),
    pytest.param(None, FAILING_GATE, 1, id="gate-failed"),
    pytest.param({"runs": [{"final_status": "FAILED", "error_message": "engine crashed"}]}, "", 3, id="run-failed"),
]


@pytest.mark.parametrize("scenario, gate, expected_code", SCENARIOS)
def test_report_renders_results_without_server(llmops_server, run_agent, scenario, gate, expected_code):
    server = llmops_server(scenario)
    first = run_agent(["run"], config=BASE_CONFIG + gate, server=server)
    assert first.exit_code == expected_code, first
    server.stop()
    results_path = str(first.workdir / "llmops-results.json")

    rendered = {}
    for output_format in ("text", "junit", "markdown", "json"):
        result = run_agent(["report", "--from", results_path, "--format", output_format])
        assert result.exit_code == expected_code, (output_format, result)
        assert result.stderr == "", (output_format, result)
        rendered[output_format] = result.stdout

    assert rendered["markdown"] == first.file("llmops-report.md")
    assert rendered["junit"] == first.file("llmops-junit.xml")
    assert json.loads(rendered["json"])["verdict"] == first.json()["verdict"]
    assert "support-bot" in rendered["text"]
    assert first.json()["verdict"] in rendered["text"]


def test_report_rejects_non_json_file(run_agent, tmp_path):
    path = tmp_path / "not-results.json"
    path.write_text("version: 1\n")

    result = run_agent(["report", "--from", str(path)])

    assert result.exit_code == 2, result
    assert "not-results.json" in result.stderr
    assert_no_crash(result)


# Dry run, attaching and --fresh


def test_dry_run_starts_nothing(llmops_server, run_agent):
    server = llmops_server()

    result = run_agent(["run", "--dry-run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert "Dry run" in result.stdout
    assert "support-bot: golden-qa × gpt-4o-prod" in result.stdout
    assert start_requests(server) == []
    assert server_runs(server) == []


def test_second_run_attaches_to_first(llmops_server, run_agent):
    server = llmops_server()

    first = run_agent(["run"], config=BASE_CONFIG, server=server, environment=GITHUB_PUSH)
    second = run_agent(["run"], config=BASE_CONFIG, server=server, environment=GITHUB_PUSH)

    assert first.exit_code == 0, first
    assert second.exit_code == 0, second
    assert len(start_requests(server)) == 1
    assert len(server_runs(server)) == 1
    assert "attached to run #1" in second.stderr
    assert second.json()["pairs"][0]["attached"] is True
    assert second.json()["pairs"][0]["run"]["id"] == first.json()["pairs"][0]["run"]["id"]


def test_fresh_starts_new_run(llmops_server, run_agent):
    server = llmops_server()

    first = run_agent(["run"], config=BASE_CONFIG, server=server, environment=GITHUB_PUSH)
    fresh = run_agent(["run", "--fresh"], config=BASE_CONFIG, server=server, environment=GITHUB_PUSH)

    assert first.exit_code == 0, first
    assert fresh.exit_code == 0, fresh
    assert len(start_requests(server)) == 2
    assert [run["runNumber"] for run in server_runs(server)] == [1, 2]
    assert fresh.json()["pairs"][0]["attached"] is False


def test_other_commit_starts_new_run(llmops_server, run_agent):
    server = llmops_server()

    run_agent(["run"], config=BASE_CONFIG, server=server, environment=GITHUB_PUSH)
    other = run_agent(["run"], config=BASE_CONFIG, server=server, environment={**GITHUB_PUSH, "GITHUB_SHA": "f" * 40})

    assert other.exit_code == 0, other
    assert len(start_requests(server)) == 2
    assert other.json()["pairs"][0]["attached"] is False


def test_rerun_attaches_to_killed_jobs_run(llmops_server, run_agent, tmp_path):
    server = llmops_server({"runs": [{"complete_after_seconds": 1.5}]})
    folder = new_job_folder(tmp_path, "killed")
    process = spawn_agent(folder, ["run"], server, GITHUB_PUSH)
    try:
        run_ids = wait_for_recorded_run(folder / ".llmops-ci" / "state.json")
    finally:
        process.kill()
        process.communicate(timeout=10)

    result = run_agent(["run"], config=BASE_CONFIG, server=server, environment=GITHUB_PUSH)

    assert result.exit_code == 0, result
    assert len(start_requests(server)) == 1
    assert result.json()["pairs"][0]["run"]["id"] == run_ids[0]
    assert result.json()["pairs"][0]["attached"] is True


# Cancelling the runs of a killed job


def test_cancel_state_file_of_killed_job(llmops_server, run_agent, tmp_path):
    server = llmops_server({"runs": [{"final_status": "STUCK"}]})
    folder = new_job_folder(tmp_path, "killed")
    state_path = folder / "custom" / "state.json"
    process = spawn_agent(folder, ["run", "--state", "custom/state.json"], server)
    try:
        run_ids = wait_for_recorded_run(state_path)
    finally:
        process.kill()
        process.communicate(timeout=10)
    assert server_runs(server)[0]["status"] == "PENDING"

    result = run_agent(["cancel", "--state", str(state_path)], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert f"Cancelled run {run_ids[0]}" in result.stdout
    assert server_runs(server)[0]["status"] == "CANCELLED"
    assert json.loads(state_path.read_text())["runs"] == []

    again = run_agent(["cancel", "--state", str(state_path)], config=BASE_CONFIG, server=server)

    assert again.exit_code == 0, again
    assert "No unfinished runs" in again.stdout
    cancels = [entry for entry in server.requests() if entry["path"].endswith("/cancel")]
    assert len(cancels) == 1


def test_cancel_default_state_path(llmops_server, tmp_path):
    server = llmops_server({"runs": [{"final_status": "STUCK"}]})
    folder = new_job_folder(tmp_path, "killed")
    process = spawn_agent(folder, ["run"], server)
    try:
        run_ids = wait_for_recorded_run(folder / ".llmops-ci" / "state.json")
    finally:
        process.kill()
        process.communicate(timeout=10)

    completed = run_in(folder, ["cancel"], server)

    assert completed.returncode == 0, completed.stderr
    assert f"Cancelled run {run_ids[0]}" in completed.stdout
    assert server_runs(server)[0]["status"] == "CANCELLED"


def test_cancel_without_state_file_is_harmless(llmops_server, run_agent):
    server = llmops_server()

    result = run_agent(["cancel", "--state", "missing.json"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert "missing.json" in result.stderr
    assert server.requests() == []


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_cancels_runs(llmops_server, tmp_path, signal_number):
    server = llmops_server({"runs": [{"final_status": "STUCK"}]})
    folder = new_job_folder(tmp_path, "stopped")
    state_path = folder / ".llmops-ci" / "state.json"
    process = spawn_agent(folder, ["run"], server)
    try:
        wait_for_recorded_run(state_path)
        signalled = time.monotonic()
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    elapsed = time.monotonic() - signalled

    for marker in CRASH_MARKERS:
        assert marker not in stderr
    assert process.returncode == 3, stderr
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert server_runs(server)[0]["status"] == "CANCELLED"
    assert json.loads(state_path.read_text())["runs"] == []


# GitHub Actions outputs


def github_files(tmp_path):
    summary = tmp_path / "step-summary.md"
    output = tmp_path / "step-output.txt"
    return summary, output, {**GITHUB_PUSH, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)}


@pytest.mark.parametrize("gate, verdict", [("", "passed"), (FAILING_GATE, "failed")])
def test_github_outputs_and_summary(llmops_server, run_agent, tmp_path, gate, verdict):
    server = llmops_server()
    summary, output, environment = github_files(tmp_path)

    result = run_agent(["run"], config=BASE_CONFIG + gate, server=server, environment=environment)

    assert result.exit_code == (0 if verdict == "passed" else 1), result
    report = result.file("llmops-report.md")
    assert report in summary.read_text()
    outputs = output.read_text().splitlines()
    assert f"verdict={verdict}" in outputs
    assert "pairs=1" in outputs
    assert "results-path=llmops-results.json" in outputs


def test_github_report_inside_stop_commands(llmops_server, run_agent, tmp_path):
    server = llmops_server()
    _, _, environment = github_files(tmp_path)

    result = run_agent(["run"], config=BASE_CONFIG + FAILING_GATE, server=server, environment=environment)

    assert result.exit_code == 1, result
    match = re.search(r"^::stop-commands::(\S+)\n", result.stdout, re.MULTILINE)
    assert match, result.stdout
    token = match.group(1)
    end = result.stdout.index(f"::{token}::\n")
    wrapped = result.stdout[match.end() : end]
    assert wrapped == result.file("llmops-report.md")
    # The annotation must come after the end marker, or the runner would ignore it.
    annotation = result.stdout.index("::error title=LLMOps gate::")
    assert annotation > end
    assert "FAITHFULNESS" in result.stdout[annotation:]


def test_github_masks_password_first(llmops_server, tmp_path):
    server = llmops_server()
    folder = new_job_folder(tmp_path, "masked")
    _, _, environment = github_files(tmp_path)

    process = spawn_agent(folder, ["run"], server, environment, merge_output=True)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 0, output
    assert output.splitlines()[0] == f"::add-mask::{PASSWORD}"
    assert output.count(PASSWORD) == 1


# Verbose logging


def test_verbose_logs_each_request(llmops_server, run_agent):
    server = llmops_server({"runs": [{"polls_before_final": 2}]})

    result = run_agent(["run", "--verbose"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    run_id = server_runs(server)[0]["id"]
    assert "POST /api/projects/" in result.stderr
    assert result.stderr.count(f"GET /api/evaluations/{run_id}") >= 3
