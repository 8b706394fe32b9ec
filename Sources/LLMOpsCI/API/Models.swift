import FoundationEssentials

/// The state of an evaluation run; values the agent does not know are kept verbatim.
public enum RunStatus: Sendable, Equatable, CustomStringConvertible {
    case pending, running, completed, failed, cancelled
    case unknown(String)

    public init(_ text: String?) {
        switch text?.uppercased() {
        case "PENDING": self = .pending
        case "RUNNING": self = .running
        case "COMPLETED": self = .completed
        case "FAILED": self = .failed
        case "CANCELLED", "CANCELED": self = .cancelled
        default: self = .unknown(text ?? "null")
        }
    }

    public var isTerminal: Bool {
        switch self {
        case .completed, .failed, .cancelled: true
        case .pending, .running, .unknown: false
        }
    }

    public var description: String {
        switch self {
        case .pending: "PENDING"
        case .running: "RUNNING"
        case .completed: "COMPLETED"
        case .failed: "FAILED"
        case .cancelled: "CANCELLED"
        case .unknown(let text): text
        }
    }
}

/// A metric of the project's catalogue.
public struct MetricDefinition: Sendable, Equatable {
    public var id: String
    public var code: String
    public var displayName: String?
    public var requiresJudge: Bool
    public var defaultThreshold: Double?
    public var isActive: Bool

    init?(json: JSONValue) {
        guard let id = json["id"].string, let code = json["code"].string else { return nil }
        self.id = id
        self.code = code.uppercased()
        displayName = json["displayName"].string
        requiresJudge = json["requiresJudgeLlm"].bool ?? false
        defaultThreshold = json["defaultThreshold"].double
        isActive = json["isActive"].bool ?? true
    }

    public init(id: String, code: String, displayName: String? = nil, requiresJudge: Bool = false, defaultThreshold: Double? = nil) {
        self.id = id
        self.code = code
        self.displayName = displayName
        self.requiresJudge = requiresJudge
        self.defaultThreshold = defaultThreshold
        isActive = true
    }
}

/// A named object of a project (a project, a dataset or an LLM endpoint) as the lists return it.
public struct NamedResource: Sendable, Equatable {
    public var id: String
    public var name: String
    public var fields: JSONValue

    init?(json: JSONValue) {
        guard let id = json["id"].string else { return nil }
        self.id = id
        name = json["name"].string ?? id
        fields = json
    }
}

/// One page of a paged list, in either of the shapes Spring Data writes.
public struct Page: Sendable {
    public var content: [JSONValue]
    public var number: Int
    public var totalPages: Int?
    public var isLast: Bool

    init(json: JSONValue, requestedPage: Int) {
        content = json["content"].array ?? json.array ?? []
        let metadata = json["page"].object != nil ? json["page"] : json
        number = metadata["number"].int ?? requestedPage
        totalPages = metadata["totalPages"].int
        if let last = json["last"].bool {
            isLast = last
        } else if let totalPages {
            isLast = number + 1 >= totalPages
        } else {
            isLast = content.isEmpty
        }
    }
}

/// A server-side summary of one metric of a run.
public struct MetricSummary: Sendable, Equatable {
    public var averageScore: Double?
    public var passRate: Double?
    public var totalEvaluated: Int?
}

/// An evaluation run as `GET /api/evaluations/{id}` returns it.
public struct Run: Sendable {
    public var id: String
    public var name: String?
    public var runNumber: Int?
    public var status: RunStatus
    public var datasetID: String?
    public var datasetName: String?
    public var targetEndpointID: String?
    public var judgeEndpointID: String?
    public var totalCases: Int?
    public var completedCases: Int?
    public var failedCases: Int?
    public var overallScore: Double?
    public var metricSummaries: [String: MetricSummary]
    public var totalTokens: Double?
    public var totalCost: Double?
    public var triggerReference: String?
    public var errorMessage: String?
    public var createdAt: Date?
    public var startedAt: Date?
    public var completedAt: Date?
    public var metricCodes: [String]

    public init?(json: JSONValue) {
        guard let id = json["id"].string else { return nil }
        self.id = id
        name = json["name"].string
        runNumber = json["runNumber"].int
        status = RunStatus(json["status"].string)
        datasetID = json["datasetId"].string
        datasetName = json["datasetName"].string
        targetEndpointID = json["targetLlmEndpointId"].string
        judgeEndpointID = json["judgeLlmEndpointId"].string
        totalCases = json["totalTestCases"].int
        completedCases = json["completedTestCases"].int
        failedCases = json["failedTestCases"].int
        overallScore = json["overallScore"].double
        var summaries: [String: MetricSummary] = [:]
        for (code, summary) in json["metricSummaries"].object ?? [:] {
            summaries[code.uppercased()] = MetricSummary(
                averageScore: summary["averageScore"].double,
                passRate: summary["passRate"].double,
                totalEvaluated: summary["totalEvaluated"].int
            )
        }
        metricSummaries = summaries
        totalTokens = json["totalTokens"].double
        totalCost = json["totalCost"].double
        triggerReference = json["triggerReference"].string
        errorMessage = json["errorMessage"].string
        createdAt = json["createdAt"].string.flatMap(Timestamp.parse)
        startedAt = json["startedAt"].string.flatMap(Timestamp.parse)
        completedAt = json["completedAt"].string.flatMap(Timestamp.parse)
        metricCodes = (json["metrics"].array ?? []).compactMap { $0["metricCode"].string?.uppercased() }
    }
}

/// The score of one metric on one test case.
public struct CaseScore: Sendable, Equatable {
    public var metricCode: String
    public var score: Double?
    public var rawScore: Double?
    public var passed: Bool?
    public var judgeReasoning: String?
    public var errorMessage: String?

    init?(json: JSONValue) {
        guard let code = json["metricCode"].string else { return nil }
        metricCode = code.uppercased()
        score = json["score"].double
        rawScore = json["rawScore"].double
        passed = json["passed"].bool
        judgeReasoning = json["judgeReasoning"].string
        errorMessage = json["errorMessage"].string
    }

    public init(metricCode: String, score: Double?, rawScore: Double? = nil, passed: Bool? = nil, errorMessage: String? = nil) {
        self.metricCode = metricCode
        self.score = score
        self.rawScore = rawScore
        self.passed = passed
        self.errorMessage = errorMessage
    }
}

/// The result of one test case of a run.
public struct CaseResult: Sendable, Equatable {
    public var id: String
    public var testCaseID: String?
    public var question: String?
    public var expected: String?
    public var output: String?
    public var status: String?
    public var latencyMilliseconds: Double?
    public var inputTokens: Double?
    public var outputTokens: Double?
    public var errorMessage: String?
    public var scores: [CaseScore]

    init?(json: JSONValue) {
        guard let id = json["id"].string ?? json["testCaseId"].string else { return nil }
        self.id = id
        testCaseID = json["testCaseId"].string
        question = json["question"].string
        expected = json["groundTruth"].string
        output = json["generatedOutput"].string ?? json["llmOutput"].string
        status = json["status"].string?.uppercased()
        latencyMilliseconds = json["llmLatencyMs"].double
        inputTokens = json["inputTokens"].double
        outputTokens = json["outputTokens"].double
        errorMessage = json["errorMessage"].string
        scores = (json["scores"].array ?? []).compactMap(CaseScore.init(json:))
    }

    public init(id: String, testCaseID: String? = nil, status: String? = "COMPLETED", scores: [CaseScore]) {
        self.id = id
        self.testCaseID = testCaseID
        self.status = status
        self.scores = scores
    }
}
