import FoundationEssentials
import Testing
@testable import LLMOpsCI

@Suite struct LLMOpsClientTests {
    func client(_ transport: StubTransport, clock: VirtualClock = VirtualClock(), credentials: Credentials = .password(email: "ci@example.com", password: Secret("pw"))) -> LLMOpsClient {
        LLMOpsClient(baseURL: "http://llmops.test", credentials: credentials, transport: transport, clock: clock, random: RandomSource { 0.5 }, logger: .disabled, retryWindow: .seconds(30))
    }

    static let login = json(200, ["accessToken": "t1", "refreshToken": "r1", "tokenType": "Bearer", "expiresIn": 1800])

    @Test func errorNamesRequestAndServerText() async throws {
        let transport = StubTransport { request in
            request.pathForDisplay == "/api/auth/login"
                ? Self.login
                : json(400, ["success": false, "statusCode": 400, "errorCode": "EVALUATION_VALIDATION_ERROR", "error": "Dataset has no test cases", "timestamp": "x"])
        }

        await #expect {
            _ = try await client(transport).startEvaluation(projectID: "p", body: ["name": "x"])
        } throws: { error in
            "\(error)" == "POST /api/projects/p/evaluations returned 400 EVALUATION_VALIDATION_ERROR: Dataset has no test cases."
        }
    }

    @Test func validationErrorListsFields() async throws {
        let transport = StubTransport { request in
            request.pathForDisplay == "/api/auth/login"
                ? Self.login
                : json(400, ["success": false, "statusCode": 400, "errorCode": "VALIDATION_ERROR", "error": "Validation failed", "data": ["name": "must not be blank"]])
        }

        await #expect {
            _ = try await client(transport).startEvaluation(projectID: "p", body: [:])
        } throws: { error in
            "\(error)".contains("Validation failed (name: must not be blank)")
        }
    }

    @Test func unauthorizedRequestLogsInAgainOnceAndRepeats() async throws {
        let calls = LockedValue(0)
        let transport = StubTransport { request in
            if request.pathForDisplay.hasPrefix("/api/auth/") {
                return Self.login
            }
            let count = calls.withLock { value in
                value += 1
                return value
            }
            return count == 1
                ? json(401, ["success": false, "statusCode": 401, "error": "Unauthorized - Please login again"])
                : envelope(["id": "run-1", "status": "PENDING"])
        }
        let client = client(transport)

        let run = try await client.run(id: "run-1")

        #expect(run.status == .pending)
        #expect(transport.count("POST", pathPrefix: "/api/auth/refresh") == 1)
        #expect(calls.value == 2)
    }

    @Test func persistentUnauthorizedIsNotRetriedForever() async throws {
        let transport = StubTransport { request in
            request.pathForDisplay.hasPrefix("/api/auth/")
                ? Self.login
                : json(401, ["success": false, "statusCode": 401, "error": "Unauthorized - Please login again"])
        }

        await #expect(throws: APIError.self) {
            _ = try await client(transport).run(id: "run-1")
        }
        #expect(transport.requests.value.count <= 4)
    }

    @Test func serviceUnavailableHonoursRetryAfter() async throws {
        let clock = VirtualClock()
        let calls = LockedValue(0)
        let transport = StubTransport { request in
            if request.pathForDisplay.hasPrefix("/api/auth/") {
                return Self.login
            }
            let count = calls.withLock { value in
                value += 1
                return value
            }
            return count == 1 ? json(503, ["error": "busy"], headers: [("Retry-After", "7")]) : envelope(["id": "run-1", "status": "COMPLETED"])
        }

        let run = try await client(transport, clock: clock).run(id: "run-1")

        #expect(run.status == .completed)
        #expect(clock.now >= .seconds(7))
        #expect(clock.now < .seconds(8))
    }

    @Test func connectionFailuresGiveUpWithinRetryWindow() async throws {
        let clock = VirtualClock()
        let transport = StubTransport { _ in throw TransportError(kind: .connectionFailed, detail: "Could not reach llmops.test: Connection refused.") }

        await #expect {
            try await client(transport, clock: clock).logIn()
        } throws: { error in
            (error as? APIError)?.kind == .unreachable && "\(error)".contains("Connection refused")
        }
        #expect(clock.now <= .seconds(30))
        #expect(transport.requests.value.count >= 3)
    }

    @Test func startIsNotRetriedAfterAmbiguousFailure() async throws {
        let transport = StubTransport { request in
            request.pathForDisplay.hasPrefix("/api/auth/") ? Self.login : json(502, ["error": "bad gateway"])
        }

        await #expect(throws: APIError.self) {
            _ = try await client(transport).startEvaluation(projectID: "p", body: ["name": "x"])
        }
        #expect(transport.count("POST", pathPrefix: "/api/projects/p/evaluations") == 1)
    }

    @Test func htmlErrorPageIsNamed() async throws {
        let transport = StubTransport { request in
            request.pathForDisplay.hasPrefix("/api/auth/") ? Self.login : HTTPResponse(status: 404, body: Array("<html><body>Not Found</body></html>".utf8))
        }

        await #expect {
            _ = try await client(transport).run(id: "x")
        } throws: { error in
            "\(error)".contains("HTML page")
        }
    }

    @Test func resultsReadEveryPageInBothShapes() async throws {
        let transport = StubTransport { request in
            if request.pathForDisplay.hasPrefix("/api/auth/") {
                return Self.login
            }
            let page = request.url.contains("page=0") ? 0 : 1
            let item: JSONValue = ["id": .string("r\(page)"), "scores": []]
            return envelope(["content": [item], "page": ["number": .number(Double(page)), "totalPages": 2, "size": 1, "totalElements": 2]])
        }

        let results = try await client(transport).results(runID: "run-1", expectedCount: 2, pageSize: 1)

        #expect(results.map(\.id) == ["r0", "r1"])
    }

    @Test func endlessResultsAreBounded() async throws {
        let transport = StubTransport { request in
            request.pathForDisplay.hasPrefix("/api/auth/")
                ? Self.login
                : envelope(["content": [["id": .string(UUID().uuidString)]], "last": false, "totalPages": 99999])
        }

        let results = try await client(transport).results(runID: "run-1", expectedCount: 10, pageSize: 5)

        #expect(results.count <= 5)
    }

    @Test func tokenCannotBeRenewed() async throws {
        let transport = StubTransport { _ in json(401, ["success": false, "statusCode": 401, "error": "Unauthorized - Please login again"]) }

        await #expect {
            _ = try await client(transport, credentials: .token(Secret("ready"))).run(id: "x")
        } throws: { error in
            "\(error)".contains("cannot be renewed")
        }
    }

    @Test func logoutSendsOwnRefreshTokenOnly() async throws {
        let transport = StubTransport { _ in Self.login }
        let client = client(transport)
        try await client.logIn()

        await client.logOut()

        let logout = try #require(transport.requests.value.last)
        #expect(logout.pathForDisplay == "/api/auth/logout")
        #expect(String(decoding: logout.body ?? [], as: UTF8.self) == #"{"refreshToken":"r1"}"#)
    }

    @Test func nullsAndUnknownFieldsAreTolerated() throws {
        let run = try #require(Run(json: ["id": "r", "status": "COMPLETED", "overallScore": nil, "metricSummaries": nil, "somethingNew": [1, 2], "totalTestCases": "20", "createdAt": "2026-11-30T10:00:00.123456789Z"]))

        #expect(run.overallScore == nil)
        #expect(run.totalCases == 20)
        #expect(run.createdAt != nil)
    }
}

@Suite struct TimestampTests {
    @Test(arguments: ["2026-11-30T10:07:00Z", "2026-11-30T10:07:00.1Z", "2026-11-30T10:07:00.123456Z", "2026-11-30T12:07:00+02:00", "2026-11-30T10:07:00"])
    func parsesVariants(text: String) throws {
        let date = try #require(Timestamp.parse(text))

        #expect(Timestamp.format(date) == "2026-11-30T10:07:00Z")
    }

    @Test func rejectsGarbage() {
        #expect(Timestamp.parse("yesterday") == nil)
    }
}
