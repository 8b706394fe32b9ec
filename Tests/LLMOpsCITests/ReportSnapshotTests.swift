import Foundation
import Testing
@testable import LLMOpsCI

/// Compares rendered output with files under `Snapshots/`. Set `UPDATE_SNAPSHOTS=1` to
/// rewrite them after an intended change, and review the diff.
@Suite struct ReportSnapshotTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Snapshots")

    func decision() -> GateDecision {
        let passing = plannedPair("support-bot", metrics: ["FAITHFULNESS", "BLEU"], thresholds: ["FAITHFULNESS": .init(min: 0.7)])
        var cases: [CaseResult] = []
        for index in 0..<12 {
            var item = CaseResult(id: "r\(index)", testCaseID: "tc\(index)", scores: [
                CaseScore(metricCode: "FAITHFULNESS", score: 0.6 + Double(index) * 0.03, passed: index > 2),
                CaseScore(metricCode: "BLEU", score: 0.5 + Double(index % 4) * 0.1, passed: true),
            ])
            item.question = "Question \(index) | with a pipe and @team"
            item.expected = "Expected answer \(index)"
            item.output = "Answer \(index)\n/close"
            cases.append(item)
        }
        var first = completedResult(passing, scores: ["FAITHFULNESS", "BLEU"].map { MetricScore.compute(code: $0, results: cases, summary: nil) }, runID: "run-1")
        first.results = cases
        let baselineScores = ["FAITHFULNESS", "BLEU"].map { code in
            MetricScore.compute(code: code, results: cases.map { item in
                var copy = item
                copy.scores = copy.scores.map { score in
                    var raised = score
                    raised.score = (score.score ?? 0) + 0.05
                    raised.passed = true
                    return raised
                }
                return copy
            }, summary: nil)
        }
        let baseline = Baseline(
            info: BaselineInfo(runID: "base-1", runNumber: 7, commit: "89abcdef0123", branch: "main", completedAt: "2026-12-01T10:00:00Z", source: "latest completed run on main"),
            scores: baselineScores
        )
        let failed = PairResult(pair: plannedPair("nightly"), state: .failed("Judge endpoint timed out"))
        var decision = GatePolicy(gate: Configuration.Gate()).decide([first, failed], baselines: ["support-bot": baseline])
        decision.notes.append("No baseline on branch main for nightly: no comparison was made for it, which is not a failure.")
        return decision
    }

    var context: ReportContext {
        ReportContext(
            commit: "0123456789abcdef0123456789abcdef01234567",
            branch: "feature/x",
            targetBranch: "main",
            webURL: "https://llmops.example.com",
            projectID: "p",
            duration: .seconds(133),
            finishedAt: Date(timeIntervalSince1970: 1_780_000_000),
            commentKey: "llmops.yml|ci/eval",
            history: [HistoryEntry(commit: "fedcba9876543210", verdict: "passed", time: "2026-12-01T09:00:00Z")],
            worstCases: 3
        )
    }

    func check(_ text: String, against name: String) throws {
        let url = Self.directory.appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["UPDATE_SNAPSHOTS"] != nil {
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        #expect(text == expected, "\(name) differs; rerun with UPDATE_SNAPSHOTS=1 and review the diff")
    }

    @Test func markdownReportMatchesSnapshot() throws {
        try check(MarkdownReport(decision: decision(), context: context).rendered(), against: "report.md")
    }

    @Test func junitMatchesSnapshot() throws {
        try check(JUnitReport.render(decision()), against: "junit.xml")
    }

    @Test func textMatchesSnapshot() throws {
        try check(TextReport.render(decision(), useColor: false), against: "report.txt")
    }
}
