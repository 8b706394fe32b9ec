import FoundationEssentials

/// A client of the LLMOps Eval REST API, as its server code defines it.
///
/// It unwraps the `{success, statusCode, message, data}` envelope (login, refresh and
/// logout are not wrapped), renews the session ahead of the token's `exp` and once after a
/// 401, and retries transient failures of idempotent requests within `retryWindow`.
public final class LLMOpsClient: Sendable {
    public let baseURL: String
    private let transport: any HTTPTransport
    private let credentials: Credentials
    private let clock: any AgentClock
    private let random: RandomSource
    private let logger: Logger
    private let retryWindow: Duration
    private let retryBackoff: Backoff
    private let session = SessionStore()
    /// Renew this long before the token's `exp`, so that no request carries an expiring token.
    private let renewalMargin: TimeInterval = 120
    private let requestCounter = LockedValue(0)

    public init(
        baseURL: String,
        credentials: Credentials,
        transport: any HTTPTransport,
        clock: any AgentClock,
        random: RandomSource = .system,
        logger: Logger,
        retryWindow: Duration = .seconds(45),
        retryBackoff: Backoff = Backoff(base: .seconds(1), cap: .seconds(15))
    ) {
        self.baseURL = baseURL
        self.credentials = credentials
        self.transport = transport
        self.clock = clock
        self.random = random
        self.logger = logger
        self.retryWindow = retryWindow
        self.retryBackoff = retryBackoff
    }

    /// The number of HTTP requests sent so far, retries included.
    public var requestCount: Int { requestCounter.value }

    /// Returns the expiry of the current access token, when known.
    public func tokenExpiry() async -> Date? {
        await session.current?.expiresAt
    }

    // MARK: Auth

    /// Logs in with the configured credentials, or adopts the ready token.
    public func logIn() async throws {
        let state = try await session.session(staleToken: nil, shouldRenew: { $0 == nil }) { [self] _ in
            try await freshLogin()
        }
        logger.debug("Logged in", metadata: ["token.expires": state.expiresAt.map(Timestamp.format) ?? "unknown"])
    }

    /// Ends this job's own session. Without a refresh token nothing is sent, because a logout
    /// without one ends every session of the user, parallel jobs included.
    public func logOut() async {
        guard let refreshToken = await session.current?.refreshToken else { return }
        let body: JSONValue = ["refreshToken": .string(refreshToken.value)]
        _ = try? await perform("POST", "/api/auth/logout", body: body, isIdempotent: false, isWrapped: false)
    }

    private func freshLogin() async throws -> TokenState {
        switch credentials {
        case .token(let token):
            return TokenState(accessToken: token, refreshToken: nil, expiresAt: expiryOfJWT(token.value), obtainedAt: clock.date)
        case .password(let email, let password):
            let body: JSONValue = ["email": .string(email), "password": .string(password.value)]
            let json = try await perform(
                "POST",
                "/api/auth/login",
                body: body,
                isIdempotent: true,
                isAuthenticated: false,
                isWrapped: false
            )
            return try tokenState(from: json, path: "/api/auth/login")
        }
    }

    private func renew(_ previous: TokenState?) async throws -> TokenState {
        if let refreshToken = previous?.refreshToken {
            do {
                let json = try await perform(
                    "POST",
                    "/api/auth/refresh",
                    body: ["refreshToken": .string(refreshToken.value)],
                    isIdempotent: false,
                    isAuthenticated: false,
                    isWrapped: false
                )
                logger.debug("Renewed the session with the refresh token")
                return try tokenState(from: json, path: "/api/auth/refresh")
            } catch let error as APIError where error.kind == .unauthorized || error.kind == .rejected {
                logger.debug("The server rejected the refresh token; logging in again")
            }
        }
        if case .token = credentials {
            throw APIError(
                kind: .unauthorized,
                method: "POST",
                path: "/api/auth/refresh",
                message: "the server rejected server.token, and a ready token cannot be renewed. Use a fresh token, "
                    + "or configure server.email and server.password so that the agent can log in again"
            )
        }
        return try await freshLogin()
    }

