"""Fixtures for the end-to-end tests: the real llmops-ci binary against the bundled fake
servers, each started on a free loopback port for the test that needs it."""

import functools
import json
import os
import pathlib
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
