/// One dataset/endpoint pair to evaluate, with every name resolved to a server id.
public struct PlannedPair: Sendable {
    /// The configured evaluation this pair comes from.
    public var evaluationName: String
    /// The run name on the server: stable per pair, so that history and baselines line up.
    public var runName: String
    /// A short label for the report.
    public var label: String
    public var datasetID: String
    public var datasetName: String
    public var datasetCaseCount: Int?
    public var datasetUpdatedAt: String?
    public var endpointID: String?
    public var endpointName: String?
    public var judgeID: String?
    public var judgeName: String?
    public var metrics: [Configuration.Metric]
    public var metricDefinitions: [MetricDefinition]
    public var thresholds: [String: Configuration.Threshold]

    public init(
        evaluationName: String,
        runName: String,
        label: String,
        datasetID: String,
        datasetName: String,
        datasetCaseCount: Int? = nil,
        datasetUpdatedAt: String? = nil,
        endpointID: String? = nil,
        endpointName: String? = nil,
        judgeID: String? = nil,
        judgeName: String? = nil,
        metrics: [Configuration.Metric],
        metricDefinitions: [MetricDefinition],
        thresholds: [String: Configuration.Threshold]
    ) {
        self.evaluationName = evaluationName
        self.runName = runName
        self.label = label
        self.datasetID = datasetID
        self.datasetName = datasetName
        self.datasetCaseCount = datasetCaseCount
        self.datasetUpdatedAt = datasetUpdatedAt
        self.endpointID = endpointID
        self.endpointName = endpointName
        self.judgeID = judgeID
        self.judgeName = judgeName
        self.metrics = metrics
        self.metricDefinitions = metricDefinitions
        self.thresholds = thresholds
    }

    /// Returns the body of `POST /api/projects/{id}/evaluations`.
    public func startRequest(triggerReference: String) -> JSONValue {
        let metricItems: [JSONValue] = zip(metrics, metricDefinitions).map { metric, definition in
            var item: [String: JSONValue] = ["metricId": .string(definition.id)]
            if let threshold = metric.passThreshold {
                item["passThreshold"] = .number(threshold)
            }
            if let weight = metric.weight {
                item["weight"] = .number(weight)
            }
            if let prompt = metric.customPrompt {
                item["customPromptTemplate"] = .string(prompt)
            }
            return .object(item)
        }
        var body: [String: JSONValue] = [
            "name": .string(runName),
            "datasetId": .string(datasetID),
            "evaluationMode": .string(endpointID == nil ? "PRE_GENERATED" : "LIVE_GENERATION"),
            "metrics": .array(metricItems),
            "triggerType": "CI_CD",
            "triggerReference": .string(triggerReference),
        ]
        if let endpointID {
            body["targetLlmEndpointId"] = .string(endpointID)
        }
        if let judgeID {
            body["judgeLlmEndpointId"] = .string(judgeID)
        }
        return .object(body)
    }

    /// Identifies this pair's configuration, so that a re-run of the same job attaches to its run.
    public var fingerprint: String {
        let metricText = metrics.map { "\($0.code):\($0.passThreshold ?? -1):\($0.weight ?? -1):\($0.customPrompt ?? "")" }
        return stableHash([runName, datasetID, endpointID ?? "", judgeID ?? "", metricText.joined(separator: ",")].joined(separator: "|"))
    }
}

/// A failure to turn configured names into server ids.
public struct ResolutionError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Resolves the configuration's project, datasets, endpoints, judges and metric codes
/// through the API, once per run.
public struct PlanResolver: Sendable {
    let client: LLMOpsClient
    let logger: Logger

