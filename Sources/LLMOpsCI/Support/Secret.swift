/// A credential that never appears in logs, errors, or `print` output.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String

    public init(_ value: String) {
        self.value = value
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}

/// The set of secret values known to this process, used to scrub any text before it leaves.
///
/// Values shorter than four characters are not registered, because replacing them would
/// mangle ordinary words.
public final class SecretRegistry: Sendable {
    private let storage = LockedValue<Set<String>>([])

    public init() {}

    /// Registers a secret and its percent-encoded form, which appears in logged URLs.
    public func register(_ value: String) {
        guard value.count >= 4 else { return }
        let encoded = percentEncode(value)
        storage.withLock { values in
            values.insert(value)
            values.insert(encoded)
        }
    }

    public var values: [String] {
        storage.withLock { Array($0) }.sorted { $0.count > $1.count }
    }

    /// Returns `text` with every registered secret replaced by `[redacted]`, a mark that
    /// stays plain text in markdown.
    public func redact(_ text: String) -> String {
        var result = text
        for value in values where result.contains(value) {
            result = result.replacing(value, with: "[redacted]")
        }
        return result
    }
}
