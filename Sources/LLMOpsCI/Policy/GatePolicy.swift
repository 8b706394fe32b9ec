/// Turns results (and baselines) into a verdict with reasons: a pure function of its inputs.
public struct GatePolicy: Sendable {
    /// Scores closer than this are equal, so that 0.82 - 0.80 counts as a drop of exactly 0.02.
    public static let tolerance = 1e-9

    public var gate: Configuration.Gate
    /// Metric codes or `label/CODE` names waived by a pull request label or the config.
    public var waivers: Set<String>

    public init(gate: Configuration.Gate, waivers: Set<String> = []) {
        self.gate = gate
        self.waivers = waivers.union(gate.waivers.map { $0.uppercased() })
    }

    public func decide(_ results: [PairResult], baselines: [String: Baseline] = [:]) -> GateDecision {
        let comparisons = RegressionAnalysis(regression: gate.regression).compare(results, baselines: baselines)
        let pairs = results.map { result in
            pairVerdict(for: result, baseline: baselines[result.pair.runName], comparisons: comparisons[result.pair.runName] ?? [:])
        }
        var notes: [String] = []
        if results.isEmpty {
            notes.append("No pairs were evaluated.")
        }
        let hasFailure = pairs.contains { !$0.isIncomplete && ($0.outcome == .fail || $0.outcome == .noData) }
        let hasIncomplete = pairs.contains { $0.isIncomplete && ($0.outcome == .fail || $0.outcome == .noData) }
        let hasWarning = pairs.contains { $0.outcome != .pass }
        let overall: GateDecision.Verdict
        if hasFailure {
            overall = .failed
        } else if hasIncomplete {
            overall = .incomplete
        } else if hasWarning {
            overall = .warned
        } else {
            overall = .passed
        }
        return GateDecision(pairs: pairs, verdict: overall, notes: notes)
    }

    private func pairVerdict(for result: PairResult, baseline: Baseline?, comparisons: [String: BaselineComparison]) -> PairVerdict {
        let problem: PairProblem?
        let policy: Configuration.Outcome
        switch result.state {
        case .completed:
            problem = nil
            policy = .pass
        case .failed(let message):
            problem = .failedRun(message)
            policy = gate.failedRun
        case .cancelled(let message):
            problem = .cancelled(message)
            policy = gate.cancelledRun
        case .timedOut(let status):
            problem = .timedOut(status)
            policy = gate.infrastructureError
        case .error(let message):
            problem = .infrastructure(message)
            policy = gate.infrastructureError
        case .interrupted:
            problem = .interrupted
            policy = gate.infrastructureError
        }
        if let problem {
            return PairVerdict(result: result, outcome: outcome(of: policy), metrics: [], problem: problem, isIncomplete: true, baseline: baseline?.info)
        }

        var metrics = result.scores.map { score in
            metricVerdict(score, threshold: result.pair.thresholds[score.code], comparison: comparisons[score.code], pairLabel: result.pair.label)
        }
        metrics += budgetVerdicts(result, baseline: baseline)
        let worst = metrics.map(\.outcome).max() ?? outcome(of: gate.noData)
        return PairVerdict(result: result, outcome: worst, metrics: metrics, problem: nil, isIncomplete: false, baseline: baseline?.info)
    }

    private func outcome(of policy: Configuration.Outcome) -> Outcome {
        switch policy {
        case .fail: .fail
        case .warn: .warn
        case .pass: .pass
        }
    }

    func metricVerdict(_ score: MetricScore, threshold: Configuration.Threshold?, comparison: BaselineComparison?, pairLabel: String) -> MetricVerdict {
        let isWaived = waivers.contains("*") || waivers.contains(score.code) || waivers.contains("\(pairLabel)/\(score.code)".uppercased())
        guard let mean = score.mean else {
            let policy = outcome(of: gate.noData)
            let text = "no scores: \(score.erroredCases) errored, \(score.skippedCases) skipped of \(score.totalCases) cases"
            return MetricVerdict(
                code: score.code,
                score: score,
                outcome: policy == .fail ? .noData : policy,
                thresholdText: threshold.map(describe),
                comparesRaw: threshold.map(comparesRaw) ?? false,
                comparison: nil,
                isWaived: false,
                reasons: [text]
            )
        }

        var outcome = Outcome.pass
        var reasons: [String] = []
        var hasWaivedRegression = false
        if let threshold {
            let level: Outcome = threshold.level == .fail ? .fail : .warn
            let checks: [(Double?, Double?, Bool, String)] = [
                (threshold.min, mean, true, "score"),
                (threshold.max, mean, false, "score"),
                (threshold.minRaw, score.rawMean, true, "raw value"),
                (threshold.maxRaw, score.rawMean, false, "raw value"),
                (threshold.minPassRate, score.passRate, true, "pass rate"),
            ]
            for (limit, value, isMinimum, what) in checks {
                guard let limit else { continue }
                guard let value else {
                    outcome = max(outcome, level)
                    reasons.append("no \(what) to compare with \(format(limit))")
                    continue
                }
                let isBroken = isMinimum ? value < limit - Self.tolerance : value > limit + Self.tolerance
                if isBroken {
                    outcome = max(outcome, level)
                    reasons.append("\(what) \(format(value)) is \(isMinimum ? "below the minimum" : "above the maximum") \(format(limit))")
                } else {
                    reasons.append("\(what) \(format(value)) meets \(isMinimum ? "≥" : "≤") \(format(limit))")
                }
            }
        }

        if let comparison {
            let regression = RegressionAnalysis(regression: gate.regression).judge(comparison)
            reasons.append(regression.reason)
            var regressionOutcome = regression.outcome
            if regressionOutcome == .inconclusive {
                switch gate.inconclusive {
                case .pass: regressionOutcome = .pass
                case .warn: regressionOutcome = .inconclusive
                case .fail: regressionOutcome = .fail
                }
            }
            if isWaived, regressionOutcome == .fail {
                regressionOutcome = .warn
                hasWaivedRegression = true
                reasons.append("the regression is waived")
            }
            outcome = max(outcome, regressionOutcome)
        }

        if score.erroredCases > 0 || score.skippedCases > 0 {
            reasons.append("\(score.scoredCases) of \(score.totalCases) cases scored")
        }
        return MetricVerdict(
            code: score.code,
            score: score,
            outcome: outcome,
            thresholdText: threshold.map(describe),
            comparesRaw: threshold.map(comparesRaw) ?? false,
            comparison: comparison,
            isWaived: hasWaivedRegression,
            reasons: reasons
        )
    }

