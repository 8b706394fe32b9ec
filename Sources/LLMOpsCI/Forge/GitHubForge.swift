/// Issue comments of one GitHub pull request, through the REST API at `GITHUB_API_URL`.
struct GitHubForge: ForgeClient {
    let http: ForgeHTTP
    let apiURL: String
    let graphQLURL: String
    let repository: String
    let number: Int

    var targetDescription: String { "pull request #\(number) of \(repository)" }
    /// GitHub counts its 65,536 limit in characters; a byte budget satisfies every way of counting.
    var maxCommentBytes: Int { 65_536 - 512 }
    var canHideComments: Bool { true }

    private var repositoryPath: String {
        let parts = repository.split(separator: "/", maxSplits: 1).map { percentEncode(String($0)) }
        return parts.joined(separator: "/")
    }

    func pullRequestState() async throws -> PullRequestState {
        let json = try await http.send("GET", "\(apiURL)/repos/\(repositoryPath)/pulls/\(number)").json
        return PullRequestState(
            headSHA: json["head"]["sha"].string,
            labels: (json["labels"].array ?? []).compactMap { $0["name"].string },
            isOpen: json["state"].string != "closed"
        )
    }

    func viewer() async throws -> String? {
        do {
            return try await http.send("GET", "\(apiURL)/user").json["login"].string
        } catch let error as ForgeError where error.kind == .forbidden || error.kind == .notFound || error.kind == .unauthorized {
            return nil
        }
    }

    func comments() async throws -> [ForgeComment] {
        var url: String? = "\(apiURL)/repos/\(repositoryPath)/issues/\(number)/comments?per_page=100"
        var comments: [ForgeComment] = []
        var pages = 0
        while let next = url, pages < 100 {
            let response = try await http.send("GET", next)
            comments += (response.json.array ?? []).compactMap(comment)
            url = nextLink(response.headers.header("link"))
            pages += 1
        }
        return comments
    }

    private func comment(_ json: JSONValue) -> ForgeComment? {
        guard let id = json["id"].string else { return nil }
        return ForgeComment(
            id: id,
            nodeID: json["node_id"].string,
            body: json["body"].string ?? "",
            author: json["user"]["login"].string,
            isAuthorBot: json["user"]["type"].string == "Bot"
        )
    }

    func createComment(body: String) async throws -> ForgeComment {
        let json = try await http.send("POST", "\(apiURL)/repos/\(repositoryPath)/issues/\(number)/comments", body: ["body": .string(body)]).json
        guard let created = comment(json) else {
            throw ForgeError(kind: .other, method: "POST", path: "/issues/\(number)/comments", status: 201, message: "the response has no comment id")
        }
        return created
    }

    func updateComment(id: String, body: String) async throws {
        _ = try await http.send("PATCH", "\(apiURL)/repos/\(repositoryPath)/issues/comments/\(id)", body: ["body": .string(body)])
    }

    func deleteComment(id: String) async throws {
        _ = try await http.send("DELETE", "\(apiURL)/repos/\(repositoryPath)/issues/comments/\(id)")
    }

    func hideComment(_ comment: ForgeComment) async throws {
        guard let nodeID = comment.nodeID else { return }
        let query = "mutation($id: ID!) { minimizeComment(input: {subjectId: $id, classifier: OUTDATED}) { minimizedComment { isMinimized } } }"
        let response = try await http.send("POST", graphQLURL, body: ["query": .string(query), "variables": ["id": .string(nodeID)]])
        if let errors = response.json["errors"].array, !errors.isEmpty {
            throw ForgeError(kind: .other, method: "POST", path: "/graphql", status: 200, message: errors.compactMap { $0["message"].string }.joined(separator: "; "))
        }
    }

    func setCommitStatus(sha: String, isSuccess: Bool, description: String, targetURL: String?, context: String) async throws {
        var body: [String: JSONValue] = [
            "state": .string(isSuccess ? "success" : "failure"),
            "description": .string(String(description.prefix(140))),
            "context": .string(context),
        ]
        if let targetURL {
            body["target_url"] = .string(targetURL)
        }
        _ = try await http.send("POST", "\(apiURL)/repos/\(repositoryPath)/statuses/\(sha)", body: .object(body))
    }

    /// Open pull requests whose head is exactly `sha`: a push build's own pull request,
    /// not every pull request that merely contains the commit.
    func pullRequests(withHead sha: String, headRepository: String?) async throws -> [Int] {
        let response = try await http.send("GET", "\(apiURL)/repos/\(repositoryPath)/commits/\(sha)/pulls?per_page=100")
        return (response.json.array ?? []).filter { item in
            item["head"]["sha"].string == sha && item["state"].string != "closed"
                && (headRepository == nil || item["head"]["repo"]["full_name"].string == headRepository)
        }.compactMap { $0["number"].int }
    }
}
