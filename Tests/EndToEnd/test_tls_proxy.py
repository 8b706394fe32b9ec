"""TLS and HTTP proxies end to end: the real binary against a real nginx that terminates
TLS in front of the fake LLMOps Eval server, and through a real tinyproxy.

Every certificate comes from a throwaway CA made with openssl for the test. Every server
listens on 127.0.0.1 on a port the OS picked, and the test stops it. nginx and tinyproxy
come from Debian. When one is missing and the tests run as root, it is installed with
apt-get, so its tests are skipped only when that fails.
"""

import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import BASE_CONFIG, PASSWORD, FakeServer

SYSTEM_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
CRASH_MARKERS = ("Traceback", "Fatal error", "Program crashed", "Backtrac", "Stack dump")
# A name under the reserved .test domain, which public DNS does not resolve. Requests to it
# can only succeed through the proxy, which does not resolve it either.
INTERNAL_HOST = "llmops.internal.test"


# --- Tools ------------------------------------------------------------------------------


def find_or_install(program, package):
    """Return the path of `program`, installing the Debian `package` when it is missing.

    Skips the calling test when the program is missing and cannot be installed."""
    path = shutil.which(program, path=SYSTEM_PATH)
    if path:
        return path
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{program} is not installed and installing it needs root and apt-get: apt-get install {package}")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", package]
    if subprocess.run(install, env=environment, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=environment, capture_output=True)
        attempt = subprocess.run(install, env=environment, capture_output=True, text=True)
        if attempt.returncode != 0:
            pytest.skip(f"{program} is not installed and 'apt-get install {package}' failed: {attempt.stderr.strip()}")
    path = shutil.which(program, path=SYSTEM_PATH)
    if not path:
        pytest.skip(f"'apt-get install {package}' succeeded but {program} is still not on {SYSTEM_PATH}")
    return path


def free_port():
    """Return a loopback TCP port that was free a moment ago. Callers retry when they lose it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(ports, process, log_path, name):
    deadline = time.monotonic() + 10
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}: {read_text(log_path)}")
        for port in list(pending):
            with socket.socket() as client:
                client.settimeout(0.2)
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    pending.discard(port)
        time.sleep(0.05)
    if pending:
        raise RuntimeError(f"{name} did not listen on ports {sorted(pending)} within 10 s: {read_text(log_path)}")


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- Certificates -----------------------------------------------------------------------


class Certificates:
    """A throwaway CA, a server certificate it signed for localhost and 127.0.0.1, one it
    signed for another host name, and an unrelated second CA."""

    def __init__(self, directory):
        self.directory = directory
        self.ca = self.make_authority("ca", "llmops-ci end-to-end test CA")
        self.other_ca = self.make_authority("other-ca", "unrelated test CA")
        self.server = self.make_leaf("server", "localhost", "DNS:localhost,IP:127.0.0.1")
        self.wrong_host = self.make_leaf("wrong-host", "llmops.other.test", "DNS:llmops.other.test")

    def openssl(self, *arguments):
        completed = subprocess.run(["openssl", *arguments], cwd=self.directory, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(arguments)} failed: {completed.stderr}")

    def make_authority(self, name, common_name):
        self.openssl(
            "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "1",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={common_name}",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )
        return self.directory / f"{name}.pem"

    def make_leaf(self, name, common_name, subject_alt_names):
        self.openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={common_name}",
        )
        (self.directory / f"{name}.ext").write_text(
            f"subjectAltName={subject_alt_names}\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
        )
        self.openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", "0x" + os.urandom(8).hex(), "-days", "1", "-sha256",
            "-extfile", f"{name}.ext", "-out", f"{name}.pem",
        )
        return self.directory / f"{name}.pem", self.directory / f"{name}.key"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: apt-get install openssl")
    return Certificates(tmp_path_factory.mktemp("certificates"))


# --- nginx: TLS in front of the fake server ---------------------------------------------


class Nginx:
    """nginx on three loopback ports in front of one upstream on plain http.

    `tls_port` serves the localhost certificate and `wrong_host_port` a certificate for
    another name. `plain_port` has no TLS. It also serves absolute-form requests
    (`GET http://host/path`), so it works as a plain-http forward proxy."""

    def __init__(self, binary, directory, certificates, upstream_port):
        self.directory = directory
        self.access_log = directory / "access.log"
        self.error_log = directory / "error.log"
        for attempt in range(3):
            self.tls_port, self.wrong_host_port, self.plain_port = free_port(), free_port(), free_port()
            config = directory / "nginx.conf"
            config.write_text(self.config(certificates, upstream_port))
            self.process = subprocess.Popen(
                [binary, "-p", str(directory), "-c", str(config), "-e", str(self.error_log)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_until_listening(
                    [self.tls_port, self.wrong_host_port, self.plain_port], self.process, self.error_log, "nginx"
                )
                return
            except RuntimeError:
                stop(self.process)
                # Another process may have taken a port between free_port() and nginx's
                # bind(), so try new ports twice before giving up.
                if attempt == 2:
                    raise

    def config(self, certificates, upstream_port):
        server_certificate, server_key = certificates.server
        wrong_certificate, wrong_key = certificates.wrong_host
        location = f"""
        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_http_version 1.1;
        }}"""
        # master_process off runs one process as the current user, so the temp folders
        # under the test's own directory stay writable and one SIGTERM stops everything.
        return f"""
