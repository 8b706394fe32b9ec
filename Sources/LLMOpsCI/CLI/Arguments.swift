/// Exit codes of `llmops-ci`.
public enum ExitCode {
    public static let passed: Int32 = 0
    public static let gateFailed: Int32 = 1
    public static let usageError: Int32 = 2
    public static let couldNotFinish: Int32 = 3
}

/// A command line that cannot be understood.
public struct UsageError: Error, CustomStringConvertible {
    public var description: String
}

/// The parsed command line.
public struct Arguments: Sendable {
    public enum Command: String, Sendable, CaseIterable {
        case run, validate, report, cancel, help, version
    }

    public var command: Command
    public var configPath: String?
    public var isDryRun = false
    public var isFresh = false
    public var isOnline = false
    public var format: String?
    public var warningExitCode: Int32 = 0
    public var statePath: String?
    public var fromPath: String?
    public var isVerbose = false
    public var commentMode: String?

    static let optionsByCommand: [Command: [String]] = [
        .run: ["--config", "--dry-run", "--fresh", "--format", "--warn-exit-code", "--state", "--verbose", "--comment"],
        .validate: ["--config", "--online", "--verbose"],
        .report: ["--from", "--format", "--warn-exit-code"],
        .cancel: ["--state", "--config", "--verbose"],
        .help: [],
        .version: [],
    ]

    public static func parse(_ words: [String]) throws(UsageError) -> Arguments {
        guard let first = words.first else {
            throw UsageError(description: "a command is missing. Run 'llmops-ci --help' for the commands, or 'llmops-ci run' for the main job.")
        }
        if first == "--help" || first == "-h" || first == "help" {
            return Arguments(command: .help)
        }
        if first == "--version" || first == "-V" || first == "version" {
            return Arguments(command: .version)
        }
        guard let command = Command(rawValue: first), command != .help, command != .version else {
            var message = "unknown command '\(first)'."
            let candidates = first.hasPrefix("-") ? ["--version", "--help"] : ["run", "validate", "report", "cancel"]
            if let suggestion = closestMatch(to: first, in: candidates) {
                message += " Did you mean '\(suggestion)'?"
            }
            throw UsageError(description: message + " Run 'llmops-ci --help' for the commands.")
        }

        var arguments = Arguments(command: command)
        let allowed = optionsByCommand[command] ?? []
        var index = 1
        func value(for option: String) throws(UsageError) -> String {
            index += 1
            guard index < words.count, !words[index].hasPrefix("--") else {
                throw UsageError(description: "\(option) needs a value.")
            }
            return words[index]
        }
        while index < words.count {
            var word = words[index]
            var inlineValue: String?
            if word.hasPrefix("--"), let equals = word.firstIndex(of: "=") {
                inlineValue = String(word[word.index(after: equals)...])
                word = String(word[..<equals])
            }
            if word == "--help" || word == "-h" {
                return Arguments(command: .help)
            }
            guard allowed.contains(word) else {
                var message = "'\(word)' is not an option of 'llmops-ci \(command.rawValue)'."
                if let suggestion = closestMatch(to: word, in: allowed) {
                    message += " Did you mean '\(suggestion)'?"
                }
                throw UsageError(description: message)
            }
            func take() throws(UsageError) -> String {
                if let inlineValue { return inlineValue }
                return try value(for: word)
            }
            switch word {
            case "--config": arguments.configPath = try take()
            case "--dry-run": arguments.isDryRun = true
            case "--fresh": arguments.isFresh = true
            case "--online": arguments.isOnline = true
            case "--verbose": arguments.isVerbose = true
            case "--format": arguments.format = try take()
            case "--state": arguments.statePath = try take()
            case "--from": arguments.fromPath = try take()
            case "--comment": arguments.commentMode = try take()
            case "--warn-exit-code":
                let text = try take()
                guard let code = Int32(text), (0...255).contains(code) else {
                    throw UsageError(description: "--warn-exit-code takes a number from 0 to 255, not '\(text)'.")
                }
                arguments.warningExitCode = code
            default:
                break
            }
            index += 1
        }
        let formats: [String] = command == .report ? ["markdown", "text", "junit", "json"] : ["markdown", "text", "json"]
        if let format = arguments.format, !formats.contains(format) {
            throw UsageError(description: "--format takes one of \(formats.joined(separator: ", ")), not '\(format)'.")
        }
        if let mode = arguments.commentMode, Configuration.CommentMode(rawValue: mode) == nil {
            let modes = Configuration.CommentMode.allCases.map(\.rawValue)
            throw UsageError(description: "--comment takes one of \(modes.joined(separator: ", ")), not '\(mode)'.")
        }
        if command == .report, arguments.fromPath == nil {
            throw UsageError(description: "'llmops-ci report' needs --from PATH, the results file of an earlier run.")
        }
        return arguments
    }

    public static let helpText = """
        llmops-ci \(AgentVersion.current): gate merges on LLMOps Eval results.

        Usage:
          llmops-ci run [--config PATH] [--dry-run] [--fresh] [--format markdown|text|json]
                        [--warn-exit-code N] [--state PATH] [--comment MODE] [--verbose]
          llmops-ci validate [--config PATH] [--online]
          llmops-ci report --from RESULTS.json [--format markdown|text|junit|json]
          llmops-ci cancel [--state PATH] [--config PATH]
          llmops-ci --version | --help

        Commands:
          run        Start every configured evaluation, wait for the results, apply the gate,
                     write the report and the result files, and post the pull request comment.
          validate   Check the configuration file offline; --online also resolves names and
                     metric codes on the server.
          report     Render an earlier results file again, without a server.
          cancel     Cancel on the server the runs recorded in a state file, for a clean-up
                     step after a cancelled or killed job.

        Options:
          --config PATH         Configuration file. Default: the first of llmops.yml,
                                .llmops.yml, .github/llmops.yml.
          --dry-run             Resolve names and print what would run and be posted; start nothing.
          --fresh               Start new evaluations even when an earlier attempt of this job
                                left runs for the same commit.
          --format FORMAT       What stdout carries. Default: markdown in CI, text on a terminal.
          --warn-exit-code N    Exit code when the gate only warns (default 0), for GitLab's
                                allow_failure: exit_codes.
          --state PATH          File that records the runs this job started.
                                Default: .llmops-ci/state.json.
          --comment MODE        Overrides report.comment: update, new, delete-and-new,
                                hide-and-new, update-or-new-on-change, off.
          --verbose             Log each request and poll on stderr.

        Exit codes: 0 passed (or warned), 1 gate failed, 2 configuration or usage error,
        3 could not finish (server unreachable, timeout, an evaluation that ended FAILED).
        When outcomes mix, the first of 2, 1, 3 that applies wins.

        Environment: LLMOPS_CI_EMAIL, LLMOPS_CI_PASSWORD or LLMOPS_TOKEN are the usual names for
        credentials referenced from the file as ${VAR}. GITHUB_TOKEN (GitHub) or
        LLMOPS_GITLAB_TOKEN (GitLab) lets the agent post its comment. NO_COLOR turns colour off.

        """
}
