/// A way of drawing the per-case scores of a baseline run and a current run.
///
/// Every model draws both runs from the same distribution unless a drop is asked for, so
/// under no drop the paired differences are symmetric around zero: the null hypothesis of
/// the gate's one-sided test is exactly true.
enum ScoreModel: String, CaseIterable, Sendable {
    /// Each case's score in each run is an independent Beta draw around the metric's mean.
    case independent
    /// Each case has a quality of its own (Beta around the metric's mean), and each run
    /// scores it with Beta noise around that quality, so the two runs are correlated.
    case paired
    /// The paired model rounded to steps of 0.25, as a judge with a five-level rubric
    /// gives: many tied and zero differences.
    case judgeLike = "judge-like"
    /// Each case passes (1) or fails (0) with its own probability, as EXACT_MATCH does.
    case binary

    var description: String {
        switch self {
        case .independent: "independent Beta(mean · 8, (1 − mean) · 8) per case and run"
        case .paired: "case quality Beta(mean · 8, (1 − mean) · 8), run score Beta(quality · 40, (1 − quality) · 40)"
        case .judgeLike: "the paired model rounded to steps of 0.25"
        case .binary: "score 1 with the case's quality as probability, else 0"
        }
    }

    /// The spread of scores across cases: α + β of the Beta around the metric's mean.
    static let caseConcentration = 8.0
    /// The spread of one case's score between runs: α + β of the Beta around the case's quality.
    static let runConcentration = 40.0

    /// Draws the baseline and current scores of `count` cases of one metric.
    ///
    /// The current run's expected score is lower by `drop` on every case (less where a
    /// case's quality is already near 0, because the Beta mean is clamped at 0.005).
    func draw(cases count: Int, mean: Double, drop: Double, generator: inout SeededGenerator) -> (baseline: [Double], current: [Double]) {
        var baseline: [Double] = []
        var current: [Double] = []
        baseline.reserveCapacity(count)
        current.reserveCapacity(count)
        for _ in 0..<count {
            switch self {
            case .independent:
                baseline.append(generator.nextBeta(mean: mean, concentration: Self.caseConcentration))
                current.append(generator.nextBeta(mean: mean - drop, concentration: Self.caseConcentration))
            case .paired, .judgeLike:
                let quality = generator.nextBeta(mean: mean, concentration: Self.caseConcentration)
                baseline.append(generator.nextBeta(mean: quality, concentration: Self.runConcentration))
                current.append(generator.nextBeta(mean: quality - drop, concentration: Self.runConcentration))
            case .binary:
                let quality = generator.nextBeta(mean: mean, concentration: Self.caseConcentration)
                baseline.append(generator.nextUnit() < quality ? 1 : 0)
                current.append(generator.nextUnit() < max(quality - drop, 0) ? 1 : 0)
            }
        }
        return (baseline.map(rounded), current.map(rounded))
    }

    /// Rounds as the server stores scores: four decimals, or rubric steps for the judge-like model.
    private func rounded(_ score: Double) -> Double {
        switch self {
        case .judgeLike: (score * 4).rounded() / 4
        default: (score * 10_000).rounded() / 10_000
        }
    }
}
