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

    /// Returns whether an environment variable's name marks it as a secret, such as
    /// `LLMOPS_CI_PASSWORD` or `GITHUB_TOKEN`.
    public static func isSecretName(_ name: String) -> Bool {
        let upper = name.uppercased()
        return ["PASSWORD", "TOKEN", "SECRET", "PASSWD", "API_KEY", "PRIVATE_KEY", "CREDENTIAL"].contains { upper.contains($0) }
    }

    public func register(_ value: String) {
        guard value.count >= 4 else { return }
        storage.withLock { _ = $0.insert(value) }
    }

    /// The registered secrets, longest first.
    public var values: [String] {
        storage.withLock { Array($0) }.sorted { $0.count > $1.count }
    }

    /// Returns `text` with every registered secret replaced by `[redacted]`, a mark that
    /// stays plain text in markdown.
    public func redact(_ text: String) -> String {
        // The percent-encoded form is what appears in a logged URL.
        let forms = values.flatMap { [$0, percentEncode($0)] }.sorted { $0.count > $1.count }
        var result = text
        for value in forms where result.contains(value) {
            result = result.replacing(value, with: "[redacted]")
        }
        return result
    }
}
