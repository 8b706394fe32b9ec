import FoundationEssentials

/// The forge and the pull or merge request to post on, read from the CI environment and event payload.
public struct ForgeTarget: Sendable {
    public enum Kind: Sendable, Equatable {
        case github
        case gitlab
    }

    public enum Request: Sendable, Equatable {
        /// A known pull or merge request number.
        case number(Int)
        /// Find the open request whose head is this commit (push and branch pipelines).
        case lookUpByHead(String)
        /// The event has no pull request (merge queue, schedule, manual run): summary only.
        case none(reason: String)
    }

    public var kind: Kind
    public var apiURL: String
    public var graphQLURL: String
    /// `owner/name` on GitHub; the project id or path that owns the merge request on GitLab.
    public var repository: String
    public var request: Request
    /// The head repository of a fork pull request, to match pull requests by head.
    public var headRepository: String?
    public var isFork: Bool
    /// Whether the pull request comes from Dependabot, which gets no secrets either.
    public var isBot: Bool
    public var labels: [String]
    /// The token to write with, and the variable it came from (for messages).
    public var token: Secret?
    public var tokenVariable: String
    public var usesJobToken: Bool
    public var webURL: String?
    /// A CA bundle for a self-managed GitLab with a private certificate authority.
    public var caBundle: String?

    /// Reads the forge from `GITHUB_*` or `CI_*` variables; nil outside GitHub Actions and GitLab CI.
    public static func detect(environment: [String: String], readFile: (String) -> [UInt8]?) -> ForgeTarget? {
        func value(_ name: String) -> String? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            return text
        }
        if value("GITHUB_ACTIONS") == "true" {
            return detectGitHub(value, readFile: readFile)
        }
        if value("GITLAB_CI") == "true" {
            return detectGitLab(value)
        }
        return nil
    }

    private static func detectGitHub(_ value: (String) -> String?, readFile: (String) -> [UInt8]?) -> ForgeTarget {
        let apiURL = value("GITHUB_API_URL") ?? "https://api.github.com"
        let graphQLURL = value("GITHUB_GRAPHQL_URL") ?? (apiURL.hasSuffix("/api/v3") ? String(apiURL.dropLast(2)) + "graphql" : apiURL + "/graphql")
        let event = value("GITHUB_EVENT_PATH").flatMap(readFile).flatMap { try? JSONValue.parse($0) } ?? .null
        let eventName = value("GITHUB_EVENT_NAME") ?? ""
        let token = value("LLMOPS_GITHUB_TOKEN").map { (Secret($0), "LLMOPS_GITHUB_TOKEN") } ?? value("GITHUB_TOKEN").map { (Secret($0), "GITHUB_TOKEN") }

        var target = ForgeTarget(
            kind: .github,
            apiURL: apiURL,
            graphQLURL: graphQLURL,
            repository: value("GITHUB_REPOSITORY") ?? "",
            request: .none(reason: "the \(eventName.isEmpty ? "unknown" : eventName) event has no pull request"),
            isFork: false,
            isBot: value("GITHUB_ACTOR") == "dependabot[bot]",
            labels: [],
            token: token?.0,
            tokenVariable: token?.1 ?? "GITHUB_TOKEN",
            usesJobToken: false,
            webURL: value("GITHUB_SERVER_URL")
        )
        let pullRequest = event["pull_request"]
        switch eventName {
        case "pull_request", "pull_request_target":
            if let number = event["number"].int ?? pullRequest["number"].int {
                target.request = .number(number)
            }
            let head = pullRequest["head"]["repo"]["full_name"].string
            let base = pullRequest["base"]["repo"]["full_name"].string
            target.isFork = head == nil || (base != nil && head != base)
            target.headRepository = head
            target.labels = (pullRequest["labels"].array ?? []).compactMap { $0["name"].string }
            target.isBot = target.isBot || pullRequest["user"]["login"].string == "dependabot[bot]"
        case "issue_comment":
            if event["issue"]["pull_request"].object != nil, let number = event["issue"]["number"].int {
                target.request = .number(number)
            }
        case "workflow_run":
            let run = event["workflow_run"]
            if let number = run["pull_requests"].array?.first?["number"].int {
                target.request = .number(number)
            } else if let sha = run["head_sha"].string {
                target.request = .lookUpByHead(sha)
                target.headRepository = run["head_repository"]["full_name"].string
            }
        case "push":
            if let sha = value("GITHUB_SHA") {
                target.request = .lookUpByHead(sha)
            }
        default:
            break
        }
        return target
    }

    private static func detectGitLab(_ value: (String) -> String?) -> ForgeTarget {
        let apiURL = value("CI_API_V4_URL") ?? ((value("CI_SERVER_URL") ?? "https://gitlab.com") + "/api/v4")
        let token = value("LLMOPS_GITLAB_TOKEN").map { (Secret($0), "LLMOPS_GITLAB_TOKEN") } ?? value("GITLAB_TOKEN").map { (Secret($0), "GITLAB_TOKEN") }
        var target = ForgeTarget(
            kind: .gitlab,
            apiURL: apiURL,
            graphQLURL: value("CI_API_GRAPHQL_URL") ?? "",
            repository: value("CI_MERGE_REQUEST_PROJECT_ID") ?? value("CI_PROJECT_ID") ?? value("CI_PROJECT_PATH") ?? "",
            request: .none(reason: "this pipeline has no merge request"),
            isFork: false,
            isBot: false,
            labels: (value("CI_MERGE_REQUEST_LABELS") ?? "").split(separator: ",").map { String($0).trimmingCharacters(" ") },
            token: token?.0,
            tokenVariable: "LLMOPS_GITLAB_TOKEN",
            usesJobToken: token == nil && value("CI_JOB_TOKEN") != nil,
            webURL: value("CI_SERVER_URL"),
            caBundle: value("CI_SERVER_TLS_CA_FILE")
        )
        if let iid = value("CI_MERGE_REQUEST_IID").flatMap(Int.init) {
            target.request = .number(iid)
            if let source = value("CI_MERGE_REQUEST_SOURCE_PROJECT_ID"), let owner = value("CI_MERGE_REQUEST_PROJECT_ID") {
                target.isFork = source != owner
            }
        } else if let open = value("CI_OPEN_MERGE_REQUESTS") {
            // `path!iid` entries for merge requests whose source is this branch.
            let first = open.split(separator: ",").first.map(String.init) ?? ""
            if let bang = first.lastIndex(of: "!"), let iid = Int(first[first.index(after: bang)...]) {
                target.request = .number(iid)
                target.repository = String(first[..<bang])
            }
        } else if value("CI_PIPELINE_SOURCE") == "push", let sha = value("CI_COMMIT_SHA") {
            target.request = .lookUpByHead(sha)
        }
        return target
    }
}
