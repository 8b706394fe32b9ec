import FoundationEssentials

/// `llmops-ci run`: the main job from configuration to exit code.
struct RunCommand {
    static let defaultStatePath = ".llmops-ci/state.json"

    let agent: Agent
    let arguments: Arguments

    private var environment: AgentEnvironment { agent.environment }
    private var variables: [String: String] { environment.variables }

    /// State that every step of one run shares.
    private struct Job {
        var configuration: Configuration
        var logger: Logger
        var forgeStep: ForgeStep?
        var context: JobContext
        var commentKey: String
        var client: LLMOpsClient
        var waivers: Set<String>
        var startedAt: Duration
        var isGitHub: Bool
    }

    func execute() async -> Int32 {
        let startedAt = environment.clock.now
        let logger = agent.makeLogger(verbose: arguments.isVerbose)
        let configuration: Configuration
        do {
            configuration = try agent.loadConfiguration(arguments)
        } catch {
            return handleConfigurationError(error, logger: logger)
        }
        // Files the configuration names must exist before any run starts: a missing baseline
        // would silently turn the regression check off, and a missing CA bundle fails every request.
        if case .file(let path) = configuration.gate.regression.baseline, !FileManager.default.fileExists(atPath: path) {
            agent.printError("error: \(configuration.path): gate.regression.baseline: the baseline file '\(path)' does not exist. Download the results file of the earlier job before this step, or use latest-completed.")
            return ExitCode.usageError
        }
        if let bundle = configuration.server.caBundle, !FileManager.default.fileExists(atPath: bundle) {
            agent.printError("error: \(configuration.path): server.ca_bundle: the file '\(bundle)' does not exist. Give the path of a PEM file of certificate authorities, relative to the working folder.")
            return ExitCode.usageError
        }
        let job = prepare(configuration, logger: logger, startedAt: startedAt)

        if job.forgeStep?.target.labels.contains(configuration.report.skipLabel) == true {
            let message = "Skipped: the pull or merge request has the label '\(configuration.report.skipLabel)', so no evaluation was started."
            logger.notice(message)
            OutputWriter(agent: agent, configuration: configuration, logger: logger).writeNotice(message)
            return ExitCode.passed
        }

        let plan: (projectID: String, pairs: [PlannedPair])
        switch await resolvePlan(job) {
        case .success(let resolved):
            plan = resolved
        case .failure(let exit):
            await job.client.logOut()
            return exit.code
        }

        if arguments.isDryRun {
            printPlan(plan.pairs, projectID: plan.projectID, context: job.context)
            await describeComment(job.forgeStep, mode: commentMode(configuration), commentKey: job.commentKey)
            await job.client.logOut()
            return ExitCode.passed
        }

        let (decision, reportContext) = await evaluate(plan, job: job)
        var exitCode = decision.exitCode(warningExitCode: arguments.warningExitCode)
        let outputs = OutputWriter(agent: agent, configuration: configuration, logger: logger)
        outputs.write(decision: decision, context: reportContext, exitCode: exitCode, format: arguments.format)
        await job.client.logOut()

        let isPosted = await publish(decision: decision, context: reportContext, configuration: configuration, forgeStep: job.forgeStep, logger: logger)
        if !isPosted, configuration.report.requiresComment, exitCode == ExitCode.passed {
            exitCode = ExitCode.couldNotFinish
        }
        return exitCode
    }

