extension NodeReader {
    mutating func configuration(from root: YAMLNode) throws(ConfigError) -> Configuration {
        let keys = try mapping(root, "", allowed: ConfigKeys.root)

        if let versionNode = keys["version"] {
            let version = try integer(versionNode, "version", range: Int.min...Int.max)
            guard version == 1 else {
                throw error(versionNode, "version", "version \(version) is not supported by llmops-ci \(AgentVersion.current); use version: 1.")
            }
        }

        guard let serverNode = keys["server"] else {
            throw ConfigError(file: file, line: root.line, column: root.column, keyPath: "server", message: "the key 'server' is missing; add server.url and credentials.")
        }
        let server = try self.server(serverNode)

        guard let projectNode = keys["project"] else {
            throw ConfigError(file: file, line: root.line, column: root.column, keyPath: "project", message: "the key 'project' is missing; give the project's id or name.")
        }
        let project = try string(projectNode, "project")

        var defaultMetrics: [Configuration.Metric] = []
        var defaultJudge: String?
        if let defaultsNode = keys["defaults"] {
            let defaults = try mapping(defaultsNode, "defaults", allowed: ConfigKeys.defaults)
            if let metricsNode = defaults["metrics"] {
                defaultMetrics = try metrics(metricsNode, "defaults.metrics")
            }
            if let judgeNode = defaults["judge"] {
                defaultJudge = try string(judgeNode, "defaults.judge")
            }
        }

        guard let evaluationsNode = keys["evaluations"] else {
            throw ConfigError(file: file, line: root.line, column: root.column, keyPath: "evaluations", message: "the key 'evaluations' is missing; list at least one dataset to evaluate.")
        }
        let evaluations = try self.evaluations(evaluationsNode, defaultMetrics: defaultMetrics, defaultJudge: defaultJudge)

        var polling = Configuration.Polling()
        if let pollingNode = keys["polling"] {
            polling = try self.polling(pollingNode)
        }

        var gate = Configuration.Gate()
        if let gateNode = keys["gate"] {
            gate = try self.gate(gateNode)
        }

        var report = Configuration.Report()
        if let reportNode = keys["report"] {
            report = try self.report(reportNode)
        }

        return Configuration(
            path: file,
            server: server,
            project: project,
            evaluations: evaluations,
            polling: polling,
            gate: gate,
            report: report,
            secretValues: secretValues
        )
    }

    private mutating func server(_ node: YAMLNode) throws(ConfigError) -> Configuration.Server {
        let keys = try mapping(node, "server", allowed: ConfigKeys.server)
        guard let urlNode = keys["url"] else {
            throw error(node, "server.url", "the key 'server.url' is missing; give the LLMOps Eval API address, such as https://llmops.example.com.")
        }
        let urlValue = try scalar(urlNode, "server.url")
        var url = try string(urlNode, "server.url")
        while url.hasSuffix("/") {
            url.removeLast()
        }
        // The platform's docs give the API root with `/api`; every path the agent sends starts with it.
        if ServerAddress.path(of: url) == "/api" {
            url.removeLast(4)
        }

        var server = Configuration.Server(
            url: url,
            requestTimeoutSeconds: 30,
            connectTimeoutSeconds: 10,
            retrySeconds: 45,
            allowsInsecureHTTP: false
        )
        if let value = keys["allow_insecure_http"] {
            server.allowsInsecureHTTP = try boolean(value, "server.allow_insecure_http")
        }
        if ServerAddress.hasUserInfo(url) {
            throw error(urlNode, "server.url", "the address contains a user name or password, which would appear in logs and links. Remove it, and give server.email with server.password, or server.token.")
        }
        try checkScheme(of: url, shown: urlValue.shown, node: urlNode, allowsInsecureHTTP: server.allowsInsecureHTTP)

        if let value = keys["email"] {
            server.email = try string(value, "server.email")
        }
        if let value = keys["password"] {
            server.password = Secret(try string(value, "server.password", isSecret: true))
        }
        if let value = keys["token"] {
            server.token = Secret(try string(value, "server.token", isSecret: true))
        }
        if server.token == nil {
            if server.email == nil || server.password == nil {
                throw error(node, "server", "give either server.token, or both server.email and server.password.")
            }
        } else if server.email != nil || server.password != nil {
            throw error(node, "server", "give server.token or server.email with server.password, not both.")
        }
        if let value = keys["ca_bundle"] {
            server.caBundle = try string(value, "server.ca_bundle")
        }
        if let value = keys["request_timeout_seconds"] {
            server.requestTimeoutSeconds = try number(value, "server.request_timeout_seconds", range: 1...3600, unit: "seconds")
        }
        if let value = keys["connect_timeout_seconds"] {
            server.connectTimeoutSeconds = try number(value, "server.connect_timeout_seconds", range: 1...600, unit: "seconds")
        }
        if let value = keys["retry_seconds"] {
            server.retrySeconds = try number(value, "server.retry_seconds", range: 0...3600, unit: "seconds")
        }
        if let value = keys["web_url"] {
            server.webURL = try string(value, "server.web_url")
        }
        return server
    }

