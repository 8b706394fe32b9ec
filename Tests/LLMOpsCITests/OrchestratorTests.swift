import FoundationEssentials
import Testing
@testable import LLMOpsCI

/// An in-memory LLMOps Eval server for orchestration tests: each run follows a script of
/// statuses, one per poll, and stays on the last one.
final class ScriptedServer: @unchecked Sendable {
    let clock: VirtualClock
    let scripts: [String: [String]]
    let tokenLifetime: TimeInterval
    private let state = LockedValue<(runs: [String: (name: String, polls: Int, cancelled: Bool)], logins: Int, refreshes: Int, token: String)>(([:], 0, 0, ""))

    init(clock: VirtualClock, scripts: [String: [String]], tokenLifetime: TimeInterval = 1800) {
        self.clock = clock
        self.scripts = scripts
        self.tokenLifetime = tokenLifetime
    }

    var logins: Int { state.value.logins }
    var refreshes: Int { state.value.refreshes }
    func isCancelled(_ name: String) -> Bool { state.value.runs.values.contains { $0.name == name && $0.cancelled } }

    lazy var transport = StubTransport { [self] request in try self.handle(request) }

    private func issueToken() -> JSONValue {
        let token = makeJWT(expiresAt: clock.date.addingTimeInterval(tokenLifetime))
        state.withLock { $0.token = token }
        return ["accessToken": .string(token), "refreshToken": .string("refresh-\(UUID().uuidString)"), "expiresIn": 1800]
    }

    func handle(_ request: HTTPRequest) throws -> HTTPResponse {
        let path = request.pathForDisplay.split(separator: "?")[0]
        if path == "/api/auth/login" {
            state.withLock { $0.logins += 1 }
            return json(200, issueToken())
        }
        if path == "/api/auth/refresh" {
            state.withLock { $0.refreshes += 1 }
            return json(200, issueToken())
        }
        if path == "/api/auth/logout" {
            return json(200, ["message": "Logged out successfully"])
        }
        let token = state.value.token
        let sent = request.headers.first { $0.name == "Authorization" }?.value
        let expired = (expiryOfJWT(token) ?? .distantFuture) <= clock.date
        guard sent == "Bearer \(token)", !expired else {
            return json(401, ["success": false, "statusCode": 401, "error": "Unauthorized - Please login again"])
        }
        if path.hasSuffix("/evaluations"), request.method == "GET" {
            return envelope(["content": [], "last": true, "totalPages": 1, "number": 0])
        }
        if path.hasSuffix("/evaluations"), request.method == "POST" {
            let body = try JSONValue.parse(request.body ?? [])
            let name = body["name"].string ?? ""
            let id = "run-\(name)"
            state.withLock { $0.runs[id] = (name, 0, false) }
            return envelope(["id": .string(id), "name": .string(name), "status": "PENDING", "runNumber": 1], status: 201)
        }
        if path.hasSuffix("/cancel") {
            let id = String(path.split(separator: "/")[2])
            state.withLock { $0.runs[id]?.cancelled = true }
            return json(200, ["success": true, "statusCode": 200, "message": "Evaluation cancelled"])
        }
        if path.hasSuffix("/results") {
            let cases: [JSONValue] = (0..<4).map { index in
                ["id": .string("r\(index)"), "testCaseId": .string("tc\(index)"), "status": "COMPLETED", "scores": [["metricCode": "FAITHFULNESS", "score": 0.8, "passed": true]]]
            }
            return envelope(["content": .array(cases), "last": true, "totalPages": 1, "number": 0])
        }
        let id = String(path.split(separator: "/")[2])
        guard let run = state.value.runs[id] else {
            return json(404, ["success": false, "statusCode": 404, "errorCode": "EVALUATION_NOT_FOUND", "error": "Evaluation not found"])
        }
        let script = scripts[run.name] ?? ["COMPLETED"]
        let status = run.cancelled ? "CANCELLED" : script[min(run.polls, script.count - 1)]
        state.withLock { $0.runs[id]?.polls += 1 }
        return envelope(["id": .string(id), "name": .string(run.name), "status": .string(status), "totalTestCases": 4, "errorMessage": status == "FAILED" ? "engine exploded" : nil])
    }
}