    /// Masks secrets, detects the forge and the job, and reads waiver labels.
    private func prepare(_ configuration: Configuration, logger: Logger, startedAt: Duration) -> Job {
        let isGitHub = variables["GITHUB_ACTIONS"] == "true"
        let forgeStep = ForgeStep(agent: agent, logger: logger, deadline: startedAt + .seconds(configuration.polling.timeoutMinutes * 60 + 300))
        if isGitHub {
            // Masking makes the runner hide these values in every later log line.
            // These lines must carry the secret itself, so they bypass redaction.
            for value in agent.secrets.values {
                environment.standardOutput("::add-mask::\(escapeWorkflowData(value))\n")
            }
        }

        var waivers: Set<String> = []
        let waiverLabel = configuration.gate.waiverLabel
        for label in forgeStep?.target.labels ?? [] where label == waiverLabel || label.hasPrefix(waiverLabel + ":") {
            let code = label.dropFirst(waiverLabel.count + 1)
            waivers.insert(code.isEmpty ? "*" : code.uppercased())
        }

        let context = JobContext.detect(environment: variables)
        return Job(
            configuration: configuration,
            logger: logger,
            forgeStep: forgeStep,
            context: context,
            commentKey: configuration.report.commentKey ?? "\(configuration.path)|\(context.jobName)",
            client: agent.makeClient(configuration, logger: logger),
            waivers: waivers,
            startedAt: startedAt,
            isGitHub: isGitHub
        )
    }

    private struct EarlyExit: Error {
        var code: Int32
    }

    /// Logs in and resolves names; a failure here is a setup problem or an unreachable server.
    private func resolvePlan(_ job: Job) async -> Result<(projectID: String, pairs: [PlannedPair]), EarlyExit> {
        let configuration = job.configuration
        let plan: (projectID: String, pairs: [PlannedPair])
        do {
            try await job.client.logIn()
            await warnIfTokenExpiresEarly(job.client, configuration: configuration, logger: job.logger)
            plan = try await PlanResolver(client: job.client, logger: job.logger).resolve(configuration)
        } catch let error as ResolutionError {
            agent.printError("error: \(error)")
            return .failure(EarlyExit(code: ExitCode.usageError))
        } catch let error as APIError {
            let isLoginRejected = error.path.hasPrefix("/api/auth/") && (400..<500).contains(error.status ?? 0)
            if error.kind == .unauthorized || error.status == 403 || isLoginRejected {
                agent.printError("error: \(error) Check the credentials in server.email/server.password or server.token, and that the user has WRITE access to the project.")
                return .failure(EarlyExit(code: ExitCode.usageError))
            }
            agent.printError("error: \(error)")
            OutputWriter(agent: agent, configuration: configuration, logger: job.logger).writeIncomplete("\(error)")
            return .failure(EarlyExit(code: configuration.gate.infrastructureError == .fail ? ExitCode.couldNotFinish : ExitCode.passed))
        } catch {
            agent.printError("error: \(error)")
            OutputWriter(agent: agent, configuration: configuration, logger: job.logger).writeIncomplete("\(error)")
            return .failure(EarlyExit(code: ExitCode.couldNotFinish))
        }

        guard plan.pairs.count <= configuration.report.maxPairs else {
            agent.printError("error: the configuration has \(plan.pairs.count) pairs, more than report.max_pairs (\(configuration.report.maxPairs)). Raise report.max_pairs if that many evaluations are intended.")
            return .failure(EarlyExit(code: ExitCode.usageError))
        }
        return .success(plan)
    }