    private func checkScheme(of url: String, shown: String, node: YAMLNode, allowsInsecureHTTP: Bool) throws(ConfigError) {
        let lowered = url.lowercased()
        if lowered.hasPrefix("https://") {
            return
        }
        guard lowered.hasPrefix("http://") else {
            throw error(node, "server.url", "\(shown) is not an http:// or https:// address.")
        }
        let host = ServerAddress.host(of: url)
        guard ServerAddress.isLoopback(host) || allowsInsecureHTTP else {
            throw error(
                node,
                "server.url",
                "\(shown) uses plain http to a host that is not loopback, so the password would cross the network "
                    + "in clear text. Use https, or set server.allow_insecure_http: true if the network is trusted."
            )
        }
    }

    private mutating func evaluations(
        _ node: YAMLNode,
        defaultMetrics: [Configuration.Metric],
        defaultJudge: String?
    ) throws(ConfigError) -> [Configuration.Evaluation] {
        var result: [Configuration.Evaluation] = []
        var seenPairs: [String: String] = [:]
        var seenNames: Set<String> = []
        for (index, item) in try sequence(node, "evaluations").enumerated() {
            let path = "evaluations[\(index)]"
            let keys = try mapping(item, path, allowed: ConfigKeys.evaluation)

            guard let nameNode = keys["name"] else {
                throw error(item, "\(path).name", "each evaluation needs a name; it names the run on the server and in the report.")
            }
            let name = try string(nameNode, "\(path).name")
            guard name.count <= 120 else {
                throw error(nameNode, "\(path).name", "the name is \(name.count) characters long; keep it to 120 or fewer.")
            }
            guard seenNames.insert(name).inserted else {
                throw error(nameNode, "\(path).name", "the name '\(name)' is used by another evaluation; names must be unique.")
            }

            let datasets = try oneOrMany(keys, singular: "dataset", plural: "datasets", path: path, item: item, isRequired: true)
            let endpoints = try oneOrMany(keys, singular: "endpoint", plural: "endpoints", path: path, item: item, isRequired: false)

            var metrics = defaultMetrics
            if let metricsNode = keys["metrics"] {
                metrics = try self.metrics(metricsNode, "\(path).metrics")
            }
            guard !metrics.isEmpty else {
                throw error(item, "\(path).metrics", "no metrics to evaluate; list them here or under defaults.metrics.")
            }

            var judge = defaultJudge
            if let judgeNode = keys["judge"] {
                judge = try string(judgeNode, "\(path).judge")
            }
            var label: String?
            if let labelNode = keys["label"] {
                label = try string(labelNode, "\(path).label")
            }
            var thresholds: [String: Configuration.Threshold] = [:]
            if let thresholdsNode = keys["thresholds"] {
                thresholds = try self.thresholds(thresholdsNode, "\(path).thresholds")
            }

            for dataset in datasets {
                for endpoint in endpoints.isEmpty ? [""] : endpoints {
                    let pairKey = "\(dataset)\u{0}\(endpoint)\u{0}\(judge ?? "")\u{0}\(metrics.map(\.code).sorted())"
                    if let other = seenPairs[pairKey] {
                        let described = endpoint.isEmpty ? "dataset '\(dataset)'" : "dataset '\(dataset)' with endpoint '\(endpoint)'"
                        throw error(item, path, "\(described) is already evaluated by \(other) with the same metrics; remove one.")
                    }
                    seenPairs[pairKey] = path
                }
            }

            result.append(
                Configuration.Evaluation(
                    name: name,
                    datasets: datasets,
                    endpoints: endpoints,
                    judge: judge,
                    metrics: metrics,
                    thresholds: thresholds,
                    label: label
                )
            )
        }
        return result
    }

