/// One comment (GitHub) or note (GitLab) on a pull or merge request.
public struct ForgeComment: Sendable, Equatable {
    public var id: String
    /// GitHub's GraphQL node id, needed to minimise a comment.
    public var nodeID: String?
    public var body: String
    public var isSystem: Bool
    /// The author's login (GitHub) or username (GitLab).
    public var author: String?
    /// Whether the author is a bot account, as `GITHUB_TOKEN` and app tokens are.
    public var isAuthorBot: Bool

    public init(id: String, nodeID: String? = nil, body: String, isSystem: Bool = false, author: String? = nil, isAuthorBot: Bool = false) {
        self.id = id
        self.nodeID = nodeID
        self.body = body
        self.isSystem = isSystem
        self.author = author
        self.isAuthorBot = isAuthorBot
    }
}

/// The current state of the pull or merge request, as the forge reports it.
public struct PullRequestState: Sendable, Equatable {
    public var headSHA: String?
    public var labels: [String]
    public var isOpen: Bool
}

/// A failed forge call, classified so the publisher can react without string matching.
public struct ForgeError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The token may not write here: a fork, a read-only token, a missing scope.
        case forbidden
        case unauthorized
        case tooLarge
        case rateLimited
        case transient
        case notFound
        case other
    }

    public var kind: Kind
    public var method: String
    public var path: String
    public var status: Int?
    public var message: String

    public var description: String {
        if let status {
            return "\(method) \(path) returned \(status): \(message)"
        }
        return "\(method) \(path) failed: \(message)"
    }
}

/// The comment operations the sticky comment needs, on GitHub or GitLab.
public protocol ForgeClient: Sendable {
    /// A name for messages, such as `pull request #12 of octo/repo`.
    var targetDescription: String { get }
    var maxCommentBytes: Int { get }
    var canHideComments: Bool { get }
    func pullRequestState() async throws -> PullRequestState
    /// Returns the account the token acts as, or nil when the token may not read it (GitHub's `GITHUB_TOKEN`).
    func viewer() async throws -> String?
    /// Returns every comment of the pull request, oldest first, across all pages.
    func comments() async throws -> [ForgeComment]
    func createComment(body: String) async throws -> ForgeComment
    func updateComment(id: String, body: String) async throws
    func deleteComment(id: String) async throws
    func hideComment(_ comment: ForgeComment) async throws
    func setCommitStatus(sha: String, isSuccess: Bool, description: String, targetURL: String?, context: String) async throws
}
