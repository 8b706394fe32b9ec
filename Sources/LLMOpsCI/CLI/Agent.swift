import FoundationEssentials

/// The agent's dependencies on the outside world, passed in so that tests can replace each.
public struct AgentEnvironment: Sendable {
    public var variables: [String: String]
    public var standardOutput: @Sendable (String) -> Void
    public var standardError: @Sendable (String) -> Void
    public var makeTransport: TransportFactory
    public var clock: any AgentClock
    public var random: RandomSource
    /// Whether stdout is a terminal, for the default format and colour.
    public var isTerminal: Bool

    public init(
        variables: [String: String],
        standardOutput: @escaping @Sendable (String) -> Void,
        standardError: @escaping @Sendable (String) -> Void,
        makeTransport: @escaping TransportFactory,
        clock: any AgentClock,
        random: RandomSource,
        isTerminal: Bool
    ) {
        self.variables = variables
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.makeTransport = makeTransport
        self.clock = clock
        self.random = random
        self.isTerminal = isTerminal
    }
}

/// Runs one command line and returns its exit code; never calls `exit` itself.
public struct Agent: Sendable {
    let environment: AgentEnvironment
    let secrets = SecretRegistry()

    public init(environment: AgentEnvironment) {
        self.environment = environment
    }

    public func run(_ words: [String]) async -> Int32 {
        let arguments: Arguments
        do {
            arguments = try Arguments.parse(words)
        } catch {
            printError("error: \(error)")
            return ExitCode.usageError
        }
        registerEnvironmentSecrets()

        switch arguments.command {
        case .help:
            environment.standardOutput(Arguments.helpText)
            return ExitCode.passed
        case .version:
            environment.standardOutput("llmops-ci \(AgentVersion.current)\n")
            return ExitCode.passed
        case .validate:
            return await validate(arguments)
        case .report:
            return report(arguments)
        case .cancel:
            return await cancel(arguments)
        case .run:
            return await RunCommand(agent: self, arguments: arguments).execute()
        }
    }

    /// Writes one line to stderr with every known secret removed.
    func printError(_ line: String) {
        environment.standardError(secrets.redact(line) + "\n")
    }

    func printOutput(_ text: String) {
        environment.standardOutput(secrets.redact(text))
    }

    func makeLogger(verbose: Bool) -> Logger {
        let secrets = self.secrets
        let write = environment.standardError
        let isGitHub = environment.variables["GITHUB_ACTIONS"] == "true"
        return Logger(level: verbose ? .debug : .notice) { level, line in
            let text = secrets.redact(line)
            switch level {
            case .warning: write(isGitHub ? "::warning::\(escapeWorkflowData(text))\n" : "warning: \(text)\n")
            case .error: write(isGitHub ? "::error::\(escapeWorkflowData(text))\n" : "error: \(text)\n")
            default: write(text + "\n")
            }
        }
    }

    /// Secrets that may reach the process without passing through the configuration.
    private func registerEnvironmentSecrets() {
        for (name, value) in environment.variables where SecretRegistry.isSecretName(name) {
            secrets.register(value)
        }
    }


    /// Returns the configuration file that `--config` or discovery selects, if any.
    func configurationPath(_ arguments: Arguments) -> String? {
        ConfigurationLoader(environment: environment.variables).locate(explicitPath: arguments.configPath) { FileManager.default.fileExists(atPath: $0) }
    }

    /// Loads the configuration from `--config`, the usual paths, or the platform guide's variables.
    func loadConfiguration(_ arguments: Arguments) throws(ConfigError) -> Configuration {
        let loader = ConfigurationLoader(environment: environment.variables)
        let path = configurationPath(arguments)
        let configuration: Configuration
        if let path {
            configuration = try loader.load(path: path)
        } else if let legacy = try LegacyEnvironment.configuration(environment.variables) {
            configuration = legacy
        } else {
            throw ConfigError(
                file: "llmops.yml",
                message: "no configuration file found (looked for \(ConfigurationLoader.discoveryPaths.joined(separator: ", "))). "
                    + "Create llmops.yml (the README has an example), or pass --config PATH."
            )
        }
        for value in configuration.secretValues {
            secrets.register(value)
        }
        return configuration
    }

    private func validate(_ arguments: Arguments) async -> Int32 {
        let configuration: Configuration
        do {
            configuration = try loadConfiguration(arguments)
        } catch {
            printError("error: \(error)")
            return ExitCode.usageError
        }
        let pairCount = configuration.evaluations.reduce(0) { $0 + $1.datasets.count * max($1.endpoints.count, 1) }
        guard pairCount <= configuration.report.maxPairs else {
            printError("error: \(configuration.path): report.max_pairs: the configuration has \(pairCount) pairs, more than report.max_pairs (\(configuration.report.maxPairs)). Raise report.max_pairs if that many evaluations are intended.")
            return ExitCode.usageError
        }
        guard arguments.isOnline else {
            let evaluations = configuration.evaluations.count == 1 ? "1 evaluation" : "\(configuration.evaluations.count) evaluations"
            let pairs = pairCount == 1 ? "1 pair" : "\(pairCount) pairs"
            printOutput("\(configuration.path): valid (\(evaluations), \(pairs)).\n")
            return ExitCode.passed
        }
        let logger = makeLogger(verbose: arguments.isVerbose)
        let client = makeClient(configuration, logger: logger)
        do {
            try await client.logIn()
            let plan = try await PlanResolver(client: client, logger: logger).resolve(configuration)
            await client.logOut()
            printOutput("\(configuration.path): valid; every name and metric resolved on the server (\(plan.pairs.count) \(plan.pairs.count == 1 ? "pair" : "pairs")).\n")
            return ExitCode.passed
        } catch {
            await client.logOut()
            printError("error: \(error)")
            return ExitCode.usageError
        }
    }

