import FoundationEssentials

/// Facts about the job that the report shows beside the verdict.
public struct ReportContext: Sendable {
    public var commit: String?
    public var branch: String?
    public var targetBranch: String?
    /// Base URL of the platform's web UI, for links to runs.
    public var webURL: String?
    public var projectID: String?
    public var duration: Duration?
    public var finishedAt: Date?
    /// The key that distinguishes this job's comment from other jobs' comments.
    public var commentKey: String
    /// Earlier verdicts on the same pull request, newest first.
    public var history: [HistoryEntry]
    public var worstCases: Int

    public init(
        commit: String? = nil,
        branch: String? = nil,
        targetBranch: String? = nil,
        webURL: String? = nil,
        projectID: String? = nil,
        duration: Duration? = nil,
        finishedAt: Date? = nil,
        commentKey: String = "default",
        history: [HistoryEntry] = [],
        worstCases: Int = 5
    ) {
        self.commit = commit
        self.branch = branch
        self.targetBranch = targetBranch
        self.webURL = webURL
        self.projectID = projectID
        self.duration = duration
        self.finishedAt = finishedAt
        self.commentKey = commentKey
        self.history = history
        self.worstCases = worstCases
    }

    public func runURL(_ runID: String) -> String? {
        guard let webURL else { return nil }
        return webURL + "/evaluations/" + percentEncode(runID)
    }
}

/// One earlier verdict, kept in the comment so that updating it in place loses nothing.
public struct HistoryEntry: Sendable, Equatable {
    public var commit: String
    public var verdict: String
    public var time: String

    public init(commit: String, verdict: String, time: String) {
        self.commit = commit
        self.verdict = verdict
        self.time = time
    }
}