    /// Runs every pair, finds the baselines and applies the gate.
    private func evaluate(_ plan: (projectID: String, pairs: [PlannedPair]), job: Job) async -> (GateDecision, ReportContext) {
        let configuration = job.configuration
        let clock = environment.clock
        let progress = ProgressLog { [agent] line in agent.printError(line) }
        if job.isGitHub {
            agent.printError("::group::LLMOps evaluations (\(plan.pairs.count) \(plan.pairs.count == 1 ? "pair" : "pairs"))")
        }
        progress.line("Evaluating \(plan.pairs.count) \(plan.pairs.count == 1 ? "pair" : "pairs") on \(configuration.server.url) (project \(plan.projectID))")

        let orchestrator = Orchestrator(
            client: job.client,
            projectID: plan.projectID,
            context: job.context,
            jobIdentity: job.commentKey,
            clock: clock,
            random: environment.random,
            logger: job.logger,
            progress: progress,
            stateFile: RunStateFile(path: arguments.statePath ?? Self.defaultStatePath, server: configuration.server.url),
            options: Orchestrator.Options(
                schedule: PollSchedule(
                    interval: .seconds(configuration.polling.intervalSeconds),
                    cap: .seconds(configuration.polling.maxIntervalSeconds)
                ),
                deadline: job.startedAt + .seconds(configuration.polling.timeoutMinutes * 60),
                maxConcurrent: configuration.polling.maxConcurrent,
                isFresh: arguments.isFresh,
                lateStartGrace: .seconds(min(configuration.server.requestTimeoutSeconds + 5, 60))
            )
        )
        let results = await orchestrator.evaluate(plan.pairs)

        var notes: [String] = []
        var baselines: [String: Baseline] = [:]
        if !Task.isCancelled {
            let finder = BaselineFinder(client: job.client, projectID: plan.projectID, logger: job.logger)
            let found = await finder.baselines(for: results, policy: configuration.gate.regression.baseline, context: job.context)
            baselines = found.baselines
            notes += found.notes
        }
        if job.isGitHub {
            agent.printError("::endgroup::")
        }

        var decision = GatePolicy(gate: configuration.gate, waivers: job.waivers).decide(results, baselines: baselines)
        decision.notes += notes
        let reportContext = ReportContext(
            commit: job.context.commit,
            branch: job.context.branch,
            targetBranch: job.context.targetBranch,
            webURL: configuration.report.webURL ?? configuration.server.webURL ?? configuration.server.url,
            projectID: plan.projectID,
            duration: clock.now - job.startedAt,
            finishedAt: clock.date,
            commentKey: job.commentKey,
            worstCases: configuration.report.worstCases
        )
        return (decision, reportContext)
    }

    private func commentMode(_ configuration: Configuration) -> Configuration.CommentMode {
        arguments.commentMode.flatMap(Configuration.CommentMode.init(rawValue:)) ?? configuration.report.comment
    }

    /// Posts the comment and the commit status; returns false when the comment was due but could not be posted.
    private func publish(decision: GateDecision, context: ReportContext, configuration: Configuration, forgeStep: ForgeStep?, logger: Logger) async -> Bool {
        let mode = commentMode(configuration)
        guard mode != .off || configuration.report.commitStatus else { return true }
        guard let forgeStep else {
            logger.debug("Not running in GitHub Actions or GitLab CI; no comment to post")
            return true
        }
        let (client, reason) = await forgeStep.client()
        guard let client else {
            logger.notice("No pull request comment: \(reason ?? "no pull request")")
            return reason?.contains("token") != true
        }

        var isPosted = true
        if mode != .off {
            isPosted = await postComment(decision: decision, context: context, mode: mode, client: client, logger: logger)
        }
        if configuration.report.commitStatus, let commit = context.commit {
            let description = "\(decision.verdict.rawValue): \(decision.passedCount) passed, \(decision.failedCount) failed, \(decision.warnedCount) warned"
            do {
                try await client.setCommitStatus(sha: commit, isSuccess: decision.verdict == .passed || decision.verdict == .warned, description: description, targetURL: nil, context: "llmops-ci")
            } catch {
                logger.warning("Could not set the commit status: \(error)")
            }
        }
        return isPosted
    }

    private func postComment(decision: GateDecision, context: ReportContext, mode: Configuration.CommentMode, client: any ForgeClient, logger: Logger) async -> Bool {
        let publisher = CommentPublisher(
            forge: client,
            mode: mode,
            commentKey: context.commentKey,
            commit: context.commit,
            verdict: decision.verdict.rawValue,
            logger: logger
        ) { [agent] budget, history in
            var withHistory = context
            withHistory.history = history
            return agent.secrets.redact(MarkdownReport(decision: decision, context: withHistory).rendered(maxBytes: budget))
        }
        switch await publisher.publish() {
        case .created(let id):
            logger.notice("Posted the report on \(client.targetDescription)", metadata: ["comment.id": id])
        case .updated(let id):
            logger.notice("Updated the report on \(client.targetDescription)", metadata: ["comment.id": id])
        case .unchanged:
            logger.notice("The report on \(client.targetDescription) is already up to date")
        case .skipped(let why):
            logger.notice("Left the comment alone: \(why)")
        case .failed(let why):
            logger.warning("Could not post the report comment; the job log and the result files have the report: \(why)")
            return false
        }
        return true
    }

