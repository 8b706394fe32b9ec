/// The outcome of one check, one metric, one pair or the whole gate.
public enum Outcome: String, Sendable, Comparable, CaseIterable {
    case pass
    case warn
    /// Too few paired cases to tell a real change from noise.
    case inconclusive
    /// The run finished without any score for the metric.
    case noData = "no-data"
    case fail

    private var rank: Int {
        switch self {
        case .pass: 0
        case .inconclusive: 1
        case .warn: 2
        case .noData: 3
        case .fail: 4
        }
    }

    public static func < (lhs: Outcome, rhs: Outcome) -> Bool { lhs.rank < rhs.rank }

    public var symbol: String {
        switch self {
        case .pass: "✅"
        case .warn: "⚠️"
        case .inconclusive: "❔"
        case .noData: "⛔"
        case .fail: "❌"
        }
    }
}

/// A comparison of a metric with its baseline.
public struct BaselineComparison: Sendable, Equatable {
    public var baselineMean: Double
    /// Test case ids that the baseline passed and the current run fails, and the other way round.
    public var newlyFailing: [String] = []
    public var newlyPassing: [String] = []
    /// Current mean minus baseline mean; negative is worse.
    public var delta: Double
    /// Confidence interval of the mean paired difference, when per-case scores allowed one.
    public var interval: ClosedRange<Double>?
    public var pairedCases: Int
    /// The p-value of a one-sided test for a drop, before correction for many comparisons.
    public var pValue: Double?
    /// The p-value after the Holm correction across every comparison of the job.
    public var adjustedPValue: Double?
    public var method: String
}

/// The gate's decision on one metric of one pair.
public struct MetricVerdict: Sendable, Equatable {
    public var code: String
    public var score: MetricScore
    public var outcome: Outcome
    /// The threshold as the report shows it, such as `≥ 0.80` or `raw ≤ 2000`; nil when none applies.
    public var thresholdText: String?
    /// Whether the threshold was compared with the raw value rather than the score.
    public var comparesRaw: Bool
    public var comparison: BaselineComparison?
    public var isWaived: Bool
    /// The reasons, in words, for the metric's outcome.
    public var reasons: [String]
}

/// The cause that kept a pair from being gated on its scores.
public enum PairProblem: Sendable, Equatable {
    case failedRun(String)
    case cancelled(String)
    case timedOut(String)
    case infrastructure(String)
    case interrupted

    public var text: String {
        switch self {
        case .failedRun(let message): "the evaluation FAILED on the server: \(message)"
        case .cancelled(let message): message
        case .timedOut(let status): "timed out while the run was \(status)"
        case .infrastructure(let message): message
        case .interrupted: "the job was cancelled before the evaluation finished"
        }
    }
}

/// The gate's decision on one pair.
public struct PairVerdict: Sendable {
    public var result: PairResult
    public var outcome: Outcome
    public var metrics: [MetricVerdict]
    public var problem: PairProblem?
    /// Whether this pair stops the job from finishing (exit 3) rather than failing the gate (exit 1).
    public var isIncomplete: Bool
    public var baseline: BaselineInfo?
}

/// The provenance of a pair's baseline, so that a reader can trust the comparison.
public struct BaselineInfo: Sendable, Equatable {
    public var runID: String
    public var runNumber: Int?
    public var commit: String?
    public var branch: String?
    public var completedAt: String?
    public var source: String
    /// Set when the dataset changed since the baseline ran.
    public var datasetWarning: String?
}

/// The whole gate's decision.
public struct GateDecision: Sendable {
    public enum Verdict: String, Sendable {
        case passed, warned, failed, incomplete
    }

    public var pairs: [PairVerdict]
    public var verdict: Verdict
    public var notes: [String]

    /// 0 passed or warned, 1 the gate failed, 3 the job could not finish; a gate failure wins.
    public func exitCode(warningExitCode: Int32 = 0) -> Int32 {
        switch verdict {
        case .passed: 0
        case .warned: warningExitCode
        case .failed: 1
        case .incomplete: 3
        }
    }

    public var failedCount: Int { pairs.filter { $0.outcome == .fail || $0.outcome == .noData }.count }
    public var warnedCount: Int { pairs.filter { $0.outcome == .warn || $0.outcome == .inconclusive }.count }
    public var passedCount: Int { pairs.filter { $0.outcome == .pass }.count }
}
