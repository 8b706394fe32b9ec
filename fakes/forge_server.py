#!/usr/bin/env python3
"""Fake GitHub and GitLab REST APIs for the end-to-end tests of llmops-ci.

The server keeps pull requests, issue comments, merge requests, notes and commit
statuses in memory, loads them from a scenario, records every API request, and
injects faults that a scenario describes. It uses only the standard library and
listens on 127.0.0.1 only. FORGES.md lists the command line, the routes and the
scenario keys.
"""

import argparse
import base64
import datetime
import http
import json
import math
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LISTEN_HOST = "127.0.0.1"
MAX_REQUEST_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_BASE_TIME = "2024-01-01T00:00:00Z"

# GitHub's REST API rejects issue comment bodies over 65,536 characters with 422.
GITHUB_BODY_LIMIT = 65536
# GitLab's notes API rejects note bodies over 1,000,000 characters with 400.
GITLAB_BODY_LIMIT = 1_000_000

GITHUB_API_VERSIONS = ["2022-11-28", "2026-03-10"]
GITHUB_DOCS_URL = "https://docs.github.com/rest"
GITHUB_ACTIONS_BOT = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
GITHUB_MINIMIZE_CLASSIFIERS = ("SPAM", "ABUSE", "OFF_TOPIC", "OUTDATED", "DUPLICATE", "RESOLVED")
GITHUB_PERMISSION_SCOPES = ("issues", "pull_requests", "statuses")
GITHUB_STATUS_STATES = ("error", "failure", "pending", "success")
GITHUB_MAX_STATUSES_PER_CONTEXT = 1000
PERMISSION_LEVELS = {"none": 0, "read": 1, "write": 2}
NOT_ACCESSIBLE = "Resource not accessible by integration"

GITLAB_TOKEN_KINDS = ("personal", "project", "group", "oauth", "job")
GITLAB_STATUS_STATES = ("pending", "running", "success", "failed", "canceled", "skipped")
GITLAB_MR_STATES = ("opened", "closed", "merged", "locked")
GITLAB_DEFAULT_USER = {"id": 1001, "username": "project_1_bot", "name": "CI bot"}

# Quick actions that GitLab runs when a new note has a line starting with "/name".
# GitLab removes such lines from the stored note body.
GITLAB_QUICK_ACTIONS = frozenset("""
    approve unapprove assign unassign assign_reviewer unassign_reviewer reassign
    reassign_reviewer request_review close reopen draft ready wip label unlabel relabel
    merge milestone remove_milestone title lock unlock rebase squash spend
    remove_time_spent estimate remove_estimate todo done subscribe unsubscribe due
    remove_due_date award react target_branch copy_metadata submit_review cc relate
    duplicate
""".split())

# One minimizeComment or unminimizeComment call, with an optional alias, whose
# input is a variable or an object literal.
GRAPHQL_MUTATION_PATTERN = re.compile(
    r"(?:(\w+)\s*:\s*)?\b(minimizeComment|unminimizeComment)\s*\(\s*input\s*:\s*(\$\w+|\{.*?\})\s*\)",
    re.S,
)

FAULT_KINDS = ("status", "empty_body", "html", "disconnect", "delay")
FAULT_KEYS = {
    "method", "path_regex", "after", "times", "kind", "status", "message", "body",
    "content_type", "headers", "delay_seconds", "perform",
}


class ScenarioError(ValueError):
    """An invalid scenario: the message names the key and the value."""


