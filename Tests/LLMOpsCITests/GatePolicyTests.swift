import Testing
@testable import LLMOpsCI

@Suite struct GatePolicyTests {
    let policy = GatePolicy(gate: Configuration.Gate())

    @Test func scoreBelowMinimumFails() {
        let pair = plannedPair(thresholds: ["FAITHFULNESS": Configuration.Threshold(min: 0.8)])
        let result = completedResult(pair, scores: [metricScore("FAITHFULNESS", cases: [0.7, 0.72])])

        let decision = policy.decide([result])

        #expect(decision.verdict == .failed)
        #expect(decision.exitCode() == 1)
        #expect(decision.pairs[0].metrics[0].reasons[0].contains("below the minimum 0.80"))
    }

    @Test func warnLevelOnlyWarns() {
        let pair = plannedPair(thresholds: ["FAITHFULNESS": Configuration.Threshold(min: 0.8, level: .warn)])

        let decision = policy.decide([completedResult(pair, scores: [metricScore("FAITHFULNESS", cases: [0.7])])])

        #expect(decision.verdict == .warned)
        #expect(decision.exitCode() == 0)
        #expect(decision.exitCode(warningExitCode: 78) == 78)
    }

    @Test func exactThresholdPassesDespiteFloatingPointError() {
        let pair = plannedPair(thresholds: ["FAITHFULNESS": Configuration.Threshold(min: 0.3)])

        let decision = policy.decide([completedResult(pair, scores: [metricScore("FAITHFULNESS", cases: [0.1, 0.2, 0.6])])])

        #expect(decision.verdict == .passed)
    }

    @Test func rawThresholdComparesRawValue() {
        let pair = plannedPair(metrics: ["LATENCY"], thresholds: ["LATENCY": Configuration.Threshold(maxRaw: 2000)])
        let results = [1500.0, 2500, 3000].enumerated().map { index, raw in
            CaseResult(id: "c\(index)", scores: [CaseScore(metricCode: "LATENCY", score: 0.8, rawScore: raw)])
        }
        let score = MetricScore.compute(code: "LATENCY", results: results, summary: nil)

        let decision = policy.decide([completedResult(pair, scores: [score])])

        #expect(decision.verdict == .failed)
        #expect(decision.pairs[0].metrics[0].comparesRaw)
        #expect(decision.pairs[0].metrics[0].thresholdText == "raw ≤ 2000")
    }

    @Test func missingScoresAreNoDataAndFail() {
        let score = MetricScore.compute(code: "FAITHFULNESS", results: [CaseResult(id: "a", scores: [CaseScore(metricCode: "FAITHFULNESS", score: nil, errorMessage: "judge failed")])], summary: nil)

        let decision = policy.decide([completedResult(plannedPair(), scores: [score])])

        #expect(decision.pairs[0].metrics[0].outcome == .noData)
        #expect(decision.verdict == .failed)
    }

    @Test func noDataCanBeConfiguredToWarn() {
        var gate = Configuration.Gate()
        gate.noData = .warn
        let score = MetricScore.compute(code: "FAITHFULNESS", results: [], summary: nil)

        let decision = GatePolicy(gate: gate).decide([completedResult(plannedPair(), scores: [score])])

        #expect(decision.verdict == .warned)
    }

    @Test func failedEvaluationCannotFinish() {
        let result = PairResult(pair: plannedPair(), state: .failed("Judge endpoint timed out"))

        let decision = policy.decide([result])

        #expect(decision.verdict == .incomplete)
        #expect(decision.exitCode() == 3)
        #expect(decision.pairs[0].problem?.text.contains("Judge endpoint timed out") == true)
    }

    @Test func gateFailureWinsOverIncompletePair() {
        let failing = completedResult(plannedPair("a", thresholds: ["FAITHFULNESS": .init(min: 0.9)]), scores: [metricScore("FAITHFULNESS", cases: [0.5])])
        let timedOut = PairResult(pair: plannedPair("b"), state: .timedOut(lastStatus: "PENDING"))

        #expect(policy.decide([timedOut, failing]).exitCode() == 1)
    }

    @Test func scoresComeFromCasesBeforeSummary() {
        let results = [CaseResult(id: "a", scores: [CaseScore(metricCode: "BLEU", score: 0.4, passed: true)]), CaseResult(id: "b", status: "SKIPPED", scores: [])]

        let score = MetricScore.compute(code: "BLEU", results: results, summary: MetricSummary(averageScore: 0.9, passRate: 1, totalEvaluated: 5))

        #expect(score.source == .cases)
        #expect(score.mean == 0.4)
        #expect(score.skippedCases == 1)
        #expect(score.scoredCases == 1)
    }

    @Test func summaryIsFallbackWithoutCases() {
        let score = MetricScore.compute(code: "BLEU", results: [], summary: MetricSummary(averageScore: 0.61, passRate: 0.8, totalEvaluated: 10))

        #expect(score.source == .summary)
        #expect(score.mean == 0.61)
    }
}

