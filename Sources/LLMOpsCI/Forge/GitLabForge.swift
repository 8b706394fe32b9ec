/// Notes of one GitLab merge request, through the REST API at `CI_API_V4_URL`.
struct GitLabForge: ForgeClient {
    let http: ForgeHTTP
    let apiURL: String
    /// The numeric id (or URL-encoded path) of the project that owns the merge request.
    let project: String
    let iid: Int

    var targetDescription: String { "merge request !\(iid) of project \(project)" }
    var maxCommentBytes: Int { 1_000_000 - 1024 }
    var canHideComments: Bool { false }

    private var projectPath: String { percentEncode(project) }

    func pullRequestState() async throws -> PullRequestState {
        let json = try await http.send("GET", "\(apiURL)/projects/\(projectPath)/merge_requests/\(iid)").json
        return PullRequestState(
            headSHA: json["sha"].string,
            labels: (json["labels"].array ?? []).compactMap { $0.string ?? $0["name"].string },
            isOpen: json["state"].string == nil || json["state"].string == "opened"
        )
    }

    func viewer() async throws -> String? {
        do {
            return try await http.send("GET", "\(apiURL)/user").json["username"].string
        } catch let error as ForgeError where error.kind == .forbidden || error.kind == .notFound || error.kind == .unauthorized {
            return nil
        }
    }

    func comments() async throws -> [ForgeComment] {
        var page: String? = "1"
        var comments: [ForgeComment] = []
        var pages = 0
        while let current = page, !current.isEmpty, pages < 200 {
            let response = try await http.send("GET", "\(apiURL)/projects/\(projectPath)/merge_requests/\(iid)/notes?per_page=100&sort=asc&order_by=created_at&page=\(current)")
            comments += (response.json.array ?? []).compactMap(note)
            page = response.headers.header("x-next-page")
            if page == nil, let link = nextLink(response.headers.header("link")), let range = link.firstRange(of: "page=") {
                page = String(link[range.upperBound...].prefix { $0.isNumber })
            }
            pages += 1
        }
        return comments
    }

    private func note(_ json: JSONValue) -> ForgeComment? {
        guard let id = json["id"].string else { return nil }
        return ForgeComment(
            id: id,
            body: json["body"].string ?? "",
            isSystem: json["system"].bool ?? false,
            author: json["author"]["username"].string,
            isAuthorBot: json["author"]["bot"].bool ?? false
        )
    }

    func createComment(body: String) async throws -> ForgeComment {
        let json = try await http.send("POST", "\(apiURL)/projects/\(projectPath)/merge_requests/\(iid)/notes", body: ["body": .string(body)]).json
        guard let created = note(json) else {
            throw ForgeError(kind: .other, method: "POST", path: "/merge_requests/\(iid)/notes", status: 201, message: "the response has no note id")
        }
        return created
    }

    func updateComment(id: String, body: String) async throws {
        _ = try await http.send("PUT", "\(apiURL)/projects/\(projectPath)/merge_requests/\(iid)/notes/\(id)", body: ["body": .string(body)])
    }

    func deleteComment(id: String) async throws {
        _ = try await http.send("DELETE", "\(apiURL)/projects/\(projectPath)/merge_requests/\(iid)/notes/\(id)")
    }

    func hideComment(_ comment: ForgeComment) async throws {
        try await deleteComment(id: comment.id)
    }

    func setCommitStatus(sha: String, isSuccess: Bool, description: String, targetURL: String?, context: String) async throws {
        var body: [String: JSONValue] = [
            "state": .string(isSuccess ? "success" : "failed"),
            "description": .string(String(description.prefix(255))),
            "name": .string(context),
        ]
        if let targetURL {
            body["target_url"] = .string(targetURL)
        }
        _ = try await http.send("POST", "\(apiURL)/projects/\(projectPath)/statuses/\(sha)", body: .object(body))
    }

    /// Open merge requests whose head is exactly `sha`.
    func mergeRequests(withHead sha: String) async throws -> [Int] {
        let response = try await http.send("GET", "\(apiURL)/projects/\(projectPath)/repository/commits/\(sha)/merge_requests")
        return (response.json.array ?? []).filter { item in
            (item["sha"].string == nil || item["sha"].string == sha) && (item["state"].string ?? "opened") == "opened"
        }.compactMap { $0["iid"].int }
    }
}