class RequestBodyError(Exception):
    """A request body that cannot be read, with the HTTP status to return."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    path: str  # as sent: percent-encoded, without the query string
    query_string: str
    query: dict
    headers: dict  # lower-case names
    body: bytes
    base_url: str  # scheme://host[:port] that the client used


@dataclass
class Response:
    status: int
    headers: list = field(default_factory=list)
    body: bytes = b""
    disconnect: bool = False


# ---------------------------------------------------------------------------
# Small helpers


def format_github_time(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_gitlab_time(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text, where: str) -> float:
    if not isinstance(text, str):
        raise ScenarioError(f"{where} must be an ISO 8601 time string, not {text!r}")
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ScenarioError(f"{where} is not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def json_response(status: int, payload, headers=None) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    all_headers = [("Content-Type", "application/json; charset=utf-8")]
    all_headers.extend(headers or [])
    return Response(status, all_headers, body)


def no_content(headers=None) -> Response:
    return Response(204, list(headers or []), b"")


def check_keys(value, allowed, where: str) -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where} must be a JSON object, not {type(value).__name__}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ScenarioError(f"{where} has unknown keys {unknown}. Valid keys: {sorted(allowed)}")
    return value


def require_type(value, expected, where: str):
    if expected is int and isinstance(value, bool):
        raise ScenarioError(f"{where} must be an integer, not {value!r}")
    if not isinstance(value, expected):
        raise ScenarioError(f"{where} has the wrong type: {value!r}")
    return value


def optional(mapping: dict, key: str, expected, default, where: str):
    if key not in mapping:
        return default
    return require_type(mapping[key], expected, f"{where}.{key}")


def parse_positive_int(text, fallback: int) -> int:
    try:
        number = int(text)
    except (TypeError, ValueError):
        return fallback
    return number if number >= 1 else fallback


def page_window(query: dict, default_per_page: int, max_per_page: int):
    """Return (page, per_page) from the query, clamped as both forges do."""
    per_page = min(parse_positive_int(query.get("per_page"), default_per_page), max_per_page)
    page = parse_positive_int(query.get("page"), 1)
    return page, per_page


def page_url(base: str, query_string: str, page: int) -> str:
    pairs = [(k, v) for k, v in urllib.parse.parse_qsl(query_string, keep_blank_values=True) if k != "page"]
    pairs.append(("page", str(page)))
    return f"{base}?{urllib.parse.urlencode(pairs)}"


def read_json_object(request: Request):
    """Return (object, None) or (None, reason) for a request body that must be a JSON object."""
    try:
        payload = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, "Problems parsing JSON"
    if not isinstance(payload, dict):
        return None, "Body should be a JSON object"
    return payload, None


def status_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def make_node_id(type_prefix: str, key: str) -> str:
    return type_prefix + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def parse_body_limit_unit(scenario: dict) -> str:
    unit = optional(scenario, "body_limit_unit", str, "characters", "scenario")
    if unit not in ("characters", "bytes"):
        raise ScenarioError(f"scenario.body_limit_unit is {unit!r}, but it must be 'characters' or 'bytes'")
    return unit


def parse_page_sizes(scenario: dict, default_per_page: int):
    """Return (per_page_default, per_page_max) from the scenario after checking their order."""
    per_page_default = optional(scenario, "per_page_default", int, default_per_page, "scenario")
    per_page_max = optional(scenario, "per_page_max", int, 100, "scenario")
    if not 1 <= per_page_default <= per_page_max:
        raise ScenarioError(
            f"scenario.per_page_default is {per_page_default} and per_page_max is {per_page_max}, "
            "but they must satisfy 1 <= per_page_default <= per_page_max"
        )
    return per_page_default, per_page_max


def make_fake_sha(seed: str) -> str:
    digits = "".join(f"{ord(c):x}" for c in seed)
    return (digits * (40 // max(len(digits), 1) + 1))[:40]


# ---------------------------------------------------------------------------
# Faults


class Fault:
    """One scenario fault: a response that replaces the real one for matching requests."""

    def __init__(self, spec, index: int):
        where = f"faults[{index}]"
        check_keys(spec, FAULT_KEYS, where)
        self.spec = spec
        self.method = optional(spec, "method", str, "*", where).upper()
        pattern = optional(spec, "path_regex", str, ".*", where)
        try:
            self.path_pattern = re.compile(pattern)
        except re.error as error:
            raise ScenarioError(f"{where}.path_regex {pattern!r} is not a valid regex: {error}") from None
        self.after = optional(spec, "after", int, 0, where)
        self.times = optional(spec, "times", int, 1, where)
        self.kind = optional(spec, "kind", str, "status", where)
        if self.kind not in FAULT_KINDS:
            raise ScenarioError(f"{where}.kind is {self.kind!r}, but it must be one of {list(FAULT_KINDS)}")
        default_status = {"status": None, "empty_body": 200, "html": 502}.get(self.kind)
        self.status = optional(spec, "status", int, default_status, where)
        if self.kind == "status" and self.status is None:
            raise ScenarioError(f"{where} has kind 'status' but no 'status' code")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ScenarioError(f"{where}.status {self.status} is not an HTTP status code (100 to 599)")
        self.message = optional(spec, "message", str, None, where)
        self.body = spec.get("body")
        self.content_type = optional(spec, "content_type", str, None, where)
        headers = optional(spec, "headers", dict, {}, where)
        self.headers = [(str(k), str(v)) for k, v in headers.items()]
        delay = optional(spec, "delay_seconds", (int, float), 0, where)
        self.delay_seconds = float(delay)
        self.perform = optional(spec, "perform", bool, False, where)
        self.matched = 0
        self.fired = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        return self.path_pattern.search(path) is not None

    def is_due(self) -> bool:
        """Return whether the request just counted in `matched` is one this fault replaces."""
        if self.matched <= self.after:
            return False
        return self.times < 0 or self.fired < self.times

    def describe(self) -> dict:
        return {"spec": self.spec, "matched": self.matched, "fired": self.fired}

    def build_response(self, forge_kind: str) -> Response:
        if self.kind == "disconnect":
            return Response(0, disconnect=True)
        if self.kind == "empty_body":
            content_type = self.content_type or "application/json; charset=utf-8"
            return Response(self.status, [("Content-Type", content_type)] + self.headers, b"")
        if self.kind == "html":
            reason = status_phrase(self.status)
            page = self.body if isinstance(self.body, str) else (
                f"<html><head><title>{self.status} {reason}</title></head>"
                f"<body><center><h1>{self.status} {reason}</h1></center>"
                "<hr><center>nginx</center></body></html>\n"
            )
            headers = [("Content-Type", self.content_type or "text/html")] + self.headers
            return Response(self.status, headers, page.encode("utf-8"))
        return self._status_response(forge_kind)

    def _status_response(self, forge_kind: str) -> Response:
        if isinstance(self.body, str):
            headers = [("Content-Type", self.content_type or "text/plain; charset=utf-8")] + self.headers
            return Response(self.status, headers, self.body.encode("utf-8"))
        if self.body is not None:
            payload = self.body
        else:
            message = self.message or status_phrase(self.status)
            if forge_kind == "github":
                payload = {
                    "message": message,
                    "documentation_url": GITHUB_DOCS_URL,
                    "status": str(self.status),
                }
            else:
                payload = {"message": message}
        body = json.dumps(payload).encode("utf-8")
        content_type = self.content_type or "application/json; charset=utf-8"
        return Response(self.status, [("Content-Type", content_type)] + self.headers, body)


def parse_faults(value) -> list:
    if not isinstance(value, list):
        raise ScenarioError(f"faults must be a JSON array, not {value!r}")
    return [Fault(spec, index) for index, spec in enumerate(value)]


# ---------------------------------------------------------------------------
# Quick actions


def extract_quick_actions(body: str):
    """Return (body without quick-action lines, the quick-action lines) as GitLab treats a new note.

    Lines inside fenced code blocks are left alone, as GitLab does.
    """
    body_lines, actions = [], []
    in_fence = False
    for line in body.split("\n"):
        if line.startswith("```") or line.startswith("~~~"):
            in_fence = not in_fence
        match = re.match(r"/([a-z_]+)(?:\s|$)", line)
        if not in_fence and match and match.group(1) in GITLAB_QUICK_ACTIONS:
            actions.append(line.rstrip("\r"))
        else:
            body_lines.append(line)
    return "\n".join(body_lines).strip("\n"), actions


# ---------------------------------------------------------------------------
# GitHub


@dataclass
class GitHubIdentity:
    login: str
    user_id: int
    type: str
    permissions: dict
    can_edit_others: bool

    def allows(self, scopes, level: str) -> bool:
        needed = PERMISSION_LEVELS[level]
        return any(PERMISSION_LEVELS[self.permissions.get(scope, "none")] >= needed for scope in scopes)

    def user_json(self) -> dict:
        return github_user_json(self.login, self.user_id, self.type)


def github_user_json(login: str, user_id: int, user_type: str) -> dict:
    return {
        "login": login,
        "id": user_id,
        "node_id": make_node_id("U_", f"User:{user_id}"),
        "type": user_type,
        "site_admin": False,
    }


def parse_github_permissions(value, where: str) -> dict:
    if isinstance(value, str):
        if value not in PERMISSION_LEVELS:
            raise ScenarioError(f"{where} is {value!r}, but it must be 'write', 'read', 'none' or an object")
        return {scope: value for scope in GITHUB_PERMISSION_SCOPES}
    check_keys(value, GITHUB_PERMISSION_SCOPES, where)
    permissions = {}
    for scope in GITHUB_PERMISSION_SCOPES:
        level = value.get(scope, "none")
        if level not in PERMISSION_LEVELS:
            raise ScenarioError(f"{where}.{scope} is {level!r}, but it must be 'write', 'read' or 'none'")
        permissions[scope] = level
    return permissions


class GitHubApi:
    """The GitHub REST and GraphQL routes over one repository's state."""

    SCENARIO_KEYS = {
        "repository", "repository_id", "server_url", "tokens", "pulls", "comments", "faults",
        "per_page_default", "per_page_max", "base_time", "first_comment_id", "link_style",
        "require_user_agent", "api_versions", "body_limit", "body_limit_unit",
        "allow_anonymous_reads",
    }

    def __init__(self, scenario: dict, prefix: str):
        check_keys(scenario, self.SCENARIO_KEYS, "scenario")
        self.prefix = prefix
        self.graphql_path = (prefix.rsplit("/", 1)[0] if prefix else "") + "/graphql"

        self.repository = optional(scenario, "repository", str, "octo-org/octo-repo", "scenario")
        if self.repository.count("/") != 1:
            raise ScenarioError(f"scenario.repository must be 'owner/name', not {self.repository!r}")
        self.owner, self.name = self.repository.split("/")
        self.repository_id = optional(scenario, "repository_id", int, 1296269, "scenario")
        server_url = optional(scenario, "server_url", str, "https://github.com", "scenario")
        self.server_url = server_url.rstrip("/")

        self.per_page_default, self.per_page_max = parse_page_sizes(scenario, 30)
        self.link_style = optional(scenario, "link_style", str, "repos", "scenario")
        if self.link_style not in ("repos", "repositories"):
            raise ScenarioError(
                f"scenario.link_style is {self.link_style!r}, but it must be 'repos' or 'repositories'"
            )
        self.require_user_agent = optional(scenario, "require_user_agent", bool, True, "scenario")
        self.api_versions = optional(scenario, "api_versions", list, GITHUB_API_VERSIONS, "scenario")
        self.body_limit = optional(scenario, "body_limit", int, GITHUB_BODY_LIMIT, "scenario")
        self.body_limit_unit = parse_body_limit_unit(scenario)
        self.allow_anonymous_reads = optional(scenario, "allow_anonymous_reads", bool, False, "scenario")

        self.base_time = parse_time(scenario.get("base_time", DEFAULT_BASE_TIME), "scenario.base_time")
        self.next_comment_id = optional(scenario, "first_comment_id", int, 3_000_000_001, "scenario")
        self.next_status_id = 9_000_000_001
        self.tokens = self._parse_tokens(scenario.get("tokens"))
        self.faults = parse_faults(scenario.get("faults", []))

        self.pulls = {}
        for index, spec in enumerate(optional(scenario, "pulls", list, [], "scenario")):
            pull = self._parse_pull(spec, f"scenario.pulls[{index}]")
            if pull["number"] in self.pulls:
                raise ScenarioError(f"scenario.pulls[{index}].number {pull['number']} appears twice")
            self.pulls[pull["number"]] = pull

        self.comments = []
        for index, spec in enumerate(optional(scenario, "comments", list, [], "scenario")):
            self._add_scenario_comments(spec, f"scenario.comments[{index}]")

        self.statuses = []
        self.requests_served = 0
        self.rate_limit_reset = int(time.time()) + 3600

    # -- scenario parsing

    def _parse_tokens(self, value):
        if value is None:
            return None
        tokens = {}
        require_type(value, dict, "scenario.tokens")
        for index, (token, spec) in enumerate(value.items()):
            # The error names the token by position so that no token value is printed.
            where = f"scenario.tokens[#{index}]"
            check_keys(spec, {"permissions", "login", "user_id", "type", "can_edit_others"}, where)
            tokens[token] = GitHubIdentity(
                login=optional(spec, "login", str, GITHUB_ACTIONS_BOT["login"], where),
                user_id=optional(spec, "user_id", int, GITHUB_ACTIONS_BOT["id"], where),
                type=optional(spec, "type", str, "Bot", where),
                permissions=parse_github_permissions(
                    spec.get("permissions", "write"), where + ".permissions"
                ),
                can_edit_others=optional(spec, "can_edit_others", bool, True, where),
            )
        return tokens

    def _parse_pull(self, spec, where: str) -> dict:
        keys = {
            "number", "head_sha", "head_ref", "head_repo", "fork", "base_ref", "base_sha", "labels",
            "state", "merged", "draft", "title", "user", "commits",
        }
        check_keys(spec, keys, where)
        if "number" not in spec or "head_sha" not in spec:
            raise ScenarioError(f"{where} needs 'number' and 'head_sha'")
        number = require_type(spec["number"], int, f"{where}.number")

        fork = optional(spec, "fork", bool, False, where)
        if "head_repo" in spec:
            head_repo = spec["head_repo"]
            if head_repo is not None:
                require_type(head_repo, str, f"{where}.head_repo")
        else:
            head_repo = f"fork-owner/{self.name}" if fork else self.repository
        if head_repo is not None and head_repo.lower() != self.repository.lower():
            fork = True

        state = optional(spec, "state", str, "open", where)
        if state not in ("open", "closed"):
            raise ScenarioError(f"{where}.state is {state!r}, but it must be 'open' or 'closed'")
        labels = optional(spec, "labels", list, [], where)
        commits = optional(spec, "commits", list, [], where)

        return {
            "number": number,
            "head_sha": require_type(spec["head_sha"], str, f"{where}.head_sha"),
            "head_ref": optional(spec, "head_ref", str, f"feature-{number}", where),
            "head_repo": head_repo,
            "fork": fork,
            "base_ref": optional(spec, "base_ref", str, "main", where),
            "base_sha": optional(spec, "base_sha", str, make_fake_sha(f"base{number}"), where),
            "labels": [require_type(label, str, f"{where}.labels[]") for label in labels],
            "state": state,
            "merged": optional(spec, "merged", bool, False, where),
            "draft": optional(spec, "draft", bool, False, where),
            "title": optional(spec, "title", str, f"Pull request {number}", where),
            "user": optional(spec, "user", str, "octocat", where),
            "commits": [require_type(sha, str, f"{where}.commits[]") for sha in commits],
        }

    def _add_scenario_comments(self, spec, where: str):
        keys = {"pr", "body", "count", "login", "user_id", "type", "created_at", "updated_at", "minimized"}
        check_keys(spec, keys, where)
        if "pr" not in spec or "body" not in spec:
            raise ScenarioError(f"{where} needs 'pr' and 'body'")
        number = require_type(spec["pr"], int, f"{where}.pr")
        if number not in self.pulls:
            raise ScenarioError(f"{where}.pr {number} is not in scenario.pulls")
        template = require_type(spec["body"], str, f"{where}.body")
        count = optional(spec, "count", int, 1, where)
        login = optional(spec, "login", str, "octocat", where)
        user_id = optional(spec, "user_id", int, 583231, where)
        user = github_user_json(login, user_id, optional(spec, "type", str, "User", where))
        created_at = parse_time(spec["created_at"], f"{where}.created_at") if "created_at" in spec else None
        updated_at = parse_time(spec["updated_at"], f"{where}.updated_at") if "updated_at" in spec else None
        for position in range(1, count + 1):
            stamp = created_at if created_at is not None else self.base_time + 60 * len(self.comments)
            comment = self._new_comment(number, template.replace("{i}", str(position)), user, stamp)
            comment["updated_at"] = updated_at if updated_at is not None else stamp
            if optional(spec, "minimized", bool, False, where):
                comment["minimized"] = True
                comment["classifier"] = "OUTDATED"

    def _new_comment(self, number: int, body: str, user: dict, stamp: float) -> dict:
        comment_id = self.next_comment_id
        self.next_comment_id += 1
        comment = {
            "id": comment_id,
            "node_id": make_node_id("IC_", f"IssueComment:{comment_id}"),
            "pr": number,
            "body": body,
            "user": user,
            "created_at": stamp,
            "updated_at": stamp,
            "minimized": False,
            "classifier": None,
        }
        self.comments.append(comment)
        return comment

    # -- serialization

    def api_root(self, request: Request) -> str:
        return request.base_url + self.prefix

    def repo_api_path(self) -> str:
        if self.link_style == "repositories":
            return f"/repositories/{self.repository_id}"
        return f"/repos/{self.repository}"

    def comment_json(self, comment: dict, request: Request) -> dict:
        root = self.api_root(request)
        return {
            "id": comment["id"],
            "node_id": comment["node_id"],
            "url": f"{root}/repos/{self.repository}/issues/comments/{comment['id']}",
            "html_url": (
                f"{self.server_url}/{self.repository}/pull/{comment['pr']}#issuecomment-{comment['id']}"
            ),
            "issue_url": f"{root}/repos/{self.repository}/issues/{comment['pr']}",
            "body": comment["body"],
            "user": comment["user"],
            "created_at": format_github_time(comment["created_at"]),
            "updated_at": format_github_time(comment["updated_at"]),
            "author_association": "NONE" if comment["user"]["type"] == "Bot" else "MEMBER",
            "performed_via_github_app": None,
        }

    def repo_json(self, full_name: str, fork: bool) -> dict:
        owner, name = full_name.split("/", 1)
        return {
            "id": self.repository_id if full_name == self.repository else self.repository_id + 1,
            "name": name,
            "full_name": full_name,
            "fork": fork,
            "owner": {"login": owner},
            "html_url": f"{self.server_url}/{full_name}",
        }

    def pull_json(self, pull: dict, request: Request) -> dict:
        root = self.api_root(request)
        head_repo = pull["head_repo"]
        head_owner = head_repo.split("/")[0] if head_repo else "ghost"
        return {
            "id": 1_000_000 + pull["number"],
            "number": pull["number"],
            "state": pull["state"],
            "title": pull["title"],
            "draft": pull["draft"],
            "merged": pull["merged"],
            "user": github_user_json(pull["user"], 583231, "User"),
            "labels": [
                {"id": 2_000_000 + index, "name": label, "color": "ededed"}
                for index, label in enumerate(pull["labels"])
            ],
            "url": f"{root}/repos/{self.repository}/pulls/{pull['number']}",
            "html_url": f"{self.server_url}/{self.repository}/pull/{pull['number']}",
            "head": {
                "label": f"{head_owner}:{pull['head_ref']}",
                "ref": pull["head_ref"],
                "sha": pull["head_sha"],
                "repo": self.repo_json(head_repo, pull["fork"]) if head_repo else None,
            },
            "base": {
                "label": f"{self.owner}:{pull['base_ref']}",
                "ref": pull["base_ref"],
                "sha": pull["base_sha"],
                "repo": self.repo_json(self.repository, False),
            },
        }

    # -- responses

    def error(self, status: int, message: str, extra=None, headers=None) -> Response:
        payload = {"message": message, "documentation_url": GITHUB_DOCS_URL, "status": str(status)}
        payload.update(extra or {})
        return json_response(status, payload, headers)

    def not_found(self) -> Response:
        return self.error(404, "Not Found")

    def forbidden(self, accepted: str) -> Response:
        return self.error(403, NOT_ACCESSIBLE, headers=[("X-Accepted-GitHub-Permissions", accepted)])

    def validation_failed(self, errors: list) -> Response:
        return self.error(422, "Validation Failed", {"errors": errors})

    def add_standard_headers(self, response: Response, resource: str):
        self.requests_served += 1
        remaining = max(0, 5000 - self.requests_served)
        standard = [
            ("X-GitHub-Request-Id", f"FAKE:{self.requests_served:08X}"),
            ("X-GitHub-Media-Type", "github.v3; format=json"),
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", str(remaining)),
            ("x-ratelimit-used", str(5000 - remaining)),
            ("x-ratelimit-reset", str(self.rate_limit_reset)),
            ("x-ratelimit-resource", resource),
        ]
        present = {name.lower() for name, _ in response.headers}
        response.headers.extend((name, value) for name, value in standard if name.lower() not in present)

    # -- request handling

    def handle(self, request: Request) -> Response:
        is_graphql = request.path == self.graphql_path
        response = self._dispatch(request, is_graphql)
        self.add_standard_headers(response, "graphql" if is_graphql else "core")
        return response

    def _dispatch(self, request: Request, is_graphql: bool) -> Response:
        if self.require_user_agent and not request.headers.get("user-agent"):
            message = (
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header."
            )
            return Response(403, [("Content-Type", "text/plain; charset=utf-8")], message.encode())
        version = request.headers.get("x-github-api-version")
        if version is not None and version not in self.api_versions:
            return self.error(400, f"API version '{version}' is not supported.")

        identity, auth_error = self.authenticate(request)
        if auth_error:
            return auth_error
        if is_graphql:
            if request.method != "POST":
                return self.not_found()
            if identity is None:
                return self.error(401, "This endpoint requires you to be authenticated.")
            return self.graphql(request, identity)

        if not request.path.startswith(self.prefix + "/"):
            return self.not_found()
        segments = [urllib.parse.unquote(s) for s in request.path[len(self.prefix):].split("/")[1:]]
        segments = self._resolve_repositories_alias(segments)
        if segments is None:
            return self.not_found()
        if identity is None and (request.method != "GET" or not self.allow_anonymous_reads):
            return self.error(401, "Requires authentication")
        return self.route(request, segments, identity)

    def authenticate(self, request: Request):
        """Return (identity or None for anonymous, error response or None)."""
        header = request.headers.get("authorization")
        if header is None:
            return None, None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() not in ("bearer", "token") or not token:
            return None, self.error(401, "Bad credentials")
        if self.tokens is None:
            bot = GITHUB_ACTIONS_BOT
            permissions = {scope: "write" for scope in GITHUB_PERMISSION_SCOPES}
            return GitHubIdentity(bot["login"], bot["id"], bot["type"], permissions, True), None
        identity = self.tokens.get(token)
        if identity is None:
            return None, self.error(401, "Bad credentials")
        return identity, None

    def _resolve_repositories_alias(self, segments: list):
        """Rewrite /repositories/{id}/... to /repos/{owner}/{name}/..., or return None for another id."""
        if len(segments) >= 2 and segments[0] == "repositories":
            if segments[1] != str(self.repository_id):
                return None
            return ["repos", self.owner, self.name] + segments[2:]
        return segments

    def route(self, request: Request, segments: list, identity) -> Response:
        method = request.method
        if segments == ["user"] and method == "GET":
            return self.get_user(identity)
        if len(segments) < 4 or segments[0] != "repos":
            return self.not_found()
        if segments[1].lower() != self.owner.lower() or segments[2].lower() != self.name.lower():
            return self.not_found()
        rest = segments[3:]

        if len(rest) == 3 and rest[0] == "issues" and rest[1].isdigit() and rest[2] == "comments":
            if method == "GET":
                return self.list_comments(request, identity, int(rest[1]))
            if method == "POST":
                return self.create_comment(request, identity, int(rest[1]))
        if len(rest) == 3 and rest[:2] == ["issues", "comments"] and rest[2].isdigit():
            handlers = {"GET": self.get_comment, "PATCH": self.update_comment, "DELETE": self.delete_comment}
            if method in handlers:
                return handlers[method](request, identity, int(rest[2]))
        if rest == ["pulls"] and method == "GET":
            return self.list_pulls(request, identity)
        if len(rest) == 2 and rest[0] == "pulls" and rest[1].isdigit() and method == "GET":
            return self.get_pull(request, identity, int(rest[1]))
        if len(rest) == 3 and rest[0] == "commits" and rest[2] == "pulls" and method == "GET":
            return self.list_commit_pulls(request, identity, rest[1])
        if len(rest) == 2 and rest[0] == "statuses" and rest[1] and method == "POST":
            return self.create_status(request, identity, rest[1])
        return self.not_found()

    def can(self, identity, scopes, level: str) -> bool:
        if identity is None:
            return level == "read" and self.allow_anonymous_reads
        return identity.allows(scopes, level)

    # -- users

    def get_user(self, identity) -> Response:
        if identity is None:
            return self.error(401, "Requires authentication")
        if identity.type == "Bot":
            return self.error(403, NOT_ACCESSIBLE)
        return json_response(200, identity.user_json())

    # -- issue comments

    def find_comment(self, comment_id: int):
        for comment in self.comments:
            if comment["id"] == comment_id:
                return comment
        return None

    def list_comments(self, request: Request, identity, number: int) -> Response:
        if number not in self.pulls:
            return self.not_found()
        if not self.can(identity, ("issues", "pull_requests"), "read"):
            return self.forbidden("issues=read; pull_requests=read")
        selected = [c for c in self.comments if c["pr"] == number]
        since = request.query.get("since")
        if since:
            try:
                threshold = parse_time(since, "since")
            except ScenarioError:
                return self.validation_failed([
                    {"resource": "IssueComment", "field": "since", "code": "invalid"},
                ])
            selected = [c for c in selected if c["updated_at"] >= threshold]
        link_base = f"{self.api_root(request)}{self.repo_api_path()}/issues/{number}/comments"
        return self.paginate(request, selected, link_base, lambda c: self.comment_json(c, request))

    def paginate(self, request: Request, items: list, link_base: str, to_json) -> Response:
        page, per_page = page_window(request.query, self.per_page_default, self.per_page_max)
        last_page = max(1, math.ceil(len(items) / per_page))
        window = items[(page - 1) * per_page: page * per_page]
        links = []
        if page > 1:
            links.append((min(page - 1, last_page), "prev"))
        if page < last_page:
            links.append((page + 1, "next"))
            links.append((last_page, "last"))
        if page > 1:
            links.append((1, "first"))
        headers = []
        if links:
            rendered = ", ".join(
                f'<{page_url(link_base, request.query_string, target)}>; rel="{rel}"' for target, rel in links
            )
            headers.append(("Link", rendered))
        return json_response(200, [to_json(item) for item in window], headers)

    def body_too_long(self, body: str) -> bool:
        size = len(body.encode("utf-8")) if self.body_limit_unit == "bytes" else len(body)
        return size > self.body_limit

    def validate_comment_body(self, request: Request):
        """Return (body, None) or (None, error response) for a create or update request."""
        payload, problem = read_json_object(request)
        if problem:
            return None, self.error(400, problem)
        if "body" not in payload or payload["body"] is None:
            return None, self.validation_failed([
                {"resource": "IssueComment", "code": "missing_field", "field": "body"},
            ])
        body = payload["body"]
        if not isinstance(body, str):
            return None, self.validation_failed([
                {"resource": "IssueComment", "code": "invalid", "field": "body"},
            ])
        if not body.strip():
            return None, self.validation_failed([{
                "resource": "IssueComment",
                "code": "custom",
                "field": "body",
                "message": "Body cannot be blank",
            }])
        if self.body_too_long(body):
            return None, self.validation_failed([{
                "resource": "IssueComment",
                "code": "unprocessable",
                "field": "data",
                "message": f"Body is too long (maximum is {self.body_limit} characters)",
            }])
        return body, None

    def create_comment(self, request: Request, identity, number: int) -> Response:
        if number not in self.pulls:
            return self.not_found()
        if not self.can(identity, ("issues", "pull_requests"), "write"):
            return self.forbidden("issues=write; pull_requests=write")
        body, error = self.validate_comment_body(request)
        if error:
            return error
        comment = self._new_comment(number, body, identity.user_json(), time.time())
        payload = self.comment_json(comment, request)
        return json_response(201, payload, [("Location", payload["url"])])

    def get_comment(self, request: Request, identity, comment_id: int) -> Response:
        comment = self.find_comment(comment_id)
        if comment is None:
            return self.not_found()
        if not self.can(identity, ("issues", "pull_requests"), "read"):
            return self.forbidden("issues=read; pull_requests=read")
        return json_response(200, self.comment_json(comment, request))

    def check_comment_write(self, identity, comment):
        if not self.can(identity, ("issues", "pull_requests"), "write"):
            return self.forbidden("issues=write; pull_requests=write")
        if not identity.can_edit_others and comment["user"]["login"] != identity.login:
            return self.error(403, NOT_ACCESSIBLE)
        return None

    def update_comment(self, request: Request, identity, comment_id: int) -> Response:
        comment = self.find_comment(comment_id)
        if comment is None:
            return self.not_found()
        error = self.check_comment_write(identity, comment)
        if error:
            return error
        body, error = self.validate_comment_body(request)
        if error:
            return error
        comment["body"] = body
        comment["updated_at"] = max(time.time(), comment["created_at"])
        return json_response(200, self.comment_json(comment, request))

    def delete_comment(self, request: Request, identity, comment_id: int) -> Response:
        comment = self.find_comment(comment_id)
        if comment is None:
            return self.not_found()
        error = self.check_comment_write(identity, comment)
        if error:
            return error
        self.comments.remove(comment)
        return no_content()

    # -- pull requests

    def get_pull(self, request: Request, identity, number: int) -> Response:
        pull = self.pulls.get(number)
        if pull is None:
            return self.not_found()
        if not self.can(identity, ("pull_requests",), "read"):
            return self.forbidden("pull_requests=read")
        return json_response(200, self.pull_json(pull, request))

    def list_pulls(self, request: Request, identity) -> Response:
        if not self.can(identity, ("pull_requests",), "read"):
            return self.forbidden("pull_requests=read")
        state = request.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            return self.validation_failed([{"resource": "PullRequest", "field": "state", "code": "invalid"}])
        selected = sorted(self.pulls.values(), key=lambda p: -p["number"])
        if state != "all":
            selected = [p for p in selected if p["state"] == state]
        head = request.query.get("head")
        if head:
            owner, _, branch = head.rpartition(":")
            selected = [
                p for p in selected
                if p["head_ref"] == branch
                and (not owner or (p["head_repo"] or "").split("/")[0].lower() == owner.lower())
            ]
        base = request.query.get("base")
        if base:
            selected = [p for p in selected if p["base_ref"] == base]
        link_base = f"{self.api_root(request)}{self.repo_api_path()}/pulls"
        return self.paginate(request, selected, link_base, lambda p: self.pull_json(p, request))

    def list_commit_pulls(self, request: Request, identity, sha: str) -> Response:
        """List pull requests associated with a commit.

        Pull requests that only contain the commit come before those whose head it is,
        so a caller that takes the first element without checking head.sha gets the wrong one.
        """
        if not self.can(identity, ("pull_requests",), "read"):
            return self.forbidden("pull_requests=read")
        containing = [p for p in self.pulls.values() if sha in p["commits"] and p["head_sha"] != sha]
        heads = [p for p in self.pulls.values() if p["head_sha"] == sha]
        selected = sorted(containing, key=lambda p: p["number"]) + sorted(heads, key=lambda p: p["number"])
        link_base = f"{self.api_root(request)}{self.repo_api_path()}/commits/{sha}/pulls"
        return self.paginate(request, selected, link_base, lambda p: self.pull_json(p, request))

    # -- commit statuses

    def create_status(self, request: Request, identity, sha: str) -> Response:
        if not self.can(identity, ("statuses",), "write"):
            return self.forbidden("statuses=write")
        payload, problem = read_json_object(request)
        if problem:
            return self.error(400, problem)

        state = payload.get("state")
        if state is None:
            return self.validation_failed([{"resource": "Status", "code": "missing_field", "field": "state"}])
        if state not in GITHUB_STATUS_STATES:
            return self.validation_failed([{"resource": "Status", "code": "invalid", "field": "state"}])

        context = payload.get("context") or "default"
        same = [
            s for s in self.statuses
            if s["sha"] == sha and s["context"].lower() == str(context).lower()
        ]
        if len(same) >= GITHUB_MAX_STATUSES_PER_CONTEXT:
            return self.validation_failed([{
                "resource": "Status", "code": "custom", "field": "context",
                "message": "This SHA and context has reached the maximum number of statuses.",
            }])

        stamp = format_github_time(time.time())
        status = {
            "id": self.next_status_id,
            "node_id": f"SC_fake{self.next_status_id}",
            "sha": sha,
            "state": state,
            "description": payload.get("description"),
            "target_url": payload.get("target_url"),
            "context": context,
            "created_at": stamp,
            "updated_at": stamp,
            "creator": identity.user_json(),
            "url": f"{self.api_root(request)}/repos/{self.repository}/statuses/{sha}",
        }
        self.next_status_id += 1
        self.statuses.append(status)
        return json_response(201, status)

    # -- GraphQL

    def graphql(self, request: Request, identity) -> Response:
        payload, problem = read_json_object(request)
        if problem:
            return self.error(400, problem)
        query = payload.get("query")
        variables = payload.get("variables") or {}
        if not isinstance(query, str) or not isinstance(variables, dict):
            return json_response(200, {"errors": [{"message": "A query string is required"}]})
        calls = list(GRAPHQL_MUTATION_PATTERN.finditer(query))
        if not calls or not query.lstrip().startswith("mutation"):
            return json_response(200, {"errors": [{
                "message": "This fake GraphQL endpoint supports only the minimizeComment and "
                           "unminimizeComment mutations.",
            }]})
        data, errors = {}, []
        for call in calls:
            alias = call.group(1) or call.group(2)
            mutation = call.group(2)
            arguments, problem = self._graphql_input(call.group(3), variables, mutation == "minimizeComment")
            if problem:
                return json_response(200, {"errors": [{"message": problem}]})
            data[alias], error = self._apply_minimize(mutation, arguments, identity, alias)
            if error:
                errors.append(error)
        result = {"data": data}
        if errors:
            result["errors"] = errors
        return json_response(200, result)

    def _graphql_input(self, text: str, variables: dict, needs_classifier: bool):
        """Return ({subjectId, classifier}, None) or (None, error message) for one mutation input."""
        if text.startswith("$"):
            value = variables.get(text[1:])
            if not isinstance(value, dict):
                return None, f"Variable {text} of type MinimizeCommentInput! was provided invalid value"
            arguments = {"subjectId": value.get("subjectId"), "classifier": value.get("classifier")}
        else:
            arguments = {}
            for name in ("subjectId", "classifier"):
                match = re.search(name + r'\s*:\s*("(?:[^"\\]|\\.)*"|\$\w+|[A-Za-z_]+)', text)
                if match is None:
                    arguments[name] = None
                    continue
                token = match.group(1)
                if token.startswith('"'):
                    arguments[name] = json.loads(token)
                elif token.startswith("$"):
                    arguments[name] = variables.get(token[1:])
                else:
                    arguments[name] = token
        if not isinstance(arguments["subjectId"], str):
            return None, (
                "Argument 'subjectId' on InputObject 'MinimizeCommentInput' is required. Expected type ID!"
            )
        if needs_classifier and arguments["classifier"] not in GITHUB_MINIMIZE_CLASSIFIERS:
            return None, (
                f"Argument 'classifier' on InputObject 'MinimizeCommentInput' has an invalid value "
                f"({arguments['classifier']}). Expected type 'ReportedContentClassifiers!'."
            )
        return arguments, None

    def _apply_minimize(self, mutation: str, arguments: dict, identity, alias: str):
        """Return (mutation result or None, GraphQL error or None)."""
        node_id = arguments["subjectId"]
        comment = next((c for c in self.comments if c["node_id"] == node_id), None)
        if comment is None:
            return None, {
                "type": "NOT_FOUND", "path": [alias],
                "message": f"Could not resolve to a node with the global id of '{node_id}'",
            }
        if not self.can(identity, ("issues", "pull_requests"), "write"):
            return None, {"type": "FORBIDDEN", "path": [alias], "message": NOT_ACCESSIBLE}
        if mutation == "minimizeComment":
            comment["minimized"] = True
            comment["classifier"] = arguments["classifier"]
            node = {
                "isMinimized": True,
                "minimizedReason": arguments["classifier"].lower(),
                "viewerCanMinimize": True,
            }
            return {"clientMutationId": None, "minimizedComment": node}, None
        comment["minimized"] = False
        comment["classifier"] = None
        node = {"isMinimized": False, "minimizedReason": None, "viewerCanMinimize": True}
        return {"clientMutationId": None, "unminimizedComment": node}, None

    # -- inspection

    def inspect_comments(self, number: int, request: Request):
        if number not in self.pulls:
            return None
        result = []
        for comment in self.comments:
            if comment["pr"] == number:
                item = self.comment_json(comment, request)
                item["fake_state"] = {"minimized": comment["minimized"], "classifier": comment["classifier"]}
                result.append(item)
        return result

    def inspect_statuses(self):
        return self.statuses

    def inspect_quick_actions(self):
        return []