    private func tokenState(from json: JSONValue, path: String) throws -> TokenState {
        // Login is flat on the server; some versions of the docs show it wrapped in `data`.
        let body = json["accessToken"].isNull ? json["data"] : json
        guard let access = body["accessToken"].string, !access.isEmpty else {
            throw APIError(kind: .invalidResponse, method: "POST", path: path, status: 200, message: "the response has no accessToken")
        }
        let refresh = body["refreshToken"].string.map(Secret.init)
        return TokenState(accessToken: Secret(access), refreshToken: refresh, expiresAt: expiryOfJWT(access), obtainedAt: clock.date)
    }

    private func authorizedSession(rejectedToken: String?) async throws -> TokenState {
        let margin = renewalMargin
        let now = clock.date
        return try await session.session(
            staleToken: rejectedToken,
            shouldRenew: { state in
                guard let state else { return true }
                return state.refreshToken != nil && state.isExpiring(at: now, margin: margin)
            },
            renew: { [self] previous in
                previous == nil ? try await freshLogin() : try await renew(previous)
            }
        )
    }

    // MARK: Resources

    public func metrics(projectID: String) async throws -> [MetricDefinition] {
        let data = try await get("/api/projects/\(escape(projectID))/metrics")
        let items = data.array ?? data["content"].array ?? []
        return items.compactMap(MetricDefinition.init(json:))
    }

    public func projects(search: String?) async throws -> [NamedResource] {
        try await allPages("/api/projects", query: [("search", search)]).compactMap(NamedResource.init(json:))
    }

    public func project(id: String) async throws -> NamedResource? {
        NamedResource(json: try await get("/api/projects/\(escape(id))"))
    }

    public func datasets(projectID: String, search: String?) async throws -> [NamedResource] {
        try await allPages("/api/projects/\(escape(projectID))/datasets", query: [("search", search)])
            .compactMap(NamedResource.init(json:))
    }

    public func endpoints(projectID: String, search: String?, type: String?) async throws -> [NamedResource] {
        try await allPages(
            "/api/projects/\(escape(projectID))/llm-endpoints",
            query: [("search", search), ("llmType", type)]
        ).compactMap(NamedResource.init(json:))
    }

    /// Starts an evaluation. Not idempotent: the caller decides what to do after an ambiguous failure.
    public func startEvaluation(projectID: String, body: JSONValue) async throws -> Run {
        let data = try await perform("POST", "/api/projects/\(escape(projectID))/evaluations", body: body, isIdempotent: false)
        guard let run = Run(json: data) else {
            throw APIError(
                kind: .invalidResponse,
                method: "POST",
                path: "/api/projects/\(projectID)/evaluations",
                message: "the response has no run id"
            )
        }
        return run
    }

    public func run(id: String) async throws -> Run {
        let path = "/api/evaluations/\(escape(id))"
        guard let run = Run(json: try await get(path)) else {
            throw APIError(kind: .invalidResponse, method: "GET", path: path, message: "the response has no run")
        }
        return run
    }

    /// Lists one page of a project's runs, newest first unless `sort` sets another order.
    public func runs(projectID: String, search: String?, status: String?, page: Int, size: Int, sort: String = "createdAt,desc") async throws -> Page {
        let query: [(String, String?)] = [
            ("search", search), ("status", status), ("page", String(page)), ("size", String(size)), ("sort", sort),
        ]
        let data = try await get("/api/projects/\(escape(projectID))/evaluations", query: query)
        return Page(json: data, requestedPage: page)
    }

