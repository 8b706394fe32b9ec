"""Publishing to GitLab end to end: the real binary against the fake LLMOps Eval server
and the fake GitLab API, checking every request that reaches GitLab."""

import json
import re

import pytest

from conftest import (
    forge_calls,
    forge_requests,
    start_requests,
    warning_lines,
    BASE_CONFIG,
    PASSWORD,
)

HEAD_SHA = "a1" * 20
NEXT_SHA = "b2" * 20
OLD_SHA = "c3" * 20
# In a merged-results pipeline CI_COMMIT_SHA is a temporary merge commit.
MERGE_SHA = "d4" * 20
PROJECT_TOKEN = "glpat-Pr0jectT0kenCanary0123456789"
JOB_TOKEN = "glcbt-J0bT0kenCanary0123456789abcd"
COMMENT_KEY = "support-gate"
FIRST_NOTE_ID = 2200000001
BOT = {"username": "project_1_bot", "user_id": 1001, "name": "LLMOps bot"}
FAILING_GATE = "gate:\n  thresholds:\n    faithfulness: { min: 0.95 }\n"
API = "/api/v4/projects/1"
MERGE_REQUEST_3 = f"{API}/merge_requests/3"
NOTES_3 = f"{MERGE_REQUEST_3}/notes"
MARKER = re.compile(
    r"^<!-- llmops-ci:key=(?P<key>[0-9a-f]{16}) commit=(?P<commit>[0-9a-f]{40}) "
    r"verdict=(?P<verdict>[a-z]+) time=(?P<time>\S+) -->$"
)
# Because of it every notes listing fails, so no note is ever posted.

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
    """Return the first line that the agent writes into its note for `key`."""
    return f"<!-- llmops-ci:key={fnv1a64(key)} commit={commit} verdict={verdict} time=2024-05-01T10:00:00Z -->"


def our_note(commit=OLD_SHA, verdict="passed", key=COMMENT_KEY, **extra):
    """Return a scenario note that an earlier job with `key` posted with the project token."""
    body = marker(commit, verdict, key) + "\n## ✅ LLMOps evaluation passed\n\nolder report\n"
    return {"mr": 3, "body": body, **BOT, **extra}


def scenario(sha=HEAD_SHA, notes=(), **extra):
    """Return a fake GitLab scenario with merge request !3 at `sha` and a project token with the api scope."""
    tokens = {
        PROJECT_TOKEN: {"kind": "project", "scopes": ["api"], **BOT},
        JOB_TOKEN: {"kind": "job"},
    }
    merge_requests = extra.pop("merge_requests", [{"iid": 3, "sha": sha}])
    return {"tokens": tokens, "merge_requests": merge_requests, "notes": list(notes), **extra}


def make_config(report="", failing=False):
    """Return BASE_CONFIG with the fixed comment key, more `report` lines and optionally a failing gate."""
    text = BASE_CONFIG + f"report:\n  comment_key: {COMMENT_KEY}\n" + report
    if failing:
        text += FAILING_GATE
    return text


def gitlab_environment(forge, sha=HEAD_SHA, token=PROJECT_TOKEN, **extra):
    """Return the variables of a merge request pipeline job for merge request !3 of project 1."""
    variables = {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_API_V4_URL": forge.url + "/api/v4",
        "CI_SERVER_URL": "https://gitlab.example.com",
        "CI_PROJECT_ID": "1",
        "CI_PROJECT_PATH": "group/project",
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "3",
        "CI_MERGE_REQUEST_PROJECT_ID": "1",
        "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "1",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature-3",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_COMMIT_SHA": sha,
        "CI_COMMIT_REF_NAME": "feature-3",
        "CI_JOB_NAME": "llmops",
        "CI_JOB_TOKEN": JOB_TOKEN,
    }
    if token is not None:
        variables["LLMOPS_GITLAB_TOKEN"] = token
    variables.update(extra)
    return variables


def notes_of(forge, number=3):
    return forge.get(f"/__fake/comments?mr={number}")


def first_line(body):
    return body.split("\n", 1)[0]


def assert_no_secrets(result, forge):
    """Check that no token or password reached a forge request body, the logs or the report files."""
    secrets = (PROJECT_TOKEN, JOB_TOKEN, PASSWORD)
    for entry in forge_requests(forge):
        for secret in secrets:
            assert secret not in entry["body"], (entry["method"], entry["path"])
            assert secret not in entry["url"], (entry["method"], entry["path"])
    texts = [result.stdout, result.stderr]
    for name in ("llmops-report.md", "llmops-results.json", "llmops.env"):
        if (result.workdir / name).exists():
            texts.append(result.file(name))
    for text in texts:
        for secret in secrets:
            assert secret not in text


