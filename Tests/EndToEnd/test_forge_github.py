"""Publishing to GitHub end to end: the real binary against the fake LLMOps Eval server
and the fake GitHub API, checking every request that reaches GitHub."""

import json
import re
import time

import pytest

from conftest import (
    forge_calls,
    forge_requests,
    start_requests,
    warning_lines,
    BASE_CONFIG,
    PASSWORD,
)

REPOSITORY = "acme/widgets"
FORK_REPOSITORY = "fork-owner/widgets"
HEAD_SHA = "a1" * 20
NEXT_SHA = "b2" * 20
OLD_SHA = "c3" * 20
# On a pull_request event GITHUB_SHA is the test merge commit, never the head.
MERGE_SHA = "d4" * 20
WRITE_TOKEN = "ghs_Wr1teT0kenCanary0123456789abcdef"
READ_TOKEN = "ghs_ReadOnlyT0kenCanary0123456789abc"
COMMENT_KEY = "support-gate"
FIRST_COMMENT_ID = 3000000001
BOT = {"login": "github-actions[bot]", "type": "Bot", "user_id": 41898282}
FAILING_GATE = "gate:\n  thresholds:\n    faithfulness: { min: 0.95 }\n"
MARKER = re.compile(
    r"^<!-- llmops-ci:key=(?P<key>[0-9a-f]{16}) commit=(?P<commit>[0-9a-f]{40}) "
    r"verdict=(?P<verdict>[a-z]+) time=(?P<time>\S+) -->$"
)
PULLS_7 = f"/repos/{REPOSITORY}/pulls/7"
COMMENTS_7 = f"/repos/{REPOSITORY}/issues/7/comments"


def fnv1a64(text):
    """Return the 64-bit FNV-1a hash of `text` as 16 hex digits.

    The marker carries this hash of the comment key. It must stay stable, so that a new
    version of the agent finds the comments that an older one posted.
    """
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value ^= byte
        value = (value * 0x100000001B3) % (1 << 64)
    return f"{value:016x}"


def marker(commit, verdict, key=COMMENT_KEY):
    """Return the first line that the agent writes into its comment for `key`."""
    return f"<!-- llmops-ci:key={fnv1a64(key)} commit={commit} verdict={verdict} time=2024-05-01T10:00:00Z -->"


def our_comment(commit=OLD_SHA, verdict="passed", key=COMMENT_KEY, pr=7, **extra):
    """Return a scenario comment that an earlier job with `key` posted."""
    body = marker(commit, verdict, key) + "\n## ✅ LLMOps evaluation passed\n\nolder report\n"
    return {"pr": pr, "body": body, **BOT, **extra}


def scenario(head=HEAD_SHA, comments=(), **extra):
    """Return a fake GitHub scenario with pull request #7 at `head` and a writing token."""
    pulls = extra.pop("pulls", [{"number": 7, "head_sha": head, "labels": []}])
    tokens = extra.pop("tokens", {WRITE_TOKEN: {"permissions": "write"}})
    return {"repository": REPOSITORY, "tokens": tokens, "pulls": pulls, "comments": list(comments), **extra}


def make_config(report="", failing=False, extra=""):
    """Return BASE_CONFIG with the fixed comment key, more `report` lines and optionally a failing gate."""
    text = BASE_CONFIG + f"report:\n  comment_key: {COMMENT_KEY}\n" + report
    if failing:
        text += FAILING_GATE
    return text + extra


def pull_request_event(head=HEAD_SHA, number=7, fork=False, labels=(), user="octocat"):
    """Return a `pull_request` webhook payload."""
    head_repository = {"full_name": FORK_REPOSITORY, "fork": True} if fork else {"full_name": REPOSITORY, "fork": False}
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "user": {"login": user},
            "labels": [{"name": label} for label in labels],
            "head": {"sha": head, "ref": f"feature-{number}", "repo": head_repository},
            "base": {"sha": OLD_SHA, "ref": "main", "repo": {"full_name": REPOSITORY}},
        },
    }


def github_environment(tmp_path, forge, event_name="pull_request", payload=None, token=WRITE_TOKEN, sha=MERGE_SHA, **extra):
    """Return the variables of a GitHub Actions step, with the event file and step summary under tmp_path/ci."""
    folder = tmp_path / "ci"
    folder.mkdir(exist_ok=True)
    index = len(list(folder.iterdir()))
    event_path = folder / f"event-{index}.json"
    event_path.write_text(json.dumps(payload if payload is not None else pull_request_event()))
    variables = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_API_URL": forge.url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_SHA": sha,
        "GITHUB_WORKFLOW": "evals",
        "GITHUB_JOB": "gate",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_STEP_SUMMARY": str(folder / f"summary-{index}.md"),
    }
    if token is not None:
        variables["GITHUB_TOKEN"] = token
    variables.update(extra)
    return variables


def summary_text(environment):
    with open(environment["GITHUB_STEP_SUMMARY"], encoding="utf-8") as handle:
        return handle.read()


def comments_of(forge, number=7):
    return forge.get(f"/__fake/comments?pr={number}")


