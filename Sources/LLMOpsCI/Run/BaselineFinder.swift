import FoundationEssentials

/// Finds the earlier run each pair is compared with.
///
/// `latest-completed` is the newest COMPLETED run with the same name, dataset, target and
/// judge endpoints and metric set, started on the pull request's target branch (read from
/// the branch this agent records in each run's trigger reference). It costs one list
/// request per pair plus one request per candidate, newest first, and the baseline's results.
public struct BaselineFinder: Sendable {
    let client: LLMOpsClient
    let projectID: String
    let logger: Logger
    /// How many same-name runs to inspect before giving up.
    let maxCandidates = 8

    public init(client: LLMOpsClient, projectID: String, logger: Logger) {
        self.client = client
        self.projectID = projectID
        self.logger = logger
    }

    /// Returns baselines keyed by run name, and notes for the report about pairs without one.
    public func baselines(
        for results: [PairResult],
        policy: Configuration.Baseline,
        context: JobContext
    ) async -> (baselines: [String: Baseline], notes: [String]) {
        switch policy {
        case .none:
            return ([:], [])
        case .file(let path):
            return fromFile(path, results: results)
        case .run(let id):
            var found: [String: Baseline] = [:]
            for result in results where result.state.isCompleted {
                if let baseline = try? await load(runID: id, for: result.pair, source: "run \(id) from the configuration") {
                    found[result.pair.runName] = baseline
                }
            }
            let notes = found.isEmpty ? ["The configured baseline run \(id) could not be read or does not match any pair; no comparison was made."] : []
            return (found, notes)
        case .latestCompleted:
            // A pull request compares with its target branch; a branch build with the branch's own history.
            guard let branch = context.targetBranch ?? context.branch else {
                return ([:], ["No baseline: the branch of this job is unknown, so no earlier run could be matched."])
            }
            var found: [String: Baseline] = [:]
            var missing: [String] = []
            await withTaskGroup(of: (String, Baseline?).self) { group in
                for result in results where result.state.isCompleted {
                    group.addTask {
                        (result.pair.runName, await latestCompleted(for: result, branch: branch, excludingCommit: context.targetBranch == nil ? context.commit : nil))
                    }
                }
                for await (name, baseline) in group {
                    if let baseline {
                        found[name] = baseline
                    } else {
                        missing.append(name)
                    }
                }
            }
            var notes: [String] = []
            if !missing.isEmpty {
                notes.append("No baseline on branch \(branch) for \(missing.sorted().joined(separator: ", ")): no comparison was made for \(missing.count == 1 ? "it" : "them"), which is not a failure.")
            }
            return (found, notes)
        }
    }

    private func latestCompleted(for result: PairResult, branch: String, excludingCommit: String?) async -> Baseline? {
        let pair = result.pair
        do {
            let page = try await client.runs(projectID: projectID, search: pair.runName, status: nil, page: 0, size: 50)
            let candidates = page.content.filter {
                $0["name"].string == pair.runName && RunStatus($0["status"].string) == .completed && $0["id"].string != result.run?.id
            }
            for item in candidates.prefix(maxCandidates) {
                guard let id = item["id"].string else { continue }
                let run = try await client.run(id: id)
                guard let reference = TriggerReference.parse(run.triggerReference), reference.branch == branch else { continue }
                if let excludingCommit, reference.commit == excludingCommit { continue }
                guard matches(run, pair) else { continue }
                return try await baseline(from: run, pair: pair, source: "latest completed run on \(branch)", reference: reference)
            }
        } catch {
            logger.warning("Could not look up a baseline", metadata: ["pair": pair.label, "error": "\(error)"])
        }
        return nil
    }

    private func matches(_ run: Run, _ pair: PlannedPair) -> Bool {
        guard run.datasetID == nil || run.datasetID == pair.datasetID else { return false }
        guard run.targetEndpointID == pair.endpointID || (run.targetEndpointID == nil && pair.endpointID == nil) else { return false }
        guard run.judgeEndpointID == nil || pair.judgeID == nil || run.judgeEndpointID == pair.judgeID else { return false }
        if !run.metricCodes.isEmpty, Set(run.metricCodes) != Set(pair.metrics.map(\.code)) {
            return false
        }
        return true
    }

    private func load(runID: String, for pair: PlannedPair, source: String) async throws -> Baseline? {
        let run = try await client.run(id: runID)
        guard run.status == .completed, run.datasetID == nil || run.datasetID == pair.datasetID else { return nil }
        return try await baseline(from: run, pair: pair, source: source, reference: TriggerReference.parse(run.triggerReference))
    }

    private func baseline(from run: Run, pair: PlannedPair, source: String, reference: TriggerReference?) async throws -> Baseline {
        let results = try await client.results(runID: run.id, expectedCount: run.totalCases)
        let scores = pair.metrics.map { MetricScore.compute(code: $0.code, results: results, summary: run.metricSummaries[$0.code]) }
        var warning: String?
        if let now = pair.datasetCaseCount, let then = run.totalCases, then > 0, now != then {
            warning = "The dataset \(pair.datasetName) has \(now) cases now and had \(then) when the baseline ran, so the comparison may mislead."
        } else if let updated = pair.datasetUpdatedAt.flatMap(Timestamp.parse), let created = run.createdAt, updated > created {
            warning = "The dataset \(pair.datasetName) was updated after the baseline ran (\(Timestamp.format(updated))), so the comparison may mislead."
        }
        let info = BaselineInfo(
            runID: run.id,
            runNumber: run.runNumber,
            commit: reference?.commit,
            branch: reference?.branch,
            completedAt: run.completedAt.map(Timestamp.format),
            source: source,
            datasetWarning: warning
        )
        return Baseline(info: info, scores: scores, budgetValues: BudgetValues.compute(run: run, results: results))
    }

    private func fromFile(_ path: String, results: [PairResult]) -> (baselines: [String: Baseline], notes: [String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            return ([:], ["No baseline: the baseline file \(path) was not found, so no comparison was made."])
        }
        do {
            let contents = try ResultsFile.decode(try JSONValue.parse(Array(data)), path: path)
            var found: [String: Baseline] = [:]
            for pair in contents.decision.pairs where pair.result.state.isCompleted {
                let info = BaselineInfo(
                    runID: pair.result.run?.id ?? "file",
                    runNumber: pair.result.run?.runNumber,
                    commit: contents.context.commit,
                    branch: contents.context.branch,
                    completedAt: pair.result.run?.completedAt.map(Timestamp.format),
                    source: "results file \(path)",
                    datasetWarning: nil
                )
                found[pair.result.pair.runName] = Baseline(
                    info: info,
                    scores: pair.metrics.map(\.score),
                    budgetValues: BudgetValues.compute(run: pair.result.run, results: pair.result.results)
                )
            }
            let names = Set(results.map(\.pair.runName))
            return (found.filter { names.contains($0.key) }, [])
        } catch {
            return ([:], ["No baseline: \(error)"])
        }
    }
}