daemon off;
master_process off;
worker_processes 1;
pid {self.directory}/nginx.pid;
error_log {self.error_log} info;
events {{ worker_connections 64; }}
http {{
    log_format gate '$server_port $scheme $host "$request" $status';
    access_log {self.access_log} gate;
    client_body_temp_path {self.directory}/client-body;
    proxy_temp_path {self.directory}/proxy;
    fastcgi_temp_path {self.directory}/fastcgi;
    uwsgi_temp_path {self.directory}/uwsgi;
    scgi_temp_path {self.directory}/scgi;
    server {{
        listen 127.0.0.1:{self.tls_port} ssl;
        ssl_certificate {server_certificate};
        ssl_certificate_key {server_key};{location}
    }}
    server {{
        listen 127.0.0.1:{self.wrong_host_port} ssl;
        ssl_certificate {wrong_certificate};
        ssl_certificate_key {wrong_key};{location}
    }}
    server {{
        listen 127.0.0.1:{self.plain_port};{location}
    }}
}}
"""

    def requests(self, port):
        """Access log lines of requests that reached `port`."""
        return [line for line in read_text(self.access_log).splitlines() if line.startswith(f"{port} ")]


@pytest.fixture
def nginx(certificates, llmops_server, tmp_path):
    """nginx in front of a fresh fake server; yields the Nginx with `upstream` set."""
    binary = find_or_install("nginx", "nginx-light")
    upstream = llmops_server()
    directory = tmp_path / "nginx"
    directory.mkdir()
    server = Nginx(binary, directory, certificates, upstream.port)
    server.upstream = upstream
    yield server
    stop(server.process)


# --- tinyproxy: an HTTP proxy that tunnels HTTPS with CONNECT ---------------------------


class TinyProxy:
    def __init__(self, binary, directory):
        self.log = directory / "tinyproxy.log"
        for attempt in range(3):
            self.port = free_port()
            config = directory / "tinyproxy.conf"
            # LogLevel Connect writes one line per client connection and per request line.
            config.write_text(
                f"Port {self.port}\n"
                "Listen 127.0.0.1\n"
                "Allow 127.0.0.1\n"
                "Timeout 30\n"
                "MaxClients 16\n"
                f'LogFile "{self.log}"\n'
                "LogLevel Connect\n"
                f'PidFile "{directory}/tinyproxy.pid"\n'
            )
            self.process = subprocess.Popen(
                [binary, "-d", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
            )
            try:
                wait_until_listening([self.port], self.process, self.log, "tinyproxy")
                break
            except RuntimeError:
                stop(self.process)
                if attempt == 2:
                    raise
        # The readiness probe is a connection that sends nothing. Once tinyproxy has logged
        # it as closed, later lines belong to the test.
        deadline = time.monotonic() + 5
        while "closed socket before read" not in read_text(self.log) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.startup_line_count = len(read_text(self.log).splitlines())

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def lines_since_startup(self):
        return read_text(self.log).splitlines()[self.startup_line_count :]

    def request_lines(self):
        """The request lines the proxy received, such as `CONNECT localhost:443 HTTP/1.1`."""
        marker = "]: Request (file descriptor "
        return [line.split("): ", 1)[1] for line in self.lines_since_startup() if marker in line and "): " in line]

    def connection_lines(self):
        return [line for line in self.lines_since_startup() if "]: Connect (file descriptor " in line]


@pytest.fixture
def tinyproxy(tmp_path):
    binary = find_or_install("tinyproxy", "tinyproxy")
    directory = tmp_path / "tinyproxy"
    directory.mkdir()
    proxy = TinyProxy(binary, directory)
    yield proxy
    stop(proxy.process)


@pytest.fixture
def tls_fake_server(certificates):
    """The fake server speaking HTTPS itself (Python's ssl module), addressed as localhost."""
    certificate, key = certificates.server
    server = FakeServer(
        "llmops_server.py",
        ["--tls-cert", str(certificate), "--tls-key", str(key)],
        environment={"FAKE_LLMOPS_PASSWORD": PASSWORD},
    )
    server.url = f"https://localhost:{server.port}"
    yield server
    server.stop()


# --- Helpers ----------------------------------------------------------------------------


def with_server_keys(*lines):
    """Return BASE_CONFIG with extra keys in its `server:` section."""
    anchor = "  retry_seconds: 2\n"
    assert anchor in BASE_CONFIG
    return BASE_CONFIG.replace(anchor, anchor + "".join(f"  {line}\n" for line in lines))


def assert_passed(result):
    assert result.exit_code == 0, result
    assert result.json()["verdict"] == "passed", result


def assert_no_crash(result):
    output = result.stdout + result.stderr
    for marker in CRASH_MARKERS:
        assert marker not in output, result


def assert_tls_rejected(result):
    output = result.stdout + result.stderr
    assert result.exit_code == 3, result
    assert "TLS with localhost:" in output, result
    assert "server.ca_bundle" in output, result
    assert "SSL_CERT_FILE" in output, result
    assert_no_crash(result)


# --- TLS through nginx ------------------------------------------------------------------


def test_tls_without_ca_rejected(nginx, run_agent):
    url = f"https://localhost:{nginx.tls_port}"

    result = run_agent(["run"], config=BASE_CONFIG, environment={"LLMOPS_API_URL": url})

    assert_tls_rejected(result)
    assert nginx.requests(nginx.tls_port) == [], "no HTTP request may pass a failed handshake"
    assert nginx.upstream.requests() == []


def test_tls_other_ca_rejected(nginx, certificates, run_agent):
    url = f"https://localhost:{nginx.tls_port}"
    config = with_server_keys(f"ca_bundle: {certificates.other_ca}")

    result = run_agent(["run"], config=config, environment={"LLMOPS_API_URL": url})

    assert_tls_rejected(result)
    assert nginx.requests(nginx.tls_port) == []


def test_tls_wrong_host_rejected(nginx, certificates, run_agent):
    url = f"https://localhost:{nginx.wrong_host_port}"
    config = with_server_keys(f"ca_bundle: {certificates.ca}")

    result = run_agent(["run"], config=config, environment={"LLMOPS_API_URL": url})

    assert_tls_rejected(result)
    assert nginx.requests(nginx.wrong_host_port) == []


def test_tls_accepted_with_ca_bundle(nginx, certificates, run_agent):
    url = f"https://localhost:{nginx.tls_port}"
    config = with_server_keys(f"ca_bundle: {certificates.ca}")

    result = run_agent(["run"], config=config, environment={"LLMOPS_API_URL": url})

    assert_passed(result)
    requests = nginx.requests(nginx.tls_port)
    assert any('"POST /api/auth/login HTTP/1.1" 200' in line for line in requests), requests
    assert all(" https " in line for line in requests), requests


def test_tls_accepted_with_ssl_cert_file(nginx, certificates, run_agent):
    url = f"https://127.0.0.1:{nginx.tls_port}"
    environment = {"LLMOPS_API_URL": url, "SSL_CERT_FILE": str(certificates.ca)}

    result = run_agent(["run"], config=BASE_CONFIG, environment=environment)

    assert_passed(result)
    assert any("/api/auth/login" in line for line in nginx.requests(nginx.tls_port))


def test_tls_ca_bundle_overrides_ssl_cert_file(nginx, certificates, run_agent):
    url = f"https://localhost:{nginx.tls_port}"
    config = with_server_keys(f"ca_bundle: {certificates.other_ca}")
    environment = {"LLMOPS_API_URL": url, "SSL_CERT_FILE": str(certificates.ca)}

    result = run_agent(["run"], config=config, environment=environment)

    assert_tls_rejected(result)


# --- HTTPS through tinyproxy ------------------------------------------------------------


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_https_proxy_variable_honoured(variable, tinyproxy, tls_fake_server, certificates, run_agent):
    config = with_server_keys(f"ca_bundle: {certificates.ca}")
    environment = {"LLMOPS_API_URL": tls_fake_server.url, variable: tinyproxy.url}

    result = run_agent(["run"], config=config, environment=environment)

    assert_passed(result)
    tunnels = [line for line in tinyproxy.request_lines() if line.startswith("CONNECT ")]
    assert tunnels, read_text(tinyproxy.log)
    assert all(line == f"CONNECT localhost:{tls_fake_server.port} HTTP/1.1" for line in tunnels), tunnels


@pytest.mark.parametrize("variable", ["NO_PROXY", "no_proxy"])
def test_no_proxy_bypasses_proxy(variable, tinyproxy, tls_fake_server, certificates, run_agent):
    config = with_server_keys(f"ca_bundle: {certificates.ca}")
    environment = {"LLMOPS_API_URL": tls_fake_server.url, "HTTPS_PROXY": tinyproxy.url, variable: "localhost"}

    result = run_agent(["run"], config=config, environment=environment)

    assert_passed(result)
    assert tinyproxy.connection_lines() == [], read_text(tinyproxy.log)
    assert tinyproxy.request_lines() == [], read_text(tinyproxy.log)


def test_unreachable_proxy_fails_clearly(tls_fake_server, certificates, run_agent):
    config = with_server_keys(f"ca_bundle: {certificates.ca}")
    closed_port = free_port()
    environment = {"LLMOPS_API_URL": tls_fake_server.url, "HTTPS_PROXY": f"http://127.0.0.1:{closed_port}"}

    result = run_agent(["run"], config=config, environment=environment)

    assert result.exit_code == 3, result
    assert "Could not reach localhost:" in result.stdout + result.stderr, result
    assert_no_crash(result)


# --- Plain http to a host that is not loopback ------------------------------------------


@pytest.mark.parametrize("command", [["validate"], ["run"]])
def test_plain_http_remote_host_rejected(command, nginx, run_agent):
    url = f"http://{INTERNAL_HOST}:{nginx.plain_port}"
    # The proxy would carry the request if the agent sent one, so its log proves none left.
    environment = {"LLMOPS_API_URL": url, "http_proxy": f"http://127.0.0.1:{nginx.plain_port}"}

    result = run_agent(command, config=BASE_CONFIG, environment=environment)
    output = result.stdout + result.stderr

    assert result.exit_code == 2, result
    assert "server.url" in output, result
    assert "allow_insecure_http" in output, result
    assert PASSWORD not in output, result
    assert_no_crash(result)
    assert nginx.requests(nginx.plain_port) == []


def test_plain_http_remote_host_allowed(nginx, run_agent):
    url = f"http://{INTERNAL_HOST}:{nginx.plain_port}"
    config = with_server_keys("allow_insecure_http: true")
    environment = {"LLMOPS_API_URL": url, "http_proxy": f"http://127.0.0.1:{nginx.plain_port}"}

    validated = run_agent(["validate"], config=config, environment=environment)
    result = run_agent(["run"], config=config, environment=environment)

    assert validated.exit_code == 0, validated
    assert_passed(result)
    requests = nginx.requests(nginx.plain_port)
    login = f'http {INTERNAL_HOST} "POST http://{INTERNAL_HOST}:{nginx.plain_port}/api/auth/login HTTP/1.1" 200'
    assert any(login in line for line in requests), requests
