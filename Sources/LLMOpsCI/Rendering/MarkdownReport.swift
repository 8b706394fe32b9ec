/// Renders the gate's decision as markdown for a pull request comment and the job summary.
///
/// Output depends only on its inputs, so the same decision always renders the same text.
/// When the text would exceed `maxBytes` of UTF-8, it drops detail step by step (fewer
/// cases, then collapsed pairs, then fewer pairs) and states what it left out.
public struct MarkdownReport: Sendable {
    public var decision: GateDecision
    public var context: ReportContext

    public init(decision: GateDecision, context: ReportContext) {
        self.decision = decision
        self.context = context
    }

    /// The hidden first line that marks the comment as this job's, with its commit and verdict.
    public var marker: String {
        Self.marker(commentKey: context.commentKey, commit: context.commit, verdict: decision.verdict.rawValue, time: context.finishedAt.map(Timestamp.format))
    }

    /// Returns the marker for a comment key. The key is hashed, so that no key can end the HTML comment.
    public static func marker(commentKey: String, commit: String?, verdict: String, time: String? = nil) -> String {
        let commitText = commit.map { String($0.filter(\.isHexDigit).prefix(40)) } ?? "unknown"
        var text = "<!-- llmops-ci:key=\(markerKey(commentKey)) commit=\(commitText.isEmpty ? "unknown" : commitText) verdict=\(verdict)"
        if let time {
            text += " time=\(time)"
        }
        return text + " -->"
    }

