/// Renders the decision as JUnit XML for GitLab's merge request test widget and other CI
/// test viewers: a test suite per pair and a test case per metric.
public enum JUnitReport {
    public static func render(_ decision: GateDecision) -> String {
        var lines = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>"]
        let failures = decision.pairs.reduce(0) { total, pair in
            total + (pair.problem == nil ? pair.metrics.filter { $0.outcome >= .noData }.count : 0)
        }
        let errors = decision.pairs.filter { $0.problem != nil && $0.outcome != .pass }.count
        let tests = decision.pairs.reduce(0) { $0 + max($1.metrics.count, 1) }
        lines.append("<testsuites name=\"llmops-ci\" tests=\"\(tests)\" failures=\"\(failures)\" errors=\"\(errors)\">")
        for pair in decision.pairs {
            let label = escape(pair.result.pair.label)
            let suiteFailures = pair.problem == nil ? pair.metrics.filter { $0.outcome >= .noData }.count : 0
            let suiteErrors = pair.problem != nil && pair.outcome != .pass ? 1 : 0
            let time = pair.result.duration.map { String(format3($0.seconds)) } ?? "0"
            lines.append("  <testsuite name=\"\(label)\" tests=\"\(max(pair.metrics.count, 1))\" failures=\"\(suiteFailures)\" errors=\"\(suiteErrors)\" time=\"\(time)\">")
            if let problem = pair.problem {
                lines.append("    <testcase classname=\"\(label)\" name=\"evaluation\">")
                if pair.outcome != .pass {
                    lines.append("      <error message=\"\(escape(problem.text))\"/>")
                } else {
                    lines.append("      <system-out>\(escape(problem.text))</system-out>")
                }
                lines.append("    </testcase>")
            }
            for metric in pair.metrics {
                lines.append("    <testcase classname=\"\(label)\" name=\"\(escape(metric.code))\">")
                let reasons = escape(metric.reasons.joined(separator: "; "))
                if metric.outcome >= .noData {
                    let value = metric.score.mean.map(format) ?? "no data"
                    lines.append("      <failure message=\"\(escape(metric.code)) \(value): \(metric.outcome.rawValue)\">\(reasons)</failure>")
                } else if !reasons.isEmpty {
                    lines.append("      <system-out>\(metric.outcome.rawValue): \(reasons)</system-out>")
                }
                lines.append("    </testcase>")
            }
            lines.append("  </testsuite>")
        }
        lines.append("</testsuites>")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Escapes text for XML attributes and content, dropping characters XML 1.0 forbids.
    static func escape(_ text: String) -> String {
        var output = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            case "'": output += "&apos;"
            case "\n": output += "&#10;"
            case "\t", "\r": output += " "
            default:
                let value = scalar.value
                let isAllowed = value >= 0x20 && !(0xD800...0xDFFF).contains(value) && value != 0xFFFE && value != 0xFFFF
                if isAllowed {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        return output
    }

    private static func format3(_ value: Double) -> String {
        String((value * 1000).rounded() / 1000)
    }
}

/// Renders the decision as plain text for a terminal: one line per pair and metric.
public enum TextReport {
    public static func render(_ decision: GateDecision, useColor: Bool) -> String {
        func paint(_ text: String, _ outcome: Outcome) -> String {
            guard useColor else { return text }
            let code: String
            switch outcome {
            case .pass: code = "32"
            case .warn, .inconclusive: code = "33"
            case .fail, .noData: code = "31"
            }
            return "\u{1B}[\(code)m\(text)\u{1B}[0m"
        }
        var lines: [String] = []
        let verdictOutcome: Outcome
        switch decision.verdict {
        case .passed: verdictOutcome = .pass
        case .warned: verdictOutcome = .warn
        case .failed, .incomplete: verdictOutcome = .fail
        }
        lines.append(paint("LLMOps evaluation: \(decision.verdict.rawValue)", verdictOutcome) + " (\(decision.pairs.count) \(decision.pairs.count == 1 ? "pair" : "pairs"): \(decision.passedCount) passed, \(decision.warnedCount) warned, \(decision.failedCount) failed)")
        for pair in decision.pairs {
            lines.append("  " + paint(pair.outcome.rawValue.uppercased(), pair.outcome) + "  " + sanitized(pair.result.pair.label))
            if let problem = pair.problem {
                lines.append("        " + sanitized(problem.text))
            }
            for metric in pair.metrics {
                let value = metric.score.mean.map(format) ?? "no data"
                var line = "        \(metric.code) \(value)"
                if let threshold = metric.thresholdText {
                    line += "  threshold \(threshold)"
                }
                if let comparison = metric.comparison {
                    line += "  Δ \(signed(comparison.delta))"
                }
                line += "  " + paint(metric.outcome.rawValue, metric.outcome)
                lines.append(line)
            }
        }
        for note in decision.notes {
            lines.append("note: " + sanitized(note))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Removes control characters, so untrusted text cannot move the cursor or change colours.
    static func sanitized(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    }
}
