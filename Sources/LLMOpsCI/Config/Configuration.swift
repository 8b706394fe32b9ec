/// The checked contents of `llmops.yml`.
public struct Configuration: Sendable {
    public var path: String
    public var server: Server
    public var project: String
    public var evaluations: [Evaluation]
    public var polling: Polling
    public var gate: Gate
    public var report: Report
    /// Values that came from secret keys or secret-looking variables, to be masked everywhere.
    public var secretValues: [String]

    public struct Server: Sendable {
        public var url: String
        public var email: String?
        public var password: Secret?
        public var token: Secret?
        public var caBundle: String?
        public var requestTimeoutSeconds: Double
        public var connectTimeoutSeconds: Double
        /// How long transient failures of one request are retried before the job gives up on it.
        public var retrySeconds: Double
        public var webURL: String?
        public var allowsInsecureHTTP: Bool
    }

    /// A metric to evaluate, by its code, with optional per-run overrides.
    public struct Metric: Sendable, Equatable, Hashable {
        /// The upper-case metric code, as the server lists it.
        public var code: String
        public var passThreshold: Double?
        public var weight: Double?
        public var customPrompt: String?

        public init(code: String, passThreshold: Double? = nil, weight: Double? = nil, customPrompt: String? = nil) {
            self.code = code
            self.passThreshold = passThreshold
            self.weight = weight
            self.customPrompt = customPrompt
        }
    }

    /// One configured evaluation: a dataset, or every dataset x every endpoint.
    public struct Evaluation: Sendable {
        public var name: String
        public var datasets: [String]
        /// Target endpoints for live generation; empty means the dataset's stored outputs are scored.
        public var endpoints: [String]
        public var judge: String?
        public var metrics: [Metric]
        public var thresholds: [String: Threshold]
        public var label: String?
    }

    public struct Polling: Sendable {
        public var intervalSeconds: Double = 10
        public var maxIntervalSeconds: Double = 60
        public var timeoutMinutes: Double = 30
        public var maxConcurrent: Int = 4
    }

    public enum Level: String, Sendable, CaseIterable {
        case fail, warn
    }

    /// An absolute limit on one metric.
    public struct Threshold: Sendable, Equatable {
        public init(min: Double? = nil, max: Double? = nil, minRaw: Double? = nil, maxRaw: Double? = nil, minPassRate: Double? = nil, level: Level = .fail) {
            self.min = min
            self.max = max
            self.minRaw = minRaw
            self.maxRaw = maxRaw
            self.minPassRate = minPassRate
            self.level = level
        }

        public var min: Double?
        public var max: Double?
        public var minRaw: Double?
        public var maxRaw: Double?
        public var minPassRate: Double?
        public var level: Level = .fail
    }

    public enum Outcome: String, Sendable, CaseIterable {
        case fail, warn, pass
    }

    public struct Regression: Sendable {
        public init() {}

        /// `latest-completed`, `none`, `run:<id>` or `file:<path>`.
        public var baseline: Baseline = .latestCompleted
        public var maxDrop: Drop = .absolute(0.02)
        public var confidence: Double = 0.95
        public var minPairedCases: Int = 10
    }

    public enum Baseline: Sendable, Equatable {
        case latestCompleted
        case none
        case run(String)
        case file(String)
    }

    public enum Drop: Sendable, Equatable {
        case absolute(Double)
        case relative(Double)
    }

    /// A resource measured per run, each with a ceiling and a rule for increases.
    public enum BudgetKind: String, Sendable, CaseIterable {
        case totalTokens = "total_tokens"
        case totalCost = "total_cost"
        case latencyP50 = "latency_p50_ms"
        case latencyP95 = "latency_p95_ms"

        /// The code the report and results file show for this budget.
        public var code: String { rawValue.uppercased() }
    }

    public struct Budget: Sendable, Equatable {
        public var max: Double?
        /// How much the value may grow against the baseline: an amount, or a fraction of the baseline.
        public var maxIncrease: Drop?
        public var level: Level = .fail

        public init(max: Double? = nil, maxIncrease: Drop? = nil, level: Level = .fail) {
            self.max = max
            self.maxIncrease = maxIncrease
            self.level = level
        }
    }

    public struct Gate: Sendable {
        public init() {}

        public var budgets: [BudgetKind: Budget] = [:]
        /// The outcome of a run cancelled on the server by someone else, or deleted.
        public var cancelledRun: Outcome = .fail

        public var thresholds: [String: Threshold] = [:]
        public var regression = Regression()
        public var failedRun: Outcome = .fail
        public var noData: Outcome = .fail
        public var infrastructureError: Outcome = .fail
        public var inconclusive: Outcome = .warn
        public var onMissingSecrets: MissingSecrets = .skip
        /// Metric codes (or `pair/METRIC`) whose regressions only warn.
        public var waivers: [String] = []
        public var waiverLabel: String = "llmops-waive"
    }

    public enum MissingSecrets: String, Sendable, CaseIterable {
        case skip, fail
    }

    public enum CommentMode: String, Sendable, CaseIterable {
        case update, new, off
        case deleteAndNew = "delete-and-new"
        case hideAndNew = "hide-and-new"
        case updateOrNewOnChange = "update-or-new-on-change"
    }

    public struct Report: Sendable {
        public var comment: CommentMode = .update
        public var commentKey: String?
        public var worstCases: Int = 5
        public var junit: String? = "llmops-junit.xml"
        public var json: String? = "llmops-results.json"
        public var markdown: String? = "llmops-report.md"
        public var webURL: String?
        public var skipLabel: String = "llmops-skip"
        public var maxPairs: Int = 50
        /// Post a commit status with the verdict on the head commit.
        public var commitStatus = false
        /// Treat a comment that could not be posted as a job that could not finish.
        public var requiresComment = false
    }
}