    /// A hidden line with the earlier verdicts, so that the next update can carry them on.
    var historyLine: String? {
        guard !context.history.isEmpty else { return nil }
        let entries = context.history.prefix(20).map { entry in
            [entry.commit, entry.verdict, entry.time].map { $0.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == ":" } }.joined(separator: ",")
        }
        return "<!-- llmops-ci:history=\(entries.joined(separator: ";")) -->"
    }

    public static func markerKey(_ commentKey: String) -> String {
        stableHash(commentKey)
    }

    public func rendered(maxBytes: Int = .max) -> String {
        let detailLevels: [Detail] = [
            Detail(cases: context.worstCases, expanded: true),
            Detail(cases: min(context.worstCases, 2), expanded: true),
            Detail(cases: 0, expanded: true),
            Detail(cases: 0, expanded: false),
        ]
        for detail in detailLevels {
            let text = render(detail, pairLimit: nil)
            if text.utf8.count <= maxBytes {
                return text
            }
        }
        // Even the summary table alone is too long: list as many pairs as fit.
        var low = 0
        var high = decision.pairs.count
        while low < high {
            let middle = (low + high + 1) / 2
            if render(detailLevels.last!, pairLimit: middle).utf8.count <= maxBytes {
                low = middle
            } else {
                high = middle - 1
            }
        }
        return render(detailLevels.last!, pairLimit: low)
    }

    struct Detail {
        var cases: Int
        var expanded: Bool
    }

    private func render(_ detail: Detail, pairLimit: Int?) -> String {
        var lines: [String] = [marker] + (historyLine.map { [$0] } ?? []) + [headline, "", totals, ""]
        let pairs = pairLimit.map { Array(decision.pairs.prefix($0)) } ?? decision.pairs

        lines += summaryTable(pairs)
        if let pairLimit, pairLimit < decision.pairs.count {
            lines.append("")
            lines.append("_\(decision.pairs.count - pairLimit) more pairs are not shown here, to keep within the comment size limit; the job summary and the results file have them all._")
        }

        if detail.expanded {
            for pair in pairs {
                lines.append("")
                lines += section(for: pair, cases: detail.cases)
            }
        } else {
            lines.append("")
            lines.append("_Per-metric tables and cases are left out to keep within the comment size limit; the job summary and the results file have them._")
        }
        if detail.cases < context.worstCases, detail.expanded {
            lines.append("")
            lines.append("_Fewer cases are shown than configured (\(detail.cases) of \(context.worstCases) per pair) to keep within the comment size limit; the results file has every case._")
        }
        for note in decision.notes {
            lines.append("")
            lines.append("> " + MarkdownEscaping.inline(note))
        }
        lines += historySection()
        lines.append("")
        lines.append(footer)
        return lines.joined(separator: "\n") + "\n"
    }

    private var headline: String {
        let word: String
        let symbol: String
        switch decision.verdict {
        case .passed:
            (word, symbol) = ("passed", "✅")
        case .warned:
            (word, symbol) = ("passed with warnings", "⚠️")
        case .failed:
            (word, symbol) = ("failed", "❌")
        case .incomplete:
            (word, symbol) = ("could not finish", "⛔")
        }
        return "## \(symbol) LLMOps evaluation \(word)"
    }

    private var totals: String {
        let count = decision.pairs.count
        var parts = ["**\(count) \(count == 1 ? "pair" : "pairs")**"]
        let failed = decision.pairs.filter { !$0.isIncomplete && $0.outcome >= .noData }.count
        let incomplete = decision.pairs.filter { $0.isIncomplete && $0.outcome != .pass }.count
        let warned = decision.pairs.filter { $0.outcome == .warn || $0.outcome == .inconclusive }.count
        let passed = decision.pairs.filter { $0.outcome == .pass }.count
        if failed > 0 { parts.append("\(failed) failed") }
        if incomplete > 0 { parts.append("\(incomplete) did not finish") }
        if warned > 0 { parts.append("\(warned) warned") }
        parts.append("\(passed) passed")
        if let commit = context.commit {
            parts.append("commit `\(String(commit.prefix(12)))`")
        }
        if let target = context.targetBranch {
            parts.append("baseline branch `\(MarkdownEscaping.inline(target, maxCharacters: 60).replacing("`", with: ""))`")
        }
        return parts.joined(separator: " · ")
    }

    private func summaryTable(_ pairs: [PairVerdict]) -> [String] {
        var lines = ["| | Pair | Result | Run |", "|---|---|---|---|"]
        for pair in pairs {
            lines.append("| \(pair.outcome.symbol) | \(MarkdownEscaping.inline(pair.result.pair.label, maxCharacters: 80)) | \(summary(of: pair)) | \(runLink(pair.result)) |")
        }
        return lines
    }

    private func summary(of pair: PairVerdict) -> String {
        if let problem = pair.problem {
            return MarkdownEscaping.inline(problem.text, maxCharacters: 160)
        }
        // Failures first, so that a cut never hides one behind warnings.
        let notable = pair.metrics.enumerated()
            .filter { $0.element.outcome != .pass }
            .sorted { $0.element.outcome != $1.element.outcome ? $0.element.outcome > $1.element.outcome : $0.offset < $1.offset }
            .map(\.element)
        guard !notable.isEmpty else {
            return "\(pair.metrics.count) \(pair.metrics.count == 1 ? "metric" : "metrics") passed"
        }
        return notable.prefix(3).map { metric in
            let value = metric.score.mean.map(format) ?? "no data"
            return "\(metric.code) \(value) \(metric.outcome.rawValue)" + (metric.isWaived ? " (waived)" : "")
        }.joined(separator: "; ") + (notable.count > 3 ? "; \(notable.count - 3) more" : "")
    }

    private func runLink(_ result: PairResult) -> String {
        guard let run = result.run else { return "—" }
        let label = run.runNumber.map { "#\($0)" } ?? String(run.id.prefix(8))
        guard let url = context.runURL(run.id) else { return label }
        return "[\(label)](\(url))"
    }

    private func section(for pair: PairVerdict, cases: Int) -> [String] {
        let result = pair.result
        var title = "### \(pair.outcome.symbol) \(MarkdownEscaping.inline(result.pair.label, maxCharacters: 120))"
        var subject = [MarkdownEscaping.inline(result.pair.datasetName, maxCharacters: 60)]
        if let endpoint = result.pair.endpointName {
            subject.append(MarkdownEscaping.inline(endpoint, maxCharacters: 60))
        }
        title += " — " + subject.joined(separator: " × ")
        var lines = [title, ""]
        if let problem = pair.problem {
            lines.append("**\(MarkdownEscaping.inline(problem.text, maxCharacters: 600))**")
            return lines
        }
        if result.isAttached {
            lines.append("_Attached to the run an earlier attempt of this job started for the same commit._")
            lines.append("")
        }
        if let baseline = pair.baseline {
            lines.append(baselineLine(baseline))
            lines.append("")
        }

        let hasBaseline = pair.metrics.contains { $0.comparison != nil }
        lines.append(hasBaseline ? "| Metric | Score | Baseline | Δ (interval) | Threshold | Outcome |" : "| Metric | Score | Threshold | Outcome |")
        lines.append(hasBaseline ? "|---|---|---|---|---|---|" : "|---|---|---|---|")
        for metric in pair.metrics {
            var cells = [metric.code, scoreCell(metric.score)]
            if hasBaseline {
                if let comparison = metric.comparison {
                    cells.append(format(comparison.baselineMean))
                    var delta = signed(comparison.delta)
                    if let interval = comparison.interval {
                        delta += " [\(signed(interval.lowerBound)), \(signed(interval.upperBound))]"
                    }
                    cells.append(delta)
                } else {
                    cells += ["—", "—"]
                }
            }
            cells.append(metric.thresholdText ?? "—")
            cells.append("\(metric.outcome.symbol) \(metric.outcome.rawValue)" + (metric.isWaived ? " (waived)" : ""))
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }

        let explained = pair.metrics.filter { !$0.reasons.isEmpty }
        if !explained.isEmpty {
            lines.append("")
            lines.append("<details><summary>Why each metric passed, warned or failed</summary>")
            lines.append("")
            for metric in explained {
                lines.append("- **\(metric.code)**: " + metric.reasons.map { MarkdownEscaping.inline($0, maxCharacters: 300) }.joined(separator: "; "))
            }
            lines.append("")
            lines.append("</details>")
        }
        lines += changedCases(pair, limit: cases)
        lines += worstCases(pair, limit: cases)
        return lines
    }

    private func scoreCell(_ score: MetricScore) -> String {
        guard let mean = score.mean else {
            return "no data"
        }
        var text = format(mean)
        if let passRate = score.passRate {
            text += " (\(Int((min(max(passRate, 0), 1) * 100).rounded()))% pass)"
        }
        if score.scoredCases < score.totalCases {
            text += " · \(score.scoredCases) of \(score.totalCases) scored"
        }
        if score.source == .summary {
            text += " · server summary"
        }
        if ["LATENCY", "TOKEN_COUNT", "COST"].contains(score.code), let raw = score.rawMedian, let p95 = score.rawP95 {
            text += " · raw p50 \(format(raw)), p95 \(format(p95))"
        }
        return text
    }

    private func baselineLine(_ baseline: BaselineInfo) -> String {
        var parts = ["Baseline: run \(baseline.runNumber.map { "#\($0)" } ?? String(baseline.runID.prefix(8)))"]
        if let url = context.runURL(baseline.runID) {
            parts[0] = "Baseline: [run \(baseline.runNumber.map { "#\($0)" } ?? String(baseline.runID.prefix(8)))](\(url))"
        }
        parts.append(MarkdownEscaping.inline(baseline.source, maxCharacters: 80))
        if let branch = baseline.branch {
            parts.append("branch " + MarkdownEscaping.inline(branch, maxCharacters: 60))
        }
        if let commit = baseline.commit {
            parts.append("commit `\(String(commit.filter(\.isHexDigit).prefix(12)))`")
        }
        if let completed = baseline.completedAt {
            parts.append("completed \(MarkdownEscaping.inline(completed, maxCharacters: 30))")
        }
        var line = "_" + parts.joined(separator: " · ") + "_"
        if let warning = baseline.datasetWarning {
            line += "\n\n⚠️ " + MarkdownEscaping.inline(warning, maxCharacters: 300)
        }
        return line
    }

    /// Cases that the baseline passed and this run fails, and the other way round.
    private func changedCases(_ pair: PairVerdict, limit: Int) -> [String] {
        guard limit > 0 else { return [] }
        let byCase = Dictionary(pair.result.results.map { ($0.testCaseID ?? $0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var lines: [String] = []
        for metric in pair.metrics {
            guard let comparison = metric.comparison else { continue }
            let failing = comparison.newlyFailing
            let passing = comparison.newlyPassing
            guard !failing.isEmpty || !passing.isEmpty else { continue }
            if lines.isEmpty {
                lines += ["", "<details><summary>Cases that changed against the baseline</summary>", ""]
            }
            lines.append("**\(metric.code)**: \(failing.count) newly failing, \(passing.count) newly passing")
            lines.append("")
            for (caseID, word) in failing.prefix(limit).map({ ($0, "now fails") }) + passing.prefix(limit).map({ ($0, "now passes") }) {
                let excerpt = byCase[caseID]?.question ?? caseID
                lines.append("- \(word): \(MarkdownEscaping.inline(excerpt, maxCharacters: 120))")
            }
            lines.append("")
        }
        if !lines.isEmpty {
            lines.append("</details>")
        }
        return lines
    }

    private func worstCases(_ pair: PairVerdict, limit: Int) -> [String] {
        guard limit > 0 else { return [] }
        let codes = pair.metrics.map(\.code)
        let ranked = pair.result.results.compactMap { result -> (CaseResult, Double)? in
            let scores = result.scores.filter { codes.contains($0.metricCode) }.compactMap(\.score)
            guard !scores.isEmpty else { return nil }
            return (result, scores.reduce(0, +) / Double(scores.count))
        }
        .sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0.id < $1.0.id }
        .prefix(limit)
        guard !ranked.isEmpty else { return [] }

        var lines = ["", "<details><summary>\(ranked.count) lowest-scoring \(ranked.count == 1 ? "case" : "cases")</summary>", ""]
        lines.append("| Input | Expected | Actual | Scores |")
        lines.append("|---|---|---|---|")
        for (result, _) in ranked {
            let scores = result.scores.filter { codes.contains($0.metricCode) }.map { score in
                var text = "\(score.metricCode) \(score.score.map(format) ?? "—")"
                if score.passed == false { text += " ✗" }
                return text
            }.joined(separator: ", ")
            lines.append(
                "| \(MarkdownEscaping.inline(result.question ?? "—", maxCharacters: 140)) | \(MarkdownEscaping.inline(result.expected ?? "—", maxCharacters: 140)) | \(MarkdownEscaping.inline(result.output ?? "—", maxCharacters: 140)) | \(scores) |"
            )
        }
        lines.append("")
        lines.append("</details>")
        return lines
    }

    private func historySection() -> [String] {
        guard !context.history.isEmpty else { return [] }
        var lines = ["", "<details><summary>Earlier verdicts on this pull request</summary>", ""]
        for entry in context.history.prefix(20) {
            lines.append("- `\(String(entry.commit.filter(\.isHexDigit).prefix(12)))` \(MarkdownEscaping.inline(entry.verdict, maxCharacters: 20)) \(MarkdownEscaping.inline(entry.time, maxCharacters: 30))")
        }
        lines.append("")
        lines.append("</details>")
        return lines
    }

    private var footer: String {
        var parts = ["llmops-ci \(AgentVersion.current)"]
        if let commit = context.commit {
            parts.append("commit \(String(commit.prefix(12)))")
        }
        if let duration = context.duration {
            parts.append("took \(formatDuration(duration))")
        }
        return "<sub>" + parts.joined(separator: " · ") + "</sub>"
    }
}

/// Formats a duration as `2m 13s` or `45s`.
public func formatDuration(_ duration: Duration) -> String {
    let total = Int(duration.seconds.rounded())
    if total < 60 {
        return "\(total)s"
    }
    if total < 3600 {
        return "\(total / 60)m \(total % 60)s"
    }
    return "\(total / 3600)h \(total / 60 % 60)m"
}
