// libFuzzer target for everything that decodes what the LLMOps Eval server or a forge
// (GitHub, GitLab) sends back: JSON bodies, the models built from them, token claims and
// the headers that steer paging and retries.
//
// Each input is used in several roles at once, so that one seed feeds every decoder:
// - as a JSON body for `JSONValue.parse` and every model initialiser, with the check that
//   `serialized()` parses back to an equal value;
// - as the claims of the access token that a login returns, and as the body of the
//   client's GET requests, through the real `LLMOpsClient` over a scripted transport;
// - as forge response bodies, and its first line as the `Link`, `Retry-After` and
//   `X-RateLimit-Reset` headers, through the real GitHub and GitLab clients.
// Decoding may fail, but it must not crash or hang. scripts/fuzz builds and runs this target.

import Dispatch
import FoundationEssentials
@testable import LLMOpsCI

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResponseDecoding(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: body, as: UTF8.self)
    let headerValue = String(text.prefix { $0 != "\n" && $0 != "\r" })

    decodeModels(body)
    decodeHeaderValues(headerValue)
    runSynchronously {
        await exerciseLLMOpsClient(body: body)
        await exerciseForges(body: body, headerValue: headerValue)
    }
    return 0
}

// MARK: Direct decoding

private func decodeModels(_ body: [UInt8]) {
    guard let json = try? JSONValue.parse(body) else { return }
    checkRoundTrip(json)

    var candidates = [json, json["data"]]
    candidates += json.array ?? []
    candidates += json["content"].array ?? []
    candidates += json["data"]["content"].array ?? []
    for candidate in candidates {
        _ = Run(json: candidate)
        _ = CaseResult(json: candidate)
        _ = MetricDefinition(json: candidate)
        _ = NamedResource(json: candidate)
        _ = Page(json: candidate, requestedPage: 0)
        _ = Page(json: candidate, requestedPage: 7)
    }
}

/// Stops the run when serialising a parsed document and parsing it again changes it.
private func checkRoundTrip(_ json: JSONValue) {
    let serialized = json.serialized()
    guard let reparsed = try? JSONValue.parse(Array(serialized.utf8)) else {
        fatalError("JSONValue.serialized() wrote text that does not parse: \(serialized.prefix(300))")
    }
    guard reparsed == json else {
        fatalError("JSONValue.serialized() changed the value: \(serialized.prefix(300))")
    }
    let pretty = json.serialized(pretty: true)
    guard (try? JSONValue.parse(Array(pretty.utf8))) == json else {
        fatalError("JSONValue.serialized(pretty: true) changed the value: \(pretty.prefix(300))")
    }
}

private func decodeHeaderValues(_ value: String) {
    _ = nextLink(value)
    _ = retryAfter(value)
    if let date = Timestamp.parse(value) {
        _ = Timestamp.format(date)
    }
}

// MARK: Through the clients

/// Runs `body` on a task and blocks the fuzzing thread until it ends.
private func runSynchronously(_ body: @escaping @Sendable () async -> Void) {
    let finished = DispatchSemaphore(value: 0)
    Task.detached {
        await body()
        finished.signal()
    }
    finished.wait()
}

/// A transport that returns the closure's response at once, in place of the network.
private struct ScriptedTransport: HTTPTransport {
    let respond: @Sendable (HTTPRequest) -> HTTPResponse

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        respond(request)
    }
}

/// A clock whose time never moves and whose sleep returns at once, so retries cost no time.
private struct FrozenClock: AgentClock {
    var now: Duration { .zero }
    var date: Date { Date(timeIntervalSince1970: 1_780_000_000) }

    func sleep(for duration: Duration) async throws {}
}

/// A logger that formats every line, down to trace, and drops it.
private let discardingLogger = Logger(level: .trace) { _, _ in }

/// Unpadded base64url, as JWT segments are written.
private func base64URL(_ bytes: [UInt8]) -> String {
    Data(bytes).base64EncodedString()
        .replacing("=", with: "")
        .replacing("+", with: "-")
        .replacing("/", with: "_")
}

