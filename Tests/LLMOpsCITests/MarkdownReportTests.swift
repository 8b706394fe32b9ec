import FoundationEssentials
import Testing
@testable import LLMOpsCI

@Suite struct MarkdownEscapingTests {
    @Test(arguments: [
        ("a | b", "a \\| b"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("ping @team now", "ping &#64;team now"),
        ("/approve", "&#47;approve"),
        ("```\nclose fence", "\\`\\`\\` close fence"),
        ("</details>", "&lt;/details&gt;"),
        ("line\nbreak", "line break"),
    ])
    func escapesUntrustedText(input: String, expected: String) {
        #expect(MarkdownEscaping.inline(input) == expected)
    }

    @Test func shortensWithoutSplittingCharacters() {
        let text = String(repeating: "👩‍👩‍👧‍👦", count: 10) + String(repeating: "漢", count: 10)

        let shortened = MarkdownEscaping.shorten(text, to: 5)

        #expect(shortened == String(repeating: "👩‍👩‍👧‍👦", count: 4) + "…")
    }
}

@Suite struct MarkdownReportTests {
    func decision(pairs: Int, casesPerPair: Int, text: String) -> GateDecision {
        let results = (0..<pairs).map { index -> PairResult in
            let pair = plannedPair("pair-\(index)", metrics: ["FAITHFULNESS", "BLEU"], thresholds: ["FAITHFULNESS": .init(min: 0.9)])
            let cases = (0..<casesPerPair).map { caseIndex in
                var result = CaseResult(id: "c\(caseIndex)", scores: [
                    CaseScore(metricCode: "FAITHFULNESS", score: 0.5, passed: false),
                    CaseScore(metricCode: "BLEU", score: 0.4, passed: false),
                ])
                result.question = text
                result.expected = text
                result.output = text
                return result
            }
            var result = completedResult(pair, scores: ["FAITHFULNESS", "BLEU"].map { MetricScore.compute(code: $0, results: cases, summary: nil) }, runID: "run-\(index)")
            result.results = cases
            return result
        }
        return GatePolicy(gate: Configuration.Gate()).decide(results)
    }

    @Test func rendersVerdictTablesAndFooter() {
        let report = MarkdownReport(decision: decision(pairs: 2, casesPerPair: 3, text: "What is 2+2?"), context: ReportContext(commit: "0123456789abcdef", webURL: "https://llmops.example.com", commentKey: "k", worstCases: 2))

        let text = report.rendered()

        #expect(text.hasPrefix("<!-- llmops-ci:key="))
        #expect(text.contains("## ❌ LLMOps evaluation failed"))
        #expect(text.contains("| FAITHFULNESS | 0.50 (0% pass) | ≥ 0.90 | ❌ fail |"))
        #expect(text.contains("[#3](https://llmops.example.com/evaluations/run-0)"))
        #expect(text.contains("2 lowest-scoring cases"))
        #expect(text.contains("commit 0123456789ab"))
    }

    @Test func renderingIsDeterministic() {
        let context = ReportContext(commit: "abc", commentKey: "k")
        let first = MarkdownReport(decision: decision(pairs: 3, casesPerPair: 5, text: "x"), context: context).rendered()
        let second = MarkdownReport(decision: decision(pairs: 3, casesPerPair: 5, text: "x"), context: context).rendered()

        #expect(first == second)
    }

    @Test(arguments: [65_536, 1_000_000])
    func hugeReportFitsBudgetAndKeepsVerdict(budget: Int) {
        let text = String(repeating: "漢字テスト😀👩‍👩‍👧‍👦", count: 120)
        let report = MarkdownReport(decision: decision(pairs: 500, casesPerPair: 8, text: text), context: ReportContext(commit: "abc", commentKey: "k", worstCases: 5))

        let rendered = report.rendered(maxBytes: budget)

        #expect(rendered.utf8.count <= budget)
        #expect(rendered.hasPrefix(report.marker))
        #expect(rendered.contains("LLMOps evaluation failed"))
        #expect(rendered.contains("**500 pairs**"))
        #expect(rendered.contains("comment size limit"))
    }

    @Test func untrustedOutputCannotBreakTable() {
        let hostile = "| x | y |\n</details><img src=x onerror=alert(1)> @everyone\n/close\n```"
        let rendered = MarkdownReport(decision: decision(pairs: 1, casesPerPair: 1, text: hostile), context: ReportContext(commentKey: "k")).rendered()

        #expect(!rendered.contains("<img"))
        #expect(!rendered.contains("@everyone"))
        #expect(!rendered.contains("\n/close"))
        #expect(!rendered.contains("```"))
        for line in rendered.split(separator: "\n") where line.hasPrefix("| ") && line.contains("onerror") {
            #expect(line.split(separator: "|", omittingEmptySubsequences: false).count - line.components(separatedBy: "\\|").count + 1 == 6)
        }
    }

    @Test func markerKeyCannotCloseComment() {
        let marker = MarkdownReport.marker(commentKey: "a --> <b>", commit: "abc", verdict: "passed")

        #expect(marker.hasSuffix(" -->"))
        #expect(marker.dropLast(4).contains("-->") == false)
    }
}

@Suite struct ResultsFileTests {
    @Test func roundTripsDecision() throws {
        let pair = plannedPair(thresholds: ["FAITHFULNESS": .init(min: 0.9)])
        let decision = GatePolicy(gate: Configuration.Gate()).decide([completedResult(pair, scores: [metricScore("FAITHFULNESS", cases: [0.5, 0.6])])])
        let context = ReportContext(commit: "abc", commentKey: "k")

        let encoded = ResultsFile.encode(decision, context: context, exitCode: 1)
        let decoded = try ResultsFile.decode(try JSONValue.parse(Array(encoded.serialized().utf8)), path: "r.json")

        #expect(decoded.exitCode == 1)
        #expect(decoded.decision.verdict == .failed)
        #expect(decoded.decision.pairs[0].metrics[0].score.caseScores == ["tc-0": 0.5, "tc-1": 0.6])
        #expect(MarkdownReport(decision: decoded.decision, context: decoded.context).rendered() == MarkdownReport(decision: decision, context: context).rendered())
    }

    @Test func rejectsOtherFiles() {
        #expect(throws: ResolutionError.self) {
            try ResultsFile.decode(["schema": "something-else"], path: "x.json")
        }
    }
}

@Suite struct JUnitReportTests {
    @Test func writesSuitePerPairAndFailurePerMetric() {
        let pair = plannedPair("a<&>", thresholds: ["FAITHFULNESS": .init(min: 0.9)])
        let decision = GatePolicy(gate: Configuration.Gate()).decide([
            completedResult(pair, scores: [metricScore("FAITHFULNESS", cases: [0.5])]),
            PairResult(pair: plannedPair("b"), state: .failed("engine \u{1}down")),
        ])

        let xml = JUnitReport.render(decision)

        #expect(xml.contains("<testsuite name=\"a&lt;&amp;&gt;\" tests=\"1\" failures=\"1\" errors=\"0\""))
        #expect(xml.contains("<error message=\"the evaluation FAILED on the server: engine down\"/>"))
        #expect(!xml.contains("\u{1}"))
    }
}
