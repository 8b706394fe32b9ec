import FoundationEssentials

/// The JSON results file: a versioned, documented format (`schema/results.schema.json`)
/// that other tools read, `llmops-ci report --from` renders again, and a later job can use
/// as its baseline.
public enum ResultsFile {
    public static let schemaName = "llmops-ci/results"
    public static let version = 1

    public static func encode(_ decision: GateDecision, context: ReportContext, exitCode: Int32) -> JSONValue {
        let pairs: [JSONValue] = decision.pairs.map { pair in
            let result = pair.result
            var object: [String: JSONValue] = [
                "label": .string(result.pair.label),
                "runName": .string(result.pair.runName),
                "evaluation": .string(result.pair.evaluationName),
                "dataset": [
                    "id": .string(result.pair.datasetID),
                    "name": .string(result.pair.datasetName),
                    "caseCount": .from(result.pair.datasetCaseCount),
                    "updatedAt": .from(result.pair.datasetUpdatedAt),
                ],
                "endpoint": result.pair.endpointID.map { ["id": .string($0), "name": .from(result.pair.endpointName)] } ?? .null,
                "judge": result.pair.judgeID.map { ["id": .string($0), "name": .from(result.pair.judgeName)] } ?? .null,
                "state": .string(stateName(result.state)),
                "problem": .from(pair.problem?.text),
                "outcome": .string(pair.outcome.rawValue),
                "incomplete": .bool(pair.isIncomplete),
                "attached": .bool(result.isAttached),
                "polls": .from(result.pollCount),
                "durationSeconds": .from(result.duration?.seconds),
                "metrics": .array(pair.metrics.map(encode)),
                "cases": .array(result.results.map(encode)),
            ]
            if let run = result.run {
                object["run"] = [
                    "id": .string(run.id),
                    "number": .from(run.runNumber),
                    "status": .string("\(run.status)"),
                    "url": .from(context.runURL(run.id)),
                    "createdAt": .from(run.createdAt.map(Timestamp.format)),
                    "completedAt": .from(run.completedAt.map(Timestamp.format)),
                    "triggerReference": .from(run.triggerReference),
                    "errorMessage": .from(run.errorMessage),
                    "totalTokens": .from(run.totalTokens),
                    "totalCost": .from(run.totalCost),
                ]
            } else {
                object["run"] = .null
            }
            if let baseline = pair.baseline {
                object["baseline"] = [
                    "runId": .string(baseline.runID),
                    "runNumber": .from(baseline.runNumber),
                    "commit": .from(baseline.commit),
                    "branch": .from(baseline.branch),
                    "completedAt": .from(baseline.completedAt),
                    "source": .string(baseline.source),
                    "datasetWarning": .from(baseline.datasetWarning),
                ]
            } else {
                object["baseline"] = .null
            }
            return .object(object)
        }
        return [
            "schema": .string(schemaName),
            "version": .number(Double(version)),
            "agentVersion": .string(AgentVersion.current),
            "verdict": .string(decision.verdict.rawValue),
            "exitCode": .number(Double(exitCode)),
            "counts": [
                "pairs": .from(decision.pairs.count),
                "passed": .from(decision.passedCount),
                "warned": .from(decision.warnedCount),
                "failed": .from(decision.failedCount),
            ],
            "commit": .from(context.commit),
            "branch": .from(context.branch),
            "targetBranch": .from(context.targetBranch),
            "webUrl": .from(context.webURL),
            "projectId": .from(context.projectID),
            "durationSeconds": .from(context.duration?.seconds),
            "finishedAt": .from(context.finishedAt.map(Timestamp.format)),
            "commentKey": .string(context.commentKey),
            "notes": .array(decision.notes.map(JSONValue.string)),
            "pairs": .array(pairs),
        ]
    }

    private static func stateName(_ state: PairState) -> String {
        switch state {
        case .completed: "completed"
        case .failed: "failed"
        case .cancelled: "cancelled"
        case .timedOut: "timed-out"
        case .error: "error"
        case .interrupted: "interrupted"
        }
    }

