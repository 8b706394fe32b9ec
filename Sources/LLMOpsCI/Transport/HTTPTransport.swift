import FoundationEssentials

/// One HTTP request, with the whole body in memory.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?

    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// The path and query of `url`, for messages that must not show the host's credentials.
    public var pathForDisplay: String {
        guard let schemeEnd = url.firstRange(of: "://") else { return url }
        let afterScheme = url[schemeEnd.upperBound...]
        guard let slash = afterScheme.firstIndex(of: "/") else { return "/" }
        return String(afterScheme[slash...])
    }
}

/// A whole HTTP response.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The value of the first header called `name`, compared without regard to case.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }

    public var bodyText: String {
        String(decoding: body, as: UTF8.self)
    }
}

/// A failure to get any HTTP response at all.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case connectionFailed
        case timedOut
        case tlsFailed
        case cancelled
        case responseTooLarge
        case other
    }

    public let kind: Kind
    public let detail: String

    public init(kind: Kind, detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { detail }

    /// Whether the same request may succeed when sent again.
    public var isTransient: Bool {
        switch kind {
        case .connectionFailed, .timedOut: true
        case .tlsFailed, .cancelled, .responseTooLarge, .other: false
        }
    }
}

/// Sends one HTTP request and returns the whole response.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// The settings of a transport that reaches one server.
public struct TransportSettings: Sendable {
    public var connectTimeout: Duration
    public var requestTimeout: Duration
    /// A PEM file of certificate authorities to trust instead of the system's.
    public var caBundlePath: String?
    public var userAgent: String
    public var maxResponseBytes: Int

    public init(
        connectTimeout: Duration = .seconds(10),
        requestTimeout: Duration = .seconds(30),
        caBundlePath: String? = nil,
        userAgent: String = "llmops-ci/\(AgentVersion.current)",
        maxResponseBytes: Int = 64 << 20
    ) {
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.caBundlePath = caBundlePath
        self.userAgent = userAgent
        self.maxResponseBytes = maxResponseBytes
    }
}

/// Builds a transport for the given settings, so that the LLMOps server and a forge can
/// each get their own trust store and timeouts.
public typealias TransportFactory = @Sendable (TransportSettings) -> any HTTPTransport