def assert_private_token_headers(forge):
    """Check that every request authenticates with PRIVATE-TOKEN and sends JSON bodies as JSON."""
    for entry in forge_requests(forge):
        headers = entry["headers"]
        where = (entry["method"], entry["path"])
        assert headers.get("private-token") == PROJECT_TOKEN, where
        assert "job-token" not in headers, where
        if entry["method"] in ("POST", "PUT"):
            assert headers.get("content-type") == "application/json", where


# First pipeline and updates


def test_first_pipeline_posts_one_note(llmops_server, forge_server, run_agent):
    forge = forge_server("gitlab", scenario())

    result = run_agent(["run"], config=BASE_CONFIG, environment=gitlab_environment(forge), server=llmops_server())

    assert result.exit_code == 0, result
    stored = notes_of(forge)
    assert len(stored) == 1
    assert forge_calls(forge) == [("GET", MERGE_REQUEST_3), ("GET", NOTES_3), ("POST", NOTES_3), ("GET", NOTES_3)]
    listing = forge_requests(forge)[1]["query"]
    assert listing["sort"] == "asc"
    assert listing["page"] == "1"
    assert "Posted the report on merge request !3 of project 1" in result.stderr
    fields = MARKER.match(first_line(stored[0]["body"]))
    assert fields is not None, first_line(stored[0]["body"])
    assert fields["commit"] == HEAD_SHA
    assert fields["verdict"] == "passed"
    assert "## ✅ LLMOps evaluation passed" in stored[0]["body"]
    assert stored[0]["author"]["username"] == "project_1_bot"
    assert warning_lines(result) == []
    assert_private_token_headers(forge)
    assert_no_secrets(result, forge)


def test_second_pipeline_updates_note(llmops_server, forge_server, run_agent):
    llmops = llmops_server()
    forge = forge_server("gitlab", scenario(sha=HEAD_SHA))
    first = run_agent(["run"], config=make_config(failing=True), environment=gitlab_environment(forge, sha=HEAD_SHA), server=llmops)
    assert first.exit_code == 1, first
    posted = notes_of(forge)
    assert len(posted) == 1
    # The push moves the merge request's head. The note stays, authored by the token's bot user.
    forge.post("/__fake/scenario", scenario(sha=NEXT_SHA, notes=[{"mr": 3, "body": posted[0]["body"], **BOT}]))

    second = run_agent(["run"], config=make_config(), environment=gitlab_environment(forge, sha=NEXT_SHA), server=llmops)

    assert second.exit_code == 0, second
    assert forge_calls(forge) == [("GET", MERGE_REQUEST_3), ("GET", NOTES_3), ("PUT", f"{NOTES_3}/{FIRST_NOTE_ID}")]
    assert "Updated the report on merge request !3 of project 1" in second.stderr
    stored = notes_of(forge)
    assert len(stored) == 1
    body = stored[0]["body"]
    fields = MARKER.match(first_line(body))
    assert fields is not None, first_line(body)
    assert fields["commit"] == NEXT_SHA
    assert fields["verdict"] == "passed"
    assert "Earlier verdicts on this pull request" in body
    assert f"`{HEAD_SHA[:12]}` failed" in body
    assert_private_token_headers(forge)
    assert_no_secrets(second, forge)


def test_marker_on_page_three_is_updated(llmops_server, forge_server, run_agent):
    # 120 notes at 50 per page, ours as number 110: page 3 of 3, and no totals to rely on.
    notes = [
        {"mr": 3, "count": 109, "body": "review note {i}", "username": "alice"},
        our_note(),
        {"mr": 3, "count": 10, "body": "later note {i}", "username": "bob"},
    ]
    forge = forge_server("gitlab", scenario(notes=notes, per_page_max=50, omit_totals=True))

    result = run_agent(["run"], config=make_config(), environment=gitlab_environment(forge), server=llmops_server())

    assert result.exit_code == 0, result
    ours_id = FIRST_NOTE_ID + 109
    assert forge_calls(forge) == [
        ("GET", MERGE_REQUEST_3),
        ("GET", NOTES_3),
        ("GET", NOTES_3),
        ("GET", NOTES_3),
        ("PUT", f"{NOTES_3}/{ours_id}"),
    ]
    pages = [entry["query"].get("page") for entry in forge_requests(forge) if entry["path"] == NOTES_3]
    assert pages == ["1", "2", "3"]
    stored = notes_of(forge)
    assert len(stored) == 120
    assert [note["id"] for note in stored if note["body"].startswith("<!-- llmops-ci:")] == [ours_id]
    assert f"commit={HEAD_SHA} verdict=passed " in first_line(stored[109]["body"])
    assert_no_secrets(result, forge)