def without_mask_commands(text):
    """Drop `::add-mask::` lines: they must carry the secret so that the runner can hide it everywhere else."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("::add-mask::"))


def assert_no_secrets(result, forge, environment=None):
    """Check that no token or password reached a forge request body, the logs or the step summary."""
    secrets = (WRITE_TOKEN, READ_TOKEN, PASSWORD)
    for entry in forge_requests(forge):
        for secret in secrets:
            assert secret not in entry["body"], (entry["method"], entry["path"])
            assert secret not in entry["url"], (entry["method"], entry["path"])
    for secret in secrets:
        assert secret not in without_mask_commands(result.stdout), result
        assert secret not in result.stderr, result
    if environment is not None and "GITHUB_STEP_SUMMARY" in environment:
        try:
            summary = summary_text(environment)
        except FileNotFoundError:
            summary = ""
        for secret in secrets:
            assert secret not in summary


def assert_github_headers(forge, token=WRITE_TOKEN):
    """Check the headers GitHub requires on every request: Bearer token, User-Agent, API version."""
    for entry in forge_requests(forge):
        headers = entry["headers"]
        where = (entry["method"], entry["path"])
        assert headers.get("authorization") == f"Bearer {token}", where
        assert headers.get("user-agent", "").startswith("llmops-ci/"), where
        assert headers.get("x-github-api-version") == "2022-11-28", where
        assert headers.get("accept") == "application/vnd.github+json", where
        if entry["method"] in ("POST", "PATCH"):
            assert headers.get("content-type") == "application/json", where


def first_line(body):
    return body.split("\n", 1)[0]


# First run and updates


def test_first_run_posts_one_comment(llmops_server, forge_server, run_agent, tmp_path):
    llmops = llmops_server()
    forge = forge_server("github", scenario())
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run"], config=BASE_CONFIG, environment=environment, server=llmops)

    assert result.exit_code == 0, result
    assert forge_calls(forge) == [("GET", PULLS_7), ("GET", COMMENTS_7), ("POST", COMMENTS_7), ("GET", COMMENTS_7)]
    assert "Posted the report on pull request #7 of acme/widgets" in result.stderr
    posted = comments_of(forge)
    assert len(posted) == 1
    body = posted[0]["body"]
    fields = MARKER.match(first_line(body))
    assert fields is not None, first_line(body)
    assert fields["commit"] == HEAD_SHA
    assert fields["verdict"] == "passed"
    assert "## ✅ LLMOps evaluation passed" in body
    assert "support-bot" in body
    assert "LLMOps evaluation passed" in summary_text(environment)
    assert_github_headers(forge)
    assert_no_secrets(result, forge, environment)


def test_second_push_updates_comment_in_place(llmops_server, forge_server, run_agent, tmp_path):
    llmops = llmops_server()
    forge = forge_server("github", scenario(head=HEAD_SHA))
    first = run_agent(
        ["run"],
        config=make_config(failing=True),
        environment=github_environment(tmp_path, forge, payload=pull_request_event(head=HEAD_SHA)),
        server=llmops,
    )
    assert first.exit_code == 1, first
    posted = comments_of(forge)
    assert len(posted) == 1
    assert first_line(posted[0]["body"]).startswith(f"<!-- llmops-ci:key={fnv1a64(COMMENT_KEY)} commit={HEAD_SHA} verdict=failed ")
    # The push moves the pull request's head. The comment stays, authored by the bot.
    forge.post("/__fake/scenario", scenario(head=NEXT_SHA, comments=[{"pr": 7, "body": posted[0]["body"], **BOT}]))
    environment = github_environment(tmp_path, forge, payload=pull_request_event(head=NEXT_SHA))

    second = run_agent(["run"], config=make_config(), environment=environment, server=llmops)

    assert second.exit_code == 0, second
    assert forge_calls(forge) == [("GET", PULLS_7), ("GET", COMMENTS_7), ("PATCH", f"/repos/{REPOSITORY}/issues/comments/{FIRST_COMMENT_ID}")]
    assert "Updated the report on pull request #7 of acme/widgets" in second.stderr
    updated = comments_of(forge)
    assert len(updated) == 1
    body = updated[0]["body"]
    fields = MARKER.match(first_line(body))
    assert fields is not None, first_line(body)
    assert fields["commit"] == NEXT_SHA
    assert fields["verdict"] == "passed"
    assert "## ✅ LLMOps evaluation passed" in body
    assert "Earlier verdicts on this pull request" in body
    assert f"`{HEAD_SHA[:12]}` failed" in body
    assert_github_headers(forge)
    assert_no_secrets(second, forge, environment)


def test_marker_on_page_five_is_patched(llmops_server, forge_server, run_agent, tmp_path):
    # 132 earlier comments, ours as number 133, then 2 more: page 5 of 5 at 30 per page.
    comments = [
        {"pr": 7, "count": 132, "body": "review note {i}", "login": "alice"},
        our_comment(),
        {"pr": 7, "count": 2, "body": "later note {i}", "login": "bob"},
    ]
    forge = forge_server("github", scenario(comments=comments, per_page_max=30, link_style="repositories"))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    ours_id = FIRST_COMMENT_ID + 132
    expected = [("GET", PULLS_7), ("GET", COMMENTS_7)]
    expected += [("GET", "/repositories/1296269/issues/7/comments")] * 4
    expected += [("PATCH", f"/repos/{REPOSITORY}/issues/comments/{ours_id}")]
    assert forge_calls(forge) == expected
    pages = [entry["query"].get("page") for entry in forge_requests(forge) if entry["method"] == "GET"][2:]
    assert pages == ["2", "3", "4", "5"]
    stored = comments_of(forge)
    assert len(stored) == 135
    assert [comment["id"] for comment in stored if comment["body"].startswith("<!-- llmops-ci:")] == [ours_id]
    assert first_line(stored[132]["body"]).startswith(f"<!-- llmops-ci:key={fnv1a64(COMMENT_KEY)} commit={HEAD_SHA} verdict=passed ")
    assert stored[0]["body"] == "review note 1"
    assert_no_secrets(result, forge, environment)


def test_other_jobs_comment_left_alone(llmops_server, forge_server, run_agent, tmp_path):
    other = our_comment(key="nightly-gate")
    forge = forge_server("github", scenario(comments=[other]))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    assert forge_calls(forge) == [("GET", PULLS_7), ("GET", COMMENTS_7), ("POST", COMMENTS_7), ("GET", COMMENTS_7)]
    stored = comments_of(forge)
    assert len(stored) == 2
    assert stored[0]["body"] == other["body"]
    assert stored[0]["fake_state"]["minimized"] is False
    assert first_line(stored[1]["body"]).startswith(f"<!-- llmops-ci:key={fnv1a64(COMMENT_KEY)} commit={HEAD_SHA} ")
    assert_no_secrets(result, forge, environment)


def test_human_copy_of_marker_left_alone(llmops_server, forge_server, run_agent, tmp_path):
    # A person pasted our raw comment into theirs, and the agent must not take it over.
    copied = our_comment(login="octocat", type="User", user_id=583231)
    forge = forge_server("github", scenario(comments=[copied]))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    stored = comments_of(forge)
    assert stored[0]["body"] == copied["body"]
    assert [entry for entry in forge_requests(forge) if entry["method"] in ("PATCH", "DELETE")] == []
    assert len(stored) == 2


def test_stale_job_changes_nothing(llmops_server, forge_server, run_agent, tmp_path):
    # This job evaluated HEAD_SHA, but NEXT_SHA was pushed since and its job already posted.
    newer = our_comment(commit=NEXT_SHA)
    forge = forge_server("github", scenario(head=NEXT_SHA, comments=[newer]))
    environment = github_environment(tmp_path, forge, payload=pull_request_event(head=HEAD_SHA))

    result = run_agent(["run"], config=make_config(failing=True), environment=environment, server=llmops_server())

    assert result.exit_code == 1, result
    assert forge_calls(forge) == [("GET", PULLS_7)]
    assert f"commit {HEAD_SHA[:12]} is no longer the head of pull request #7" in result.stderr
    assert comments_of(forge)[0]["body"] == newer["body"]
    assert "LLMOps evaluation failed" in summary_text(environment)
    assert_no_secrets(result, forge, environment)


# Fork pull requests and missing secrets


def fork_scenario(comments=()):
    pulls = [{"number": 7, "head_sha": HEAD_SHA, "head_repo": FORK_REPOSITORY, "labels": []}]
    return scenario(pulls=pulls, comments=comments, tokens={READ_TOKEN: {"permissions": "read"}})


@pytest.mark.parametrize("failing, exit_code", [(False, 0), (True, 1)], ids=["passing", "failing"])
def test_fork_read_only_token_warns_once(llmops_server, forge_server, run_agent, tmp_path, failing, exit_code):
    forge = forge_server("github", fork_scenario())
    environment = github_environment(tmp_path, forge, payload=pull_request_event(fork=True), token=READ_TOKEN)

    result = run_agent(["run"], config=make_config(failing=failing), environment=environment, server=llmops_server())

    assert result.exit_code == exit_code, result
    assert forge_calls(forge) == [("GET", PULLS_7), ("GET", COMMENTS_7), ("POST", COMMENTS_7)]
    assert [entry["status"] for entry in forge_requests(forge)] == [200, 200, 403]
    warnings = warning_lines(result)
    assert len(warnings) == 1, result.stderr
    assert "Resource not accessible by integration" in warnings[0]
    assert "forks" in warnings[0]
    assert "read-only token" in warnings[0]
    verdict = "failed" if failing else "passed"
    assert f"LLMOps evaluation {verdict}" in summary_text(environment)
    assert f"LLMOps evaluation {verdict}" in result.stdout
    assert comments_of(forge) == []
    assert_github_headers(forge, token=READ_TOKEN)
    assert_no_secrets(result, forge, environment)


def config_without_password():
    """Return a configuration whose password variable the fork job does not have."""
    return make_config().replace("${LLMOPS_CI_PASSWORD}", "${LLMOPS_EVAL_PASSWORD}")


def test_fork_without_password_is_skipped(llmops_server, forge_server, run_agent, tmp_path):
    llmops = llmops_server()
    forge = forge_server("github", fork_scenario())
    environment = github_environment(tmp_path, forge, payload=pull_request_event(fork=True), token=READ_TOKEN)

    result = run_agent(["run"], config=config_without_password(), environment=environment, server=llmops)

    assert result.exit_code == 0, result
    assert "a pull request from a fork" in result.stderr
    assert "LLMOPS_EVAL_PASSWORD is not set" in result.stderr
    assert "skipped" in summary_text(environment)
    assert llmops.requests() == []
    assert forge_calls(forge) == []
    assert_no_secrets(result, forge, environment)


def test_fork_without_password_fails_when_configured(llmops_server, forge_server, run_agent, tmp_path):
    llmops = llmops_server()
    forge = forge_server("github", fork_scenario())
    environment = github_environment(tmp_path, forge, payload=pull_request_event(fork=True), token=READ_TOKEN)
    config = config_without_password() + "gate:\n  on_missing_secrets: fail\n"

    result = run_agent(["run"], config=config, environment=environment, server=llmops)

    assert result.exit_code == 2, result
    assert "LLMOPS_EVAL_PASSWORD" in result.stderr
    assert llmops.requests() == []
    assert forge_calls(forge) == []
    assert_no_secrets(result, forge, environment)


def test_fork_with_empty_password_is_skipped(llmops_server, forge_server, run_agent, tmp_path):
    llmops = llmops_server()
    forge = forge_server("github", fork_scenario())
    environment = github_environment(
        tmp_path, forge, payload=pull_request_event(fork=True), token=READ_TOKEN, LLMOPS_CI_PASSWORD=""
    )

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops)

    assert result.exit_code == 0, result
    assert "a pull request from a fork" in result.stderr
    assert start_requests(llmops) == []
    assert forge_calls(forge) == []


def test_dependabot_without_password_is_skipped(llmops_server, forge_server, run_agent, tmp_path):
    llmops = llmops_server()
    forge = forge_server("github", scenario())
    environment = github_environment(
        tmp_path, forge, payload=pull_request_event(user="dependabot[bot]"), GITHUB_ACTOR="dependabot[bot]"
    )

    result = run_agent(["run"], config=config_without_password(), environment=environment, server=llmops)

    assert result.exit_code == 0, result
    assert "a Dependabot pull request" in result.stderr
    assert llmops.requests() == []
    assert forge_calls(forge) == []


# Flaky endpoints and rate limits


@pytest.mark.parametrize("failing, exit_code", [(False, 0), (True, 1)], ids=["passing", "failing"])
def test_flaky_post_warns_and_exits_by_gate(llmops_server, forge_server, run_agent, tmp_path, failing, exit_code):
    faults = [
        {"method": "POST", "path_regex": "/issues/7/comments$", "after": 0, "times": 1, "kind": "empty_body"},
        {"method": "POST", "path_regex": "/issues/7/comments$", "after": 1, "times": 1, "kind": "status", "status": 502},
    ]
    forge = forge_server("github", scenario(faults=faults))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run"], config=make_config(failing=failing), environment=environment, server=llmops_server())

    assert result.exit_code == exit_code, result
    posts = [entry for entry in forge_requests(forge) if entry["method"] == "POST"]
    assert len(posts) == 2
    assert [entry["fault"] for entry in posts] == ["empty_body", "status"]
    # After the lost response the agent looks for the comment before it gives up.
    assert forge_calls(forge)[-1] == ("GET", COMMENTS_7)
    assert len(forge_requests(forge)) <= 6
    warnings = warning_lines(result)
    assert len(warnings) == 1, result.stderr
    assert "Could not post the report comment" in warnings[0]
    verdict = "failed" if failing else "passed"
    assert f"LLMOps evaluation {verdict}" in summary_text(environment)
    assert comments_of(forge) == []
    assert_no_secrets(result, forge, environment)


def test_flaky_comment_list_is_retried(llmops_server, forge_server, run_agent, tmp_path):
    faults = [
        {"method": "GET", "path_regex": "/issues/7/comments$", "after": 0, "times": 1, "kind": "empty_body"},
        {"method": "GET", "path_regex": "/issues/7/comments$", "after": 1, "times": 1, "kind": "status", "status": 502},
    ]
    forge = forge_server("github", scenario(faults=faults))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    assert forge_calls(forge) == [
        ("GET", PULLS_7),
        ("GET", COMMENTS_7),
        ("GET", COMMENTS_7),
        ("GET", COMMENTS_7),
        ("POST", COMMENTS_7),
        ("GET", COMMENTS_7),
    ]
    assert [entry["status"] for entry in forge_requests(forge)] == [200, 200, 502, 200, 201, 200]
    assert warning_lines(result) == []
    assert len(comments_of(forge)) == 1
    assert_no_secrets(result, forge, environment)


def test_lost_post_response_leaves_one_comment(llmops_server, forge_server, run_agent, tmp_path):
    # The first POST creates the comment but its response is empty, so the agent posts again.
    faults = [{"method": "POST", "path_regex": "/issues/7/comments$", "times": 1, "kind": "empty_body", "perform": True}]
    forge = forge_server("github", scenario(faults=faults))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    stored = comments_of(forge)
    assert len(stored) == 1
    fields = MARKER.match(first_line(stored[0]["body"]))
    assert fields is not None
    assert fields["commit"] == HEAD_SHA
    assert warning_lines(result) == []
    assert_no_secrets(result, forge, environment)


def test_secondary_rate_limit_waits_and_retries(llmops_server, forge_server, run_agent, tmp_path):
    faults = [
        {
            "method": "PATCH",
            "path_regex": "/issues/comments/",
            "times": 1,
            "kind": "status",
            "status": 403,
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            "headers": {"Retry-After": "2"},
        }
    ]
    forge = forge_server("github", scenario(comments=[our_comment()], faults=faults))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    patch_path = f"/repos/{REPOSITORY}/issues/comments/{FIRST_COMMENT_ID}"
    assert forge_calls(forge) == [("GET", PULLS_7), ("GET", COMMENTS_7), ("PATCH", patch_path), ("PATCH", patch_path)]
    patches = [entry for entry in forge_requests(forge) if entry["method"] == "PATCH"]
    assert [entry["status"] for entry in patches] == [403, 200]
    waited = patches[1]["time"] - patches[0]["time"]
    assert 1.9 <= waited < 5, waited
    assert "The forge asked to retry later; waiting" in result.stderr
    assert warning_lines(result) == []
    assert f"commit={HEAD_SHA}" in first_line(comments_of(forge)[0]["body"])
    assert_no_secrets(result, forge, environment)


def rate_limit_fault(reset):
    """Return a fault that rejects the first PATCH with an exhausted primary rate limit."""
    return {
        "method": "PATCH",
        "path_regex": "/issues/comments/",
        "times": 1,
        "kind": "status",
        "status": 403,
        "message": "API rate limit exceeded for installation ID 1.",
        "headers": {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    }


def test_primary_rate_limit_waits_for_reset(llmops_server, forge_server, run_agent, tmp_path):
    llmops = llmops_server()
    reset = int(time.time()) + 3
    forge = forge_server("github", scenario(comments=[our_comment()], faults=[rate_limit_fault(reset)]))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops)

    assert result.exit_code == 0, result
    patches = [entry for entry in forge_requests(forge) if entry["method"] == "PATCH"]
    assert [entry["status"] for entry in patches] == [403, 200]
    # The agent waits until the reset time, and at least one second.
    expected = max(1.0, reset - patches[0]["time"])
    waited = patches[1]["time"] - patches[0]["time"]
    assert expected - 0.6 <= waited < expected + 2, (waited, expected)
    assert warning_lines(result) == []


def test_rate_limit_reset_past_deadline_warns(llmops_server, forge_server, run_agent, tmp_path):
    # The limit resets in a day, long after the job's deadline: no wait and no retry.
    # The fault fires once, so a retry would succeed and show up as a second PATCH.
    llmops = llmops_server()
    forge = forge_server("github", scenario(comments=[our_comment()], faults=[rate_limit_fault(int(time.time()) + 86400)]))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run"], config=make_config(failing=True), environment=environment, server=llmops)

    assert result.exit_code == 1, result
    patches = [entry for entry in forge_requests(forge) if entry["method"] == "PATCH"]
    assert len(patches) == 1
    warnings = warning_lines(result)
    assert len(warnings) == 1, result.stderr
    assert "rate limit" in warnings[0]
    assert "LLMOps evaluation failed" in summary_text(environment)
    assert_no_secrets(result, forge, environment)


# Events without a pull request


@pytest.mark.parametrize("event_name", ["merge_group", "workflow_dispatch", "schedule"])
@pytest.mark.parametrize("failing, exit_code", [(False, 0), (True, 1)], ids=["passing", "failing"])
def test_event_without_pull_request_skips_comment(
    llmops_server, forge_server, run_agent, tmp_path, event_name, failing, exit_code
):
    forge = forge_server("github", scenario())
    payloads = {
        "merge_group": {
            "action": "checks_requested",
            "merge_group": {
                "head_sha": NEXT_SHA,
                "head_ref": "refs/heads/gh-readonly-queue/main/pr-7-" + OLD_SHA,
                "base_sha": OLD_SHA,
                "base_ref": "refs/heads/main",
            },
        },
        "workflow_dispatch": {"ref": "refs/heads/main", "inputs": {}},
        "schedule": {"schedule": "0 3 * * *"},
    }
    environment = github_environment(tmp_path, forge, event_name=event_name, payload=payloads[event_name], sha=NEXT_SHA)

    result = run_agent(["run"], config=make_config(failing=failing), environment=environment, server=llmops_server())

    assert result.exit_code == exit_code, result
    assert forge_calls(forge) == []
    assert f"the {event_name} event has no pull request" in result.stderr
    verdict = "failed" if failing else "passed"
    assert f"LLMOps evaluation {verdict}" in summary_text(environment)
    assert result.json()["commit"] == NEXT_SHA
    assert warning_lines(result) == []
    assert_no_secrets(result, forge, environment)


def test_push_finds_pull_request_by_head(llmops_server, forge_server, run_agent, tmp_path):
    # Pull request #5 only contains the commit, and #7 has it as its head.
    pulls = [
        {"number": 5, "head_sha": OLD_SHA, "commits": [HEAD_SHA], "labels": []},
        {"number": 7, "head_sha": HEAD_SHA, "labels": []},
    ]
    forge = forge_server("github", scenario(pulls=pulls))
    payload = {"ref": "refs/heads/feature-7", "before": OLD_SHA, "after": HEAD_SHA}
    environment = github_environment(tmp_path, forge, event_name="push", payload=payload, sha=HEAD_SHA)

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    assert forge_calls(forge) == [
        ("GET", f"/repos/{REPOSITORY}/commits/{HEAD_SHA}/pulls"),
        ("GET", PULLS_7),
        ("GET", COMMENTS_7),
        ("POST", COMMENTS_7),
        ("GET", COMMENTS_7),
    ]
    assert len(comments_of(forge, 7)) == 1
    assert comments_of(forge, 5) == []
    assert_no_secrets(result, forge, environment)


def test_push_without_own_pull_request_skips(llmops_server, forge_server, run_agent, tmp_path):
    pulls = [
        {"number": 5, "head_sha": OLD_SHA, "commits": [HEAD_SHA], "labels": []},
        {"number": 9, "head_sha": HEAD_SHA, "state": "closed", "labels": []},
    ]
    forge = forge_server("github", scenario(pulls=pulls))
    payload = {"ref": "refs/heads/main", "before": OLD_SHA, "after": HEAD_SHA}
    environment = github_environment(tmp_path, forge, event_name="push", payload=payload, sha=HEAD_SHA)

    result = run_agent(["run"], config=make_config(failing=True), environment=environment, server=llmops_server())

    assert result.exit_code == 1, result
    assert forge_calls(forge) == [("GET", f"/repos/{REPOSITORY}/commits/{HEAD_SHA}/pulls")]
    assert f"no open pull request has commit {HEAD_SHA[:12]} as its head" in result.stderr
    assert warning_lines(result) == []
    assert "LLMOps evaluation failed" in summary_text(environment)
    assert_no_secrets(result, forge, environment)


def test_workflow_run_matches_pull_request_by_head(llmops_server, forge_server, run_agent, tmp_path):
    # For a fork pull request GitHub leaves workflow_run.pull_requests empty.
    pulls = [{"number": 7, "head_sha": HEAD_SHA, "head_repo": FORK_REPOSITORY, "labels": []}]
    forge = forge_server("github", scenario(pulls=pulls))
    payload = {
        "action": "completed",
        "workflow_run": {
            "head_sha": HEAD_SHA,
            "head_branch": "feature-7",
            "pull_requests": [],
            "head_repository": {"full_name": FORK_REPOSITORY},
            "repository": {"full_name": REPOSITORY},
        },
    }
    environment = github_environment(tmp_path, forge, event_name="workflow_run", payload=payload, sha=OLD_SHA)

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    assert forge_calls(forge) == [
        ("GET", f"/repos/{REPOSITORY}/commits/{HEAD_SHA}/pulls"),
        ("GET", PULLS_7),
        ("GET", COMMENTS_7),
        ("POST", COMMENTS_7),
        ("GET", COMMENTS_7),
    ]
    stored = comments_of(forge)
    assert len(stored) == 1
    assert f"commit={HEAD_SHA}" in first_line(stored[0]["body"])
    assert_no_secrets(result, forge, environment)


# GitHub Enterprise Server


def test_enterprise_server_gets_every_request(llmops_server, forge_server, run_agent, tmp_path):
    forge = forge_server("github", scenario(comments=[our_comment()]), prefix="/api/v3")
    environment = github_environment(
        tmp_path,
        forge,
        GITHUB_API_URL=forge.url + "/api/v3",
        GITHUB_SERVER_URL="https://ghe.test",
    )

    result = run_agent(["run", "--comment", "hide-and-new"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    prefix = f"/api/v3/repos/{REPOSITORY}"
    assert forge_calls(forge) == [
        ("GET", f"{prefix}/pulls/7"),
        ("GET", f"{prefix}/issues/7/comments"),
        ("POST", "/api/graphql"),
        ("POST", f"{prefix}/issues/7/comments"),
    ]
    stored = comments_of(forge)
    assert stored[0]["fake_state"] == {"minimized": True, "classifier": "OUTDATED"}
    assert len(stored) == 2
    assert "github.com" not in stored[1]["body"]
    for entry in forge_requests(forge):
        assert entry["url"].startswith(forge.url + "/api/"), entry["url"]
    assert_github_headers(forge)
    assert_no_secrets(result, forge, environment)


# Comment modes


def test_mode_new_adds_another_comment(llmops_server, forge_server, run_agent, tmp_path):
    earlier = our_comment()
    forge = forge_server("github", scenario(comments=[earlier]))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run", "--comment", "new"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    writes = [(method, path) for method, path in forge_calls(forge) if method != "GET"]
    assert writes == [("POST", COMMENTS_7)]
    stored = comments_of(forge)
    assert len(stored) == 2
    assert stored[0]["body"] == earlier["body"]
    assert f"commit={HEAD_SHA}" in first_line(stored[1]["body"])
    assert_no_secrets(result, forge, environment)


def test_mode_delete_and_new_replaces_ours(llmops_server, forge_server, run_agent, tmp_path):
    other = our_comment(key="nightly-gate")
    note = {"pr": 7, "body": "looks good", "login": "alice"}
    forge = forge_server("github", scenario(comments=[our_comment(), other, note]))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run"], config=make_config(report="  comment: delete-and-new\n"), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    writes = [(method, path) for method, path in forge_calls(forge) if method != "GET"]
    assert writes == [("DELETE", f"/repos/{REPOSITORY}/issues/comments/{FIRST_COMMENT_ID}"), ("POST", COMMENTS_7)]
    stored = comments_of(forge)
    assert [comment["body"] for comment in stored[:2]] == [other["body"], "looks good"]
    assert len(stored) == 3
    assert f"commit={HEAD_SHA}" in first_line(stored[2]["body"])
    assert_no_secrets(result, forge, environment)


def test_mode_hide_and_new_minimizes_ours(llmops_server, forge_server, run_agent, tmp_path):
    earlier = our_comment()
    other = our_comment(key="nightly-gate")
    forge = forge_server("github", scenario(comments=[earlier, other]))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run", "--comment", "hide-and-new"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    writes = [entry for entry in forge_requests(forge) if entry["method"] != "GET"]
    assert [(entry["method"], entry["path"]) for entry in writes] == [("POST", "/graphql"), ("POST", COMMENTS_7)]
    mutation = json.loads(writes[0]["body"])
    stored = comments_of(forge)
    assert "minimizeComment" in mutation["query"]
    assert "OUTDATED" in mutation["query"]
    assert mutation["variables"] == {"id": stored[0]["node_id"]}
    assert stored[0]["fake_state"] == {"minimized": True, "classifier": "OUTDATED"}
    assert stored[0]["body"] == earlier["body"]
    assert stored[1]["fake_state"]["minimized"] is False
    assert len(stored) == 3
    assert f"commit={HEAD_SHA}" in first_line(stored[2]["body"])
    assert_no_secrets(result, forge, environment)


@pytest.mark.parametrize(
    "earlier_verdict, failing, expected_writes",
    [
        ("passed", False, [("PATCH", f"/repos/{REPOSITORY}/issues/comments/{FIRST_COMMENT_ID}")]),
        ("failed", False, [("DELETE", f"/repos/{REPOSITORY}/issues/comments/{FIRST_COMMENT_ID}"), ("POST", COMMENTS_7)]),
        ("passed", True, [("DELETE", f"/repos/{REPOSITORY}/issues/comments/{FIRST_COMMENT_ID}"), ("POST", COMMENTS_7)]),
    ],
    ids=["same-verdict", "failed-to-passed", "passed-to-failed"],
)
def test_mode_update_or_new_on_change(
    llmops_server, forge_server, run_agent, tmp_path, earlier_verdict, failing, expected_writes
):
    forge = forge_server("github", scenario(comments=[our_comment(verdict=earlier_verdict)]))
    environment = github_environment(tmp_path, forge)
    config = make_config(report="  comment: update-or-new-on-change\n", failing=failing)

    result = run_agent(["run"], config=config, environment=environment, server=llmops_server())

    assert result.exit_code == (1 if failing else 0), result
    writes = [(method, path) for method, path in forge_calls(forge) if method != "GET"]
    assert writes == expected_writes
    stored = comments_of(forge)
    assert len(stored) == 1
    verdict = "failed" if failing else "passed"
    assert f"commit={HEAD_SHA} verdict={verdict} " in first_line(stored[0]["body"])
    assert_no_secrets(result, forge, environment)


@pytest.mark.parametrize("how", ["config", "flag"])
def test_mode_off_makes_no_forge_call(llmops_server, forge_server, run_agent, tmp_path, how):
    forge = forge_server("github", scenario(comments=[our_comment()]))
    environment = github_environment(tmp_path, forge)
    arguments = ["run", "--comment", "off"] if how == "flag" else ["run"]
    config = make_config(report="  comment: off\n") if how == "config" else make_config()

    result = run_agent(arguments, config=config, environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    assert forge_calls(forge) == []
    assert "LLMOps evaluation passed" in summary_text(environment)
    assert_no_secrets(result, forge, environment)


def test_dry_run_makes_no_write(llmops_server, forge_server, run_agent, tmp_path):
    llmops = llmops_server()
    forge = forge_server("github", scenario(comments=[our_comment()]))
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run", "--dry-run"], config=make_config(), environment=environment, server=llmops)

    assert result.exit_code == 0, result
    assert all(method == "GET" for method, _ in forge_calls(forge)), forge_calls(forge)
    assert ("GET", COMMENTS_7) in forge_calls(forge)
    assert f"would update comment {FIRST_COMMENT_ID} on pull request #7 of acme/widgets" in result.stdout
    assert start_requests(llmops) == []
    assert comments_of(forge)[0]["body"] == our_comment()["body"]
    assert_no_secrets(result, forge, environment)


def test_dry_run_names_new_comment(llmops_server, forge_server, run_agent, tmp_path):
    forge = forge_server("github", scenario())
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run", "--dry-run"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    assert all(method == "GET" for method, _ in forge_calls(forge)), forge_calls(forge)
    assert "would post a new comment on pull request #7 of acme/widgets (mode update)" in result.stdout
    assert comments_of(forge) == []


# Size limit


SINGLE_EVALUATION = """\
  - name: support-bot
    dataset: golden-qa
    endpoint: gpt-4o-prod
    metrics: [faithfulness, bleu]
