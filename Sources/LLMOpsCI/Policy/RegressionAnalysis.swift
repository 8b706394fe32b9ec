#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The scores of an earlier run that a pair is compared with.
public struct Baseline: Sendable {
    public var info: BaselineInfo
    public var scores: [MetricScore]
    public var budgetValues: [Configuration.BudgetKind: Double]

    public init(info: BaselineInfo, scores: [MetricScore], budgetValues: [Configuration.BudgetKind: Double] = [:]) {
        self.info = info
        self.scores = scores
        self.budgetValues = budgetValues
    }
}

/// Decides whether a drop against the baseline is real or noise.
///
/// A drop larger than `max_drop` fails only when a one-sided Wilcoxon signed-rank test on
/// the paired per-case scores finds it significant after the Holm correction across every
/// comparison of the job, so the false-alarm rate applies per job rather than per metric.
/// With aggregates only it falls back to the plain rule and says so. The confidence
/// interval shown is a paired bootstrap whose seed is derived from the two run ids.
public struct RegressionAnalysis: Sendable {
    public var regression: Configuration.Regression
    public var bootstrapSamples = 1000

    public init(regression: Configuration.Regression) {
        self.regression = regression
    }

    public struct Judgement: Sendable {
        public var outcome: Outcome
        public var reason: String
    }

    /// Compares each completed pair with its baseline; keyed by run name, then metric code.
    public func compare(_ results: [PairResult], baselines: [String: Baseline]) -> [String: [String: BaselineComparison]] {
        var comparisons: [String: [String: BaselineComparison]] = [:]
        var family: [(pair: String, code: String, p: Double)] = []
        for result in results where result.state.isCompleted {
            guard let baseline = baselines[result.pair.runName] else { continue }
            for score in result.scores {
                guard let current = score.mean,
                    let previous = baseline.scores.first(where: { $0.code == score.code }), let previousMean = previous.mean
                else { continue }
                let seed = stableSeed("\(result.run?.id ?? result.pair.runName)|\(baseline.info.runID)|\(score.code)")
                var comparison = compare(current: score, currentMean: current, baseline: previous, baselineMean: previousMean, seed: seed)
                if let p = comparison.pValue {
                    family.append((result.pair.runName, score.code, p))
                }
                comparison.adjustedPValue = comparison.pValue
                comparisons[result.pair.runName, default: [:]][score.code] = comparison
            }
        }
        for (entry, adjusted) in zip(family, holmAdjusted(family.map(\.p))) {
            comparisons[entry.pair]?[entry.code]?.adjustedPValue = adjusted
        }
        return comparisons
    }

    func compare(current: MetricScore, currentMean: Double, baseline: MetricScore, baselineMean: Double, seed: UInt64) -> BaselineComparison {
        let sharedCases = Set(current.caseScores.keys).intersection(baseline.caseScores.keys).sorted()
        let differences = sharedCases.map { current.caseScores[$0]! - baseline.caseScores[$0]! }
        let delta = currentMean - baselineMean
        let judgedCases = Set(current.casePassed.keys).intersection(baseline.casePassed.keys).sorted()
        let newlyFailing = judgedCases.filter { baseline.casePassed[$0] == true && current.casePassed[$0] == false }
        let newlyPassing = judgedCases.filter { baseline.casePassed[$0] == false && current.casePassed[$0] == true }
        guard !differences.isEmpty else {
            return BaselineComparison(baselineMean: baselineMean, delta: delta, interval: nil, pairedCases: 0, pValue: nil, method: "aggregates only")
        }
        let interval = differences.count >= 2 ? bootstrapInterval(differences, seed: seed) : nil
        let pValue = differences.count >= regression.minPairedCases ? wilcoxonLowerTail(differences) : nil
        return BaselineComparison(
            baselineMean: baselineMean,
            newlyFailing: newlyFailing,
            newlyPassing: newlyPassing,
            delta: delta,
            interval: interval,
            pairedCases: differences.count,
            pValue: pValue,
            method: "paired Wilcoxon signed-rank, Holm-corrected"
        )
    }

