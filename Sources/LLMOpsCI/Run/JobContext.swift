import FoundationEssentials

/// The CI job the agent runs in: forge, branch, commit and job identity.
public struct JobContext: Sendable {
    public enum Forge: String, Sendable {
        case github, gitlab, local
    }

    public var forge: Forge
    public var branch: String?
    public var commit: String?
    /// The branch a pull or merge request targets, where baselines come from.
    public var targetBranch: String?
    /// Identifies this job among the jobs of one repository: workflow and job names.
    public var jobName: String

    public init(forge: Forge, branch: String?, commit: String?, targetBranch: String?, jobName: String) {
        self.forge = forge
        self.branch = branch
        self.commit = commit
        self.targetBranch = targetBranch
        self.jobName = jobName
    }

    /// Reads the context from the predefined variables of GitHub Actions or GitLab CI, else
    /// from the `.git` folder in `directory`.
    public static func detect(
        environment: [String: String],
        directory: String = ".",
        readFile: (String) -> [UInt8]? = { FileManager.default.contents(atPath: $0).map(Array.init) }
    ) -> JobContext {
        func value(_ name: String) -> String? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            return text
        }
        if value("GITHUB_ACTIONS") == "true" {
            // On pull requests GITHUB_SHA is a temporary merge commit; the payload has the head.
            let event = value("GITHUB_EVENT_PATH").flatMap(readFile).flatMap { try? JSONValue.parse($0) } ?? .null
            let head = event["pull_request"]["head"]["sha"].string ?? event["workflow_run"]["head_sha"].string
                ?? event["merge_group"]["head_sha"].string
            let mergeGroupBase = event["merge_group"]["base_ref"].string.map { $0.replacing("refs/heads/", with: "") }
            let headBranch = value("GITHUB_HEAD_REF") ?? event["workflow_run"]["head_branch"].string
            return JobContext(
                forge: .github,
                branch: headBranch ?? value("GITHUB_REF_NAME"),
                commit: value("LLMOPS_HEAD_SHA") ?? head ?? value("GITHUB_SHA"),
                targetBranch: value("GITHUB_BASE_REF") ?? event["pull_request"]["base"]["ref"].string ?? mergeGroupBase,
                jobName: [value("GITHUB_WORKFLOW"), value("GITHUB_JOB")].compactMap { $0 }.joined(separator: "/")
            )
        }
        if value("GITLAB_CI") == "true" {
            return JobContext(
                forge: .gitlab,
                branch: value("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") ?? value("CI_COMMIT_REF_NAME"),
                commit: value("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA") ?? value("CI_COMMIT_SHA"),
                targetBranch: value("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
                jobName: value("CI_JOB_NAME") ?? "job"
            )
        }
        let git = GitDirectory.find(from: directory)
        return JobContext(
            forge: .local,
            branch: git.branch,
            commit: git.commit,
            targetBranch: nil,
            jobName: "local"
        )
    }
}

/// Reads the current branch and commit from a `.git` folder without running git.
struct GitDirectory {
    let path: String

    /// Finds the `.git` folder of the working tree that contains `directory`, following the
    /// `gitdir:` file of a linked worktree.
    static func find(from directory: String) -> GitDirectory {
        var current = directory == "." ? FileManager.default.currentDirectoryPath : directory
        for _ in 0..<64 {
            let candidate = current + "/.git"
            var isDirectory = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory) {
                if !isDirectory, let data = FileManager.default.contents(atPath: candidate) {
                    let text = String(decoding: data, as: UTF8.self).trimmingCharacters("\n")
                    if text.hasPrefix("gitdir: ") {
                        let target = String(text.dropFirst("gitdir: ".count))
                        return GitDirectory(path: target.hasPrefix("/") ? target : current + "/" + target)
                    }
                }
                return GitDirectory(path: candidate)
            }
            guard let slash = current.lastIndex(of: "/"), current != "/" else { break }
            current = slash == current.startIndex ? "/" : String(current[..<slash])
        }
        return GitDirectory(path: directory + "/.git")
    }

    var head: String? {
        read("HEAD")
    }

    var branch: String? {
        guard let head, head.hasPrefix("ref: refs/heads/") else { return nil }
        return String(head.dropFirst("ref: refs/heads/".count))
    }

    var commit: String? {
        guard let head else { return nil }
        guard head.hasPrefix("ref: ") else { return head }
        let reference = String(head.dropFirst(5))
        if let loose = read(reference) {
            return loose
        }
        let packed = read("packed-refs") ?? ""
        for line in packed.split(separator: "\n") where line.hasSuffix(" " + reference) {
            return String(line.prefix { $0 != " " })
        }
        return nil
    }

    private func read(_ name: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path + "/" + name) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters("\n")
        return text.isEmpty ? nil : text
    }
}