    /// Checks each configured budget: its ceiling, and its growth against the baseline.
    func budgetVerdicts(_ result: PairResult, baseline: Baseline?) -> [MetricVerdict] {
        guard !gate.budgets.isEmpty else { return [] }
        let values = BudgetValues.compute(run: result.run, results: result.results)
        return Configuration.BudgetKind.allCases.compactMap { kind -> MetricVerdict? in
            guard let budget = gate.budgets[kind] else { return nil }
            let level: Outcome = budget.level == .fail ? .fail : .warn
            var score = MetricScore(code: kind.code, source: .cases, mean: values[kind], passRate: nil, scoredCases: 0, totalCases: 0, erroredCases: 0, skippedCases: 0, caseScores: [:])
            score.scoredCases = result.results.count
            score.totalCases = result.results.count
            guard let value = values[kind] else {
                let policy = outcome(of: gate.noData)
                return MetricVerdict(code: kind.code, score: score, outcome: policy == .fail ? .noData : policy, thresholdText: budget.max.map { "≤ \(format($0))" }, comparesRaw: true, comparison: nil, isWaived: false, reasons: ["the run reported no \(kind.rawValue.replacing("_", with: " "))"])
            }
            var outcome = Outcome.pass
            var reasons: [String] = []
            if let max = budget.max {
                if value > max + Self.tolerance {
                    outcome = level
                    reasons.append("\(format(value)) is above the budget \(format(max))")
                } else {
                    reasons.append("\(format(value)) is within the budget \(format(max))")
                }
            }
            var comparison: BaselineComparison?
            if let previous = baseline?.budgetValues[kind] {
                comparison = BaselineComparison(baselineMean: previous, delta: value - previous, interval: nil, pairedCases: 0, pValue: nil, method: "budget")
                if let allowed = budget.maxIncrease {
                    let limit: Double
                    switch allowed {
                    case .absolute(let amount): limit = amount
                    case .relative(let fraction): limit = previous * fraction
                    }
                    if value - previous > limit + Self.tolerance {
                        outcome = max(outcome, level)
                        reasons.append("grew by \(format(value - previous)) against the baseline \(format(previous)), more than the allowed \(format(limit))")
                    } else {
                        reasons.append("changed by \(signed(value - previous)) against the baseline \(format(previous)), within the allowed increase")
                    }
                }
            }
            var isWaived = false
            if waivers.contains("*") || waivers.contains(kind.code), outcome == .fail {
                outcome = .warn
                isWaived = true
                reasons.append("waived")
            }
            return MetricVerdict(code: kind.code, score: score, outcome: outcome, thresholdText: budget.max.map { "≤ \(format($0))" }, comparesRaw: true, comparison: comparison, isWaived: isWaived, reasons: reasons)
        }
    }

    private func comparesRaw(_ threshold: Configuration.Threshold) -> Bool {
        threshold.min == nil && threshold.max == nil && (threshold.minRaw != nil || threshold.maxRaw != nil)
    }

    private func describe(_ threshold: Configuration.Threshold) -> String {
        var parts: [String] = []
        if let value = threshold.min { parts.append("≥ \(format(value))") }
        if let value = threshold.max { parts.append("≤ \(format(value))") }
        if let value = threshold.minRaw { parts.append("raw ≥ \(format(value))") }
        if let value = threshold.maxRaw { parts.append("raw ≤ \(format(value))") }
        if let value = threshold.minPassRate { parts.append("pass rate ≥ \(format(value))") }
        let text = parts.joined(separator: ", ")
        return threshold.level == .warn ? "\(text) (warn)" : text
    }
}

/// Formats a score with up to four decimals and no trailing zeros beyond two.
public func format(_ value: Double) -> String {
    guard value.isFinite else { return "—" }
    guard abs(value) < 1e15 else { return String(value) }
    if abs(value) >= 1000 || value == value.rounded() && abs(value) >= 10 {
        return String(Int(value.rounded()))
    }
    let scaled = (value * 10_000).rounded() / 10_000
    var text = String(scaled)
    if text.contains("e") {
        text = "0"
    }
    if let dot = text.firstIndex(of: ".") {
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        if decimals < 2 {
            text += String(repeating: "0", count: 2 - decimals)
        }
    } else {
        text += ".00"
    }
    return text
}
