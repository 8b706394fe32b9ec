"""The release binary that scripts/build-release writes to dist/, and the installers that
ship it: the GitHub Action's scripts and the GitLab template's job script.

A release build takes minutes on two cores, so the tests of the binary use what dist/
already holds and skip when it has no binary of this version for this machine. The
installer tests use a stand-in binary and a loopback release server, so they always run.
LLMOPS_CI_RELEASE_BINARY names another binary to test in place of dist/'s.
"""

import functools
import hashlib
import http.server
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import tarfile
import threading

import pytest

try:
    import yaml
except ImportError:
    yaml = None

from conftest import BASE_CONFIG, PASSWORD, ROOT, FakeServer

VERSION = re.search(
    r'static let current = "([^"]+)"', (ROOT / "Sources/LLMOpsCI/Support/AgentVersion.swift").read_text()
).group(1)
ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(
    platform.machine().lower(), platform.machine()
)
ASSET = f"llmops-ci-{VERSION}-linux-{ARCH}"
RELEASE_BINARY = pathlib.Path(os.environ.get("LLMOPS_CI_RELEASE_BINARY", ROOT / "dist" / ASSET))
ACTION = ROOT / "action"
GITLAB_TEMPLATE = ROOT / "gitlab-template" / "llmops-ci.yml"
GITLAB_COMPONENT = ROOT / "gitlab-template" / "templates" / "llmops-ci" / "template.yml"

needs_release = pytest.mark.skipif(
    not RELEASE_BINARY.is_file(),
    reason=f"{RELEASE_BINARY} not found: run scripts/build-release first (a release build takes minutes, "
    "so the test suite does not build it)",
)
needs_yaml = pytest.mark.skipif(yaml is None, reason="PyYAML is not installed: python3 -m pip install pyyaml")
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="running the binary in an almost empty root needs root and unshare from util-linux",
)


# --- Release binary ---------------------------------------------------------------------


@needs_release
def test_release_binary_is_static():
    linkage = subprocess.run(["ldd", str(RELEASE_BINARY)], capture_output=True, text=True)
    kind = subprocess.run(["file", "-b", str(RELEASE_BINARY)], capture_output=True, text=True, check=True)

    assert "not a dynamic executable" in linkage.stdout + linkage.stderr
    assert "statically linked" in kind.stdout
    assert "stripped" in kind.stdout


@needs_release
def test_release_version_matches_source():
    completed = subprocess.run([str(RELEASE_BINARY), "--version"], capture_output=True, text=True, timeout=10)

    assert completed.returncode == 0
    assert completed.stdout.strip() == f"llmops-ci {VERSION}"


@needs_release
def test_release_checksums_and_archive_match():
    archive = RELEASE_BINARY.with_name(RELEASE_BINARY.name + ".tar.xz")
    if "LLMOPS_CI_RELEASE_BINARY" in os.environ and not archive.exists():
        pytest.skip(f"LLMOPS_CI_RELEASE_BINARY names a binary without {archive.name} beside it")
    binary_bytes = RELEASE_BINARY.read_bytes()

    for path in (RELEASE_BINARY, archive):
        recorded = path.with_name(path.name + ".sha256").read_text().split()
        assert recorded == [hashlib.sha256(path.read_bytes()).hexdigest(), path.name]
    with tarfile.open(archive, "r:xz") as bundle:
        assert bundle.getnames() == ["llmops-ci"]
        member = bundle.getmember("llmops-ci")
        assert member.mode & 0o111
        assert bundle.extractfile(member).read() == binary_bytes


def make_certificates(directory):
    """Writes a private CA (ca.pem) and a localhost server certificate it signed."""
    directory = pathlib.Path(directory)

    def openssl(*arguments):
        subprocess.run(["openssl", *arguments], cwd=directory, check=True, capture_output=True)

    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=llmops-ci test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )
    openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
    )
    (directory / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
    )
    return directory / "ca.pem"