    private mutating func oneOrMany(
        _ keys: [String: YAMLNode],
        singular: String,
        plural: String,
        path: String,
        item: YAMLNode,
        isRequired: Bool
    ) throws(ConfigError) -> [String] {
        switch (keys[singular], keys[plural]) {
        case (.some(let node), .none):
            return [try string(node, "\(path).\(singular)")]
        case (.none, .some(let node)):
            return try stringList(node, "\(path).\(plural)")
        case (.some, .some):
            throw error(item, path, "give '\(singular)' or '\(plural)', not both.")
        case (.none, .none):
            if isRequired {
                throw error(item, "\(path).\(singular)", "the key '\(singular)' (or '\(plural)' for a list) is missing.")
            }
            return []
        }
    }

    mutating func metrics(_ node: YAMLNode, _ path: String) throws(ConfigError) -> [Configuration.Metric] {
        var result: [Configuration.Metric] = []
        var seen: Set<String> = []
        for (index, item) in try sequence(node, path).enumerated() {
            let itemPath = "\(path)[\(index)]"
            var metric: Configuration.Metric
            if case .mapping = item.content {
                let keys = try mapping(item, itemPath, allowed: ConfigKeys.metric)
                guard let codeNode = keys["code"] else {
                    throw error(item, "\(itemPath).code", "a metric written as a mapping needs 'code'.")
                }
                metric = Configuration.Metric(code: try metricCode(codeNode, "\(itemPath).code"))
                if let value = keys["pass_threshold"] {
                    metric.passThreshold = try number(value, "\(itemPath).pass_threshold", range: 0...1)
                }
                if let value = keys["weight"] {
                    metric.weight = try number(value, "\(itemPath).weight", range: 0...10)
                }
                if let value = keys["prompt"] {
                    metric.customPrompt = try string(value, "\(itemPath).prompt")
                }
            } else {
                metric = Configuration.Metric(code: try metricCode(item, itemPath))
            }
            guard seen.insert(metric.code).inserted else {
                throw error(item, itemPath, "the metric \(metric.code) is listed twice; keep one.")
            }
            result.append(metric)
        }
        return result
    }