    private static func encode(_ metric: MetricVerdict) -> JSONValue {
        let score = metric.score
        var object: [String: JSONValue] = [
            "code": .string(metric.code),
            "outcome": .string(metric.outcome.rawValue),
            "mean": .from(score.mean),
            "passRate": .from(score.passRate),
            "source": .string(score.source.rawValue),
            "scoredCases": .from(score.scoredCases),
            "totalCases": .from(score.totalCases),
            "erroredCases": .from(score.erroredCases),
            "skippedCases": .from(score.skippedCases),
            "rawMean": .from(score.rawMean),
            "rawMedian": .from(score.rawMedian),
            "rawP95": .from(score.rawP95),
            "threshold": .from(metric.thresholdText),
            "comparesRaw": .bool(metric.comparesRaw),
            "waived": .bool(metric.isWaived),
            "reasons": .array(metric.reasons.map(JSONValue.string)),
            "caseScores": .object(score.caseScores.mapValues { JSONValue.number($0) }),
            "casePassed": .object(score.casePassed.mapValues { JSONValue.bool($0) }),
        ]
        if let comparison = metric.comparison {
            object["comparison"] = [
                "baselineMean": .number(comparison.baselineMean),
                "delta": .number(comparison.delta),
                "intervalLow": .from(comparison.interval?.lowerBound),
                "intervalHigh": .from(comparison.interval?.upperBound),
                "pairedCases": .from(comparison.pairedCases),
                "pValue": .from(comparison.pValue),
                "adjustedPValue": .from(comparison.adjustedPValue),
                "method": .string(comparison.method),
                "newlyFailing": .array(comparison.newlyFailing.map(JSONValue.string)),
                "newlyPassing": .array(comparison.newlyPassing.map(JSONValue.string)),
            ]
        } else {
            object["comparison"] = .null
        }
        return .object(object)
    }

    private static func encode(_ result: CaseResult) -> JSONValue {
        [
            "id": .string(result.id),
            "testCaseId": .from(result.testCaseID),
            "question": .from(result.question),
            "expected": .from(result.expected),
            "output": .from(result.output),
            "status": .from(result.status),
            "latencyMs": .from(result.latencyMilliseconds),
            "errorMessage": .from(result.errorMessage),
            "scores": .array(result.scores.map { score in
                [
                    "metricCode": .string(score.metricCode),
                    "score": .from(score.score),
                    "rawScore": .from(score.rawScore),
                    "passed": score.passed.map(JSONValue.bool) ?? .null,
                    "errorMessage": .from(score.errorMessage),
                ]
            }),
        ]
    }

    // MARK: Reading

    /// A results file read back: the decision and context to render again, and the exit code it recorded.
    public struct Contents: Sendable {
        public var decision: GateDecision
        public var context: ReportContext
        public var exitCode: Int32
    }

    public static func decode(_ json: JSONValue, path: String) throws -> Contents {
        guard json["schema"].string == schemaName else {
            throw ResolutionError(description: "'\(path)' is not an llmops-ci results file (its \"schema\" is not \"\(schemaName)\").")
        }
        guard let fileVersion = json["version"].int, fileVersion <= version else {
            throw ResolutionError(description: "'\(path)' has results format version \(json["version"].string ?? "?"); this llmops-ci reads version \(version) and earlier. Update llmops-ci.")
        }
        let pairs: [PairVerdict] = (json["pairs"].array ?? []).map { item in
            let metrics = (item["metrics"].array ?? []).map(decodeMetric)
            let cases = (item["cases"].array ?? []).compactMap(decodeCase)
            let pair = PlannedPair(
                evaluationName: item["evaluation"].string ?? "",
                runName: item["runName"].string ?? item["label"].string ?? "",
                label: item["label"].string ?? "",
                datasetID: item["dataset"]["id"].string ?? "",
                datasetName: item["dataset"]["name"].string ?? "",
                datasetCaseCount: item["dataset"]["caseCount"].int,
                datasetUpdatedAt: item["dataset"]["updatedAt"].string,
                endpointID: item["endpoint"]["id"].string,
                endpointName: item["endpoint"]["name"].string,
                judgeID: item["judge"]["id"].string,
                judgeName: item["judge"]["name"].string,
                metrics: metrics.map { Configuration.Metric(code: $0.code) },
                metricDefinitions: [],
                thresholds: [:]
            )
            var runJSON = item["run"]
            if case .object(var object) = runJSON {
                object["runNumber"] = runJSON["number"]
                runJSON = .object(object)
            }
            let state = decodeState(item["state"].string, problem: item["problem"].string, run: runJSON)
            let result = PairResult(
                pair: pair,
                state: state,
                run: Run(json: runJSON),
                results: cases,
                scores: metrics.map(\.score),
                isAttached: item["attached"].bool ?? false,
                pollCount: item["polls"].int ?? 0,
                duration: item["durationSeconds"].double.map { Duration.seconds($0) }
            )
            let baseline = item["baseline"]["runId"].string.map { runID in
                BaselineInfo(
                    runID: runID,
                    runNumber: item["baseline"]["runNumber"].int,
                    commit: item["baseline"]["commit"].string,
                    branch: item["baseline"]["branch"].string,
                    completedAt: item["baseline"]["completedAt"].string,
                    source: item["baseline"]["source"].string ?? "",
                    datasetWarning: item["baseline"]["datasetWarning"].string
                )
            }
            return PairVerdict(
                result: result,
                outcome: Outcome(rawValue: item["outcome"].string ?? "") ?? .fail,
                metrics: metrics,
                problem: problem(state),
                isIncomplete: item["incomplete"].bool ?? false,
                baseline: baseline
            )
        }
        let decision = GateDecision(
            pairs: pairs,
            verdict: GateDecision.Verdict(rawValue: json["verdict"].string ?? "") ?? .failed,
            notes: (json["notes"].array ?? []).compactMap(\.string)
        )
        let context = ReportContext(
            commit: json["commit"].string,
            branch: json["branch"].string,
            targetBranch: json["targetBranch"].string,
            webURL: json["webUrl"].string,
            projectID: json["projectId"].string,
            duration: json["durationSeconds"].double.map { Duration.seconds($0) },
            finishedAt: json["finishedAt"].string.flatMap(Timestamp.parse),
            commentKey: json["commentKey"].string ?? "default"
        )
        return Contents(decision: decision, context: context, exitCode: Int32(json["exitCode"].int ?? 1))
    }