@Suite struct RegressionTests {
    func baseline(_ scores: [MetricScore]) -> Baseline {
        Baseline(info: BaselineInfo(runID: "base-1", source: "test"), scores: scores)
    }

    /// 200 paired cases: the baseline averages 0.82, the current run 0.80, with four cases
    /// flipping each way across the pass threshold.
    @Test func smallDropOnSameCasesIsNotARegression() {
        var previous = [Double](repeating: 0.82, count: 200)
        var current = [Double](repeating: 0.80, count: 200)
        for index in 0..<4 {
            previous[index] = 0.75
            current[index] = 0.73 + 0.08
            previous[100 + index] = 0.85
            current[100 + index] = 0.76
        }
        let shift = (previous.reduce(0, +) - current.reduce(0, +)) / 200 - 0.02
        current = current.map { $0 + shift }
        let pair = plannedPair()

        let decision = GatePolicy(gate: Configuration.Gate()).decide(
            [completedResult(pair, scores: [metricScore("FAITHFULNESS", cases: current)])],
            baselines: ["support-bot": baseline([metricScore("FAITHFULNESS", cases: previous)])]
        )

        #expect(decision.exitCode() == 0)
        #expect(decision.pairs[0].metrics[0].comparison?.pairedCases == 200)
    }

    @Test func realDropOnSameCasesFails() {
        let previous = (0..<200).map { 0.82 + Double($0 % 7) * 0.01 - 0.03 }
        let current = previous.enumerated().map { index, value in index < 25 ? value - 0.6 : value - 0.045 }
        let pair = plannedPair()

        let decision = GatePolicy(gate: Configuration.Gate()).decide(
            [completedResult(pair, scores: [metricScore("FAITHFULNESS", cases: current)])],
            baselines: ["support-bot": baseline([metricScore("FAITHFULNESS", cases: previous)])]
        )

        #expect(decision.exitCode() == 1)
        let metric = decision.pairs[0].metrics[0]
        #expect(metric.reasons.contains { $0.contains("unlikely to be noise") })
        let interval = try? #require(metric.comparison?.interval)
        #expect((interval?.upperBound ?? 0) < 0)
    }

    @Test func dropOfExactlyMaxDropPasses() {
        let decision = GatePolicy(gate: Configuration.Gate()).decide(
            [completedResult(plannedPair(), scores: [MetricScore.compute(code: "FAITHFULNESS", results: [], summary: MetricSummary(averageScore: 0.80))])],
            baselines: ["support-bot": baseline([MetricScore.compute(code: "FAITHFULNESS", results: [], summary: MetricSummary(averageScore: 0.82))])]
        )

        #expect(decision.verdict == .passed)
    }

    @Test func aggregatesOnlyFallBackToPlainRule() {
        let decision = GatePolicy(gate: Configuration.Gate()).decide(
            [completedResult(plannedPair(), scores: [MetricScore.compute(code: "FAITHFULNESS", results: [], summary: MetricSummary(averageScore: 0.70))])],
            baselines: ["support-bot": baseline([MetricScore.compute(code: "FAITHFULNESS", results: [], summary: MetricSummary(averageScore: 0.82))])]
        )

        #expect(decision.verdict == .failed)
        #expect(decision.pairs[0].metrics[0].reasons.contains { $0.contains("plain rule") })
    }

    @Test func fewPairedCasesAreInconclusive() {
        let decision = GatePolicy(gate: Configuration.Gate()).decide(
            [completedResult(plannedPair(), scores: [metricScore("FAITHFULNESS", cases: [0.5, 0.4, 0.45])])],
            baselines: ["support-bot": baseline([metricScore("FAITHFULNESS", cases: [0.9, 0.8, 0.85])])]
        )

        #expect(decision.pairs[0].metrics[0].outcome == .inconclusive)
        #expect(decision.exitCode() == 0)
    }

    @Test func waiverTurnsRegressionIntoWarning() {
        let previous = (0..<50).map { 0.8 + Double($0 % 5) * 0.01 }
        let current = previous.map { $0 - 0.2 }

        let decision = GatePolicy(gate: Configuration.Gate(), waivers: ["FAITHFULNESS"]).decide(
            [completedResult(plannedPair(), scores: [metricScore("FAITHFULNESS", cases: current)])],
            baselines: ["support-bot": baseline([metricScore("FAITHFULNESS", cases: previous)])]
        )

        #expect(decision.pairs[0].metrics[0].outcome == .warn)
        #expect(decision.pairs[0].metrics[0].isWaived)
    }

    @Test func waiverDoesNotCoverThresholdFailure() {
        let pair = plannedPair(thresholds: ["FAITHFULNESS": .init(min: 0.9)])

        let decision = GatePolicy(gate: Configuration.Gate(), waivers: ["*"]).decide([completedResult(pair, scores: [metricScore("FAITHFULNESS", cases: [0.5])])])

        #expect(decision.pairs[0].metrics[0].outcome == .fail)
        #expect(!decision.pairs[0].metrics[0].isWaived)
    }