    /// Applies the regression rule to one comparison.
    public func judge(_ comparison: BaselineComparison) -> Judgement {
        let drop = -comparison.delta
        let allowed: Double
        let allowedText: String
        switch regression.maxDrop {
        case .absolute(let value):
            allowed = value
            allowedText = format(value)
        case .relative(let fraction):
            allowed = comparison.baselineMean * fraction
            allowedText = "\(format(fraction * 100))% (\(format(allowed)))"
        }
        let deltaText = "Δ \(signed(comparison.delta)) against the baseline \(format(comparison.baselineMean))"
        guard drop > allowed + GatePolicy.tolerance else {
            return Judgement(outcome: .pass, reason: "\(deltaText), within the allowed drop of \(allowedText)")
        }
        if comparison.pairedCases == 0 {
            return Judgement(
                outcome: .fail,
                reason: "\(deltaText), more than the allowed drop of \(allowedText); no per-case scores to test for noise, so the plain rule applies"
            )
        }
        guard let adjusted = comparison.adjustedPValue ?? comparison.pValue else {
            return Judgement(
                outcome: .inconclusive,
                reason: "\(deltaText), more than \(allowedText), but only \(comparison.pairedCases) paired cases (fewer than \(regression.minPairedCases)) to tell it from noise"
            )
        }
        let alpha = 1 - regression.confidence
        if adjusted < alpha {
            return Judgement(
                outcome: .fail,
                reason: "\(deltaText), more than the allowed drop of \(allowedText), and unlikely to be noise (adjusted p \(formatP(adjusted)), significance level \(format(alpha)))"
            )
        }
        return Judgement(
            outcome: .pass,
            reason: "\(deltaText) exceeds \(allowedText) but is consistent with noise (adjusted p \(formatP(adjusted)), significance level \(format(alpha)))"
        )
    }

    // MARK: Statistics

    /// Returns the percentile bootstrap interval of the mean of `differences` at the configured confidence.
    func bootstrapInterval(_ differences: [Double], seed: UInt64) -> ClosedRange<Double> {
        var generator = SplitMix64(seed: seed)
        let count = differences.count
        var means: [Double] = []
        means.reserveCapacity(bootstrapSamples)
        for _ in 0..<bootstrapSamples {
            var sum = 0.0
            for _ in 0..<count {
                sum += differences[Int(generator.next() % UInt64(count))]
            }
            means.append(sum / Double(count))
        }
        means.sort()
        let tail = (1 - regression.confidence) / 2
        let low = means[min(count > 0 ? Int(Double(bootstrapSamples) * tail) : 0, bootstrapSamples - 1)]
        let high = means[min(Int(Double(bootstrapSamples) * (1 - tail)), bootstrapSamples - 1)]
        return low...high
    }
}

/// Returns the one-sided p-value that the paired differences are centred below zero (a drop).
///
/// It uses the Wilcoxon signed-rank test with its normal approximation, tie correction and
/// continuity correction. Zero differences are dropped.
func wilcoxonLowerTail(_ differences: [Double]) -> Double {
    let nonZero = differences.filter { abs($0) > GatePolicy.tolerance }
    let count = nonZero.count
    guard count > 0 else { return 1 }
    let ordered = nonZero.enumerated().sorted { abs($0.element) < abs($1.element) }
    var ranks = [Double](repeating: 0, count: count)
    var tieCorrection = 0.0
    var start = 0
    while start < count {
        var end = start
        while end + 1 < count, abs(abs(ordered[end + 1].element) - abs(ordered[start].element)) <= GatePolicy.tolerance {
            end += 1
        }
        let averageRank = Double(start + end + 2) / 2
        for index in start...end {
            ranks[ordered[index].offset] = averageRank
        }
        let ties = Double(end - start + 1)
        tieCorrection += ties * ties * ties - ties
        start = end + 1
    }
    let positiveSum = zip(nonZero, ranks).filter { $0.0 > 0 }.reduce(0) { $0 + $1.1 }
    let n = Double(count)
    let mean = n * (n + 1) / 4
    let variance = n * (n + 1) * (2 * n + 1) / 24 - tieCorrection / 48
    guard variance > 0 else { return positiveSum < mean ? 0 : 1 }
    let z = (positiveSum - mean + 0.5) / variance.squareRoot()
    return 0.5 * erfc(-z / 2.0.squareRoot())
}

/// Holm's step-down adjustment of p-values, returned in the input order.
func holmAdjusted(_ pValues: [Double]) -> [Double] {
    let count = pValues.count
    let order = pValues.indices.sorted { pValues[$0] < pValues[$1] }
    var adjusted = [Double](repeating: 1, count: count)
    var running = 0.0
    for (rank, index) in order.enumerated() {
        running = max(running, min(1, Double(count - rank) * pValues[index]))
        adjusted[index] = running
    }
    return adjusted
}

/// A small, fast generator with a fixed algorithm, so that a seed always gives the same sequence.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func stableSeed(_ text: String) -> UInt64 {
    UInt64(stableHash(text), radix: 16) ?? 0
}

func signed(_ value: Double) -> String {
    value >= 0 ? "+\(format(value))" : "−\(format(-value))"
}

/// Formats a p-value with its relation sign, such as `= 0.03` or `< 0.001`.
func formatP(_ value: Double) -> String {
    value < 0.001 ? "< 0.001" : "= \(format(value))"
}
