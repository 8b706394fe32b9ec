import FoundationEssentials

/// Writes the report and machine outputs: stdout, the result files, and the CI's own
/// channels. On GitHub these are the step summary, outputs and annotations, and on GitLab a dotenv file.
struct OutputWriter {
    let agent: Agent
    let configuration: Configuration
    let logger: Logger

    private var variables: [String: String] { agent.environment.variables }

    func write(decision: GateDecision, context: ReportContext, exitCode: Int32, format: String?) {
        let markdown = MarkdownReport(decision: decision, context: context).rendered()
        let isGitHub = variables["GITHUB_ACTIONS"] == "true"

        var paths: [String: String] = [:]
        if let path = configuration.report.markdown {
            save(markdown, to: path, what: "report")
            paths["report-path"] = path
        }
        if let path = configuration.report.json {
            save(ResultsFile.encode(decision, context: context, exitCode: exitCode).serialized(pretty: true) + "\n", to: path, what: "results file")
            paths["results-path"] = path
        }
        if let path = configuration.report.junit {
            save(JUnitReport.render(decision), to: path, what: "JUnit file")
            paths["junit-path"] = path
        }

        let chosenFormat = format ?? (agent.environment.isTerminal && variables["CI"] == nil ? "text" : "markdown")
        switch chosenFormat {
        case "text":
            agent.printOutput(TextReport.render(decision, useColor: agent.useColor))
        case "json":
            agent.printOutput(ResultsFile.encode(decision, context: context, exitCode: exitCode).serialized(pretty: true) + "\n")
        default:
            if isGitHub {
                // Untrusted text in the report must not be read as workflow commands.
                let token = "llmops-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
                agent.printOutput("::stop-commands::\(token)\n\(markdown)::\(token)::\n")
            } else {
                agent.printOutput(markdown)
            }
        }

        if isGitHub {
            writeGitHub(decision: decision, markdown: markdown, paths: paths)
        }
        if variables["GITLAB_CI"] == "true" {
            writeDotenv(decision: decision, paths: paths)
        }
    }

    /// Records a job that stopped before any verdict in the job summary and the outputs, so
    /// that a dashboard or a later step does not read an earlier job's result.
    func writeIncomplete(_ message: String) {
        if variables["GITHUB_ACTIONS"] == "true" {
            if let summaryPath = variables["GITHUB_STEP_SUMMARY"], !summaryPath.isEmpty {
                append("## ⛔ LLMOps evaluation could not finish\n\n\(MarkdownEscaping.inline(message))\n", to: summaryPath, what: "job summary")
            }
            if let outputPath = variables["GITHUB_OUTPUT"], !outputPath.isEmpty {
                append("verdict=incomplete\n", to: outputPath, what: "step outputs")
            }
        }
        if variables["GITLAB_CI"] == "true" {
            save("LLMOPS_VERDICT=incomplete\n", to: variables["LLMOPS_DOTENV"] ?? "llmops.env", what: "dotenv file")
        }
    }

    /// Writes a one-line notice where the report would go: stdout and the job summary.
    func writeNotice(_ message: String) {
        agent.printOutput(message + "\n")
        if variables["GITHUB_ACTIONS"] == "true", let summaryPath = variables["GITHUB_STEP_SUMMARY"], !summaryPath.isEmpty {
            append("## ⏭️ LLMOps evaluation skipped\n\n\(message)\n", to: summaryPath, what: "job summary")
        }
    }

    private func save(_ text: String, to path: String, what: String) {
        do {
            try writeFileAtomically(path: path, contents: agent.secrets.redact(text))
        } catch {
            logger.warning("Could not write the \(what)", metadata: ["path": path, "error": "\(error)"])
        }
    }

    private func outputValues(decision: GateDecision, paths: [String: String]) -> [(String, String)] {
        [
            ("verdict", decision.verdict.rawValue),
            ("pairs", String(decision.pairs.count)),
            ("passed", String(decision.passedCount)),
            ("warned", String(decision.warnedCount)),
            ("failed", String(decision.failedCount)),
        ] + paths.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    private func writeGitHub(decision: GateDecision, markdown: String, paths: [String: String]) {
        if let summaryPath = variables["GITHUB_STEP_SUMMARY"], !summaryPath.isEmpty {
            append(markdown + "\n", to: summaryPath, what: "job summary")
        }
        if let outputPath = variables["GITHUB_OUTPUT"], !outputPath.isEmpty {
            var text = ""
            for (name, value) in outputValues(decision: decision, paths: paths) {
                if value.contains("\n") {
                    let delimiter = "LLMOPS_EOF_" + stableHash(value)
                    text += "\(name)<<\(delimiter)\n\(value)\n\(delimiter)\n"
                } else {
                    text += "\(name)=\(value)\n"
                }
            }
            append(text, to: outputPath, what: "step outputs")
        }
        var annotations: [(Outcome, String)] = []
        for pair in decision.pairs {
            let label = pair.result.pair.label
            if let problem = pair.problem, pair.outcome != .pass {
                annotations.append((pair.outcome, "\(label): \(problem.text)"))
            }
            for metric in pair.metrics where metric.outcome != .pass {
                let value = metric.score.mean.map(format) ?? "no data"
                annotations.append((metric.outcome, "\(label): \(metric.code) \(value) \(metric.outcome.rawValue): \(metric.reasons.joined(separator: "; "))"))
            }
        }
        // GitHub shows at most 10 errors and 10 warnings per step; the rest stay in the summary.
        let errors = annotations.filter { $0.0 >= .noData }
        let warnings = annotations.filter { $0.0 < .noData }
        for (message, command, count) in [(errors, "error", errors.count), (warnings, "warning", warnings.count)] {
            for (_, text) in message.prefix(annotationLimit) {
                agent.printOutput("::\(command) title=LLMOps gate::\(escapeWorkflowData(text))\n")
            }
            if count > annotationLimit {
                agent.printOutput("::\(command) title=LLMOps gate::\(count - annotationLimit) more \(command)s are in the job summary\n")
            }
        }
    }

    private let annotationLimit = 9

    private func writeDotenv(decision: GateDecision, paths: [String: String]) {
        let path = variables["LLMOPS_DOTENV"] ?? "llmops.env"
        var text = ""
        for (name, value) in outputValues(decision: decision, paths: paths) {
            let key = "LLMOPS_" + name.uppercased().replacing("-", with: "_")
            text += "\(key)=\(value.replacing("\n", with: " "))\n"
        }
        save(text, to: path, what: "dotenv file")
    }

    private func append(_ text: String, to path: String, what: String) {
        let redacted = Data(agent.secrets.redact(text).utf8)
        if let existing = FileManager.default.contents(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: existing + redacted) else {
                logger.warning("Could not write the \(what)", metadata: ["path": path])
                return
            }
        } else if !FileManager.default.createFile(atPath: path, contents: redacted) {
            logger.warning("Could not write the \(what)", metadata: ["path": path])
        }
    }
}