    @Test(arguments: 0..<20)
    func identicalRunsNeverRegress(seed: Int) {
        var generator = SplitMix64(seed: UInt64(seed))
        let scores = (0..<40).map { _ in Double(generator.next() % 1000) / 1000 }

        let decision = GatePolicy(gate: Configuration.Gate()).decide(
            [completedResult(plannedPair(), scores: [metricScore("FAITHFULNESS", cases: scores)])],
            baselines: ["support-bot": baseline([metricScore("FAITHFULNESS", cases: scores)])]
        )

        #expect(decision.verdict == .passed)
    }

    @Test(arguments: 0..<20)
    func betterRunNeverFailsWhereWorseRunPasses(seed: Int) {
        var generator = SplitMix64(seed: UInt64(seed) &+ 99)
        let previous = (0..<40).map { _ in Double(generator.next() % 1000) / 1000 }
        let worse = previous.map { max(0, $0 - Double(generator.next() % 100) / 1000) }
        let better = zip(worse, previous).map { worseValue, previousValue in min(1, worseValue + Double(generator.next() % 50) / 1000) }
        let policy = GatePolicy(gate: Configuration.Gate())
        let thresholds = ["FAITHFULNESS": Configuration.Threshold(min: 0.45)]

        let worseDecision = policy.decide(
            [completedResult(plannedPair(thresholds: thresholds), scores: [metricScore("FAITHFULNESS", cases: worse)])],
            baselines: ["support-bot": baseline([metricScore("FAITHFULNESS", cases: previous)])]
        )
        let betterDecision = policy.decide(
            [completedResult(plannedPair(thresholds: thresholds), scores: [metricScore("FAITHFULNESS", cases: better)])],
            baselines: ["support-bot": baseline([metricScore("FAITHFULNESS", cases: previous)])]
        )

        if worseDecision.verdict != .failed {
            #expect(betterDecision.verdict != .failed)
        }
    }

    @Test func sameRunsGiveSameInterval() {
        let analysis = RegressionAnalysis(regression: Configuration.Regression())
        let differences = (0..<30).map { Double($0 % 7) / 100 - 0.03 }

        #expect(analysis.bootstrapInterval(differences, seed: 42) == analysis.bootstrapInterval(differences, seed: 42))
    }

    @Test func holmAdjustmentIsMonotone() {
        let adjusted = holmAdjusted([0.01, 0.04, 0.03, 0.005])

        #expect(adjusted == [0.03, 0.06, 0.06, 0.02])
    }

    @Test func wilcoxonDetectsConsistentDrop() {
        #expect(wilcoxonLowerTail((0..<30).map { _ in -0.1 }) < 0.001)
        #expect(wilcoxonLowerTail((0..<30).map { $0 % 2 == 0 ? -0.1 : 0.1 }) > 0.3)
        #expect(wilcoxonLowerTail([0, 0, 0]) == 1)
    }
}

@Suite struct BudgetTests {
    func result(tokens: Double?, latencies: [Double]) -> PairResult {
        let cases = latencies.enumerated().map { index, latency in
            var item = CaseResult(id: "c\(index)", scores: [CaseScore(metricCode: "FAITHFULNESS", score: 0.9)])
            item.latencyMilliseconds = latency
            return item
        }
        var result = completedResult(plannedPair(), scores: [metricScore("FAITHFULNESS", cases: [0.9])])
        result.run = Run(json: ["id": "run-1", "status": "COMPLETED", "totalTokens": .from(tokens)])
        result.results = cases
        return result
    }

    @Test func latencyAboveCeilingFails() {
        var gate = Configuration.Gate()
        gate.budgets[.latencyP95] = Configuration.Budget(max: 2000)

        let decision = GatePolicy(gate: gate).decide([result(tokens: 100, latencies: [500, 900, 1200, 2600])])

        let budget = decision.pairs[0].metrics.first { $0.code == "LATENCY_P95_MS" }
        #expect(budget?.outcome == .fail)
        #expect(budget?.score.mean == 2600)
        #expect(decision.exitCode() == 1)
    }

    @Test func tokenGrowthAgainstBaselineFails() {
        var gate = Configuration.Gate()
        gate.budgets[.totalTokens] = Configuration.Budget(maxIncrease: .relative(0.1))
        let baseline = Baseline(info: BaselineInfo(runID: "b", source: "test"), scores: [], budgetValues: [.totalTokens: 1000])

        let grown = GatePolicy(gate: gate).decide([result(tokens: 1200, latencies: [1])], baselines: ["support-bot": baseline])
        let steady = GatePolicy(gate: gate).decide([result(tokens: 1050, latencies: [1])], baselines: ["support-bot": baseline])

        #expect(grown.verdict == .failed)
        #expect(steady.verdict == .passed)
    }

    @Test func missingFigureIsNoData() {
        var gate = Configuration.Gate()
        gate.budgets[.totalCost] = Configuration.Budget(max: 1)

        let decision = GatePolicy(gate: gate).decide([result(tokens: nil, latencies: [])])

        #expect(decision.pairs[0].metrics.last?.outcome == .noData)
    }
}