    public init(client: LLMOpsClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public func resolve(_ configuration: Configuration) async throws -> (projectID: String, pairs: [PlannedPair]) {
        let projectID = try await resolveProject(configuration.project)
        let catalogue = try await client.metrics(projectID: projectID)
        let datasets = try await client.datasets(projectID: projectID, search: nil)
        let endpoints = try await client.endpoints(projectID: projectID, search: nil, type: nil)
        let targets = endpoints.filter { ($0.fields["llmType"].string ?? "CLIENT").uppercased() != "JUDGE" }
        let judges = endpoints.filter { ($0.fields["llmType"].string ?? "JUDGE").uppercased() != "CLIENT" }

        var pairs: [PlannedPair] = []
        var reportedDefaultJudge = false
        for evaluation in configuration.evaluations {
            let definitions = try evaluation.metrics.map { metric in
                try definition(of: metric.code, in: catalogue, evaluation: evaluation.name)
            }
            var judge: NamedResource?
            if let judgeName = evaluation.judge {
                judge = try find(judgeName, in: judges, kind: "judge endpoint", field: "judge", evaluation: evaluation.name)
            } else if definitions.contains(where: \.requiresJudge) {
                let needing = definitions.filter(\.requiresJudge).map(\.code).joined(separator: ", ")
                guard let fallback = judges.first(where: { $0.fields["isDefault"].bool == true }) ?? (judges.count == 1 ? judges.first : nil) else {
                    throw ResolutionError(
                        description: "The metrics \(needing) of evaluation '\(evaluation.name)' need a judge endpoint, "
                            + "and the project has no default judge. Set defaults.judge or evaluations[].judge to a JUDGE endpoint's name or id."
                    )
                }
                judge = fallback
                if !reportedDefaultJudge {
                    logger.notice("Using the project's default judge endpoint", metadata: ["judge": fallback.name, "metrics": needing])
                    reportedDefaultJudge = true
                }
            }

            for datasetName in evaluation.datasets {
                let dataset = try find(datasetName, in: datasets, kind: "dataset", field: "dataset", evaluation: evaluation.name)
                for endpointName in evaluation.endpoints.isEmpty ? [nil] : evaluation.endpoints.map(Optional.some) {
                    var endpoint: NamedResource?
                    if let endpointName {
                        endpoint = try find(endpointName, in: targets, kind: "target endpoint", field: "endpoint", evaluation: evaluation.name)
                    }
                    let isMatrix = evaluation.datasets.count > 1 || evaluation.endpoints.count > 1
                    let runName = isMatrix
                        ? "\(evaluation.name) / \(dataset.name)" + (endpoint.map { " / \($0.name)" } ?? "")
                        : evaluation.name
                    let label = evaluation.label.map { isMatrix ? "\($0) / \(dataset.name)" + (endpoint.map { " / \($0.name)" } ?? "") : $0 }
                        ?? runName
                    var thresholds = configuration.gate.thresholds
                    thresholds.merge(evaluation.thresholds) { _, specific in specific }
                    pairs.append(
                        PlannedPair(
                            evaluationName: evaluation.name,
                            runName: String(runName.prefix(200)),
                            label: label,
                            datasetID: dataset.id,
                            datasetName: dataset.name,
                            datasetCaseCount: dataset.fields["testCaseCount"].int,
                            datasetUpdatedAt: dataset.fields["updatedAt"].string,
                            endpointID: endpoint?.id,
                            endpointName: endpoint?.name,
                            judgeID: judge?.id,
                            judgeName: judge?.name,
                            metrics: evaluation.metrics,
                            metricDefinitions: definitions,
                            thresholds: thresholds
                        )
                    )
                }
            }
        }
        try checkThresholdMetrics(configuration, pairs: pairs)
        return (projectID, pairs)
    }

    private func resolveProject(_ reference: String) async throws -> String {
        if isUUID(reference) {
            return reference
        }
        let projects = try await client.projects(search: reference)
        return try find(reference, in: projects, kind: "project", field: "project", evaluation: nil).id
    }

    private func definition(of code: String, in catalogue: [MetricDefinition], evaluation: String) throws -> MetricDefinition {
        if let found = catalogue.first(where: { $0.code == code }) {
            return found
        }
        var message = "The metric '\(code)' of evaluation '\(evaluation)' is not in the project's metric list."
        if let close = closestMatch(to: code, in: catalogue.map(\.code)) {
            message += " Did you mean \(close)?"
        } else if !catalogue.isEmpty {
            message += " Known metrics: \(catalogue.map(\.code).sorted().joined(separator: ", "))."
        }
        throw ResolutionError(description: message)
    }

    private func find(_ reference: String, in resources: [NamedResource], kind: String, field: String, evaluation: String?) throws -> NamedResource {
        if let byID = resources.first(where: { $0.id.lowercased() == reference.lowercased() }) {
            return byID
        }
        if isUUID(reference) {
            if resources.isEmpty {
                return NamedResource(json: ["id": .string(reference), "name": .string(reference)])!
            }
            throw ResolutionError(description: "No \(kind) has the id \(reference) in this project\(context(evaluation)). Check '\(field)'.")
        }
        let exact = resources.filter { $0.name == reference }
        if exact.count == 1 {
            return exact[0]
        }
        if exact.count > 1 {
            throw ResolutionError(
                description: "The \(kind) name '\(reference)'\(context(evaluation)) is ambiguous: \(exact.count) have it "
                    + "(ids \(exact.map(\.id).joined(separator: ", "))). Use the id instead."
            )
        }
        let folded = resources.filter { $0.name.lowercased() == reference.lowercased() }
        if folded.count == 1 {
            return folded[0]
        }
        var message = "No \(kind) is named '\(reference)'\(context(evaluation))."
        let close = resources.map(\.name).filter { editDistance($0.lowercased(), reference.lowercased()) <= max(2, reference.count / 3) }
        if !close.isEmpty {
            message += " Close names: \(close.sorted().joined(separator: ", "))."
        } else if !resources.isEmpty, resources.count <= 20 {
            message += " Known: \(resources.map(\.name).sorted().joined(separator: ", "))."
        }
        throw ResolutionError(description: message)
    }

    private func context(_ evaluation: String?) -> String {
        evaluation.map { " (evaluation '\($0)')" } ?? ""
    }

    /// Rejects thresholds and waivers that name a metric no pair evaluates, since they would pass silently.
    private func checkThresholdMetrics(_ configuration: Configuration, pairs: [PlannedPair]) throws {
        let evaluated = Set(pairs.flatMap { $0.metrics.map(\.code) })
        for code in configuration.gate.thresholds.keys.sorted() where !evaluated.contains(code) {
            throw ResolutionError(
                description: "gate.thresholds names \(code), which no evaluation measures. Add it to the metrics, or remove the threshold."
            )
        }
        let budgetCodes = Set(configuration.gate.budgets.keys.map(\.code))
        for waiver in configuration.gate.waivers where waiver != "*" {
            let code = waiver.split(separator: "/").last.map(String.init) ?? waiver
            if !evaluated.contains(code), !budgetCodes.contains(code) {
                throw ResolutionError(description: "gate.waivers names \(waiver), which no evaluation measures. Remove it, or add the metric.")
            }
        }
        for evaluation in configuration.evaluations {
            let codes = Set(evaluation.metrics.map(\.code))
            for code in evaluation.thresholds.keys.sorted() where !codes.contains(code) {
                throw ResolutionError(
                    description: "The thresholds of evaluation '\(evaluation.name)' name \(code), which it does not measure."
                )
            }
        }
    }
}

/// Returns whether `text` has the 8-4-4-4-12 hex shape of a UUID.
func isUUID(_ text: String) -> Bool {
    let groups = text.split(separator: "-", omittingEmptySubsequences: false)
    guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return false }
    return groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
}
