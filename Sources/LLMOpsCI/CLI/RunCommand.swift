import FoundationEssentials

/// `llmops-ci run`: the main job from configuration to exit code.
struct RunCommand {
    static let defaultStatePath = ".llmops-ci/state.json"

    let agent: Agent
    let arguments: Arguments

    private var environment: AgentEnvironment { agent.environment }
    private var variables: [String: String] { environment.variables }

    func execute() async -> Int32 {
        let clock = environment.clock
        let startedAt = clock.now
        let configuration: Configuration
        do {
            configuration = try agent.loadConfiguration(arguments)
        } catch {
            agent.printError("error: \(error)")
            return ExitCode.usageError
        }
        let isGitHub = variables["GITHUB_ACTIONS"] == "true"
        if isGitHub {
            // Masking makes the runner hide these values in every later log line.
            for value in agent.secrets.values {
                agent.printOutput("::add-mask::\(escapeWorkflowData(value))\n")
            }
        }
        let logger = agent.makeLogger(verbose: arguments.isVerbose)
        let progress = ProgressLog { [agent] line in agent.printError(line) }
        let context = JobContext.detect(environment: variables)
        let commentKey = configuration.report.commentKey ?? "\(configuration.path)|\(context.jobName)"
        let webURL = configuration.report.webURL ?? configuration.server.webURL ?? configuration.server.url

        let client = agent.makeClient(configuration, logger: logger)
        let deadline = startedAt + .seconds(configuration.polling.timeoutMinutes * 60)

        // Log in and resolve names: a failure here is a setup problem or an unreachable server.
        let plan: (projectID: String, pairs: [PlannedPair])
        do {
            try await client.logIn()
            await warnIfTokenExpiresEarly(client, configuration: configuration, logger: logger)
            plan = try await PlanResolver(client: client, logger: logger).resolve(configuration)
        } catch let error as ResolutionError {
            agent.printError("error: \(error)")
            await client.logOut()
            return ExitCode.usageError
        } catch let error as APIError {
            await client.logOut()
            if error.kind == .unauthorized || error.status == 403 {
                agent.printError("error: \(error). Check the credentials in server.email/server.password or server.token, and that the user has WRITE access to the project.")
                return ExitCode.usageError
            }
            agent.printError("error: \(error)")
            return configuration.gate.infrastructureError == .fail ? ExitCode.couldNotFinish : ExitCode.passed
        } catch {
            agent.printError("error: \(error)")
            await client.logOut()
            return ExitCode.couldNotFinish
        }

        guard plan.pairs.count <= configuration.report.maxPairs else {
            agent.printError("error: the configuration has \(plan.pairs.count) pairs, more than report.max_pairs (\(configuration.report.maxPairs)). Raise report.max_pairs if that many evaluations are intended.")
            await client.logOut()
            return ExitCode.usageError
        }

        if arguments.isDryRun {
            printPlan(plan.pairs, projectID: plan.projectID, context: context)
            await client.logOut()
            return ExitCode.passed
        }

        if isGitHub {
            agent.printError("::group::LLMOps evaluations (\(plan.pairs.count) pairs)")
        }
        progress.line("Evaluating \(plan.pairs.count) \(plan.pairs.count == 1 ? "pair" : "pairs") on \(configuration.server.url) (project \(plan.projectID))")
        let stateFile = RunStateFile(path: arguments.statePath ?? Self.defaultStatePath, server: configuration.server.url)
        let orchestrator = Orchestrator(
            client: client,
            projectID: plan.projectID,
            context: context,
            jobIdentity: commentKey,
            clock: clock,
            random: environment.random,
            logger: logger,
            progress: progress,
            stateFile: stateFile,
            options: Orchestrator.Options(
                schedule: PollSchedule(
                    interval: .seconds(configuration.polling.intervalSeconds),
                    cap: .seconds(configuration.polling.maxIntervalSeconds)
                ),
                deadline: deadline,
                maxConcurrent: configuration.polling.maxConcurrent,
                isFresh: arguments.isFresh
            )
        )
        let results = await orchestrator.evaluate(plan.pairs)
        let wasInterrupted = Task.isCancelled

        var notes: [String] = []
        var baselines: [String: Baseline] = [:]
        if !wasInterrupted {
            let finder = BaselineFinder(client: client, projectID: plan.projectID, logger: logger)
            let found = await finder.baselines(for: results, policy: configuration.gate.regression.baseline, context: context)
            baselines = found.baselines
            notes += found.notes
        }
        if isGitHub {
            agent.printError("::endgroup::")
        }

        var decision = GatePolicy(gate: configuration.gate).decide(results, baselines: baselines)
        decision.notes += notes
        let exitCode = decision.exitCode(warningExitCode: arguments.warningExitCode)
        let reportContext = ReportContext(
            commit: context.commit,
            branch: context.branch,
            targetBranch: context.targetBranch,
            webURL: webURL,
            projectID: plan.projectID,
            duration: clock.now - startedAt,
            finishedAt: clock.date,
            commentKey: commentKey,
            worstCases: configuration.report.worstCases
        )

        let outputs = OutputWriter(agent: agent, configuration: configuration, logger: logger)
        outputs.write(decision: decision, context: reportContext, exitCode: exitCode, format: arguments.format)

        await client.logOut()
        return exitCode
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