# ---------------------------------------------------------------------------
# GitLab


@dataclass
class GitLabIdentity:
    kind: str
    scopes: list
    user: dict
    can_edit_others: bool

    def has_scope(self, level: str) -> bool:
        if level == "write":
            return "api" in self.scopes
        return "api" in self.scopes or "read_api" in self.scopes


class GitLabApi:
    """The GitLab REST v4 routes over one project's state."""

    SCENARIO_KEYS = {
        "project", "server_url", "tokens", "merge_requests", "notes", "faults",
        "per_page_default", "per_page_max", "base_time", "first_note_id", "omit_totals",
        "body_limit", "body_limit_unit", "job_token_reads_notes", "allow_anonymous_reads",
    }

    def __init__(self, scenario: dict, prefix: str):
        check_keys(scenario, self.SCENARIO_KEYS, "scenario")
        self.api_prefix = prefix + "/api/v4"

        project = check_keys(scenario.get("project", {}), {"id", "path"}, "scenario.project")
        self.project_id = optional(project, "id", int, 1, "scenario.project")
        self.project_path = optional(project, "path", str, "group/project", "scenario.project")
        server_url = optional(scenario, "server_url", str, "https://gitlab.example.com", "scenario")
        self.server_url = server_url.rstrip("/")

        self.per_page_default, self.per_page_max = parse_page_sizes(scenario, 20)
        self.omit_totals = optional(scenario, "omit_totals", bool, False, "scenario")
        self.body_limit = optional(scenario, "body_limit", int, GITLAB_BODY_LIMIT, "scenario")
        self.body_limit_unit = parse_body_limit_unit(scenario)
        self.job_token_reads_notes = optional(scenario, "job_token_reads_notes", bool, True, "scenario")
        self.allow_anonymous_reads = optional(scenario, "allow_anonymous_reads", bool, False, "scenario")

        self.base_time = parse_time(scenario.get("base_time", DEFAULT_BASE_TIME), "scenario.base_time")
        self.next_note_id = optional(scenario, "first_note_id", int, 2_200_000_001, "scenario")
        self.next_status_id = 8_000_000_001
        self.tokens = self._parse_tokens(scenario.get("tokens"))
        self.faults = parse_faults(scenario.get("faults", []))

        self.merge_requests = {}
        for index, spec in enumerate(optional(scenario, "merge_requests", list, [], "scenario")):
            merge_request = self._parse_merge_request(spec, f"scenario.merge_requests[{index}]")
            if merge_request["iid"] in self.merge_requests:
                where = f"scenario.merge_requests[{index}].iid"
                raise ScenarioError(f"{where} {merge_request['iid']} appears twice")
            self.merge_requests[merge_request["iid"]] = merge_request

        self.notes = []
        for index, spec in enumerate(optional(scenario, "notes", list, [], "scenario")):
            self._add_scenario_notes(spec, f"scenario.notes[{index}]")

        self.statuses = []
        self.quick_actions = []

    # -- scenario parsing

    def _parse_tokens(self, value):
        if value is None:
            return None
        require_type(value, dict, "scenario.tokens")
        tokens = {}
        for index, (token, spec) in enumerate(value.items()):
            where = f"scenario.tokens[#{index}]"
            check_keys(spec, {"kind", "scopes", "username", "user_id", "name", "can_edit_others"}, where)
            kind = optional(spec, "kind", str, "project", where)
            if kind not in GITLAB_TOKEN_KINDS:
                raise ScenarioError(
                    f"{where}.kind is {kind!r}, but it must be one of {list(GITLAB_TOKEN_KINDS)}"
                )
            tokens[token] = GitLabIdentity(
                kind=kind,
                scopes=optional(spec, "scopes", list, ["api"], where),
                user={
                    "id": optional(spec, "user_id", int, GITLAB_DEFAULT_USER["id"], where),
                    "username": optional(spec, "username", str, GITLAB_DEFAULT_USER["username"], where),
                    "name": optional(spec, "name", str, GITLAB_DEFAULT_USER["name"], where),
                },
                can_edit_others=optional(spec, "can_edit_others", bool, False, where),
            )
        return tokens

    def _parse_merge_request(self, spec, where: str) -> dict:
        keys = {
            "iid", "sha", "source_branch", "target_branch", "source_project_id", "fork", "labels",
            "state", "draft", "title", "commits", "base_sha",
        }
        check_keys(spec, keys, where)
        if "iid" not in spec or "sha" not in spec:
            raise ScenarioError(f"{where} needs 'iid' and 'sha'")
        iid = require_type(spec["iid"], int, f"{where}.iid")

        fork = optional(spec, "fork", bool, False, where)
        default_source = self.project_id + 1000 if fork else self.project_id
        source_project_id = optional(spec, "source_project_id", int, default_source, where)

        state = optional(spec, "state", str, "opened", where)
        if state not in GITLAB_MR_STATES:
            raise ScenarioError(f"{where}.state is {state!r}, but it must be one of {list(GITLAB_MR_STATES)}")
        labels = optional(spec, "labels", list, [], where)
        commits = optional(spec, "commits", list, [], where)

        return {
            "iid": iid,
            "sha": require_type(spec["sha"], str, f"{where}.sha"),
            "source_branch": optional(spec, "source_branch", str, f"feature-{iid}", where),
            "target_branch": optional(spec, "target_branch", str, "main", where),
            "source_project_id": source_project_id,
            "labels": [require_type(label, str, f"{where}.labels[]") for label in labels],
            "state": state,
            "draft": optional(spec, "draft", bool, False, where),
            "title": optional(spec, "title", str, f"Merge request {iid}", where),
            "commits": [require_type(sha, str, f"{where}.commits[]") for sha in commits],
            "base_sha": optional(spec, "base_sha", str, make_fake_sha(f"base{iid}"), where),
        }

    def _add_scenario_notes(self, spec, where: str):
        keys = {"mr", "body", "count", "username", "user_id", "name", "system", "created_at", "updated_at"}
        check_keys(spec, keys, where)
        if "mr" not in spec or "body" not in spec:
            raise ScenarioError(f"{where} needs 'mr' and 'body'")
        iid = require_type(spec["mr"], int, f"{where}.mr")
        if iid not in self.merge_requests:
            raise ScenarioError(f"{where}.mr {iid} is not in scenario.merge_requests")
        template = require_type(spec["body"], str, f"{where}.body")
        count = optional(spec, "count", int, 1, where)
        author = {
            "id": optional(spec, "user_id", int, 2001, where),
            "username": optional(spec, "username", str, "alice", where),
            "name": optional(spec, "name", str, "Alice", where),
        }
        system = optional(spec, "system", bool, False, where)
        created_at = parse_time(spec["created_at"], f"{where}.created_at") if "created_at" in spec else None
        updated_at = parse_time(spec["updated_at"], f"{where}.updated_at") if "updated_at" in spec else None
        for position in range(1, count + 1):
            stamp = created_at if created_at is not None else self.base_time + 60 * len(self.notes)
            note = self._new_note(iid, template.replace("{i}", str(position)), author, stamp, system)
            note["updated_at"] = updated_at if updated_at is not None else stamp

    def _new_note(self, iid: int, body: str, author: dict, stamp: float, system: bool) -> dict:
        note = {
            "id": self.next_note_id,
            "mr": iid,
            "body": body,
            "author": author,
            "created_at": stamp,
            "updated_at": stamp,
            "system": system,
            "quick_actions": [],
        }
        self.next_note_id += 1
        self.notes.append(note)
        return note

    # -- serialization

    def user_json(self, user: dict) -> dict:
        return {
            "id": user["id"],
            "username": user["username"],
            "name": user["name"],
            "state": "active",
            "avatar_url": None,
            "web_url": f"{self.server_url}/{user['username']}",
        }

    def note_json(self, note: dict) -> dict:
        return {
            "id": note["id"],
            "type": None,
            "body": note["body"],
            "attachment": None,
            "author": self.user_json(note["author"]),
            "created_at": format_gitlab_time(note["created_at"]),
            "updated_at": format_gitlab_time(note["updated_at"]),
            "system": note["system"],
            "noteable_id": self.merge_request_global_id(note["mr"]),
            "noteable_type": "MergeRequest",
            "project_id": self.project_id,
            "resolvable": False,
            "confidential": False,
            "internal": False,
            "noteable_iid": note["mr"],
            "commands_changes": {},
        }

    def merge_request_global_id(self, iid: int) -> int:
        return 500_000_000 + self.project_id * 10_000 + iid

    def merge_request_json(self, merge_request: dict) -> dict:
        iid = merge_request["iid"]
        stamp = format_gitlab_time(self.base_time)
        return {
            "id": self.merge_request_global_id(iid),
            "iid": iid,
            "project_id": self.project_id,
            "title": merge_request["title"],
            "description": "",
            "state": merge_request["state"],
            "created_at": stamp,
            "updated_at": stamp,
            "target_branch": merge_request["target_branch"],
            "source_branch": merge_request["source_branch"],
            "source_project_id": merge_request["source_project_id"],
            "target_project_id": self.project_id,
            "labels": merge_request["labels"],
            "draft": merge_request["draft"],
            "work_in_progress": merge_request["draft"],
            "merge_status": "can_be_merged",
            "sha": merge_request["sha"],
            "web_url": f"{self.server_url}/{self.project_path}/-/merge_requests/{iid}",
            "references": {"short": f"!{iid}", "full": f"{self.project_path}!{iid}"},
            "diff_refs": {
                "base_sha": merge_request["base_sha"],
                "head_sha": merge_request["sha"],
                "start_sha": merge_request["base_sha"],
            },
        }

    # -- responses

    @staticmethod
    def message(status: int, text) -> Response:
        return json_response(status, {"message": text})

    def unauthorized(self) -> Response:
        return self.message(401, "401 Unauthorized")

    def insufficient_scope(self) -> Response:
        return json_response(403, {
            "error": "insufficient_scope",
            "error_description": "The request requires higher privileges than provided by the access token.",
            "scope": "api",
        })

    def route_not_found(self) -> Response:
        return json_response(404, {"error": "404 Not Found"})

    def paginate(self, request: Request, items: list, link_base: str, to_json) -> Response:
        page, per_page = page_window(request.query, self.per_page_default, self.per_page_max)
        total_pages = max(1, math.ceil(len(items) / per_page))
        window = items[(page - 1) * per_page: page * per_page]
        next_page = page + 1 if page < total_pages else None
        prev_page = min(page - 1, total_pages) if page > 1 else None
        headers = [
            ("X-Page", str(page)),
            ("X-Per-Page", str(per_page)),
            ("X-Next-Page", str(next_page) if next_page else ""),
            ("X-Prev-Page", str(prev_page) if prev_page else ""),
        ]
        if not self.omit_totals:
            headers.append(("X-Total", str(len(items))))
            headers.append(("X-Total-Pages", str(total_pages)))
        links = []
        if prev_page:
            links.append((prev_page, "prev"))
        if next_page:
            links.append((next_page, "next"))
        links.append((1, "first"))
        if not self.omit_totals:
            links.append((total_pages, "last"))
        rendered = ", ".join(
            f'<{page_url(link_base, request.query_string, target)}>; rel="{rel}"' for target, rel in links
        )
        headers.append(("Link", rendered))
        return json_response(200, [to_json(item) for item in window], headers)

    # -- request handling

    def authenticate(self, request: Request):
        """Return (identity or None for anonymous, error response or None)."""
        job_token = request.headers.get("job-token")
        private_token = request.headers.get("private-token")
        authorization = request.headers.get("authorization")
        if job_token is not None:
            if self.tokens is None:
                return GitLabIdentity("job", [], GITLAB_DEFAULT_USER, False), None
            identity = self.tokens.get(job_token)
            if identity is None or identity.kind != "job":
                return None, self.unauthorized()
            return identity, None
        if private_token is not None:
            token = private_token.strip()
        elif authorization is not None:
            scheme, _, token = authorization.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return None, self.unauthorized()
        else:
            return None, None
        if self.tokens is None:
            return GitLabIdentity("project", ["api"], GITLAB_DEFAULT_USER, False), None
        identity = self.tokens.get(token)
        if identity is None or identity.kind == "job":
            return None, self.unauthorized()
        if identity.kind == "oauth" and private_token is not None:
            return None, self.unauthorized()
        return identity, None

    def handle(self, request: Request) -> Response:
        if not request.path.startswith(self.api_prefix + "/"):
            return self.route_not_found()
        identity, error = self.authenticate(request)
        if error:
            return error
        raw_segments = request.path[len(self.api_prefix):].split("/")[1:]
        segments = [urllib.parse.unquote(s) for s in raw_segments]
        if segments == ["user"] and request.method == "GET":
            if identity is None or identity.kind == "job":
                return self.unauthorized()
            return json_response(200, self.user_json(identity.user))
        if len(segments) < 3 or segments[0] != "projects":
            return self.route_not_found()
        if segments[1] != str(self.project_id) and segments[1].lower() != self.project_path.lower():
            if identity is None:
                return self.unauthorized()
            return self.message(404, "404 Project Not Found")
        return self.route(request, segments[2:], identity)

    def route(self, request: Request, rest: list, identity) -> Response:
        method = request.method
        is_notes = len(rest) >= 3 and rest[0] == "merge_requests" and rest[2] == "notes"

        if identity is not None and identity.kind == "job":
            if not (is_notes and method == "GET" and self.job_token_reads_notes):
                return self.unauthorized()
        elif identity is None and (method != "GET" or not self.allow_anonymous_reads):
            return self.unauthorized()
        elif identity is not None and identity.kind != "job":
            if not identity.has_scope("read" if method == "GET" else "write"):
                return self.insufficient_scope()

        if is_notes and rest[1].isdigit():
            iid = int(rest[1])
            if len(rest) == 3:
                if method == "GET":
                    return self.list_notes(request, iid)
                if method == "POST":
                    return self.create_note(request, identity, iid)
                return json_response(405, {"error": "405 Method Not Allowed"})
            if len(rest) == 4 and rest[3].isdigit():
                handlers = {"GET": self.get_note, "PUT": self.update_note, "DELETE": self.delete_note}
                if method in handlers:
                    return handlers[method](request, identity, iid, int(rest[3]))
                return json_response(405, {"error": "405 Method Not Allowed"})
        if rest == ["merge_requests"] and method == "GET":
            return self.list_merge_requests(request)
        if len(rest) == 2 and rest[0] == "merge_requests" and rest[1].isdigit() and method == "GET":
            merge_request = self.merge_requests.get(int(rest[1]))
            if merge_request is None:
                return self.message(404, "404 Not found")
            return json_response(200, self.merge_request_json(merge_request))
        is_commit_route = len(rest) == 4 and rest[:2] == ["repository", "commits"]
        if is_commit_route and rest[3] == "merge_requests" and method == "GET":
            return self.list_commit_merge_requests(request, rest[2])
        if len(rest) == 2 and rest[0] == "statuses" and rest[1] and method == "POST":
            return self.create_status(request, identity, rest[1])
        return self.route_not_found()

    def read_params(self, request: Request) -> dict:
        """Return the request parameters: query string, then a form or JSON body, as Grape merges them."""
        params = dict(request.query)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        text = request.body.decode("utf-8", errors="replace")
        if content_type == "application/json" and text.strip():
            payload = json.loads(text)
            if isinstance(payload, dict):
                params.update(payload)
        elif content_type == "application/x-www-form-urlencoded":
            params.update(dict(urllib.parse.parse_qsl(text, keep_blank_values=True)))
        return params

    def note_body_param(self, request: Request):
        """Return (body, None) or (None, error response) for a note create or update."""
        try:
            params = self.read_params(request)
        except json.JSONDecodeError:
            return None, self.message(400, "400 Bad request - the request body is not valid JSON")
        if "body" not in params or params["body"] is None:
            return None, json_response(400, {"error": "body is missing"})
        body = params["body"]
        if not isinstance(body, str):
            return None, json_response(400, {"error": "body is invalid"})
        if not body.strip():
            return None, json_response(400, {"error": "body is empty"})
        size = len(body.encode("utf-8")) if self.body_limit_unit == "bytes" else len(body)
        if size > self.body_limit:
            # NOTE: GitLab releases word this 400 differently. This is the form reported for
            # GitLab 13 in 2021, and other releases may wrap or render the error hash otherwise.
            text = (
                "400 Bad request - Note "
                f'{{:note=>["is too long (maximum is {self.body_limit} characters)"]}}'
            )
            return None, self.message(400, text)
        return body, None

    # -- notes

    def find_note(self, iid: int, note_id: int):
        for note in self.notes:
            if note["id"] == note_id and note["mr"] == iid:
                return note
        return None

    def list_notes(self, request: Request, iid: int) -> Response:
        if iid not in self.merge_requests:
            return self.message(404, "404 Not found")
        sort = request.query.get("sort", "desc")
        order_by = request.query.get("order_by", "created_at")
        if sort not in ("asc", "desc"):
            return json_response(400, {"error": "sort does not have a valid value"})
        if order_by not in ("created_at", "updated_at"):
            return json_response(400, {"error": "order_by does not have a valid value"})
        selected = [n for n in self.notes if n["mr"] == iid]
        selected.sort(key=lambda n: (n[order_by], n["id"]), reverse=(sort == "desc"))
        link_base = f"{request.base_url}{request.path}"
        return self.paginate(request, selected, link_base, self.note_json)

    def get_note(self, request: Request, identity, iid: int, note_id: int) -> Response:
        note = self.find_note(iid, note_id)
        if note is None:
            return self.message(404, "404 Not found")
        return json_response(200, self.note_json(note))

    def create_note(self, request: Request, identity, iid: int) -> Response:
        if iid not in self.merge_requests:
            return self.message(404, "404 Not found")
        body, error = self.note_body_param(request)
        if error:
            return error
        stored_body, actions = extract_quick_actions(body)
        for action in actions:
            self.quick_actions.append({"mr": iid, "command": action, "author": identity.user["username"]})
        if actions and not stored_body.strip():
            # GitLab creates no note for a body made only of quick actions and returns 202.
            summary = [f"Ran quick action {action.split()[0]}" for action in actions]
            return json_response(202, {"commands_changes": {}, "summary": summary})
        note = self._new_note(iid, stored_body if actions else body, identity.user, time.time(), False)
        note["quick_actions"] = actions
        return json_response(201, self.note_json(note))

    def check_note_write(self, identity, note):
        if note["system"]:
            return self.message(403, "403 Forbidden")
        if not identity.can_edit_others and note["author"]["username"] != identity.user["username"]:
            return self.message(403, "403 Forbidden")
        return None

    def update_note(self, request: Request, identity, iid: int, note_id: int) -> Response:
        note = self.find_note(iid, note_id)
        if note is None:
            return self.message(404, "404 Not found")
        error = self.check_note_write(identity, note)
        if error:
            return error
        body, error = self.note_body_param(request)
        if error:
            return error
        note["body"] = body
        note["updated_at"] = max(time.time(), note["created_at"])
        return json_response(200, self.note_json(note))

    def delete_note(self, request: Request, identity, iid: int, note_id: int) -> Response:
        note = self.find_note(iid, note_id)
        if note is None:
            return self.message(404, "404 Not found")
        error = self.check_note_write(identity, note)
        if error:
            return error
        self.notes.remove(note)
        return no_content()

    # -- merge requests

    def list_merge_requests(self, request: Request) -> Response:
        state = request.query.get("state", "all")
        if state not in GITLAB_MR_STATES + ("all",):
            return json_response(400, {"error": "state does not have a valid value"})
        selected = sorted(self.merge_requests.values(), key=lambda m: -m["iid"])
        if state != "all":
            selected = [m for m in selected if m["state"] == state]
        for key in ("source_branch", "target_branch"):
            if request.query.get(key):
                selected = [m for m in selected if m[key] == request.query[key]]
        link_base = f"{request.base_url}{request.path}"
        return self.paginate(request, selected, link_base, self.merge_request_json)

    def list_commit_merge_requests(self, request: Request, sha: str) -> Response:
        """List merge requests associated with a commit.

        Merge requests that only contain the commit come before those whose head it is,
        so a caller that takes the first element without checking sha gets the wrong one.
        """
        values = self.merge_requests.values()
        containing = [m for m in values if sha in m["commits"] and m["sha"] != sha]
        heads = [m for m in values if m["sha"] == sha]
        selected = sorted(containing, key=lambda m: m["iid"]) + sorted(heads, key=lambda m: m["iid"])
        link_base = f"{request.base_url}{request.path}"
        return self.paginate(request, selected, link_base, self.merge_request_json)

    # -- commit statuses

    def create_status(self, request: Request, identity, sha: str) -> Response:
        try:
            params = self.read_params(request)
        except json.JSONDecodeError:
            return self.message(400, "400 Bad request - the request body is not valid JSON")

        state = params.get("state")
        if state is None:
            return json_response(400, {"error": "state is missing"})
        if state not in GITLAB_STATUS_STATES:
            return json_response(400, {"error": "state does not have a valid value"})
        name = params.get("name") or params.get("context") or "default"
        error = self.check_status_transition(sha, name, state)
        if error:
            return error

        stamp = format_gitlab_time(time.time())
        status = {
            "id": self.next_status_id,
            "sha": sha,
            "ref": params.get("ref"),
            "status": state,
            "name": name,
            "target_url": params.get("target_url"),
            "description": params.get("description"),
            "coverage": params.get("coverage"),
            "pipeline_id": params.get("pipeline_id"),
            "created_at": stamp,
            "started_at": None,
            "finished_at": None,
            "allow_failure": False,
            "author": self.user_json(identity.user),
        }
        self.next_status_id += 1
        self.statuses.append(status)
        return json_response(201, status)

    def check_status_transition(self, sha: str, name: str, state: str):
        """Return a 400 response for a state change that GitLab rejects, else None.

        GitLab rejects `pending` over `pending` and `running` over `running` for the same sha
        and name. NOTE: the fake also rejects `pending` over `running` and accepts any state
        after a finished one. Both follow GitLab's status state machine but were not checked
        against a GitLab server.
        """
        previous = [s["status"] for s in self.statuses if s["sha"] == sha and s["name"] == name]
        if not previous or previous[-1] not in ("pending", "running"):
            return None
        current = previous[-1]
        if state == "pending":
            return self.message(400, f"Cannot transition status via :enqueue from :{current}")
        if state == "running" and current == "running":
            return self.message(400, "Cannot transition status via :run from :running")
        return None

    # -- inspection

    def inspect_comments(self, iid: int, request: Request):
        if iid not in self.merge_requests:
            return None
        result = []
        notes = sorted((n for n in self.notes if n["mr"] == iid), key=lambda n: (n["created_at"], n["id"]))
        for note in notes:
            item = self.note_json(note)
            item["fake_state"] = {"quick_actions": note["quick_actions"]}
            result.append(item)
        return result

    def inspect_statuses(self):
        return self.statuses

    def inspect_quick_actions(self):
        return self.quick_actions


