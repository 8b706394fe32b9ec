"""Helpers shared by the benchmark scripts: tools, the machine description, the fake
server and the sections of BENCHMARKS.md."""

import datetime
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS_FILE = ROOT / "BENCHMARKS.md"
SCRATCH_PATH = ROOT / ".build-bench"
FAKE_PASSWORD = "bench-password"

_apt_updated = False
_scratch_directory = None


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def ensure_tool(command, package):
    """Install the Debian package `package` when `command` (a name or an absolute path) is missing."""
    global _apt_updated
    if os.path.isabs(command) and os.access(command, os.X_OK) or shutil.which(command):
        return
    log(f"{command} is missing; installing the Debian package {package}")
    if not _apt_updated:
        subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
        _apt_updated = True
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", package], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def scratch_directory(name):
    """Create and return a new folder for one step, inside this run's temporary folder."""
    global _scratch_directory
    if _scratch_directory is None:
        _scratch_directory = pathlib.Path(tempfile.mkdtemp(prefix="llmops-bench-"))
    return pathlib.Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_scratch_directory))


def remove_scratch_directories():
    """Delete this run's temporary folder, with the fake servers' logs and the jobs' outputs."""
    if _scratch_directory is not None:
        shutil.rmtree(_scratch_directory, ignore_errors=True)


def build_release(product):
    """Build `product` in release mode in the benchmark's own scratch path and return the binary's path."""
    command = ["swift", "build", "-c", "release", "--product", product, "--scratch-path", str(SCRATCH_PATH)]
    log(" ".join(command))
    subprocess.run(command, cwd=ROOT, check=True, stdout=sys.stderr)
    output = subprocess.run(command[:-4] + ["--scratch-path", str(SCRATCH_PATH), "--show-bin-path"],
                            cwd=ROOT, check=True, capture_output=True, text=True)
    return pathlib.Path(output.stdout.strip()) / product


def machine_description():
    """Return the facts that a measured number depends on, as markdown list items."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()
    return [
        f"Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"Commit: {commit or 'unknown'}" + (" with uncommitted changes" if dirty else ""),
        f"CPU: {cpu}, {os.cpu_count()} cores (nproc)",
        f"Memory: {memory_kib / 1024 / 1024:.1f} GiB",
        f"System: {platform.system()} {platform.release()}, {swift[0] if swift else 'swift unknown'}",
    ]


def load_average():
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def replace_section(heading, body, before=None):
    """Replace the `## heading` section of BENCHMARKS.md with `body`, leaving every other section alone.

    A missing section goes in front of the `## before` section when there is one, else at
    the end. The file is read and written back in one step, so a section that another
    script wrote in the meantime survives unless both write within the same moment.
    """
    text = BENCHMARKS_FILE.read_text() if BENCHMARKS_FILE.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    section = f"## {heading}\n\n{body.strip()}\n\n"
    start = _heading_index(lines, heading)
    if start is not None:
        end = next((index for index in range(start + 1, len(lines)) if lines[index].startswith("## ")), len(lines))
        text = "".join(lines[:start]) + section + "".join(lines[end:])
    elif before is not None and _heading_index(lines, before) is not None:
        position = _heading_index(lines, before)
        text = "".join(lines[:position]) + section + "".join(lines[position:])
    else:
        text = text.rstrip("\n") + "\n\n" + section
    BENCHMARKS_FILE.write_text(text.rstrip("\n") + "\n")
    log(f"wrote the '{heading}' section of {BENCHMARKS_FILE}")


def _heading_index(lines, heading):
    return next((index for index, line in enumerate(lines) if line.rstrip("\n") == f"## {heading}"), None)


def parse_instant(text):
    """Parse an ISO-8601 UTC timestamp with 0 to 9 fractional digits into a POSIX time."""
    match = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$", text)
    if match is None:
        raise ValueError(f"invalid timestamp {text!r}")
    year, month, day, hour, minute, second, fraction = match.groups()
    moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                               tzinfo=datetime.timezone.utc)
    return moment.timestamp() + (float("0." + fraction) if fraction else 0.0)


def format_instant(posix_time):
    moment = datetime.datetime.fromtimestamp(posix_time, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# The fake writes timestamps with 0, 3, 6 or 9 fractional digits in turn, to exercise
# clients' parsers. Whole seconds would blur the delays measured here by up to a second,
# so the benchmark starts it with six digits on every timestamp.
_FAKE_LAUNCHER = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); import llmops_server; "
    "llmops_server._FRACTION_DIGIT_CYCLE = (6,); sys.exit(llmops_server.main(sys.argv[1:]))"
)


class FakeServer:
    """The fake LLMOps Eval server on a free loopback port, loaded with `scenario`."""

    def __init__(self, scenario, name):
        self.directory = scratch_directory(name)
        port_file = self.directory / "port"
        scenario_file = self.directory / "scenario.json"
        scenario_file.write_text(json.dumps(scenario, indent=1))
        self.log_file = open(self.directory / "server.log", "w")
        command = [sys.executable, "-c", _FAKE_LAUNCHER, str(ROOT / "fakes"), "--host", "127.0.0.1", "--port", "0",
                   "--port-file", str(port_file), "--scenario", str(scenario_file)]
        self.process = subprocess.Popen(command, stdout=self.log_file, stderr=subprocess.STDOUT,
                                        env={**os.environ, "FAKE_LLMOPS_PASSWORD": FAKE_PASSWORD})
        deadline = time.monotonic() + 15
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None:
                raise RuntimeError(f"the fake server exited with {self.process.returncode}: "
                                   f"{(self.directory / 'server.log').read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake server did not write its port within 15 s")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            return json.loads(response.read())

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def agent_environment(workdir, server):
    """Return the environment of an agent job. It has no CI variables, so the agent posts no comment."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LLMOPS_API_URL": server.url,
        "LLMOPS_CI_PASSWORD": FAKE_PASSWORD,
        "NO_COLOR": "1",
    }
