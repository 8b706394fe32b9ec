/// The `triggerReference` of a run this agent starts: branch, commit and a key of the job.
///
/// The server stores it as free text of at most 255 characters and has no other place for
/// them. The format is `branch=<encoded>;sha=<commit>;key=<hex>;by=llmops-ci`. The branch is
/// percent-encoded outside `A-Za-z0-9._/-`, so that no branch name can add a field or break
/// the length limit, and an overlong branch is shortened and marked with `~`.
public struct TriggerReference: Sendable, Equatable {
    public static let maxLength = 255

    public var branch: String?
    public var commit: String?
    public var key: String?

    public init(branch: String?, commit: String?, key: String?) {
        self.branch = branch
        self.commit = commit
        self.key = key
    }

    public var encoded: String {
        let commitPart = "sha=" + (commit.map { String($0.prefix(64)) } ?? "unknown")
        let keyPart = "key=" + (key ?? "")
        let tail = ";\(commitPart);\(keyPart);by=llmops-ci"
        var branchPart = Self.encode(branch ?? "")
        let room = Self.maxLength - tail.count - "branch=".count
        if branchPart.count > room {
            // Cut at an escape boundary and mark the cut, so decoding never reads half an escape.
            var cut = String(branchPart.prefix(room - 1))
            if let percent = cut.suffix(2).firstIndex(of: "%") {
                cut = String(cut[..<percent])
            }
            branchPart = cut + "~"
        }
        return "branch=\(branchPart)\(tail)"
    }

    /// Reads a reference written by this agent or by hand (`branch=main;sha=abc`); nil when it has neither field.
    public static func parse(_ text: String?) -> TriggerReference? {
        guard let text else { return nil }
        var fields: [String: String] = [:]
        for part in text.split(separator: ";") {
            guard let equals = part.firstIndex(of: "=") else { continue }
            let name = String(part[..<equals]).trimmingCharacters(" ").lowercased()
            fields[name] = String(part[part.index(after: equals)...])
        }
        guard fields["branch"] != nil || fields["sha"] != nil else { return nil }
        let branch = fields["branch"].map { $0.hasSuffix("~") ? $0 : decode($0) }
        return TriggerReference(branch: branch, commit: fields["sha"], key: fields["key"])
    }

    static func encode(_ text: String) -> String {
        var output = ""
        for byte in text.utf8 {
            let isSafe = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2F || byte == 0x2D
            if isSafe {
                output.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                output += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return output
    }

    static func decode(_ text: String) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == 0x25, let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Returns the 64-bit FNV-1a hash of `text` as 16 hex digits, stable across runs and platforms, for keys and seeds.
public func stableHash(_ text: String) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}