"""
MATRIX_EVALUATION = """\
  - name: matrix
    datasets: [golden-qa, edge-cases, long-tail]
    endpoints: [gpt-4o-prod, llama-3-canary]
    metrics: [faithfulness, bleu]
"""


def test_oversized_report_fits_comment_limit(llmops_server, forge_server, run_agent, tmp_path):
    # 3 datasets x 2 endpoints with 700 failing cases each, outputs mixing CJK and emoji.
    outputs = [
        "回答：この製品は返品できません。詳細はサポートへ 🙅‍♀️🚫📦 " * 4,
        "答案是否定的，请联系客服处理退款 😡🔥💸 " * 5,
        "환불 정책에 따라 처리할 수 없습니다 👩‍👩‍👧‍👦🏳️‍🌈 " * 4,
    ]
    llmops = llmops_server(
        {
            "cases": {"golden-qa": 700, "edge-cases": 700},
            "datasets": [{"name": "long-tail", "cases": 700}],
            "runs": [{"match": {}, "quality": 0.3, "case_outputs": outputs}],
        }
    )
    forge = forge_server("github", scenario(body_limit_unit="bytes"))
    environment = github_environment(tmp_path, forge)
    config = (
        BASE_CONFIG.replace(SINGLE_EVALUATION, MATRIX_EVALUATION)
        + f"report:\n  comment_key: {COMMENT_KEY}\n  worst_cases: 100\n"
        + "gate:\n  thresholds:\n    faithfulness: { min: 0.5 }\n"
    )

    assert MATRIX_EVALUATION in config
    result = run_agent(["run"], config=config, environment=environment, server=llmops, timeout=300)

    assert result.exit_code == 1, result
    posts = [entry for entry in forge_requests(forge) if entry["method"] == "POST"]
    assert len(posts) == 1
    assert posts[0]["status"] == 201
    body = json.loads(posts[0]["body"])["body"]
    assert len(body.encode("utf-8")) <= 65536
    fields = MARKER.match(first_line(body))
    assert fields is not None, first_line(body)
    assert fields["verdict"] == "failed"
    assert "## ❌ LLMOps evaluation failed" in body
    assert "**6 pairs** · 6 failed · 0 passed" in body
    assert "to keep within the comment size limit" in body
    stored = comments_of(forge)
    assert len(stored) == 1
    assert stored[0]["body"] == body
    # The job summary and stdout keep the full report.
    assert len(summary_text(environment).encode("utf-8")) > 65536
    assert result.json()["verdict"] == "failed"
    assert_no_secrets(result, forge, environment)


# Labels and commit status


@pytest.mark.parametrize("label, report", [("llmops-skip", ""), ("no-evals", "  skip_label: no-evals\n")])
def test_skip_label_starts_no_evaluation(llmops_server, forge_server, run_agent, tmp_path, label, report):
    llmops = llmops_server()
    pulls = [{"number": 7, "head_sha": HEAD_SHA, "labels": [label]}]
    forge = forge_server("github", scenario(pulls=pulls))
    environment = github_environment(tmp_path, forge, payload=pull_request_event(labels=["bug", label]))

    result = run_agent(["run"], config=make_config(report=report, failing=True), environment=environment, server=llmops)

    assert result.exit_code == 0, result
    assert start_requests(llmops) == []
    assert f"the label '{label}'" in result.stdout
    assert "skipped" in summary_text(environment)
    assert [method for method, _ in forge_calls(forge) if method != "GET"] == []
    assert_no_secrets(result, forge, environment)


@pytest.mark.parametrize("failing, state", [(False, "success"), (True, "failure")], ids=["passing", "failing"])
def test_commit_status_on_head(llmops_server, forge_server, run_agent, tmp_path, failing, state):
    forge = forge_server("github", scenario())
    environment = github_environment(tmp_path, forge)
    config = make_config(report="  commit_status: true\n", failing=failing)

    result = run_agent(["run"], config=config, environment=environment, server=llmops_server())

    assert result.exit_code == (1 if failing else 0), result
    writes = [(method, path) for method, path in forge_calls(forge) if method != "GET"]
    assert writes == [("POST", COMMENTS_7), ("POST", f"/repos/{REPOSITORY}/statuses/{HEAD_SHA}")]
    statuses = forge.get("/__fake/statuses")
    assert len(statuses) == 1
    assert statuses[0]["sha"] == HEAD_SHA
    assert statuses[0]["state"] == state
    assert statuses[0]["context"] == "llmops-ci"
    assert forge.get(f"/__fake/statuses?sha={MERGE_SHA}") == []
    assert_no_secrets(result, forge, environment)


def test_commit_status_without_comment(llmops_server, forge_server, run_agent, tmp_path):
    forge = forge_server("github", scenario())
    environment = github_environment(tmp_path, forge)
    config = make_config(report="  comment: off\n  commit_status: true\n")

    result = run_agent(["run"], config=config, environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    writes = [(method, path) for method, path in forge_calls(forge) if method != "GET"]
    assert writes == [("POST", f"/repos/{REPOSITORY}/statuses/{HEAD_SHA}")]
    assert comments_of(forge) == []
    assert_no_secrets(result, forge, environment)


def test_no_commit_status_by_default(llmops_server, forge_server, run_agent, tmp_path):
    forge = forge_server("github", scenario())
    environment = github_environment(tmp_path, forge)

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    assert forge.get("/__fake/statuses") == []
    assert not any("/statuses/" in path for _, path in forge_calls(forge))
