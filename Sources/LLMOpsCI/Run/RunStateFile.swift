import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The runs this job started, written to a file after each start so that a later step
/// (`llmops-ci cancel --state FILE`) can cancel them when the job's process was killed.
public final class RunStateFile: Sendable {
    public struct Entry: Sendable, Equatable {
        public var runID: String
        public var label: String
    }

    public let path: String?
    private let state = LockedValue<(server: String, entries: [Entry], finished: Set<String>)>(("", [], []))

    public init(path: String?, server: String) {
        self.path = path
        state.withLock { $0.server = server }
    }

    public func recordStarted(runID: String, label: String) {
        state.withLock { $0.entries.append(Entry(runID: runID, label: label)) }
        write()
    }

    public func recordFinished(runID: String) {
        state.withLock { _ = $0.finished.insert(runID) }
        write()
    }

    /// Runs started and not yet seen to end.
    public var unfinished: [Entry] {
        state.withLock { current in current.entries.filter { !current.finished.contains($0.runID) } }
    }

    /// Writes the file while holding the lock, so that two pairs starting at once cannot
    /// replace each other's newer snapshot with an older one.
    private func write() {
        guard let path else { return }
        state.withLock { current in
            let json: JSONValue = [
                "version": 1,
                "server": .string(current.server),
                "runs": .array(
                    current.entries.filter { !current.finished.contains($0.runID) }
                        .map { ["id": .string($0.runID), "label": .string($0.label)] }
                ),
            ]
            try? writeFileAtomically(path: path, contents: json.serialized(pretty: true) + "\n")
        }
    }

    /// Reads the unfinished runs recorded in a state file.
    public static func read(path: String) throws -> (server: String, entries: [Entry]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ResolutionError(description: "The state file '\(path)' cannot be read; no runs to cancel.")
        }
        guard let json = try? JSONValue.parse(Array(data)) else {
            throw ResolutionError(description: "The state file '\(path)' is not valid JSON. It is written by 'llmops-ci run'; pass the file that run wrote.")
        }
        let entries = (json["runs"].array ?? []).compactMap { item -> Entry? in
            guard let id = item["id"].string else { return nil }
            return Entry(runID: id, label: item["label"].string ?? id)
        }
        return (json["server"].string ?? "", entries)
    }
}

/// Writes a file through a temporary file and a rename, so that readers never see half of it.
public func writeFileAtomically(path: String, contents: String) throws {
    let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    if !directory.isEmpty {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }
    let temporary = path + ".tmp-\(UInt32.random(in: 0...UInt32.max))"
    guard FileManager.default.createFile(atPath: temporary, contents: Data(contents.utf8)) else {
        throw ResolutionError(description: "Could not write '\(path)'; check that its folder is writable.")
    }
    guard rename(temporary, path) == 0 else {
        _ = try? FileManager.default.removeItem(atPath: temporary)
        throw ResolutionError(description: "Could not replace '\(path)'; check that it is writable.")
    }
}