@pytest.fixture
def https_server(tmp_path):
    """Starts the fake LLMOps server over HTTPS with a private CA and yields (server, CA file)."""
    certificates = tmp_path / "certificates"
    certificates.mkdir()
    ca_file = make_certificates(certificates)
    server = FakeServer(
        "llmops_server.py",
        ["--tls-cert", str(certificates / "server.pem"), "--tls-key", str(certificates / "server.key")],
        environment={"FAKE_LLMOPS_PASSWORD": PASSWORD},
    )
    # A host name, not an address, so the run also checks name lookup through /etc/hosts.
    server.url = f"https://localhost:{server.port}"
    yield server, ca_file
    server.stop()


def run_in_empty_root(root, arguments, environment, config):
    """Runs the release binary as /llmops-ci in `root`, which holds only the binary,
    /etc/hosts, /proc, the job folder and what the caller added, in new mount and PID
    namespaces. The network namespace stays the host's, so loopback reaches the server."""
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (root / "job").mkdir(exist_ok=True)
    (root / "job" / "llmops.yml").write_text(config)
    shutil.copy2(RELEASE_BINARY, root / "llmops-ci")
    command = [
        "unshare", "--mount", "--pid", "--fork", "--mount-proc=/proc", f"--root={root}", "--wd=/job",
        "/llmops-ci", *arguments,
    ]
    return subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


CA_LOCATIONS = {
    "debian-bundle-path": ("etc/ssl/certs/ca-certificates.crt", {}, None),
    "rhel-bundle-path": ("etc/pki/tls/certs/ca-bundle.crt", {}, None),
    "ssl-cert-file": ("private/ca.pem", {"SSL_CERT_FILE": "/private/ca.pem"}, None),
    "server-ca-bundle": ("private/ca.pem", {}, "/private/ca.pem"),
}


@needs_release
@needs_root
@pytest.mark.parametrize("location", sorted(CA_LOCATIONS))
def test_release_runs_in_empty_root_over_https(location, https_server, tmp_path):
    server, ca_file = https_server
    ca_path, variables, configured_bundle = CA_LOCATIONS[location]
    root = tmp_path / "root"
    (root / ca_path).parent.mkdir(parents=True)
    shutil.copy(ca_file, root / ca_path)
    config = BASE_CONFIG
    if configured_bundle:
        config = config.replace("  retry_seconds: 2\n", f"  retry_seconds: 2\n  ca_bundle: {configured_bundle}\n")
    environment = {
        "HOME": "/job",
        "LLMOPS_API_URL": server.url,
        "LLMOPS_CI_PASSWORD": PASSWORD,
        **variables,
    }

    result = run_in_empty_root(root, ["run", "--format", "text"], environment, config)

    assert result.returncode == 0, result
    assert json.loads((root / "job" / "llmops-results.json").read_text())["verdict"] == "passed"


@needs_release
@needs_root
def test_release_without_trust_store_fails_clearly(https_server, tmp_path):
    server, _ = https_server
    environment = {"HOME": "/job", "LLMOPS_API_URL": server.url, "LLMOPS_CI_PASSWORD": PASSWORD}

    result = run_in_empty_root(tmp_path / "root", ["run", "--format", "text"], environment, BASE_CONFIG)
    output = result.stdout + result.stderr

    assert result.returncode == 3, result
    assert "no trust store" in output.lower(), output
    assert "SSL_CERT_FILE" in output, output
    assert "server.ca_bundle" in output, output


# --- Installers: a stand-in binary served by a loopback release server -------------------


STAND_IN = f"""#!/bin/sh
# Stand-in for llmops-ci: prints its version, or writes its arguments one per line.
if [ "$1" = "--version" ]; then echo "llmops-ci {VERSION}"; exit 0; fi
printf '%s\\n' "$@" > "$STAND_IN_ARGUMENTS"
exit "${{STAND_IN_EXIT_CODE:-0}}"
"""


class ReleaseHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a release folder like a forge: /OWNER/REPO/releases/download/TAG/ASSET, and a
    redirect from /OWNER/REPO/releases/latest to /OWNER/REPO/releases/tag/TAG."""

    latest_tag = f"v{VERSION}"

    def do_GET(self):
        if self.path.endswith("/releases/latest"):
            self.send_response(302)
            self.send_header("Location", self.path.replace("/releases/latest", f"/releases/tag/{self.latest_tag}"))
            self.end_headers()
        elif "/releases/tag/" in self.path:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        else:
            super().do_GET()

    def log_message(self, format, *arguments):
        pass


@pytest.fixture
def release_server(tmp_path):
    """Serves the stand-in binary as release v{VERSION} of owner/llmops-ci. Yields the base URL
    and the release folder, whose files a test may change."""
    site = tmp_path / "site"
    release = site / "owner" / "llmops-ci" / "releases" / "download" / f"v{VERSION}"
    release.mkdir(parents=True)
    stand_in = tmp_path / "llmops-ci"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    for arch in ("x86_64", "aarch64"):
        asset = f"llmops-ci-{VERSION}-linux-{arch}"
        shutil.copy2(stand_in, release / asset)
        with tarfile.open(release / f"{asset}.tar.xz", "w:xz") as bundle:
            bundle.add(stand_in, arcname="llmops-ci")
        for name in (asset, f"{asset}.tar.xz"):
            digest = hashlib.sha256((release / name).read_bytes()).hexdigest()
            (release / f"{name}.sha256").write_text(f"{digest}  {name}\n")
    handler = functools.partial(ReleaseHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", release
    server.shutdown()
    server.server_close()


def run_action_install(tmp_path, server_url, **overrides):
    """Runs action/install.sh as the action's install step would and returns (completed, files)."""
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    files = {"output": tmp_path / "github-output", "path": tmp_path / "github-path"}
    for file in files.values():
        file.write_text("")
    environment = {
        "PATH": "/usr/bin:/bin",
        "GITHUB_SERVER_URL": server_url,
        "GITHUB_OUTPUT": str(files["output"]),
        "GITHUB_PATH": str(files["path"]),
        "GITHUB_REPOSITORY": "someone/app",
        "RUNNER_TEMP": str(runner_temp),
        "LLMOPS_ACTION_REPOSITORY": "owner/llmops-ci",
        "LLMOPS_ACTION_REF": f"v{VERSION}",
        "LLMOPS_ACTION_VERSION": "",
        "LLMOPS_ACTION_RUNNER_OS": "Linux",
        "LLMOPS_ACTION_RUNNER_ARCH": "X64",
    }
    environment.update(overrides)
    completed = subprocess.run(
        ["bash", str(ACTION / "install.sh")], env=environment, capture_output=True, text=True, timeout=60
    )
    return completed, files


def installed_binary(files):
    outputs = dict(line.split("=", 1) for line in files["output"].read_text().splitlines() if "=" in line)
    return outputs.get("binary")


@pytest.mark.parametrize("runner_arch, arch", [("X64", "x86_64"), ("ARM64", "aarch64")])
def test_action_install_verifies_and_extracts(runner_arch, arch, release_server, tmp_path):
    server_url, _ = release_server

    completed, files = run_action_install(tmp_path, server_url, LLMOPS_ACTION_RUNNER_ARCH=runner_arch)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    binary = installed_binary(files)
    assert binary == str(tmp_path / "runner-temp" / "llmops-ci" / f"{VERSION}-{arch}" / "llmops-ci")
    assert files["path"].read_text().strip() == os.path.dirname(binary)
    assert subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip() == f"llmops-ci {VERSION}"


def test_action_install_rejects_checksum_mismatch(release_server, tmp_path):
    server_url, release = release_server
    checksum = release / f"llmops-ci-{VERSION}-linux-x86_64.tar.xz.sha256"
    checksum.write_text("0" * 64 + f"  llmops-ci-{VERSION}-linux-x86_64.tar.xz\n")

    completed, files = run_action_install(tmp_path, server_url)

    assert completed.returncode == 1
    assert "SHA-256 mismatch" in completed.stdout
    assert installed_binary(files) is None
    assert not (tmp_path / "runner-temp" / "llmops-ci" / f"{VERSION}-x86_64" / "llmops-ci").exists()


def test_action_install_resolves_latest_release(release_server, tmp_path):
    server_url, _ = release_server

    completed, files = run_action_install(tmp_path, server_url, LLMOPS_ACTION_REF="main")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"/releases/download/v{VERSION}/" in completed.stdout
    assert installed_binary(files) is not None