    private static func decodeState(_ name: String?, problem: String?, run: JSONValue) -> PairState {
        let message = problem ?? ""
        switch name {
        case "completed": return .completed
        case "failed": return .failed(run["errorMessage"].string ?? message)
        case "cancelled": return .cancelled(message)
        case "timed-out": return .timedOut(lastStatus: run["status"].string ?? "PENDING")
        case "interrupted": return .interrupted
        default: return .error(message)
        }
    }

    private static func problem(_ state: PairState) -> PairProblem? {
        switch state {
        case .completed: nil
        case .failed(let message): .failedRun(message)
        case .cancelled(let message): .cancelled(message)
        case .timedOut(let status): .timedOut(status)
        case .error(let message): .infrastructure(message)
        case .interrupted: .interrupted
        }
    }

    private static func decodeMetric(_ item: JSONValue) -> MetricVerdict {
        var caseScores: [String: Double] = [:]
        for (id, value) in item["caseScores"].object ?? [:] {
            caseScores[id] = value.double
        }
        var casePassed: [String: Bool] = [:]
        for (id, value) in item["casePassed"].object ?? [:] {
            casePassed[id] = value.bool
        }
        let score = MetricScore(
            code: item["code"].string ?? "",
            source: MetricScore.Source(rawValue: item["source"].string ?? "") ?? .none,
            mean: item["mean"].double,
            passRate: item["passRate"].double,
            scoredCases: item["scoredCases"].int ?? 0,
            totalCases: item["totalCases"].int ?? 0,
            erroredCases: item["erroredCases"].int ?? 0,
            skippedCases: item["skippedCases"].int ?? 0,
            rawMean: item["rawMean"].double,
            rawMedian: item["rawMedian"].double,
            rawP95: item["rawP95"].double,
            caseScores: caseScores,
            casePassed: casePassed
        )
        let comparisonJSON = item["comparison"]
        var comparison: BaselineComparison?
        if let baselineMean = comparisonJSON["baselineMean"].double, let delta = comparisonJSON["delta"].double {
            var interval: ClosedRange<Double>?
            if let low = comparisonJSON["intervalLow"].double, let high = comparisonJSON["intervalHigh"].double, low <= high {
                interval = low...high
            }
            comparison = BaselineComparison(
                baselineMean: baselineMean,
                newlyFailing: (comparisonJSON["newlyFailing"].array ?? []).compactMap(\.string),
                newlyPassing: (comparisonJSON["newlyPassing"].array ?? []).compactMap(\.string),
                delta: delta,
                interval: interval,
                pairedCases: comparisonJSON["pairedCases"].int ?? 0,
                pValue: comparisonJSON["pValue"].double,
                adjustedPValue: comparisonJSON["adjustedPValue"].double,
                method: comparisonJSON["method"].string ?? ""
            )
        }
        return MetricVerdict(
            code: score.code,
            score: score,
            outcome: Outcome(rawValue: item["outcome"].string ?? "") ?? .fail,
            thresholdText: item["threshold"].string,
            comparesRaw: item["comparesRaw"].bool ?? false,
            comparison: comparison,
            isWaived: item["waived"].bool ?? false,
            reasons: (item["reasons"].array ?? []).compactMap(\.string)
        )
    }

    private static func decodeCase(_ item: JSONValue) -> CaseResult? {
        var object = item.object ?? [:]
        object["groundTruth"] = item["expected"]
        object["llmOutput"] = item["output"]
        object["llmLatencyMs"] = item["latencyMs"]
        return CaseResult(json: .object(object))
    }
}
