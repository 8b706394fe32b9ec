/// A failed call to the LLMOps Eval API, naming the request and the server's own message.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No HTTP response at all, even after retrying.
        case unreachable
        /// The server returned an error status or `success: false`.
        case rejected
        /// The credentials were refused.
        case unauthorized
        /// The body could not be read as the expected JSON.
        case invalidResponse
        /// The job was cancelled while the request was in flight.
        case cancelled
    }

    public var kind: Kind
    public var method: String
    public var path: String
    public var status: Int?
    public var errorCode: String?
    public var message: String

    public init(kind: Kind, method: String, path: String, status: Int? = nil, errorCode: String? = nil, message: String) {
        self.kind = kind
        self.method = method
        self.path = path
        self.status = status
        self.errorCode = errorCode
        self.message = message
    }

    public var description: String {
        var text = "\(method) \(path)"
        if let status {
            text += " returned \(status)"
            if let errorCode {
                text += " \(errorCode)"
            }
            text += ": \(message)"
        } else {
            text += " failed: \(message)"
        }
        return text.hasSuffix(".") ? text : text + "."
    }
}
