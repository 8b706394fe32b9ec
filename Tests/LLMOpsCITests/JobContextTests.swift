import Testing
@testable import LLMOpsCI

@Suite struct JobContextTests {
    let pullRequestEvent = #"{"number":7,"pull_request":{"number":7,"head":{"sha":"headsha","repo":{"full_name":"fork/repo"}},"base":{"ref":"main","repo":{"full_name":"octo/repo"}},"labels":[{"name":"llmops-skip"}]}}"#

    @Test func pullRequestUsesHeadCommitNotMergeCommit() {
        let environment = [
            "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": "/event.json",
            "GITHUB_SHA": "mergesha", "GITHUB_HEAD_REF": "feature", "GITHUB_BASE_REF": "main", "GITHUB_WORKFLOW": "ci", "GITHUB_JOB": "eval",
        ]
        let context = JobContext.detect(environment: environment) { _ in Array(pullRequestEvent.utf8) }

        #expect(context.commit == "headsha")
        #expect(context.branch == "feature")
        #expect(context.targetBranch == "main")
        #expect(context.jobName == "ci/eval")
    }

    @Test func forkPullRequestIsDetected() throws {
        let environment = ["GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": "/event.json", "GITHUB_REPOSITORY": "octo/repo"]

        let target = try #require(ForgeTarget.detect(environment: environment) { _ in Array(pullRequestEvent.utf8) })

        #expect(target.request == .number(7))
        #expect(target.isFork)
        #expect(target.labels == ["llmops-skip"])
        #expect(target.apiURL == "https://api.github.com")
    }

    @Test func mergeQueueHasNoPullRequest() throws {
        let environment = ["GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "merge_group", "GITHUB_EVENT_PATH": "/event.json", "GITHUB_SHA": "tmp"]
        let event = #"{"merge_group":{"head_sha":"queued","base_ref":"refs/heads/main"}}"#

        let target = try #require(ForgeTarget.detect(environment: environment) { _ in Array(event.utf8) })
        let context = JobContext.detect(environment: environment) { _ in Array(event.utf8) }

        #expect(target.request == .none(reason: "the merge_group event has no pull request"))
        #expect(context.commit == "queued")
        #expect(context.targetBranch == "main")
    }

    @Test func enterpriseServerUsesItsOwnGraphQLRoot() throws {
        let environment = ["GITHUB_ACTIONS": "true", "GITHUB_API_URL": "https://ghe.test/api/v3", "GITHUB_EVENT_NAME": "push", "GITHUB_SHA": "abc"]

        let target = try #require(ForgeTarget.detect(environment: environment) { _ in nil })

        #expect(target.graphQLURL == "https://ghe.test/api/graphql")
        #expect(target.request == .lookUpByHead("abc"))
    }

    @Test func gitLabMergeRequestPipeline() throws {
        let environment = [
            "GITLAB_CI": "true", "CI_API_V4_URL": "https://gitlab.test/api/v4", "CI_MERGE_REQUEST_IID": "12",
            "CI_MERGE_REQUEST_PROJECT_ID": "5", "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "9", "CI_JOB_TOKEN": "job",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", "CI_COMMIT_SHA": "abc",
        ]

        let target = try #require(ForgeTarget.detect(environment: environment) { _ in nil })
        let context = JobContext.detect(environment: environment)

        #expect(target.request == .number(12))
        #expect(target.repository == "5")
        #expect(target.isFork)
        #expect(target.usesJobToken)
        #expect(target.token == nil)
        #expect(context.targetBranch == "main")
        #expect(context.commit == "abc")
    }

    @Test func gitLabBranchPipelineFindsOpenMergeRequest() throws {
        let environment = ["GITLAB_CI": "true", "CI_OPEN_MERGE_REQUESTS": "group/project!42", "LLMOPS_GITLAB_TOKEN": "glpat-x"]

        let target = try #require(ForgeTarget.detect(environment: environment) { _ in nil })

        #expect(target.request == .number(42))
        #expect(target.repository == "group/project")
    }

    @Test func nextLinkIsRead() {
        let header = #"<https://api.github.com/repositories/1/issues/7/comments?page=2>; rel="next", <https://api.github.com/repositories/1/issues/7/comments?page=5>; rel="last""#

        #expect(nextLink(header) == "https://api.github.com/repositories/1/issues/7/comments?page=2")
        #expect(nextLink(#"<https://x/?page=1>; rel="prev""#) == nil)
    }
}