    private mutating func metricCode(_ node: YAMLNode, _ path: String) throws(ConfigError) -> String {
        let text = try string(node, path)
        let code = text.uppercased().replacing("-", with: "_").replacing(" ", with: "_")
        guard code.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw error(node, path, "'\(text)' is not a metric code; codes look like faithfulness or ROUGE_L.")
        }
        return code
    }

    private mutating func polling(_ node: YAMLNode) throws(ConfigError) -> Configuration.Polling {
        let keys = try mapping(node, "polling", allowed: ConfigKeys.polling)
        var polling = Configuration.Polling()
        if let value = keys["interval_seconds"] {
            polling.intervalSeconds = try number(value, "polling.interval_seconds", range: 0.01...3600, unit: "seconds")
        }
        if let value = keys["max_interval_seconds"] {
            polling.maxIntervalSeconds = try number(value, "polling.max_interval_seconds", range: 0.01...3600, unit: "seconds")
        }
        if let value = keys["timeout_minutes"] {
            polling.timeoutMinutes = try number(value, "polling.timeout_minutes", range: 0.01...10080, unit: "minutes")
        }
        if let value = keys["max_concurrent"] {
            polling.maxConcurrent = try integer(value, "polling.max_concurrent", range: 1...256)
        }
        if polling.maxIntervalSeconds < polling.intervalSeconds {
            if let value = keys["max_interval_seconds"] {
                throw error(value, "polling.max_interval_seconds", "\(polling.maxIntervalSeconds) is less than polling.interval_seconds (\(polling.intervalSeconds)); raise it.")
            }
            // Only the first interval was given: the backoff starts there and does not shrink.
            polling.maxIntervalSeconds = polling.intervalSeconds
        }
        return polling
    }

    private mutating func gate(_ node: YAMLNode) throws(ConfigError) -> Configuration.Gate {
        let keys = try mapping(node, "gate", allowed: ConfigKeys.gate)
        var gate = Configuration.Gate()
        if let value = keys["thresholds"] {
            gate.thresholds = try thresholds(value, "gate.thresholds")
        }
        if let value = keys["regression"] {
            gate.regression = try regression(value)
        }
        if let value = keys["failed_run"] {
            gate.failedRun = try choice(value, "gate.failed_run", as: Configuration.Outcome.self)
        }
        if let value = keys["cancelled_run"] {
            gate.cancelledRun = try choice(value, "gate.cancelled_run", as: Configuration.Outcome.self)
        }
        if let value = keys["budgets"] {
            gate.budgets = try budgets(value)
        }
        if let value = keys["no_data"] {
            gate.noData = try choice(value, "gate.no_data", as: Configuration.Outcome.self)
        }
        if let value = keys["infrastructure_error"] {
            gate.infrastructureError = try choice(value, "gate.infrastructure_error", as: Configuration.Outcome.self)
        }
        if let value = keys["inconclusive"] {
            gate.inconclusive = try choice(value, "gate.inconclusive", as: Configuration.Outcome.self)
        }
        if let value = keys["on_missing_secrets"] {
            gate.onMissingSecrets = try choice(value, "gate.on_missing_secrets", as: Configuration.MissingSecrets.self)
        }
        if let value = keys["waivers"] {
            gate.waivers = try stringList(value, "gate.waivers").map { $0.uppercased() }
        }
        if let value = keys["waiver_label"] {
            gate.waiverLabel = try string(value, "gate.waiver_label")
        }
        return gate
    }

    mutating func thresholds(_ node: YAMLNode, _ path: String) throws(ConfigError) -> [String: Configuration.Threshold] {
        var result: [String: Configuration.Threshold] = [:]
        for (name, keyNode, value) in try namedMapping(node, path) {
            let code = try metricCode(keyNode, path)
            let itemPath = "\(path).\(name)"
            guard result[code] == nil else {
                throw error(keyNode, itemPath, "the metric \(code) has thresholds twice (after ${VAR} expansion); keep one.")
            }
            let keys = try mapping(value, itemPath, allowed: ConfigKeys.threshold)
            var threshold = Configuration.Threshold()
            if let item = keys["min"] {
                threshold.min = try number(item, "\(itemPath).min", range: 0...1)
            }
            if let item = keys["max"] {
                threshold.max = try number(item, "\(itemPath).max", range: 0...1)
            }
            if let item = keys["min_raw"] {
                threshold.minRaw = try number(item, "\(itemPath).min_raw")
            }
            if let item = keys["max_raw"] {
                threshold.maxRaw = try number(item, "\(itemPath).max_raw")
            }
            if let item = keys["min_pass_rate"] {
                threshold.minPassRate = try number(item, "\(itemPath).min_pass_rate", range: 0...1)
            }
            if let item = keys["level"] {
                threshold.level = try choice(item, "\(itemPath).level", as: Configuration.Level.self)
            }
            if let low = threshold.min, let high = threshold.max, low > high {
                throw error(value, itemPath, "min (\(low)) is greater than max (\(high)), so no score could pass.")
            }
            guard threshold.min != nil || threshold.max != nil || threshold.minRaw != nil
                || threshold.maxRaw != nil || threshold.minPassRate != nil
            else {
                throw error(value, itemPath, "give at least one of min, max, min_raw, max_raw, min_pass_rate.")
            }
            result[code] = threshold
        }
        return result
    }

    private mutating func budgets(_ node: YAMLNode) throws(ConfigError) -> [Configuration.BudgetKind: Configuration.Budget] {
        let keys = try mapping(node, "gate.budgets", allowed: ConfigKeys.budgets)
        var result: [Configuration.BudgetKind: Configuration.Budget] = [:]
        for kind in Configuration.BudgetKind.allCases {
            guard let item = keys[kind.rawValue] else { continue }
            let path = "gate.budgets.\(kind.rawValue)"
            let fields = try mapping(item, path, allowed: ConfigKeys.budget)
            var budget = Configuration.Budget()
            if let value = fields["max"] {
                budget.max = try number(value, "\(path).max", range: 0...Double.greatestFiniteMagnitude)
            }
            if let value = fields["max_increase"] {
                budget.maxIncrease = try amount(value, "\(path).max_increase", absoluteRange: 0...Double.greatestFiniteMagnitude, example: "500, or a percentage such as 10%")
            }
            if let value = fields["level"] {
                budget.level = try choice(value, "\(path).level", as: Configuration.Level.self)
            }
            guard budget.max != nil || budget.maxIncrease != nil else {
                throw error(item, path, "give max, max_increase or both.")
            }
            result[kind] = budget
        }
        return result
    }

    /// Reads an absolute amount or a percentage such as `5%`.
    private mutating func amount(_ node: YAMLNode, _ path: String, absoluteRange: ClosedRange<Double>, example: String) throws(ConfigError) -> Configuration.Drop {
        let scalar = try scalar(node, path)
        let text = scalar.text.trimmingCharacters(" ")
        if text.hasSuffix("%"), let percent = Double(String(text.dropLast()).trimmingCharacters(" ")), percent >= 0, percent <= 1000 {
            return .relative(percent / 100)
        }
        if let absolute = Double(text), absoluteRange.contains(absolute) {
            return .absolute(absolute)
        }
        throw error(node, path, "\(scalar.shown) is not an amount; write a number such as \(example).")
    }

    private mutating func regression(_ node: YAMLNode) throws(ConfigError) -> Configuration.Regression {
        let keys = try mapping(node, "gate.regression", allowed: ConfigKeys.regression)
        var regression = Configuration.Regression()
        if let value = keys["baseline"] {
            let text = try string(value, "gate.regression.baseline")
            switch text {
            case "latest-completed": regression.baseline = .latestCompleted
            case "none": regression.baseline = .none
            case _ where text.hasPrefix("run:") && text.count > 4: regression.baseline = .run(String(text.dropFirst(4)))
            case _ where text.hasPrefix("file:") && text.count > 5: regression.baseline = .file(String(text.dropFirst(5)))
            default:
                throw error(value, "gate.regression.baseline", "'\(text)' is not latest-completed, none, run:<id> or file:<path>.")
            }
        }
        if let value = keys["max_drop"] {
            let drop = try amount(value, "gate.regression.max_drop", absoluteRange: 0...1, example: "0.02 (a score), or a percentage such as 5%")
            if case .relative(let fraction) = drop, fraction > 1 {
                throw error(value, "gate.regression.max_drop", "a drop of more than 100% cannot happen; write at most 100%.")
            }
            regression.maxDrop = drop
        }
        if let value = keys["confidence"] {
            regression.confidence = try number(value, "gate.regression.confidence", range: 0.5...0.999)
        }
        if let value = keys["min_paired_cases"] {
            regression.minPairedCases = try integer(value, "gate.regression.min_paired_cases", range: 2...100_000)
        }
        return regression
    }

    private mutating func report(_ node: YAMLNode) throws(ConfigError) -> Configuration.Report {
        let keys = try mapping(node, "report", allowed: ConfigKeys.report)
        var report = Configuration.Report()
        if let value = keys["comment"] {
            let text = try scalar(value, "report.comment").text.lowercased()
            if ["false", "no"].contains(text) {
                report.comment = .off
            } else {
                report.comment = try choice(value, "report.comment", as: Configuration.CommentMode.self)
            }
        }
        if let value = keys["comment_key"] {
            report.commentKey = try string(value, "report.comment_key")
        }
        if let value = keys["worst_cases"] {
            report.worstCases = try integer(value, "report.worst_cases", range: 0...100)
        }
        report.junit = try optionalPath(keys["junit"], "report.junit", default: report.junit)
        report.json = try optionalPath(keys["json"], "report.json", default: report.json)
        report.markdown = try optionalPath(keys["markdown"], "report.markdown", default: report.markdown)
        if let value = keys["web_url"] {
            report.webURL = try string(value, "report.web_url")
        }
        if let value = keys["skip_label"] {
            report.skipLabel = try string(value, "report.skip_label")
        }
        if let value = keys["max_pairs"] {
            report.maxPairs = try integer(value, "report.max_pairs", range: 1...10_000)
        }
        if let value = keys["commit_status"] {
            report.commitStatus = try boolean(value, "report.commit_status")
        }
        if let value = keys["require_comment"] {
            report.requiresComment = try boolean(value, "report.require_comment")
        }
        return report
    }

    /// Reads a file path where `false` or `off` turns the file off.
    private mutating func optionalPath(_ node: YAMLNode?, _ path: String, default value: String?) throws(ConfigError) -> String? {
        guard let node else { return value }
        let text = try string(node, path)
        if ["true", "yes", "on"].contains(text.lowercased()) {
            throw error(node, path, "'\(text)' is not a file path; give a path, or false to write no file.")
        }
        return ["false", "off", "no"].contains(text.lowercased()) ? nil : text
    }
}