def test_system_notes_are_ignored(llmops_server, forge_server, run_agent):
    # GitLab rejects every edit of a system note, so one that starts with our marker must never be chosen.
    notes = [
        {"mr": 3, "body": "added 1 commit\n\n* c3c3c3c3 - Fix prompt", "system": True, "username": "alice"},
        {"mr": 3, "body": marker(OLD_SHA, "passed") + "\nquoted", "system": True, "username": "alice"},
        our_note(),
        {"mr": 3, "body": "changed the description", "system": True, "username": "alice"},
    ]
    forge = forge_server("gitlab", scenario(notes=notes))

    result = run_agent(["run"], config=make_config(), environment=gitlab_environment(forge), server=llmops_server())

    assert result.exit_code == 0, result
    assert forge_calls(forge) == [("GET", MERGE_REQUEST_3), ("GET", NOTES_3), ("PUT", f"{NOTES_3}/{FIRST_NOTE_ID + 2}")]
    stored = notes_of(forge)
    assert stored[1]["body"] == notes[1]["body"]
    assert f"commit={HEAD_SHA} " in first_line(stored[2]["body"])
    assert warning_lines(result) == []
    assert_no_secrets(result, forge)


def test_stale_pipeline_changes_nothing(llmops_server, forge_server, run_agent):
    newer = our_note(commit=NEXT_SHA)
    forge = forge_server("gitlab", scenario(sha=NEXT_SHA, notes=[newer]))

    result = run_agent(["run"], config=make_config(), environment=gitlab_environment(forge, sha=HEAD_SHA), server=llmops_server())

    assert result.exit_code == 0, result
    assert forge_calls(forge) == [("GET", MERGE_REQUEST_3)]
    assert f"commit {HEAD_SHA[:12]} is no longer the head of merge request !3" in result.stderr
    assert notes_of(forge)[0]["body"] == newer["body"]
    assert_private_token_headers(forge)
    assert_no_secrets(result, forge)


def test_merged_results_pipeline_checks_source_sha(llmops_server, forge_server, run_agent):
    # CI_COMMIT_SHA is the merge commit here, so only the source sha shows the job is stale.
    forge = forge_server("gitlab", scenario(sha=NEXT_SHA, notes=[our_note(commit=NEXT_SHA)]))
    environment = gitlab_environment(
        forge,
        sha=MERGE_SHA,
        CI_MERGE_REQUEST_EVENT_TYPE="merged_result",
        CI_MERGE_REQUEST_SOURCE_BRANCH_SHA=HEAD_SHA,
    )

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    assert forge_calls(forge) == [("GET", MERGE_REQUEST_3)]
    assert f"commit {HEAD_SHA[:12]} is no longer the head" in result.stderr
    assert result.json()["commit"] == HEAD_SHA


# Tokens


@pytest.mark.parametrize("failing, exit_code", [(False, 0), (True, 1)], ids=["passing", "failing"])
def test_job_token_only_names_variable(llmops_server, forge_server, run_agent, failing, exit_code):
    forge = forge_server("gitlab", scenario())
    environment = gitlab_environment(forge, token=None)

    result = run_agent(["run"], config=make_config(failing=failing), environment=environment, server=llmops_server())

    assert result.exit_code == exit_code, result
    assert forge_calls(forge) == []
    messages = [line for line in result.stderr.splitlines() if "LLMOPS_GITLAB_TOKEN" in line]
    assert len(messages) == 1, result.stderr
    assert "api scope" in messages[0]
    assert "CI_JOB_TOKEN cannot write merge request notes" in messages[0]
    verdict = "failed" if failing else "passed"
    assert f"LLMOps evaluation {verdict}" in result.stdout
    assert f"LLMOps evaluation {verdict}" in result.file("llmops-report.md")
    assert f"LLMOPS_VERDICT={verdict}" in result.file("llmops.env")
    assert result.json()["verdict"] == verdict
    assert_no_secrets(result, forge)