def test_action_install_finds_repository_from_action_path(release_server, tmp_path):
    server_url, _ = release_server
    action_path = tmp_path / "_actions" / "owner" / "llmops-ci" / f"v{VERSION}" / "action"

    completed, files = run_action_install(
        tmp_path, server_url, LLMOPS_ACTION_REPOSITORY="", GITHUB_ACTION_PATH=str(action_path)
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert installed_binary(files) is not None


def test_action_install_reports_missing_release(release_server, tmp_path):
    server_url, _ = release_server

    completed, _ = run_action_install(tmp_path, server_url, LLMOPS_ACTION_VERSION="9.9.9")

    assert completed.returncode == 1
    assert "could not download" in completed.stdout
    assert "v9.9.9" in completed.stdout


@pytest.mark.parametrize("runner_os, runner_arch", [("Linux", "ARM"), ("Windows", "X64"), ("macOS", "ARM64")])
def test_action_install_rejects_unsupported_runner(runner_os, runner_arch, release_server, tmp_path):
    server_url, _ = release_server

    completed, _ = run_action_install(
        tmp_path, server_url, LLMOPS_ACTION_RUNNER_OS=runner_os, LLMOPS_ACTION_RUNNER_ARCH=runner_arch
    )

    assert completed.returncode == 1
    assert "::error title=llmops-ci setup::" in completed.stdout


def test_action_install_prefers_binary_on_path(release_server, tmp_path):
    server_url, _ = release_server
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "llmops-ci").write_text(STAND_IN)
    (bin_dir / "llmops-ci").chmod(0o755)

    completed, files = run_action_install(tmp_path, server_url, PATH=f"{bin_dir}:/usr/bin:/bin")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert installed_binary(files) == str(bin_dir / "llmops-ci")
    assert "Downloading" not in completed.stdout


def test_action_run_passes_inputs_as_arguments(tmp_path):
    stand_in = tmp_path / "llmops-ci"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    (tmp_path / "match-me.yml").write_text("")
    environment = {
        "PATH": "/usr/bin:/bin",
        "STAND_IN_ARGUMENTS": str(tmp_path / "arguments"),
        "LLMOPS_ACTION_BINARY": str(stand_in),
        "LLMOPS_ACTION_CONFIG": "ci/llmops.yml",
        "LLMOPS_ACTION_COMMENT": "off",
        "LLMOPS_ACTION_FRESH": "true",
        "LLMOPS_ACTION_ARGS": "--verbose\n--warn-exit-code 4  *.yml $HOME",
    }

    completed = subprocess.run(
        ["bash", str(ACTION / "run.sh")], cwd=tmp_path, env=environment, capture_output=True, text=True
    )

    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "arguments").read_text().splitlines() == [
        "run", "--config", "ci/llmops.yml", "--comment", "off", "--fresh",
        "--verbose", "--warn-exit-code", "4", "*.yml", "$HOME",
    ]


def test_action_run_rejects_invalid_fresh(tmp_path):
    environment = {"PATH": "/usr/bin:/bin", "LLMOPS_ACTION_BINARY": "/bin/true", "LLMOPS_ACTION_FRESH": "yes"}

    completed = subprocess.run(["bash", str(ACTION / "run.sh")], env=environment, capture_output=True, text=True)

    assert completed.returncode == 2
    assert "invalid fresh input 'yes'" in completed.stdout


def gitlab_job(path):
    """Returns the llmops-ci job of a template or component file (the last YAML document)."""
    documents = list(yaml.safe_load_all(path.read_text()))
    jobs = {name: job for name, job in documents[-1].items() if isinstance(job, dict) and "script" in job}
    assert len(jobs) == 1
    return next(iter(jobs.values()))


@needs_yaml
def test_gitlab_component_runs_template_script():
    template = gitlab_job(GITLAB_TEMPLATE)
    component = gitlab_job(GITLAB_COMPONENT)

    assert component["script"] == template["script"]
    assert component["after_script"] == template["after_script"]
    assert component["artifacts"] == template["artifacts"]
    assert component["rules"] == template["rules"]
    assert sorted(component["variables"]) == sorted(template["variables"])


@needs_yaml
def test_gitlab_templates_pin_source_version():
    component_spec = next(yaml.safe_load_all(GITLAB_COMPONENT.read_text()))

    assert gitlab_job(GITLAB_TEMPLATE)["variables"]["LLMOPS_CI_VERSION"] == VERSION
    assert component_spec["spec"]["inputs"]["version"]["default"] == VERSION