    /// Fetches every page of a run's per-case results.
    ///
    /// Stops after `maxPages` pages, so that a server whose paging never ends cannot hold the job.
    public func results(runID: String, expectedCount: Int?, pageSize: Int = 200) async throws -> [CaseResult] {
        let path = "/api/evaluations/\(escape(runID))/results"
        let maxPages = max(2, ((expectedCount ?? 10_000) + pageSize - 1) / pageSize + 2)
        var results: [CaseResult] = []
        var seen: Set<String> = []
        for pageNumber in 0..<maxPages {
            let data = try await get(path, query: [("page", String(pageNumber)), ("size", String(pageSize)), ("sort", "createdAt,asc")])
            let page = Page(json: data, requestedPage: pageNumber)
            for item in page.content {
                guard let result = CaseResult(json: item), seen.insert(result.id).inserted else { continue }
                results.append(result)
            }
            if page.isLast || page.content.isEmpty {
                return results
            }
        }
        logger.warning(
            "Stopped reading results after too many pages",
            metadata: ["run.id": runID, "pages": String(maxPages), "results": String(results.count)]
        )
        return results
    }

    /// Cancels a run; a run that has already ended is not an error.
    public func cancel(runID: String) async throws {
        do {
            _ = try await perform("POST", "/api/evaluations/\(escape(runID))/cancel", body: nil, isIdempotent: true)
        } catch let error as APIError where error.status == 400 {
            logger.debug("The run could not be cancelled, probably because it has ended", metadata: ["run.id": runID])
        }
    }

    // MARK: Plumbing

    private func get(_ path: String, query: [(String, String?)] = []) async throws -> JSONValue {
        try await perform("GET", path, query: query, body: nil, isIdempotent: true)
    }

    private func allPages(_ path: String, query: [(String, String?)], maxPages: Int = 50) async throws -> [JSONValue] {
        var items: [JSONValue] = []
        for pageNumber in 0..<maxPages {
            let data = try await get(path, query: query + [("page", String(pageNumber)), ("size", "100")])
            let page = Page(json: data, requestedPage: pageNumber)
            items += page.content
            if page.isLast || page.content.isEmpty || data.array != nil {
                break
            }
        }
        return items
    }

    private func escape(_ segment: String) -> String {
        percentEncode(segment)
    }

    /// Sends one request with retries and session handling, and returns the unwrapped payload.
    func perform(
        _ method: String,
        _ path: String,
        query: [(String, String?)] = [],
        body: JSONValue?,
        isIdempotent: Bool,
        isAuthenticated: Bool = true,
        isWrapped: Bool = true
    ) async throws -> JSONValue {
        var url = baseURL + path
        let pairs = query.compactMap { name, value in value.map { "\(name)=\(percentEncode($0))" } }
        if !pairs.isEmpty {
            url += "?" + pairs.joined(separator: "&")
        }
        let deadline = clock.now + retryWindow
        var attempt = 0
        var rejectedToken: String?
        var hasRenewed = false

        while true {
            try Task.checkCancellation()
            var headers: [(name: String, value: String)] = [("Accept", "application/json")]
            var sentToken: String?
            if isAuthenticated {
                let state = try await authorizedSession(rejectedToken: rejectedToken)
                sentToken = state.accessToken.value
                headers.append(("Authorization", "Bearer \(state.accessToken.value)"))
            }
            var request = HTTPRequest(method: method, url: url, headers: headers)
            if let body {
                request.headers.append(("Content-Type", "application/json"))
                request.body = Array(body.serialized().utf8)
            }

            requestCounter.withLock { $0 += 1 }
            let response: HTTPResponse
            do {
                response = try await transport.send(request)
                logger.debug("Sent request", metadata: ["request": "\(method) \(request.pathForDisplay)", "status": String(response.status)])
            } catch let error as TransportError {
                if error.kind == .cancelled {
                    throw APIError(kind: .cancelled, method: method, path: path, message: "the job was cancelled")
                }
                if error.isTransient, isIdempotent, let delay = retryDelay(attempt: attempt, hint: nil, deadline: deadline) {
                    logger.debug("Retrying after a transport error", metadata: ["request": "\(method) \(path)", "error": error.detail])
                    attempt += 1
                    try await clock.sleep(for: delay)
                    continue
                }
                throw APIError(kind: .unreachable, method: method, path: path, message: error.detail)
            }

            if response.status == 401, isAuthenticated, !hasRenewed {
                logger.debug("The server rejected the token; renewing the session", metadata: ["request": "\(method) \(path)"])
                hasRenewed = true
                rejectedToken = sentToken
                continue
            }

            let isRetryableStatus = [429, 502, 503, 504].contains(response.status)
                || (response.status == 500 && method == "GET" && attempt < 2)
            if isRetryableStatus, isIdempotent || response.status == 429,
                let delay = retryDelay(attempt: attempt, hint: retryAfter(response.header("Retry-After")), deadline: deadline)
            {
                logger.debug(
                    "Retrying after a transient status",
                    metadata: ["request": "\(method) \(path)", "status": String(response.status), "delay.seconds": String(delay.seconds)]
                )
                attempt += 1
                try await clock.sleep(for: delay)
                continue
            }

            do {
                return try payload(of: response, method: method, path: path, isWrapped: isWrapped)
            } catch let error as APIError where error.kind == .invalidResponse && method == "GET" && attempt < 2 {
                // A body cut short by a proxy or a reset reads as invalid JSON; one more try is cheap.
                guard let delay = retryDelay(attempt: attempt, hint: nil, deadline: deadline) else { throw error }
                logger.debug("Retrying after a response that could not be read", metadata: ["request": "\(method) \(path)"])
                attempt += 1
                try await clock.sleep(for: delay)
            }
        }
    }

