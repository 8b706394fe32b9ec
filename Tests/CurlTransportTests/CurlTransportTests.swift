import Foundation
import Testing
@testable import CurlTransport
import LLMOpsCI

/// The fake LLMOps server from `fakes/`, started on a free loopback port for one test.
final class FakeServerProcess {
    let process = Process()
    let port: Int

    init(scenario: String? = nil) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("curl-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let portFile = directory.appendingPathComponent("port")
        var arguments = [root.appendingPathComponent("fakes/llmops_server.py").path, "--port", "0", "--port-file", portFile.path]
        if let scenario {
            let scenarioFile = directory.appendingPathComponent("scenario.json")
            try scenario.write(to: scenarioFile, atomically: true, encoding: .utf8)
            arguments += ["--scenario", scenarioFile.path]
        }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var port: Int?
        for _ in 0..<500 {
            if let text = try? String(contentsOf: portFile, encoding: .utf8), let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                port = value
                break
            }
            usleep(20_000)
        }
        guard let port else { throw CancellationError() }
        self.port = port
    }

    deinit {
        // Processes started from the test runner inherit its blocked signals, SIGTERM among
        // them, so only SIGKILL is sure to stop the server.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

@Suite(.serialized) struct CurlTransportTests {
    let transport = CurlTransport(settings: TransportSettings(connectTimeout: .seconds(2), requestTimeout: .seconds(1)), environment: [:])

    @Test func sendsRequestAndReadsResponse() async throws {
        let server = try FakeServerProcess()

        let response = try await transport.send(
            HTTPRequest(method: "POST", url: "http://127.0.0.1:\(server.port)/api/auth/login", headers: [("Content-Type", "application/json")], body: Array(#"{"email":"ci@example.com","password":"wrong"}"#.utf8))
        )

        #expect(response.status == 401)
        #expect(response.bodyText.contains("AUTHENTICATION_FAILED"))
        #expect(response.header("content-type")?.contains("json") == true)
    }

    @Test func sendsUserAgentWithVersion() async throws {
        let server = try FakeServerProcess()
        _ = try await transport.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(server.port)/api/projects"))

        let log = try await transport.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(server.port)/__fake/requests"))

        #expect(log.bodyText.contains("llmops-ci/\(AgentVersion.current)"))
    }

    @Test func refusedConnectionIsTransient() async throws {
        await #expect {
            _ = try await transport.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:9/"))
        } throws: { error in
            (error as? TransportError)?.kind == .connectionFailed && (error as? TransportError)?.isTransient == true
        }
    }

    @Test func slowResponseTimesOut() async throws {
        let server = try FakeServerProcess(scenario: #"{"faults":[{"path_regex":"^/api/projects$","kind":"delay","delay_seconds":3,"times":1}]}"#)

        await #expect {
            _ = try await transport.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(server.port)/api/projects"))
        } throws: { error in
            (error as? TransportError)?.kind == .timedOut
        }
    }

    @Test func cancellationStopsTransfer() async throws {
        let server = try FakeServerProcess(scenario: #"{"faults":[{"path_regex":"^/api/projects$","kind":"delay","delay_seconds":0.8,"times":1}]}"#)
        let slow = CurlTransport(settings: TransportSettings(requestTimeout: .seconds(30)), environment: [:])
        let task = Task {
            try await slow.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(server.port)/api/projects"))
        }
        try await Task.sleep(for: .milliseconds(200))

        task.cancel()

        await #expect {
            _ = try await task.value
        } throws: { error in
            (error as? TransportError)?.kind == .cancelled
        }
    }
}

@Suite struct CertificateAuthoritiesTests {
    @Test func configuredBundleWins() {
        let path = CertificateAuthorities.bundlePath(configured: "/ca.pem", environment: ["SSL_CERT_FILE": "/env.pem"], fileExists: { _ in true }, libraryDefault: "/lib.pem")
        #expect(path == "/ca.pem")
    }

    @Test func environmentBeatsLibraryDefault() {
        let path = CertificateAuthorities.bundlePath(configured: nil, environment: ["SSL_CERT_FILE": "/env.pem"], fileExists: { _ in true }, libraryDefault: "/lib.pem")
        #expect(path == "/env.pem")
    }

    @Test func probesWellKnownPathsWhenLibraryDefaultIsMissing() {
        let path = CertificateAuthorities.bundlePath(configured: nil, environment: [:], fileExists: { $0 == "/etc/ssl/cert.pem" }, libraryDefault: "/nonexistent.pem")
        #expect(path == "/etc/ssl/cert.pem")
    }

    @Test func keepsLibraryDefaultWhenItExists() {
        let path = CertificateAuthorities.bundlePath(configured: nil, environment: [:], fileExists: { _ in true }, libraryDefault: "/lib.pem")
        #expect(path == nil)
    }
}
