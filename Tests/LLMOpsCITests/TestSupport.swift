import FoundationEssentials
@testable import LLMOpsCI

/// A transport that responds through a closure and records every request.
final class StubTransport: HTTPTransport, @unchecked Sendable {
    private let handler: @Sendable (HTTPRequest) async throws -> HTTPResponse
    let requests = LockedValue<[HTTPRequest]>([])

    init(_ handler: @escaping @Sendable (HTTPRequest) async throws -> HTTPResponse) {
        self.handler = handler
    }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        requests.withLock { $0.append(request) }
        return try await handler(request)
    }

    func count(_ method: String, pathPrefix: String) -> Int {
        requests.value.filter { $0.method == method && $0.pathForDisplay.hasPrefix(pathPrefix) }.count
    }
}

/// A clock whose time moves only when someone sleeps: each sleep advances it at once.
final class VirtualClock: AgentClock, @unchecked Sendable {
    private let elapsed = LockedValue(Duration.zero)
    let origin = Date(timeIntervalSince1970: 1_780_000_000)

    var now: Duration { elapsed.value }
    var date: Date { origin.addingTimeInterval(elapsed.value.seconds) }

    func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        elapsed.withLock { $0 += max(duration, .zero) }
        await Task.yield()
    }

    func advance(by duration: Duration) {
        elapsed.withLock { $0 += duration }
    }
}

func json(_ status: Int, _ value: JSONValue, headers: [(name: String, value: String)] = []) -> HTTPResponse {
    HTTPResponse(status: status, headers: headers, body: Array(value.serialized().utf8))
}

func envelope(_ data: JSONValue, status: Int = 200) -> HTTPResponse {
    json(status, ["success": true, "statusCode": .number(Double(status)), "message": "ok", "data": data, "timestamp": "2026-12-01T10:00:00.123Z"])
}

/// Builds an unsigned JWT whose only claim that matters is `exp`.
func makeJWT(expiresAt: Date) -> String {
    let payload = #"{"sub":"u","exp":\#(Int(expiresAt.timeIntervalSince1970))}"#
    let encoded = Data(payload.utf8).base64EncodedString().replacing("=", with: "").replacing("+", with: "-").replacing("/", with: "_")
    return "eyJhbGciOiJIUzI1NiJ9.\(encoded).c2lnbmF0dXJl"
}

func metricScore(_ code: String, cases: [Double], passed: [Bool]? = nil) -> MetricScore {
    let results = cases.enumerated().map { index, score in
        CaseResult(id: "case-\(index)", testCaseID: "tc-\(index)", scores: [CaseScore(metricCode: code, score: score, passed: passed?[index])])
    }
    return MetricScore.compute(code: code, results: results, summary: nil)
}

func plannedPair(_ name: String = "support-bot", metrics: [String] = ["FAITHFULNESS"], thresholds: [String: Configuration.Threshold] = [:]) -> PlannedPair {
    PlannedPair(
        evaluationName: name,
        runName: name,
        label: name,
        datasetID: "22222222-2222-4222-8222-000000000001",
        datasetName: "golden-qa",
        endpointID: nil,
        endpointName: nil,
        judgeID: nil,
        judgeName: nil,
        metrics: metrics.map { Configuration.Metric(code: $0) },
        metricDefinitions: metrics.map { MetricDefinition(id: "id-\($0)", code: $0) },
        thresholds: thresholds
    )
}

func completedResult(_ pair: PlannedPair, scores: [MetricScore], runID: String = "run-1") -> PairResult {
    PairResult(pair: pair, state: .completed, run: Run(json: ["id": .string(runID), "status": "COMPLETED", "runNumber": 3]), scores: scores)
}