    private func describeComment(_ forgeStep: ForgeStep?, mode: Configuration.CommentMode, commentKey: String) async {
        guard mode != .off else {
            agent.printOutput("Comment: off (report.comment).\n")
            return
        }
        guard let forgeStep else {
            agent.printOutput("Comment: none outside GitHub Actions and GitLab CI; the report goes to stdout and the result files.\n")
            return
        }
        let (client, reason) = await forgeStep.client()
        guard let client else {
            agent.printOutput("Comment: none, because \(reason ?? "there is no pull request").\n")
            return
        }
        let prefix = "<!-- llmops-ci:key=\(MarkdownReport.markerKey(commentKey)) "
        do {
            let existing = try await client.comments().filter { $0.body.hasPrefix(prefix) }
            if let first = existing.first, mode == .update || mode == .updateOrNewOnChange {
                agent.printOutput("Comment: would update comment \(first.id) on \(client.targetDescription) (mode \(mode.rawValue)).\n")
            } else {
                agent.printOutput("Comment: would post a new comment on \(client.targetDescription) (mode \(mode.rawValue)).\n")
            }
        } catch {
            agent.printOutput("Comment: would post on \(client.targetDescription), but its comments could not be read: \(error).\n")
        }
    }

    /// Reports a configuration error, except that a fork or bot pull request without secrets is skipped by default.
    private func handleConfigurationError(_ error: ConfigError, logger: Logger) -> Int32 {
        let target = ForgeTarget.detect(environment: variables, readFile: { FileManager.default.contents(atPath: $0).map(Array.init) })
        if let variable = error.unsetVariable, let target, target.isFork || target.isBot {
            let path = agent.configurationPath(arguments)
            let policy = path.map { ConfigurationLoader(environment: variables).missingSecretsPolicy(path: $0) } ?? .skip
            let origin = target.isBot ? "a Dependabot pull request" : "a pull request from a fork"
            let message = "Skipped: this is \(origin), which gets no secrets, and \(variable) is not set. The evaluation runs once a maintainer runs the workflow with secrets (for example after merging, or with a workflow_run workflow)."
            if policy == .skip {
                logger.notice(message)
                if let summary = variables["GITHUB_STEP_SUMMARY"], !summary.isEmpty {
                    let existing = FileManager.default.contents(atPath: summary) ?? Data()
                    _ = FileManager.default.createFile(atPath: summary, contents: existing + Data("## ⏭️ LLMOps evaluation skipped\n\n\(message)\n".utf8))
                }
                return ExitCode.passed
            }
        }
        agent.printError("error: \(error)")
        return ExitCode.usageError
    }

    private func warnIfTokenExpiresEarly(_ client: LLMOpsClient, configuration: Configuration, logger: Logger) async {
        guard configuration.server.token != nil, let expiry = await client.tokenExpiry() else { return }
        let jobEnd = environment.clock.date.addingTimeInterval(configuration.polling.timeoutMinutes * 60)
        if expiry < jobEnd {
            logger.warning(
                "server.token expires before the job's deadline and cannot be renewed; configure server.email and server.password for long runs",
                metadata: ["token.expires": Timestamp.format(expiry)]
            )
        }
    }

    private func printPlan(_ pairs: [PlannedPair], projectID: String, context: JobContext) {
        var lines = ["Dry run: nothing is started or posted.", "Project: \(projectID)", "Commit: \(context.commit ?? "unknown"), branch: \(context.branch ?? "unknown")", ""]
        for pair in pairs {
            let endpoint = pair.endpointName.map { " × \($0)" } ?? " (stored outputs)"
            lines.append("- \(pair.label): \(pair.datasetName)\(endpoint); metrics \(pair.metrics.map(\.code).joined(separator: ", "))" + (pair.judgeName.map { "; judge \($0)" } ?? ""))
        }
        agent.printOutput(lines.joined(separator: "\n") + "\n")
    }
}