# Branch pipelines


def test_branch_pipeline_posts_on_open_merge_request(llmops_server, forge_server, run_agent):
    forge = forge_server("gitlab", scenario())
    environment = gitlab_environment(forge, CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="feature-3", CI_OPEN_MERGE_REQUESTS="group/project!3")
    # A branch pipeline has none of the merge request variables.
    for name in [name for name in environment if name.startswith("CI_MERGE_REQUEST_")]:
        del environment[name]

    result = run_agent(["run"], config=make_config(), environment=environment, server=llmops_server())

    assert result.exit_code == 0, result
    stored = notes_of(forge)
    assert len(stored) == 1
    project = "/api/v4/projects/group%2Fproject/merge_requests/3"
    assert forge_calls(forge) == [("GET", project), ("GET", f"{project}/notes"), ("POST", f"{project}/notes"), ("GET", f"{project}/notes")]
    assert f"commit={HEAD_SHA} " in first_line(stored[0]["body"])
    assert_no_secrets(result, forge)


# Quick actions and labels


def test_report_line_never_starts_with_slash(llmops_server, forge_server, run_agent):
    # Model output, a server error message, a pair name and a branch name all carry quick actions.
    llmops = llmops_server(
        {
            "runs": [
                {"match": {"name": "/approve"}, "final_status": "FAILED", "error_message": "judge crashed\n/close\n/merge"},
                {"match": {}, "case_outputs": ["fine\n/merge\n/label ~approved", "/approve", "ok\r\n/unassign @alice"]},
            ]
        }
    )
    forge = forge_server("gitlab", scenario())
    config = make_config().replace(
        "polling:\n",
        "  - name: /approve\n    dataset: edge-cases\n    endpoint: gpt-4o-prod\n    metrics: [bleu]\npolling:\n",
    )
    environment = gitlab_environment(forge, CI_MERGE_REQUEST_TARGET_BRANCH_NAME="/merge")

    result = run_agent(["run"], config=config, environment=environment, server=llmops)

    # A run that failed on the server did not finish, and that verdict exits with 3.
    assert result.json()["verdict"] == "incomplete"
    assert result.exit_code == 3, result
    assert forge.get("/__fake/quick_actions") == []
    posts = [entry for entry in forge_requests(forge) if entry["method"] == "POST"]
    assert len(posts) == 1
    sent = json.loads(posts[0]["body"])["body"]
    assert [line for line in sent.splitlines() if line.lstrip().startswith("/")] == []
    stored = notes_of(forge)
    assert len(stored) == 1
    assert stored[0]["body"] == sent
    assert stored[0]["fake_state"]["quick_actions"] == []
    assert_no_secrets(result, forge)


def test_skip_label_starts_no_evaluation(llmops_server, forge_server, run_agent):
    llmops = llmops_server()
    forge = forge_server("gitlab", scenario())
    environment = gitlab_environment(forge, CI_MERGE_REQUEST_LABELS="bug,llmops-skip")

    result = run_agent(["run"], config=make_config(failing=True), environment=environment, server=llmops)

    assert result.exit_code == 0, result
    assert start_requests(llmops) == []
    assert "the label 'llmops-skip'" in result.stdout
    assert forge_calls(forge) == []
    assert_no_secrets(result, forge)


@pytest.mark.parametrize("failing, state", [(False, "success"), (True, "failed")], ids=["passing", "failing"])
def test_commit_status_on_source_sha(llmops_server, forge_server, run_agent, failing, state):
    forge = forge_server("gitlab", scenario())
    environment = gitlab_environment(forge, sha=MERGE_SHA, CI_MERGE_REQUEST_SOURCE_BRANCH_SHA=HEAD_SHA)
    config = make_config(report="  commit_status: true\n", failing=failing)

    result = run_agent(["run"], config=config, environment=environment, server=llmops_server())

    assert result.exit_code == (1 if failing else 0), result
    assert warning_lines(result) == []
    writes = [(method, path) for method, path in forge_calls(forge) if method != "GET"]
    assert writes == [("POST", NOTES_3), ("POST", f"{API}/statuses/{HEAD_SHA}")]
    statuses = forge.get("/__fake/statuses")
    assert len(statuses) == 1
    assert statuses[0]["sha"] == HEAD_SHA
    assert statuses[0]["status"] == state
    assert statuses[0]["name"] == "llmops-ci"
    assert_private_token_headers(forge)
    assert_no_secrets(result, forge)
