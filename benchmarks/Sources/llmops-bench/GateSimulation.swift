import LLMOpsCI

/// One row of the simulation: a score model, a case count, a true drop and the gate's
/// allowed drop.
struct SimulationSetting: Sendable {
    var model: ScoreModel
    var cases: Int
    /// True drop of the expected score of one metric of one pair. Zero means no change.
    var drop: Double
    /// `gate.regression.max_drop` as an absolute score difference.
    var maxDrop: Double
}

/// The gate's decisions over the simulated pull requests of one setting.
struct SimulationOutcome: Sendable {
    var setting: SimulationSetting
    var pullRequests = 0
    /// Pull requests whose whole verdict was `failed`.
    var failedPullRequests = 0
    /// Pull requests in which the metric that carries the drop failed.
    var droppedMetricFailures = 0
    /// Sum over pull requests of that metric's current mean minus its baseline mean.
    var droppedMetricDeltaSum = 0.0

    var failureRate: Double { Double(failedPullRequests) / Double(max(pullRequests, 1)) }
    var droppedMetricFailureRate: Double { Double(droppedMetricFailures) / Double(max(pullRequests, 1)) }
    var meanDroppedMetricDelta: Double { droppedMetricDeltaSum / Double(max(pullRequests, 1)) }
}

/// Simulates pull requests of `pairs` dataset/endpoint pairs with one metric per entry of
/// `metricMeans`, and runs the product's gate on each against a simulated baseline.
struct GateSimulator: Sendable {
    static let metricCodes = ["FAITHFULNESS", "ANSWER_RELEVANCY", "BLEU", "ROUGE_L", "COHERENCE"]
    /// Expected scores of the five metrics, spread over the range real evaluations show.
    static let metricMeans = [0.62, 0.70, 0.78, 0.85, 0.92]
    static let pairs = 6

    private let plannedPairs: [PlannedPair]
    private let baselineInfos: [BaselineInfo]

    init() throws {
        var plannedPairs: [PlannedPair] = []
        var baselineInfos: [BaselineInfo] = []
        for index in 0..<Self.pairs {
            let runName = "simulated / dataset-\(index + 1)"
            plannedPairs.append(
                PlannedPair(
                    evaluationName: "simulated",
                    runName: runName,
                    label: runName,
                    datasetID: "dataset-\(index + 1)",
                    datasetName: "dataset-\(index + 1)",
                    metrics: Self.metricCodes.map { Configuration.Metric(code: $0) },
                    metricDefinitions: [],
                    thresholds: [:]
                )
            )
            baselineInfos.append(try makeBaselineInfo(runID: "baseline-\(index + 1)"))
        }
        self.plannedPairs = plannedPairs
        self.baselineInfos = baselineInfos
    }

    /// Runs `pullRequests` simulated pull requests of one setting, seeded by `seed`.
    ///
    /// The drop, when there is one, is on the first metric of the first pair only, so the
    /// Holm correction spreads over all 30 comparisons as it would in a real job.
    func simulate(_ setting: SimulationSetting, pullRequests: Int, seed: UInt64) -> SimulationOutcome {
        var gate = Configuration.Gate()
        gate.regression.maxDrop = .absolute(setting.maxDrop)
        let policy = GatePolicy(gate: gate)
        var generator = SeededGenerator(seed: seed)
        var outcome = SimulationOutcome(setting: setting)

        for number in 0..<pullRequests {
            var results: [PairResult] = []
            var baselines: [String: Baseline] = [:]
            for (index, pair) in plannedPairs.enumerated() {
                var baselineScores: [[Double]] = []
                var currentScores: [[Double]] = []
                for (metricIndex, mean) in Self.metricMeans.enumerated() {
                    let drop = index == 0 && metricIndex == 0 ? setting.drop : 0
                    let drawn = setting.model.draw(cases: setting.cases, mean: mean, drop: drop, generator: &generator)
                    baselineScores.append(drawn.baseline)
                    currentScores.append(drawn.current)
                }
                let baselineCases = caseResults(baselineScores)
                let currentCases = caseResults(currentScores)
                let run = Run(json: ["id": .string("pull-request-\(number)-pair-\(index + 1)"), "status": "COMPLETED"])
                results.append(
                    PairResult(pair: pair, state: .completed, run: run, results: currentCases, scores: metricScores(currentCases))
                )
                baselines[pair.runName] = Baseline(info: baselineInfos[index], scores: metricScores(baselineCases))
            }

            let decision = policy.decide(results, baselines: baselines)
            outcome.pullRequests += 1
            if decision.verdict == .failed {
                outcome.failedPullRequests += 1
            }
            if let dropped = decision.pairs.first?.metrics.first {
                if dropped.outcome == .fail {
                    outcome.droppedMetricFailures += 1
                }
                outcome.droppedMetricDeltaSum += dropped.comparison?.delta ?? 0
            }
        }
        return outcome
    }

    /// Runs every setting, as many at a time as the machine has cores, each from a seed
    /// derived from `seed`, `table` and its position, so that the figures do not depend on
    /// the order in which tasks finish.
    func simulateAll(_ settings: [SimulationSetting], pullRequests: Int, seed: UInt64, table: Int) async -> [SimulationOutcome] {
        await withTaskGroup(of: (Int, SimulationOutcome).self) { group in
            for (index, setting) in settings.enumerated() {
                group.addTask {
                    (index, simulate(setting, pullRequests: pullRequests, seed: derivedSeed(seed, table, index)))
                }
            }
            var outcomes = [SimulationOutcome?](repeating: nil, count: settings.count)
            for await (index, outcome) in group {
                outcomes[index] = outcome
            }
            return outcomes.compactMap { $0 }
        }
    }

    /// Builds the per-case results of one run from scores indexed by metric, then case.
    private func caseResults(_ scores: [[Double]]) -> [CaseResult] {
        let caseCount = scores.first?.count ?? 0
        return (0..<caseCount).map { caseIndex in
            let caseScores = Self.metricCodes.indices.map { metricIndex in
                CaseScore(metricCode: Self.metricCodes[metricIndex], score: scores[metricIndex][caseIndex])
            }
            let id = "case-\(caseIndex + 1)"
            return CaseResult(id: id, testCaseID: id, scores: caseScores)
        }
    }

    private func metricScores(_ results: [CaseResult]) -> [MetricScore] {
        Self.metricCodes.map { MetricScore.compute(code: $0, results: results, summary: nil) }
    }
}

/// Makes the description of a baseline run, which the regression test needs only for its id.
///
/// NOTE: `BaselineInfo` has no public initialiser, so this reads one back from a minimal
/// results document through the public `ResultsFile.decode`.
func makeBaselineInfo(runID: String) throws -> BaselineInfo {
    let document: JSONValue = [
        "schema": .string(ResultsFile.schemaName),
        "version": .number(Double(ResultsFile.version)),
        "pairs": [["baseline": ["runId": .string(runID), "source": "simulated baseline"]]],
    ]
    let contents = try ResultsFile.decode(document, path: "simulated baseline")
    guard let info = contents.decision.pairs.first?.baseline else {
        throw SimulationError(description: "the results decoder returned no baseline for the simulated document")
    }
    return info
}

struct SimulationError: Error, CustomStringConvertible {
    var description: String
}