/// Facts about server addresses.
public enum ServerAddress {
    /// Returns the host of an http(s) URL, without port, brackets or user information.
    public static func host(of url: String) -> String {
        var rest = Substring(url)
        if let schemeEnd = rest.firstRange(of: "://") {
            rest = rest[schemeEnd.upperBound...]
        }
        var authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") {
            authority = authority[authority.index(after: at)...]
        }
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        if let colon = authority.lastIndex(of: ":") {
            return String(authority[..<colon]).lowercased()
        }
        return String(authority).lowercased()
    }

    /// Returns whether the URL has `user:password@` before its host.
    public static func hasUserInfo(_ url: String) -> Bool {
        var rest = Substring(url)
        if let schemeEnd = rest.firstRange(of: "://") {
            rest = rest[schemeEnd.upperBound...]
        }
        // Up to the first slash, because a password may itself hold '?' or '#'.
        return rest.prefix { $0 != "/" }.contains("@")
    }

    /// Returns the path of an http(s) URL, without query or fragment; empty when there is none.
    public static func path(of url: String) -> String {
        var rest = Substring(url)
        if let schemeEnd = rest.firstRange(of: "://") {
            rest = rest[schemeEnd.upperBound...]
        }
        guard let slash = rest.firstIndex(of: "/") else { return "" }
        return String(rest[slash...].prefix { $0 != "?" && $0 != "#" })
    }

    /// Returns whether the host is a loopback name or address: `localhost`, `::1` or an IPv4 address in 127.0.0.0/8.
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host.hasSuffix(".localhost") || host == "::1" {
            return true
        }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
