import FoundationEssentials

/// JSON over HTTP for forge APIs, with bounded retries of transient failures and rate limits.
struct ForgeHTTP: Sendable {
    let transport: any HTTPTransport
    let headers: [(name: String, value: String)]
    let clock: any AgentClock
    let random: RandomSource
    let logger: Logger
    /// Time on `clock.now` after which no retry waits any more.
    let deadline: Duration
    let maxAttempts = 4

    struct Response {
        var status: Int
        var json: JSONValue
        var headers: HTTPResponse
    }

    /// Sends a request; 2xx returns, anything else throws a classified `ForgeError`.
    ///
    /// Writes are retried only on statuses that prove the server did not act (429, rate
    /// limits, 502/503/504 before a body), and the caller re-checks for duplicates after
    /// an ambiguous create.
    func send(_ method: String, _ url: String, body: JSONValue? = nil) async throws -> Response {
        var attempt = 0
        let path = HTTPRequest(method: method, url: url).pathForDisplay
        while true {
            attempt += 1
            var request = HTTPRequest(method: method, url: url, headers: headers)
            if let body {
                request.headers.append(("Content-Type", "application/json"))
                request.body = Array(body.serialized().utf8)
            }
            let response: HTTPResponse
            do {
                response = try await transport.send(request)
            } catch let error as TransportError {
                if error.isTransient, attempt < maxAttempts, let delay = retryDelay(attempt: attempt, response: nil) {
                    try await clock.sleep(for: delay)
                    continue
                }
                throw ForgeError(kind: error.kind == .cancelled ? .other : .transient, method: method, path: path, status: nil, message: error.detail)
            }

            let json = (try? JSONValue.parse(response.body)) ?? .null
            if (200..<300).contains(response.status) {
                // A 2xx with an empty body where JSON was due is treated like a gateway hiccup.
                if response.body.isEmpty, method == "GET" || method == "POST", response.status != 204 {
                    if attempt < maxAttempts, let delay = retryDelay(attempt: attempt, response: nil) {
                        logger.debug("The forge sent an empty response; retrying", metadata: ["request": "\(method) \(path)"])
                        try await clock.sleep(for: delay)
                        continue
                    }
                    throw ForgeError(kind: .transient, method: method, path: path, status: response.status, message: "the response was empty")
                }
                return Response(status: response.status, json: json, headers: response)
            }

            let message = errorMessage(json, response)
            let kind = classify(response, message: message)
            let isRetryable = kind == .rateLimited || (kind == .transient && (method == "GET" || method == "PUT" || method == "PATCH" || method == "DELETE" || response.status == 503))
            if isRetryable, attempt < maxAttempts, let delay = retryDelay(attempt: attempt, response: response) {
                logger.notice(
                    "The forge asked to retry later; waiting",
                    metadata: ["request": "\(method) \(path)", "status": String(response.status), "delay.seconds": String(Int(delay.seconds.rounded(.up)))]
                )
                try await clock.sleep(for: delay)
                continue
            }
            throw ForgeError(kind: kind, method: method, path: path, status: response.status, message: message)
        }
    }

    private func errorMessage(_ json: JSONValue, _ response: HTTPResponse) -> String {
        if let text = json["message"].string {
            return text
        }
        if let object = json["message"].object {
            return object.keys.sorted().map { "\($0) \(object[$0]!.array?.compactMap(\.string).joined(separator: ", ") ?? "")" }.joined(separator: "; ")
        }
        if let text = json["error_description"].string ?? json["error"].string {
            return text
        }
        let text = response.bodyText.prefix(200)
        return text.isEmpty ? "no error text" : String(text)
    }

    private func classify(_ response: HTTPResponse, message: String) -> ForgeError.Kind {
        let lowered = message.lowercased()
        switch response.status {
        case 401:
            return .unauthorized
        case 403, 429:
            if response.status == 429 || lowered.contains("rate limit") || response.header("x-ratelimit-remaining") == "0" || response.header("retry-after") != nil {
                return .rateLimited
            }
            return .forbidden
        case 404:
            return .notFound
        case 413:
            return .tooLarge
        case 400 where lowered.contains("too long"), 422 where lowered.contains("too long") || lowered.contains("too large"):
            return .tooLarge
        case 500, 502, 503, 504:
            return .transient
        default:
            return .other
        }
    }

    /// Returns the wait before the next attempt, or nil when it would pass the deadline.
    private func retryDelay(attempt: Int, response: HTTPResponse?) -> Duration? {
        var delay = Backoff(base: .seconds(1), cap: .seconds(20)).delay(forAttempt: attempt - 1, random: random.unit())
        if let response {
            if let hint = retryAfter(response.header("retry-after")) {
                delay = hint
            } else if response.header("x-ratelimit-remaining") == "0" || response.header("ratelimit-remaining") == "0",
                let reset = (response.header("x-ratelimit-reset") ?? response.header("ratelimit-reset")).flatMap(Double.init)
            {
                delay = .seconds(max(1, reset - clock.date.timeIntervalSince1970))
            }
        }
        guard clock.now + delay <= deadline else { return nil }
        return delay
    }
}

/// Reads the `next` URL of an RFC 8288 `Link` header.
func nextLink(_ header: String?) -> String? {
    guard let header else { return nil }
    for part in header.split(separator: ",") {
        let segments = part.split(separator: ";")
        guard segments.count >= 2, segments.dropFirst().contains(where: { $0.contains("rel=\"next\"") || $0.contains("rel=next") }) else { continue }
        let target = String(segments[0]).trimmingCharacters(" ")
        guard target.hasPrefix("<"), target.hasSuffix(">") else { continue }
        return String(target.dropFirst().dropLast())
    }
    return nil
}
