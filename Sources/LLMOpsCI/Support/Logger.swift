/// A small logger shaped like swift-log's: levels, a constant message, and metadata.
public struct Logger: Sendable {
    public enum Level: Int, Sendable, Comparable {
        case trace, debug, info, notice, warning, error

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }

        var label: String {
            switch self {
            case .trace: "trace"
            case .debug: "debug"
            case .info: "info"
            case .notice: "notice"
            case .warning: "warning"
            case .error: "error"
            }
        }
    }

    public typealias Metadata = KeyValuePairs<String, String>

    public var level: Level
    private let sink: @Sendable (Level, String) -> Void

    /// Creates a logger that passes each formatted line at or above `level` to `sink`.
    public init(level: Level, sink: @escaping @Sendable (Level, String) -> Void) {
        self.level = level
        self.sink = sink
    }

    /// A logger that drops everything.
    public static let disabled = Logger(level: .error) { _, _ in }

    public func log(_ level: Level, _ message: String, metadata: Metadata = [:]) {
        guard level >= self.level else { return }
        var line = message
        if !metadata.isEmpty {
            line += " " + metadata.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        sink(level, line)
    }

    public func trace(_ message: String, metadata: Metadata = [:]) { log(.trace, message, metadata: metadata) }
    public func debug(_ message: String, metadata: Metadata = [:]) { log(.debug, message, metadata: metadata) }
    public func info(_ message: String, metadata: Metadata = [:]) { log(.info, message, metadata: metadata) }
    public func notice(_ message: String, metadata: Metadata = [:]) { log(.notice, message, metadata: metadata) }
    public func warning(_ message: String, metadata: Metadata = [:]) { log(.warning, message, metadata: metadata) }
    public func error(_ message: String, metadata: Metadata = [:]) { log(.error, message, metadata: metadata) }
}