# ---------------------------------------------------------------------------
# Server


class ForgeServer(ThreadingHTTPServer):
    """The HTTP server with the scenario, the API state and the request log behind one lock."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, kind: str, prefix: str, initial_scenario: dict, quiet: bool):
        self.kind = kind
        self.prefix = prefix
        self.quiet = quiet
        self.lock = threading.Lock()
        self.initial_scenario = initial_scenario
        self.scenario = initial_scenario
        self.api = self.build_api(initial_scenario)
        self.request_log = []
        super().__init__((LISTEN_HOST, port), ForgeRequestHandler)

    def build_api(self, scenario: dict):
        if not isinstance(scenario, dict):
            raise ScenarioError("the scenario must be a JSON object")
        api_class = GitHubApi if self.kind == "github" else GitLabApi
        return api_class(scenario, self.prefix)

    def replace_scenario(self, scenario: dict):
        api = self.build_api(scenario)
        with self.lock:
            self.scenario = scenario
            self.api = api
            self.request_log = []


class ForgeRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "forge-fake/1.0"

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def log_message(self, format, *args):
        """Log one access or state-change line to stderr unless --quiet is set."""
        if not self.server.quiet:
            sys.stderr.write(f"forge fake ({self.server.kind}): {format % args}\n")

    def log_error(self, format, *args):
        sys.stderr.write(f"forge fake ({self.server.kind}) error: {format % args}\n")

    # -- reading

    def read_body(self) -> bytes:
        """Read a Content-Length or chunked request body, or raise RequestBodyError if it is invalid."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size_line = self.rfile.readline().split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    raise RequestBodyError(400, f"invalid chunk size {size_line[:20]!r}") from None
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_REQUEST_BODY_BYTES:
                    raise RequestBodyError(413, f"request body is over {MAX_REQUEST_BODY_BYTES} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise RequestBodyError(400, "invalid Content-Length header") from None
        if length > MAX_REQUEST_BODY_BYTES:
            raise RequestBodyError(413, f"request body is over {MAX_REQUEST_BODY_BYTES} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def build_request(self, body: bytes) -> Request:
        target = self.path
        if target.startswith(("http://", "https://")):
            # A request sent through a proxy carries the absolute URL.
            parts = urllib.parse.urlsplit(target)
            base_url = f"{parts.scheme}://{parts.netloc}"
            path, query_string = parts.path, parts.query
        else:
            path, _, query_string = target.partition("?")
            host = self.headers.get("Host") or f"{LISTEN_HOST}:{self.server.server_address[1]}"
            scheme = self.headers.get("X-Forwarded-Proto", "http")
            base_url = f"{scheme}://{host}"
        headers = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        query = dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
        return Request(self.command, path, query_string, query, headers, body, base_url)

    # -- writing

    def send(self, response: Response):
        if response.disconnect:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(response.status)
        names = set()
        for name, value in response.headers:
            self.send_header(name, value)
            names.add(name.lower())
        if response.status != 204 and "content-length" not in names:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body and response.status != 204:
            self.wfile.write(response.body)

    # -- dispatch

    def dispatch(self):
        try:
            body = self.read_body()
        except RequestBodyError as error:
            self.log_error("rejected request %s %s: %s", self.command, self.path, error.message)
            self.send(json_response(error.status, {"message": error.message}))
            self.close_connection = True
            return
        request = self.build_request(body)
        if request.path.startswith("/__fake/"):
            self.send(self.handle_control(request))
            return
        self.send(self.handle_api(request))

    def handle_api(self, request: Request) -> Response:
        """Apply the first due fault or run the API, then record the request with its status."""
        server = self.server
        with server.lock:
            api = server.api
            # Every matching fault counts the request, so `after` counts all matching
            # requests, but only the first fault that is due replaces the response.
            fault = None
            for candidate in api.faults:
                if not candidate.matches(request.method, request.path):
                    continue
                candidate.matched += 1
                if fault is None and candidate.is_due():
                    candidate.fired += 1
                    fault = candidate
        if fault is not None:
            self.log_message("fault %s fired on %s %s", fault.kind, request.method, request.path)
        if fault is not None and fault.delay_seconds > 0:
            time.sleep(fault.delay_seconds)

        with server.lock:
            if fault is None or fault.kind == "delay" or fault.perform:
                response = self.run_api(api, request)
            if fault is not None and fault.kind != "delay":
                response = fault.build_response(server.kind)
                if server.kind == "github" and fault.kind == "status":
                    # Real GitHub errors carry the rate-limit headers too, unless the fault sets its own.
                    api.add_standard_headers(response, "core")
            server.request_log.append({
                "seq": len(server.request_log) + 1,
                "time": time.time(),
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "query_string": request.query_string,
                "headers": request.headers,
                "body": request.body.decode("utf-8", errors="replace"),
                "body_bytes": len(request.body),
                "url": request.base_url + request.path + (
                    f"?{request.query_string}" if request.query_string else ""
                ),
                "status": None if response.disconnect else response.status,
                "fault": fault.kind if fault is not None else None,
            })
        return response

    def run_api(self, api, request: Request) -> Response:
        try:
            return api.handle(request)
        except Exception as error:  # noqa: BLE001 - a fake must report its own bugs, not drop the connection
            self.log_error("internal error on %s %s: %r", request.method, request.path, error)
            return json_response(500, {"message": f"forge fake internal error: {error!r}"})

    def handle_control(self, request: Request) -> Response:
        """Serve the /__fake/ routes that set up and inspect the state."""
        server = self.server
        route = (request.method, request.path.rstrip("/"))

        if route == ("GET", "/__fake/health"):
            return json_response(200, {"ok": True, "kind": server.kind})

        if route == ("GET", "/__fake/requests"):
            with server.lock:
                return json_response(200, list(server.request_log))

        if route == ("DELETE", "/__fake/requests"):
            with server.lock:
                server.request_log = []
            return no_content()

        if route == ("GET", "/__fake/scenario"):
            with server.lock:
                return json_response(200, server.scenario)

        if route == ("POST", "/__fake/scenario"):
            try:
                scenario = json.loads(request.body.decode("utf-8"))
                server.replace_scenario(scenario)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                self.log_error("rejected scenario: not valid JSON: %s", error)
                return json_response(400, {"message": f"the scenario is not valid JSON: {error}"})
            except ScenarioError as error:
                self.log_error("rejected invalid scenario: %s", error)
                return json_response(400, {"message": f"invalid scenario: {error}"})
            self.log_message("scenario replaced")
            return json_response(200, {"ok": True})

        if route == ("POST", "/__fake/reset"):
            server.replace_scenario(server.initial_scenario)
            self.log_message("state reset to the startup scenario")
            return json_response(200, {"ok": True})

        if route == ("GET", "/__fake/comments"):
            number = request.query.get("pr") or request.query.get("mr")
            if number is None or not number.isdigit():
                message = "missing or invalid 'pr' query parameter: pass the number, as in ?pr=7"
                return json_response(400, {"message": message})
            with server.lock:
                comments = server.api.inspect_comments(int(number), request)
            if comments is None:
                return json_response(404, {"message": f"no pull or merge request {number} in the scenario"})
            return json_response(200, comments)

        if route == ("GET", "/__fake/statuses"):
            with server.lock:
                statuses = list(server.api.inspect_statuses())
            sha = request.query.get("sha")
            return json_response(200, [s for s in statuses if sha is None or s["sha"] == sha])

        if route == ("GET", "/__fake/quick_actions"):
            with server.lock:
                return json_response(200, list(server.api.inspect_quick_actions()))

        if route == ("GET", "/__fake/faults"):
            with server.lock:
                return json_response(200, [f.describe() for f in server.api.faults])

        return json_response(404, {"message": f"unknown control route {request.method} {request.path}"})


def write_port_file(path: str, port: int):
    """Write the port so that a reader never sees a partial file."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".port-", dir=directory)
    with os.fdopen(handle, "w") as stream:
        stream.write(f"{port}\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def normalize_prefix(prefix: str) -> str:
    prefix = prefix.strip()
    if not prefix or prefix == "/":
        return ""
    return "/" + prefix.strip("/")


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description="Fake GitHub or GitLab API for end-to-end tests (127.0.0.1 only)."
    )
    parser.add_argument(
        "--kind", required=True, choices=("github", "gitlab"), help="which forge API to serve"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 picks a free port (default)"
    )
    parser.add_argument("--port-file", help="file that receives the bound port, written atomically")
    parser.add_argument("--scenario", help="JSON scenario file loaded at startup and by POST /__fake/reset")
    parser.add_argument(
        "--prefix", default="",
        help="path prefix of the API, such as '/api/v3' for GitHub Enterprise Server. For GitLab it is "
             "a relative URL root put before /api/v4 (default: none)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request to stderr")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    scenario = {}
    if arguments.scenario:
        try:
            with open(arguments.scenario, encoding="utf-8") as stream:
                scenario = json.load(stream)
        except (OSError, json.JSONDecodeError) as error:
            print(f"forge fake: cannot read scenario {arguments.scenario}: {error}", file=sys.stderr)
            return 2
    try:
        prefix = normalize_prefix(arguments.prefix)
        server = ForgeServer(arguments.port, arguments.kind, prefix, scenario, arguments.quiet)
    except ScenarioError as error:
        print(f"forge fake: invalid scenario {arguments.scenario}: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"forge fake: cannot listen on {LISTEN_HOST}:{arguments.port}: {error}", file=sys.stderr)
        return 1

    port = server.server_address[1]
    if arguments.port_file:
        write_port_file(arguments.port_file, port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"forge fake ({arguments.kind}) listening on http://{LISTEN_HOST}:{port}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
        print(f"forge fake ({arguments.kind}) stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