    private func retryDelay(attempt: Int, hint: Duration?, deadline: Duration) -> Duration? {
        var delay = retryBackoff.delay(forAttempt: attempt, random: random.unit())
        if let hint, hint > delay {
            delay = hint
        }
        guard clock.now + delay < deadline else { return nil }
        return delay
    }

    private func payload(of response: HTTPResponse, method: String, path: String, isWrapped: Bool) throws -> JSONValue {
        let json: JSONValue
        if response.body.isEmpty {
            json = .null
        } else if let parsed = try? JSONValue.parse(response.body) {
            json = parsed
        } else {
            let looksLikeHTML = response.bodyText.prefix(200).lowercased().contains("<html")
                || response.bodyText.prefix(200).lowercased().contains("<!doctype")
            let what = looksLikeHTML ? "an HTML page" : "a body that is not JSON"
            throw APIError(
                kind: response.status >= 400 ? .rejected : .invalidResponse,
                method: method,
                path: path,
                status: response.status,
                message: "the server sent \(what) (is server.url the API address, and is a proxy in the way?)"
            )
        }

        let serverMessage = json["error"].string ?? json["message"].string
        if response.status >= 400 {
            let kind: APIError.Kind = response.status == 401 ? .unauthorized : .rejected
            var message = serverMessage ?? "no error text"
            if let fields = json["data"].object, !fields.isEmpty {
                message += " (" + fields.keys.sorted().map { "\($0): \(fields[$0]!.string ?? "invalid")" }.joined(separator: "; ") + ")"
            }
            throw APIError(kind: kind, method: method, path: path, status: response.status, errorCode: json["errorCode"].string, message: message)
        }
        if json["success"].bool == false {
            throw APIError(
                kind: .rejected,
                method: method,
                path: path,
                status: response.status,
                errorCode: json["errorCode"].string,
                message: serverMessage ?? "the server reported success: false"
            )
        }
        guard isWrapped, json["success"].bool != nil || json.object?["data"] != nil else {
            return json
        }
        return json["data"]
    }
}

/// Percent-encodes everything but unreserved URI characters.
func percentEncode(_ text: String) -> String {
    var output = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            output.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = String(byte, radix: 16, uppercase: true)
            output += "%" + (hex.count == 1 ? "0" : "") + hex
        }
    }
    return output
}
