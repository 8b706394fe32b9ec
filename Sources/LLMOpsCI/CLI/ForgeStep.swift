import FoundationEssentials

/// Connects the run to the forge: finds the pull or merge request, and posts the comment
/// and the optional commit status.
struct ForgeStep {
    let agent: Agent
    let target: ForgeTarget
    let logger: Logger
    let deadline: Duration

    init?(agent: Agent, logger: Logger, deadline: Duration) {
        guard let target = ForgeTarget.detect(environment: agent.environment.variables, readFile: { FileManager.default.contents(atPath: $0).map(Array.init) }) else {
            return nil
        }
        self.agent = agent
        self.target = target
        self.logger = logger
        self.deadline = deadline
        if let token = target.token {
            agent.secrets.register(token.value)
        }
    }

    private func http() -> ForgeHTTP? {
        guard let token = target.token else { return nil }
        let settings = TransportSettings(caBundlePath: target.caBundle)
        var headers: [(name: String, value: String)] = []
        switch target.kind {
        case .github:
            headers = [
                ("Authorization", "Bearer \(token.value)"),
                ("Accept", "application/vnd.github+json"),
                ("X-GitHub-Api-Version", "2022-11-28"),
            ]
        case .gitlab:
            headers = [("PRIVATE-TOKEN", token.value), ("Accept", "application/json")]
        }
        return ForgeHTTP(
            transport: agent.environment.makeTransport(settings),
            headers: headers,
            clock: agent.environment.clock,
            random: agent.environment.random,
            logger: logger,
            deadline: deadline
        )
    }

    /// Returns the client for the pull or merge request, or the reason there is none.
    func client() async -> (client: (any ForgeClient)?, reason: String?) {
        guard let http = http() else {
            switch target.kind {
            case .github:
                return (nil, "no GitHub token: pass `github-token` to the action or set GITHUB_TOKEN (with `pull-requests: write`) to get a pull request comment")
            case .gitlab:
                let jobToken = target.usesJobToken ? "CI_JOB_TOKEN cannot write merge request notes, so " : ""
                return (nil, "\(jobToken)set the CI/CD variable LLMOPS_GITLAB_TOKEN to a project or group access token with the api scope to get a merge request comment")
            }
        }
        var number: Int?
        switch target.request {
        case .number(let value):
            number = value
        case .none(let reason):
            return (nil, reason)
        case .lookUpByHead(let sha):
            do {
                switch target.kind {
                case .github:
                    let forge = GitHubForge(http: http, apiURL: target.apiURL, graphQLURL: target.graphQLURL, repository: target.repository, number: 0)
                    number = try await forge.pullRequests(withHead: sha, headRepository: target.headRepository).first
                case .gitlab:
                    number = try await GitLabForge(http: http, apiURL: target.apiURL, project: target.repository, iid: 0).mergeRequests(withHead: sha).first
                }
            } catch {
                return (nil, "could not look up the pull request of commit \(sha.prefix(12)): \(error)")
            }
            if number == nil {
                return (nil, "no open pull request has commit \(sha.prefix(12)) as its head")
            }
        }
        guard let number else { return (nil, "no pull request") }
        switch target.kind {
        case .github:
            return (GitHubForge(http: http, apiURL: target.apiURL, graphQLURL: target.graphQLURL, repository: target.repository, number: number), nil)
        case .gitlab:
            return (GitLabForge(http: http, apiURL: target.apiURL, project: target.repository, iid: number), nil)
        }
    }
}
