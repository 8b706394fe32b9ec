/// The aggregate of one metric over a run's cases.
public struct MetricScore: Sendable, Equatable {
    public enum Source: String, Sendable {
        /// Computed from the per-case results.
        case cases
        /// Taken from the server's `metricSummaries`.
        case summary
        /// Neither was available.
        case none
    }

    public var code: String
    public var source: Source
    /// Mean of the scored cases (0..1, higher is better); nil means no data, never 0.
    public var mean: Double?
    /// Share of scored cases with `passed == true`, among those with a verdict.
    public var passRate: Double?
    public var scoredCases: Int
    public var totalCases: Int
    /// Cases whose score was null or carried an error message.
    public var erroredCases: Int
    public var skippedCases: Int
    /// Mean, median and 95th percentile of `rawScore` (milliseconds, tokens or dollars for performance metrics).
    public var rawMean: Double?
    public var rawMedian: Double?
    public var rawP95: Double?
    /// Score per test case, for paired comparison with a baseline.
    public var caseScores: [String: Double]
    /// The server's pass verdict per test case, where it gave one.
    public var casePassed: [String: Bool] = [:]

    public var hasData: Bool { mean != nil }

    /// Aggregates one metric over `results`, falling back to the server's summary when no case has a score.
    public static func compute(code: String, results: [CaseResult], summary: MetricSummary?) -> MetricScore {
        var scores: [Double] = []
        var rawScores: [Double] = []
        var passed = 0
        var judged = 0
        var errored = 0
        var skipped = 0
        var caseScores: [String: Double] = [:]
        var casePassed: [String: Bool] = [:]
        var total = 0

        for result in results {
            if result.status == "SKIPPED" {
                skipped += 1
                total += 1
                continue
            }
            guard let score = result.scores.first(where: { $0.metricCode == code }) else { continue }
            total += 1
            guard let value = score.score, value.isFinite, score.errorMessage == nil || score.errorMessage?.isEmpty == true else {
                errored += 1
                continue
            }
            scores.append(value)
            caseScores[result.testCaseID ?? result.id] = value
            if let raw = score.rawScore, raw.isFinite {
                rawScores.append(raw)
            }
            if let verdict = score.passed {
                casePassed[result.testCaseID ?? result.id] = verdict
                judged += 1
                if verdict {
                    passed += 1
                }
            }
        }

        if !scores.isEmpty {
            rawScores.sort()
            return MetricScore(
                code: code,
                source: .cases,
                mean: scores.reduce(0, +) / Double(scores.count),
                passRate: judged > 0 ? Double(passed) / Double(judged) : nil,
                scoredCases: scores.count,
                totalCases: total,
                erroredCases: errored,
                skippedCases: skipped,
                rawMean: rawScores.isEmpty ? nil : rawScores.reduce(0, +) / Double(rawScores.count),
                rawMedian: percentile(rawScores, 0.5),
                rawP95: percentile(rawScores, 0.95),
                caseScores: caseScores,
                casePassed: casePassed
            )
        }
        if let summary, let average = summary.averageScore {
            return MetricScore(
                code: code,
                source: .summary,
                mean: average,
                passRate: summary.passRate,
                scoredCases: summary.totalEvaluated ?? 0,
                totalCases: max(total, summary.totalEvaluated ?? 0),
                erroredCases: errored,
                skippedCases: skipped,
                caseScores: [:]
            )
        }
        return MetricScore(
            code: code,
            source: .none,
            mean: nil,
            passRate: nil,
            scoredCases: 0,
            totalCases: total,
            erroredCases: errored,
            skippedCases: skipped,
            caseScores: [:]
        )
    }
}

/// Returns the nearest-rank percentile of sorted values, or nil when there are none.
func percentile(_ sorted: [Double], _ fraction: Double) -> Double? {
    guard !sorted.isEmpty else { return nil }
    let rank = Int((fraction * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank - 1, 0), sorted.count - 1)]
}
