"""Secret hygiene end to end: the password, a token from the environment and the session
tokens the server issues must not appear in stdout, stderr or any file the job writes,
whatever the scenario, with and without --verbose."""

import html
import json
import socket
import urllib.parse

import pytest

from conftest import (
    BASE_CONFIG,
    FAILING_GATE,
    GITHUB_PUSH,
    PASSWORD,
)

RUN_PATTERN = "^/api/evaluations/[^/]+$"
# A value that looks like a secret to the agent only because of its variable's name.
UNUSED_SECRET_NAME = "LLMOPS_WEBHOOK_SECRET"
UNUSED_SECRET = "canary-webhook-7f3e9a"
TOKEN_CONFIG = BASE_CONFIG.replace(
    "  email: ci@example.com\n  password: ${LLMOPS_CI_PASSWORD}\n", "  token: ${LLMOPS_TOKEN}\n"
)


def leak_forms(secret):
    """Return the forms a secret may take after escaping for JSON, HTML, XML or a URL."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
    }
    return {form for form in forms if form}


def issued_tokens(server):
    """Return every access and refresh token the agent sent to the server."""
    tokens = set()
    for entry in server.requests():
        for name, value in entry["headers"].items():
            if name.lower() == "authorization" and value.startswith("Bearer "):
                tokens.add(value[len("Bearer ") :])
        body = entry["body"]
        if isinstance(body, dict) and isinstance(body.get("refreshToken"), str):
            tokens.add(body["refreshToken"])
    return tokens


def log_in_directly(server):
    """Log in as the CI user without the agent and return the access token."""
    response = json.loads(server.post("/api/auth/login", {"email": "ci@example.com", "password": PASSWORD}))
    return response["accessToken"]


def written_files(folder):
    return {str(path): path.read_text(errors="replace") for path in sorted(folder.rglob("*")) if path.is_file()}


def assert_secrets_absent(result, secrets, extra_files=()):
    """Assert that no form of any secret appears in the output or in any file the job wrote."""
    # GitHub's ::add-mask:: line must carry the value itself, but no other line may.
    stdout = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("::add-mask::"))
    places = {"stdout": stdout, "stderr": result.stderr}
    places.update(written_files(result.workdir))
    for path in extra_files:
        places[str(path)] = path.read_text(errors="replace")
    for secret in secrets:
        assert secret, "an empty secret would match everywhere"
        for place, text in places.items():
            for form in leak_forms(secret):
                assert form not in text, f"{secret[:12]}… appears in {place}"
            # Markdown escaping puts backslashes before punctuation, which a plain search misses.
            assert secret not in text.replace("\\", ""), f"{secret[:12]}… appears escaped in {place}"


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SCENARIOS = [
    pytest.param(None, BASE_CONFIG, 0, id="passed"),
    pytest.param(None, BASE_CONFIG + FAILING_GATE, 1, id="gate-failed"),
    pytest.param(
        {"runs": [{"final_status": "FAILED", "error_message": f"provider rejected the key {PASSWORD}"}]},
        BASE_CONFIG,
        3,
        id="failed-run-echoes-password",
    ),
    pytest.param(
        {"runs": [{"case_outputs": [f"the password is {PASSWORD}", f"webhook secret {UNUSED_SECRET}"]}]},
        BASE_CONFIG + FAILING_GATE,
        1,
        id="outputs-echo-secrets",
    ),
    pytest.param(
        {"auth": {"expire_tokens_after_requests": 8}, "runs": [{"polls_before_final": 4}]},
        BASE_CONFIG,
        0,
        id="token-refreshed",
    ),
    pytest.param(
        {
            "auth": {"expire_tokens_after_requests": 8, "revoke_refresh_tokens": True},
            "runs": [{"polls_before_final": 4}],
        },
        BASE_CONFIG,
        0,
        id="logged-in-again",
    ),
    pytest.param(
        {"faults": [{"method": "GET", "path_regex": RUN_PATTERN, "kind": "success_false", "message": PASSWORD}]},
        BASE_CONFIG,
        3,
        id="error-message-echoes-password",
    ),
    pytest.param(
        {"runs": [{"final_status": "STUCK"}]},
        BASE_CONFIG.replace("timeout_minutes: 1", "timeout_minutes: 0.02"),
        3,
        id="stuck-run-cancelled",
    ),
]


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
@pytest.mark.parametrize("scenario, config, expected_code", SCENARIOS)
def test_run_leaks_no_secret(llmops_server, run_agent, scenario, config, expected_code, verbose):
    server = llmops_server(scenario)
    arguments = ["run", "--verbose"] if verbose else ["run"]

    result = run_agent(
        arguments, config=config, server=server, environment={UNUSED_SECRET_NAME: UNUSED_SECRET}
    )

    assert result.exit_code == expected_code, result
    tokens = issued_tokens(server)
    assert tokens, "the agent sent no token, so the check would prove nothing"
    assert_secrets_absent(result, [PASSWORD, UNUSED_SECRET, *tokens])


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_github_outputs_leak_no_secret(llmops_server, run_agent, tmp_path, verbose):
    server = llmops_server({"runs": [{"case_outputs": [f"the password is {PASSWORD}"]}]})
    summary = tmp_path / "step-summary.md"
    output = tmp_path / "step-output.txt"
    environment = {
        **GITHUB_PUSH,
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(output),
        UNUSED_SECRET_NAME: UNUSED_SECRET,
    }
    arguments = ["run", "--verbose"] if verbose else ["run"]

    result = run_agent(arguments, config=BASE_CONFIG + FAILING_GATE, server=server, environment=environment)

    assert result.exit_code == 1, result
    assert summary.read_text()
    assert_secrets_absent(result, [PASSWORD, UNUSED_SECRET, *issued_tokens(server)], [summary, output])


def test_environment_token_leaks_nowhere(llmops_server, run_agent):
    server = llmops_server({"runs": [{"case_outputs": ["an output with no secret"]}]})
    token = log_in_directly(server)

    result = run_agent(
        ["run", "--verbose"], config=TOKEN_CONFIG + FAILING_GATE, server=server, environment={"LLMOPS_TOKEN": token}
    )

    assert result.exit_code == 1, result
    assert token in issued_tokens(server)
    assert_secrets_absent(result, [token, PASSWORD])


def test_rejected_token_leaks_nowhere(llmops_server, run_agent):
    server = llmops_server()
    token = log_in_directly(server)
    forged = token[:-6] + "AAAAAA"

    result = run_agent(["run", "--verbose"], config=TOKEN_CONFIG, server=server, environment={"LLMOPS_TOKEN": forged})

    assert result.exit_code == 2, result
    assert "server.token" in result.stderr
    assert_secrets_absent(result, [forged, token, PASSWORD])


def test_wrong_password_leaks_nowhere(llmops_server, run_agent):
    server = llmops_server()
    wrong = "wrong-" + PASSWORD

    result = run_agent(
        ["run", "--verbose"], config=BASE_CONFIG, server=server, environment={"LLMOPS_CI_PASSWORD": wrong}
    )

    assert result.exit_code == 2, result
    assert "Invalid email or password" in result.stderr
    assert_secrets_absent(result, [wrong])


@pytest.mark.parametrize(
    "edit",
    [
        ("timeout_minutes: 1", "timeout_minutes: ${LLMOPS_CI_PASSWORD}"),
        ("project: demo", "project: ${LLMOPS_CI_PASSWORD}"),
        ("dataset: golden-qa", "dataset: ${LLMOPS_WEBHOOK_SECRET}"),
        ("max_interval_seconds: 0.2", "max_interval_seconds: 0.2\n  max_concurrent: ${LLMOPS_WEBHOOK_SECRET}"),
    ],
    ids=["password-as-number", "password-as-project", "secret-as-dataset", "secret-as-count"],
)
def test_misplaced_secret_is_not_echoed(llmops_server, run_agent, edit):
    server = llmops_server()
    old, new = edit
    assert old in BASE_CONFIG

    result = run_agent(
        ["run", "--verbose"],
        config=BASE_CONFIG.replace(old, new, 1),
        server=server,
        environment={UNUSED_SECRET_NAME: UNUSED_SECRET},
    )

    assert result.exit_code == 2, result
    assert "error:" in result.stderr
    assert_secrets_absent(result, [PASSWORD, UNUSED_SECRET, *issued_tokens(server)])


def test_unreachable_server_leaks_nowhere(run_agent):
    config = BASE_CONFIG.replace("retry_seconds: 2", "retry_seconds: 1")

    result = run_agent(
        ["run", "--verbose"],
        config=config,
        environment={"LLMOPS_API_URL": f"http://127.0.0.1:{closed_port()}", UNUSED_SECRET_NAME: UNUSED_SECRET},
    )

    assert result.exit_code == 3, result
    assert_secrets_absent(result, [PASSWORD, UNUSED_SECRET])


def test_validate_online_leaks_nowhere(llmops_server, run_agent):
    server = llmops_server()

    result = run_agent(["validate", "--online", "--verbose"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert_secrets_absent(result, [PASSWORD, *issued_tokens(server)])


def test_rerendered_report_leaks_nowhere(llmops_server, run_agent):
    server = llmops_server({"runs": [{"case_outputs": [f"the password is {PASSWORD}"]}]})
    first = run_agent(["run"], config=BASE_CONFIG + FAILING_GATE, server=server)
    assert first.exit_code == 1, first
    assert_secrets_absent(first, [PASSWORD, *issued_tokens(server)])
    results_path = str(first.workdir / "llmops-results.json")

    for output_format in ("text", "junit", "markdown", "json"):
        # Without the password in its environment, the report command cannot redact it,
        # so only a clean results file keeps it out of the output.
        result = run_agent(
            ["report", "--from", results_path, "--format", output_format],
            environment={"LLMOPS_CI_PASSWORD": "unrelated-value"},
        )
        assert result.exit_code == 1, result
        assert_secrets_absent(result, [PASSWORD, *issued_tokens(server)])