@Suite struct OrchestratorTests {
    func orchestrate(
        _ server: ScriptedServer,
        pairs: [PlannedPair],
        timeout: Duration = .seconds(120),
        interval: Duration = .seconds(2),
        cap: Duration = .seconds(30)
    ) async throws -> [PairResult] {
        let client = LLMOpsClient(
            baseURL: "http://llmops.test",
            credentials: .password(email: "ci@example.com", password: Secret("pw")),
            transport: server.transport,
            clock: server.clock,
            random: RandomSource { 0.5 },
            logger: .disabled,
            retryWindow: .seconds(10)
        )
        try await client.logIn()
        let orchestrator = Orchestrator(
            client: client,
            projectID: "p",
            context: JobContext(forge: .local, branch: "feature", commit: "abc", targetBranch: "main", jobName: "job"),
            jobIdentity: "job",
            clock: server.clock,
            random: RandomSource { 0.5 },
            logger: .disabled,
            progress: .silent,
            stateFile: RunStateFile(path: nil, server: "http://llmops.test"),
            options: .init(schedule: PollSchedule(interval: interval, cap: cap), deadline: server.clock.now + timeout, maxConcurrent: 4, isFresh: false)
        )
        return await orchestrator.evaluate(pairs)
    }

    @Test("Stuck and unknown runs time out by the deadline while finished ones are gated")
    func stuckRunsTimeOut() async throws {
        let clock = VirtualClock()
        let server = ScriptedServer(clock: clock, scripts: ["stuck": ["PENDING"], "weird": ["QUEUED_SOMEWHERE"], "done": ["PENDING", "COMPLETED"]], tokenLifetime: 60)

        let results = try await orchestrate(server, pairs: [plannedPair("stuck"), plannedPair("weird"), plannedPair("done")])

        #expect(results[0].state == .timedOut(lastStatus: "PENDING"))
        #expect(results[1].state == .timedOut(lastStatus: "QUEUED_SOMEWHERE"))
        #expect(results[2].state == .completed)
        #expect(results[2].scores[0].mean == 0.8)
        #expect(server.isCancelled("stuck"))
        #expect(server.isCancelled("weird"))
        #expect(clock.now <= .seconds(121))
        #expect(results[0].pollCount <= 15)
        #expect(server.refreshes >= 1)
        #expect(server.refreshes <= 4)
        #expect(server.logins == 1)
        let decision = GatePolicy(gate: Configuration.Gate()).decide(results)
        #expect(decision.exitCode() == 3)
    }

    @Test func failedRunCarriesServerMessage() async throws {
        let clock = VirtualClock()
        let server = ScriptedServer(clock: clock, scripts: ["broken": ["PENDING", "FAILED"]])

        let results = try await orchestrate(server, pairs: [plannedPair("broken")])

        #expect(results[0].state == .failed("engine exploded"))
    }

    @Test func cancelledElsewhereIsReported() async throws {
        let clock = VirtualClock()
        let server = ScriptedServer(clock: clock, scripts: ["gone": ["CANCELLED"]])

        let results = try await orchestrate(server, pairs: [plannedPair("gone")])

        #expect(results[0].state == .cancelled("the run was cancelled on the server"))
    }

    @Test func taskCancellationCancelsRemoteRuns() async throws {
        let clock = VirtualClock()
        let server = ScriptedServer(clock: clock, scripts: ["long": ["PENDING"]])
        let task = Task { try await orchestrate(server, pairs: [plannedPair("long")], timeout: .seconds(1_000_000)) }
        while clock.now < .seconds(10) {
            await Task.yield()
        }

        task.cancel()
        let results = try await task.value

        #expect(results[0].state == .interrupted)
        #expect(server.isCancelled("long"))
    }
}

@Suite struct PollScheduleTests {
    let schedule = PollSchedule(interval: .seconds(10), cap: .seconds(60))

    @Test func backsOffWithoutEstimate() {
        let delays = (0..<6).map { schedule.delay(attempt: $0, elapsed: .zero, expected: nil, random: 1) }

        #expect(delays == [.seconds(10), .seconds(20), .seconds(40), .seconds(60), .seconds(60), .seconds(60)])
    }

    @Test func pollsSparselyEarlyAndDenselyNearExpectedFinish() {
        let early = schedule.delay(attempt: 0, elapsed: .seconds(0), expected: .seconds(600), random: 0.5)
        let late = schedule.delay(attempt: 5, elapsed: .seconds(590), expected: .seconds(600), random: 0.5)

        #expect(early == .seconds(60))
        #expect(late <= .seconds(10))
    }

    @Test func historyEstimateIsMedian() {
        #expect(expectedDuration(fromHistory: [.seconds(100), .seconds(300), .seconds(200)]) == .seconds(200))
        #expect(expectedDuration(fromHistory: []) == nil)
    }

    @Test func jitterStaysWithinCeiling() {
        let backoff = Backoff(base: .seconds(2), cap: .seconds(30))

        #expect(backoff.delay(forAttempt: 3, random: 0) == .seconds(8))
        #expect(backoff.delay(forAttempt: 3, random: 0.999_999) <= .seconds(16))
        #expect(backoff.delay(forAttempt: 20, random: 1) == .seconds(30))
    }
}