def tool_folder(tmp_path, fetcher):
    """A PATH folder with the tools a small image has, and one of curl or wget."""
    folder = tmp_path / f"tools-{fetcher}"
    folder.mkdir()
    for tool in ("sh", "uname", "mkdir", "cut", "sha256sum", "mv", "chmod", "cat", "printf", fetcher):
        os.symlink(shutil.which(tool), folder / tool)
    return folder


def run_gitlab_script(tmp_path, section, server_url, fetcher, **overrides):
    template = gitlab_job(GITLAB_TEMPLATE)
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    environment = {
        **{name: str(value) for name, value in template["variables"].items()},
        "PATH": str(tool_folder(tmp_path, fetcher)) if fetcher else "/usr/bin:/bin",
        "CI_PROJECT_DIR": str(project),
        "LLMOPS_CI_RELEASES_URL": f"{server_url}/owner/llmops-ci/releases/download",
        "LLMOPS_CI_VERSION": VERSION,
        "STAND_IN_ARGUMENTS": str(tmp_path / "arguments"),
    }
    environment.update(overrides)
    script = "\n".join(template[section])
    return subprocess.run(
        ["sh", "-c", script], cwd=project, env=environment, capture_output=True, text=True, timeout=60
    )


@needs_yaml
@pytest.mark.skipif(ARCH not in ("x86_64", "aarch64"), reason=f"no release asset for {ARCH}")
@pytest.mark.parametrize("fetcher", ["curl", "wget"])
def test_gitlab_script_downloads_checks_and_runs(fetcher, release_server, tmp_path):
    if shutil.which(fetcher) is None:
        pytest.skip(f"{fetcher} is not installed")
    server_url, _ = release_server

    completed = run_gitlab_script(
        tmp_path, "script", server_url, fetcher, LLMOPS_CI_CONFIG="ci/llmops.yml", LLMOPS_CI_ARGS="--verbose *"
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (tmp_path / "arguments").read_text().splitlines() == [
        "run", "--warn-exit-code", "0", "--config", "ci/llmops.yml", "--verbose", "*",
    ]
    assert (tmp_path / "project" / ".llmops-ci" / "bin" / "llmops-ci").is_file()


@needs_yaml
def test_gitlab_script_rejects_checksum_mismatch(release_server, tmp_path):
    server_url, release = release_server
    (release / f"{ASSET}.sha256").write_text("0" * 64 + f"  {ASSET}\n")

    completed = run_gitlab_script(tmp_path, "script", server_url, "curl")

    assert completed.returncode == 2
    assert "SHA-256 mismatch" in completed.stderr
    assert not (tmp_path / "arguments").exists()


@needs_yaml
def test_gitlab_script_fails_without_downloader(release_server, tmp_path):
    server_url, _ = release_server
    folder = tool_folder(tmp_path, "true")
    os.remove(folder / "true")

    completed = run_gitlab_script(tmp_path, "script", server_url, None, PATH=str(folder))

    assert completed.returncode != 0
    assert "neither curl nor wget" in completed.stderr


@needs_yaml
@pytest.mark.parametrize("status, expect_cancel", [("canceled", True), ("failed", False), ("success", False)])
def test_gitlab_after_script_cancels_only_cancelled_jobs(status, expect_cancel, tmp_path):
    project = tmp_path / "project"
    (project / ".llmops-ci" / "bin").mkdir(parents=True)
    (project / ".llmops-ci" / "state.json").write_text("{}")
    stand_in = project / ".llmops-ci" / "bin" / "llmops-ci"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)

    completed = run_gitlab_script(
        tmp_path, "after_script", "http://127.0.0.1:9", None, CI_JOB_STATUS=status, LLMOPS_CI_CONFIG="ci/llmops.yml"
    )

    assert completed.returncode == 0, completed.stderr
    if expect_cancel:
        assert (tmp_path / "arguments").read_text().splitlines() == [
            "cancel", "--state", ".llmops-ci/state.json", "--config", "ci/llmops.yml",
        ]
    else:
        assert not (tmp_path / "arguments").exists()