    private func report(_ arguments: Arguments) -> Int32 {
        let path = arguments.fromPath ?? ""
        guard let data = FileManager.default.contents(atPath: path) else {
            printError("error: the results file '\(path)' cannot be read. Pass the path of an llmops-results.json written by 'llmops-ci run'.")
            return ExitCode.usageError
        }
        let contents: ResultsFile.Contents
        do {
            contents = try ResultsFile.decode(try JSONValue.parse(Array(data)), path: path)
        } catch let error as ResolutionError {
            printError("error: \(error)")
            return ExitCode.usageError
        } catch {
            printError("error: '\(path)' is not valid JSON.")
            return ExitCode.usageError
        }
        let format = arguments.format ?? (environment.isTerminal ? "text" : "markdown")
        switch format {
        case "junit":
            printOutput(JUnitReport.render(contents.decision))
        case "text":
            printOutput(TextReport.render(contents.decision, useColor: useColor))
        case "json":
            printOutput(ResultsFile.encode(contents.decision, context: contents.context, exitCode: contents.exitCode).serialized(pretty: true) + "\n")
        default:
            printOutput(MarkdownReport(decision: contents.decision, context: contents.context).rendered())
        }
        return contents.decision.exitCode(warningExitCode: arguments.warningExitCode)
    }

    var useColor: Bool {
        environment.isTerminal && environment.variables["NO_COLOR"].map(\.isEmpty) ?? true
    }

    private func cancel(_ arguments: Arguments) async -> Int32 {
        let path = arguments.statePath ?? RunCommand.defaultStatePath
        let state: (server: String, entries: [RunStateFile.Entry])
        do {
            state = try RunStateFile.read(path: path)
        } catch {
            // No state file means the job started no run; a damaged one is an error.
            let exists = FileManager.default.fileExists(atPath: path)
            printError(exists ? "error: \(error)" : "\(error)")
            return exists ? ExitCode.usageError : ExitCode.passed
        }
        guard !state.entries.isEmpty else {
            printOutput("No unfinished runs in \(path).\n")
            return ExitCode.passed
        }
        let configuration: Configuration
        do {
            configuration = try loadConfiguration(arguments)
        } catch {
            printError("error: \(error)")
            return ExitCode.usageError
        }
        let logger = makeLogger(verbose: arguments.isVerbose)
        let client = makeClient(configuration, logger: logger, retryWindow: .seconds(10))
        let stateFile = RunStateFile(path: path, server: state.server)
        var failures = 0
        do {
            try await client.logIn()
        } catch {
            printError("error: could not log in to cancel the runs: \(error)")
            return ExitCode.couldNotFinish
        }
        for entry in state.entries {
            stateFile.recordStarted(runID: entry.runID, label: entry.label)
        }
        for entry in state.entries {
            do {
                try await client.cancel(runID: entry.runID)
                stateFile.recordFinished(runID: entry.runID)
                printOutput("Cancelled run \(entry.runID) (\(entry.label)).\n")
            } catch {
                failures += 1
                printError("warning: could not cancel run \(entry.runID) (\(entry.label)): \(error)")
            }
        }
        await client.logOut()
        return failures == 0 ? ExitCode.passed : ExitCode.couldNotFinish
    }

    func makeClient(_ configuration: Configuration, logger: Logger, retryWindow: Duration? = nil) -> LLMOpsClient {
        let settings = TransportSettings(
            connectTimeout: .seconds(configuration.server.connectTimeoutSeconds),
            requestTimeout: .seconds(configuration.server.requestTimeoutSeconds),
            caBundlePath: configuration.server.caBundle
        )
        let credentials: Credentials
        if let token = configuration.server.token {
            credentials = .token(token)
        } else {
            credentials = .password(email: configuration.server.email ?? "", password: configuration.server.password ?? Secret(""))
        }
        return LLMOpsClient(
            baseURL: configuration.server.url,
            credentials: credentials,
            transport: environment.makeTransport(settings),
            clock: environment.clock,
            random: environment.random,
            logger: logger,
            retryWindow: retryWindow ?? .seconds(configuration.server.retrySeconds)
        )
    }
}

/// Escapes text for the data part of a GitHub workflow command.
func escapeWorkflowData(_ text: String) -> String {
    text.replacing("%", with: "%25").replacing("\r", with: "%0D").replacing("\n", with: "%0A")
}
