"""Fixtures for the end-to-end tests: the real llmops-ci binary against the bundled fake
servers, each started on a free loopback port for the test that needs it."""

import functools
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FAKES = ROOT / "fakes"
PASSWORD = "canary-Pa55#word: x"


@functools.lru_cache(maxsize=None)
def binary_path():
    configured = os.environ.get("LLMOPS_CI_BINARY")
    if configured:
        return configured
    output = subprocess.run(
        ["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return os.path.join(output.stdout.strip(), "llmops-ci")


class FakeServer:
    """A fake server process; `url` is its base address."""

    def __init__(self, script, arguments, scenario=None, environment=None):
        self.directory = tempfile.mkdtemp(prefix="llmops-fake-")
        port_file = os.path.join(self.directory, "port")
        command = [sys.executable, str(FAKES / script), "--port", "0", "--port-file", port_file] + arguments
        if scenario is not None:
            scenario_path = os.path.join(self.directory, "scenario.json")
            with open(scenario_path, "w") as handle:
                json.dump(scenario, handle)
            command += ["--scenario", scenario_path]
        self.log = open(os.path.join(self.directory, "server.log"), "w")
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(environment or {})}
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            if self.process.poll() is not None:
                raise RuntimeError("fake server exited: " + open(self.log.name).read())
            time.sleep(0.02)
        else:
            raise RuntimeError("fake server did not start")
        self.port = int(open(port_file).read().strip())
        self.url = f"http://127.0.0.1:{self.port}"

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def post(self, path, body):
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def requests(self):
        return self.get("/__fake/requests")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture
def llmops_server():
    """Starts the fake LLMOps Eval server; call it with an optional scenario dict."""
    servers = []

    def start(scenario=None):
        server = FakeServer(
            "llmops_server.py", [], scenario=scenario, environment={"FAKE_LLMOPS_PASSWORD": PASSWORD}
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def forge_server():
    """Starts a fake GitHub or GitLab API server: forge_server("github", scenario)."""
    servers = []

    def start(kind, scenario=None, prefix=None):
        arguments = ["--kind", kind] + (["--prefix", prefix] if prefix else [])
        server = FakeServer("forge_server.py", arguments, scenario=scenario)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class Result:
    def __init__(self, completed, workdir):
        self.exit_code = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.workdir = pathlib.Path(workdir)

    def file(self, name):
        return (self.workdir / name).read_text()

    def json(self, name="llmops-results.json"):
        return json.loads(self.file(name))

    def __repr__(self):
        return f"exit={self.exit_code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


BASE_CONFIG = """\
version: 1
server:
  url: ${LLMOPS_API_URL}
  email: ci@example.com
  password: ${LLMOPS_CI_PASSWORD}
  retry_seconds: 2
project: demo
evaluations:
  - name: support-bot
    dataset: golden-qa
    endpoint: gpt-4o-prod
    metrics: [faithfulness, bleu]
polling:
  interval_seconds: 0.05
  max_interval_seconds: 0.2
  timeout_minutes: 1
"""


# A push build in GitHub Actions whose forge requests go to a closed loopback port, so no
# test reaches the internet.
GITHUB_PUSH = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
    "GITHUB_REF_NAME": "feature/gate",
    "GITHUB_WORKFLOW": "ci",
    "GITHUB_JOB": "llm-gate",
    "GITHUB_API_URL": "http://127.0.0.1:9",
}
FAILING_GATE = "gate:\n  thresholds:\n    faithfulness: { min: 0.95 }\n"

# Shared by the fault, orchestration and command-line suites.
START_PATH = re.compile(r"^/api/projects/[^/]+/evaluations$")
RUN_PATH = re.compile(r"^/api/evaluations/[^/]+$")
SECOND_PAIR = """\
  - name: edge-bot
    dataset: edge-cases
    endpoint: gpt-4o-prod
    metrics: [bleu]
"""
CRASH_MARKERS = ("Traceback", "Program crashed", "Fatal error", "Backtracing")


def configure(extra_evaluations="", retry_seconds=None, request_timeout=None, timeout_minutes=None, tail=""):
    """Return BASE_CONFIG with more evaluations, other limits and extra top-level sections."""
    text = BASE_CONFIG
    if extra_evaluations:
        marker = "    metrics: [faithfulness, bleu]\n"
        text = replace_once(text, marker, marker + extra_evaluations)
    if retry_seconds is not None:
        text = replace_once(text, "  retry_seconds: 2\n", f"  retry_seconds: {retry_seconds}\n")
    if request_timeout is not None:
        text = replace_once(text, "  retry_seconds:", f"  request_timeout_seconds: {request_timeout}\n  retry_seconds:")
    if timeout_minutes is not None:
        text = replace_once(text, "  timeout_minutes: 1\n", f"  timeout_minutes: {timeout_minutes}\n")
    return text + tail


def replace_once(text, old, new):
    assert text.count(old) == 1, f"{old!r} is not in the base configuration exactly once"
    return text.replace(old, new)


def start_requests(server):
    """The requests that started an evaluation."""
    return [entry for entry in server.requests() if entry["method"] == "POST" and START_PATH.match(entry["path"])]


def auth_requests(server, path):
    """The POST requests to one auth route, such as /api/auth/login."""
    return [entry for entry in server.requests() if entry["method"] == "POST" and entry["path"] == path]


def status_polls(server):
    """The requests that read one run's status."""
    return [entry for entry in server.requests() if entry["method"] == "GET" and RUN_PATH.match(entry["path"])]


@pytest.fixture
def run_agent(tmp_path):
    """Runs llmops-ci in a fresh folder with `config` as llmops.yml; returns a Result."""

    def run(arguments, config=None, environment=None, server=None, timeout=120):
        workdir = tmp_path / f"job-{len(list(tmp_path.iterdir()))}"
        workdir.mkdir()
        if config is not None:
            (workdir / "llmops.yml").write_text(config)
        variables = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "LLMOPS_CI_PASSWORD": PASSWORD,
        }
        if server is not None:
            variables["LLMOPS_API_URL"] = server.url
        variables.update(environment or {})
        completed = subprocess.run(
            [binary_path()] + arguments,
            cwd=workdir,
            env=variables,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(completed, workdir)

    return run


def forge_calls(forge):
    """Return (method, path) of every request that reached a fake forge, in order."""
    return [(entry["method"], entry["path"]) for entry in forge_requests(forge)]


def forge_requests(forge):
    """Every request that reached a fake forge, in order, without the identity lookup."""
    return [entry for entry in forge.requests() if not is_identity_lookup(entry)]


def is_identity_lookup(entry):
    """Return whether the request read the token's account, which the agent does once per run to tell its comments from people's copies."""
    return entry["method"] == "GET" and entry["path"].endswith("/user")


def warning_lines(result):
    """The warning lines the agent wrote to stderr, plain or as GitHub workflow commands."""
    return [line for line in result.stderr.splitlines() if line.startswith(("warning:", "::warning"))]