private func exerciseLLMOpsClient(body: [UInt8]) async {
    // The input is the claims segment of the access token, so the client reads its `exp`.
    let token = "eyJhbGciOiJIUzI1NiJ9.\(base64URL(body)).c2lnbmF0dXJl"
    let login: JSONValue = ["accessToken": .string(token), "refreshToken": "refresh-token", "expiresIn": 1800]
    let loginBody = Array(login.serialized().utf8)
    let runID = "55555555-5555-4555-8555-000000000001"

    // A success status reaches every model decoder. An error status takes the shared
    // error-envelope path, which one request covers.
    for status in [200, 400] {
        let transport = ScriptedTransport { request in
            if request.url.hasSuffix("/api/auth/login") || request.url.hasSuffix("/api/auth/refresh") {
                return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: loginBody)
            }
            return HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: body)
        }
        let client = LLMOpsClient(
            baseURL: "https://llmops.example.com",
            credentials: .password(email: "ci@example.com", password: Secret("password")),
            transport: transport,
            clock: FrozenClock(),
            random: RandomSource { 0.5 },
            logger: discardingLogger,
            retryWindow: .seconds(5)
        )
        do {
            try await client.logIn()
        } catch {
            return
        }
        _ = try? await client.run(id: runID)
        guard status == 200 else { continue }
        _ = try? await client.results(runID: runID, expectedCount: 1)
        _ = try? await client.runs(projectID: "demo", search: "support-bot", status: nil, page: 0, size: 20)
        _ = try? await client.metrics(projectID: "demo")
        _ = try? await client.datasets(projectID: "demo", search: nil)
        _ = try? await client.startEvaluation(projectID: "demo", body: ["name": "support-bot"])
        try? await client.cancel(runID: runID)
        _ = await client.tokenExpiry()
        await client.logOut()
    }
}

private func exerciseForges(body: [UInt8], headerValue: String) async {
    let success = makeForgeHTTP(body: body, status: 200, headers: [], retryDeadline: .seconds(300))
    let github = GitHubForge(
        http: success,
        apiURL: "https://api.github.com",
        graphQLURL: "https://api.github.com/graphql",
        repository: "octo/repo",
        number: 7
    )
    let gitlab = GitLabForge(http: success, apiURL: "https://gitlab.example.com/api/v4", project: "group/app", iid: 3)
    for forge in [github, gitlab] as [any ForgeClient] {
        _ = try? await forge.pullRequestState()
        _ = try? await forge.comments()
        _ = try? await forge.createComment(body: "report")
        try? await forge.hideComment(ForgeComment(id: "1", nodeID: "IC_node", body: "old", isSystem: false))
    }

    // Error statuses go through ForgeHTTP's shared error path, so one request each covers
    // it. The rate-limit reset time and Retry-After come from the input. A deadline of zero
    // still computes each retry delay but sends no retry, which would only parse the same
    // body again.
    let failures: [(status: Int, headers: [(name: String, value: String)])] = [
        (404, []),
        (403, [("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", headerValue)]),
        (429, [("Retry-After", headerValue)]),
    ]
    for failure in failures {
        let http = makeForgeHTTP(body: body, status: failure.status, headers: failure.headers, retryDeadline: .zero)
        _ = try? await http.send("GET", "https://api.github.com/repos/octo/repo/pulls/7")
    }
}

private func makeForgeHTTP(
    body: [UInt8],
    status: Int,
    headers: [(name: String, value: String)],
    retryDeadline: Duration
) -> ForgeHTTP {
    let transport = ScriptedTransport { _ in
        HTTPResponse(status: status, headers: headers, body: body)
    }
    return ForgeHTTP(
        transport: transport,
        headers: [("Accept", "application/json")],
        clock: FrozenClock(),
        random: RandomSource { 0.5 },
        logger: discardingLogger,
        deadline: retryDeadline
    )
}
