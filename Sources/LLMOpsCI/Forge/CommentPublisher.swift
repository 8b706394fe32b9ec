/// Posts the report as one sticky comment per pull request and comment key, updated in
/// place on each push, without ever leaving two of ours behind or letting an older job
/// overwrite a newer one.
public struct CommentPublisher: Sendable {
    public enum Result: Sendable, Equatable {
        case created(String)
        case updated(String)
        case unchanged(String)
        case skipped(String)
        case failed(String)
    }

    let forge: any ForgeClient
    let mode: Configuration.CommentMode
    let commentKey: String
    let commit: String?
    let verdict: String
    let logger: Logger
    /// Renders the body within a byte budget, carrying the given earlier verdicts.
    let render: @Sendable (Int, [HistoryEntry]) -> String

    public init(
        forge: any ForgeClient,
        mode: Configuration.CommentMode,
        commentKey: String,
        commit: String?,
        verdict: String,
        logger: Logger,
        render: @escaping @Sendable (Int, [HistoryEntry]) -> String
    ) {
        self.forge = forge
        self.mode = mode
        self.commentKey = commentKey
        self.commit = commit
        self.verdict = verdict
        self.logger = logger
        self.render = render
    }

    private var markerPrefix: String { "<!-- llmops-ci:key=\(MarkdownReport.markerKey(commentKey)) " }

    public func publish() async -> Result {
        guard mode != .off else { return .skipped("report.comment is off") }
        do {
            return try await publishOrThrow()
        } catch let error as ForgeError {
            return .failed(explain(error))
        } catch {
            return .failed("\(error)")
        }
    }

    private func publishOrThrow() async throws -> Result {
        if let commit {
            do {
                let state = try await forge.pullRequestState()
                if let head = state.headSHA, !head.isEmpty, head != commit {
                    return .skipped("commit \(commit.prefix(12)) is no longer the head of \(forge.targetDescription) (now \(head.prefix(12))), so the comment of the newer commit stays as it is")
                }
            } catch let error as ForgeError where error.kind == .forbidden || error.kind == .unauthorized {
                throw error
            } catch {
                logger.debug("Could not read the pull request's head; posting without the check", metadata: ["error": "\(error)"])
            }
        }

        let author = try await forge.viewer()
        return try await publish(as: author)
    }

    private func publish(as author: String?) async throws -> Result {
        let existing = try await ours(author: author)
        let history = history(from: existing.last)
        var body = render(forge.maxCommentBytes, history)

        func create() async throws -> ForgeComment {
            do {
                return try await forge.createComment(body: body)
            } catch let error as ForgeError where error.kind == .tooLarge {
                body = render(forge.maxCommentBytes / 2, history)
                return try await forge.createComment(body: body)
            } catch let error as ForgeError where error.kind == .transient {
                // The comment may exist although the response was lost, so look before posting again.
                if let posted = try await ours(author: author).first(where: { $0.body == body }) {
                    return posted
                }
                throw error
            }
        }

        switch mode {
        case .off:
            return .skipped("report.comment is off")
        case .new:
            let created = try await create()
            return .created(created.id)
        case .deleteAndNew, .hideAndNew:
            for comment in existing {
                if mode == .hideAndNew, forge.canHideComments {
                    try await forge.hideComment(comment)
                } else {
                    try await forge.deleteComment(id: comment.id)
                }
            }
            let created = try await create()
            return .created(created.id)
        case .update, .updateOrNewOnChange:
            guard let first = existing.first else {
                let created = try await create()
                return .created(try await removeRaceDuplicates(keeping: created, body: body, author: author))
            }
            if mode == .updateOrNewOnChange, markerField("verdict", of: existing.last?.body ?? "") != verdict {
                for comment in existing {
                    try await forge.deleteComment(id: comment.id)
                }
                let created = try await create()
                return .created(created.id)
            }
            for duplicate in existing.dropFirst() {
                try await forge.deleteComment(id: duplicate.id)
            }
            if normalized(first.body) == normalized(body) {
                return .unchanged(first.id)
            }
            do {
                try await forge.updateComment(id: first.id, body: body)
            } catch let error as ForgeError where error.kind == .tooLarge {
                body = render(forge.maxCommentBytes / 2, history)
                try await forge.updateComment(id: first.id, body: body)
            }
            return .updated(first.id)
        }
    }

    /// Our comments for this key, oldest first.
    ///
    /// A person's comment that quotes our marker is not ours: when the token can name its
    /// account, only that account's comments count, and otherwise only bot comments
    /// (`GITHUB_TOKEN` and app tokens comment as bots and cannot ask who they are).
    private func ours(author: String?) async throws -> [ForgeComment] {
        try await forge.comments().filter { comment in
            guard !comment.isSystem, comment.body.hasPrefix(markerPrefix) else { return false }
            if let author {
                return comment.author == author
            }
            return comment.isAuthorBot || comment.author == nil
        }
    }

    /// When two jobs raced and both created a comment, keeps the oldest and deletes the rest.
    private func removeRaceDuplicates(keeping created: ForgeComment, body: String, author: String?) async throws -> String {
        let current = try await ours(author: author)
        guard current.count > 1, let oldest = current.first else { return created.id }
        if oldest.id != created.id {
            try await forge.updateComment(id: oldest.id, body: body)
        }
        for comment in current.dropFirst() {
            try await forge.deleteComment(id: comment.id)
        }
        return oldest.id
    }

    private func history(from comment: ForgeComment?) -> [HistoryEntry] {
        guard let comment else { return [] }
        var entries: [HistoryEntry] = []
        if let previousCommit = markerField("commit", of: comment.body), let previousVerdict = markerField("verdict", of: comment.body),
            previousCommit != commit
        {
            entries.append(HistoryEntry(commit: previousCommit, verdict: previousVerdict, time: markerField("time", of: comment.body) ?? ""))
        }
        let lines = comment.body.split(separator: "\n", maxSplits: 3)
        if let line = lines.first(where: { $0.hasPrefix("<!-- llmops-ci:history=") }) {
            let content = line.dropFirst("<!-- llmops-ci:history=".count).prefix { $0 != " " }
            for entry in content.split(separator: ";") {
                let fields = entry.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                if fields.count == 3 {
                    entries.append(HistoryEntry(commit: fields[0], verdict: fields[1], time: fields[2]))
                }
            }
        }
        return Array(entries.prefix(20))
    }

    private func markerField(_ name: String, of body: String) -> String? {
        guard let line = body.split(separator: "\n", maxSplits: 1).first, let range = line.firstRange(of: " \(name)=") else { return nil }
        return String(line[range.upperBound...].prefix { $0 != " " })
    }

    private func normalized(_ text: String) -> String {
        text.replacing("\r\n", with: "\n").trimmingCharacters("\n")
    }

    private func explain(_ error: ForgeError) -> String {
        switch error.kind {
        case .forbidden:
            return "the token may not comment on \(forge.targetDescription) (\(error.message)). Pull requests from forks and Dependabot get a read-only token; "
                + "for your own pull requests grant `pull-requests: write` (GitHub) or use a token with the api scope (GitLab)."
        case .unauthorized:
            return "the forge refused the token (\(error)). Check that it is set and has not expired."
        default:
            return "\(error)"
        }
    }
}
