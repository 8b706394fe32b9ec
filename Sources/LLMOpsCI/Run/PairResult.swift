import FoundationEssentials

/// The end state of one pair's evaluation, as far as the agent could follow it.
public enum PairState: Sendable, Equatable {
    case completed
    /// The run ended FAILED on the server; carries the server's error text.
    case failed(String)
    /// The run was cancelled by someone else, or by this job.
    case cancelled(String)
    /// The job deadline passed while the run was still going; carries its last status.
    case timedOut(lastStatus: String)
    /// The run could not be started or followed: server unreachable, refused request.
    case error(String)
    /// The job was cancelled (a signal) before this pair finished.
    case interrupted

    public var isCompleted: Bool { self == .completed }
}

/// Everything the agent learnt about one pair.
public struct PairResult: Sendable {
    public var pair: PlannedPair
    public var state: PairState
    public var run: Run?
    public var results: [CaseResult]
    public var scores: [MetricScore]
    /// Whether this job attached to a run that an earlier attempt of the same job started.
    public var isAttached: Bool
    public var pollCount: Int
    /// Time between the start request and the moment the agent saw the run end.
    public var duration: Duration?

    public init(pair: PlannedPair, state: PairState, run: Run? = nil, results: [CaseResult] = [], scores: [MetricScore] = [],
                isAttached: Bool = false, pollCount: Int = 0, duration: Duration? = nil) {
        self.pair = pair
        self.state = state
        self.run = run
        self.results = results
        self.scores = scores
        self.isAttached = isAttached
        self.pollCount = pollCount
        self.duration = duration
    }
}
