import FoundationEssentials

/// Reads `llmops.yml` into a checked `Configuration`.
///
/// Every scalar is interpolated after parsing, so a secret holding `#` or `: ` cannot change
/// the structure of the file, and is then typed as its key expects. Unknown keys, duplicate
/// keys, wrong types and empty lists are errors that name the file, line, column and key.
public struct ConfigurationLoader: Sendable {
    public static let discoveryPaths = ["llmops.yml", ".llmops.yml", ".github/llmops.yml"]

    private let environment: [String: String]

    public init(environment: [String: String]) {
        self.environment = environment
    }

    /// Finds the configuration file: the given path, else the first of `discoveryPaths` that exists.
    public func locate(explicitPath: String?, fileExists: (String) -> Bool) -> String? {
        if let explicitPath {
            return explicitPath
        }
        return Self.discoveryPaths.first(where: fileExists)
    }

    /// Reads and checks the file at `path`.
    public func load(path: String) throws(ConfigError) -> Configuration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(
                file: path,
                message: "the file cannot be read. Check the path, or pass another one with --config PATH."
            )
        }
        let text = String(decoding: data, as: UTF8.self)
        return try load(text: text, path: path)
    }

    /// Reads `gate.on_missing_secrets` without checking the rest of the file, for jobs whose
    /// secrets are missing (fork pull requests), where the full load fails by design.
    public func missingSecretsPolicy(path: String) -> Configuration.MissingSecrets {
        guard let data = FileManager.default.contents(atPath: path),
            let root = try? YAMLParser.parse(String(decoding: data, as: UTF8.self)),
            case .mapping(let entries) = root.content,
            let gate = entries.first(where: { if case .scalar("gate", _) = $0.key.content { true } else { false } })?.value,
            case .mapping(let gateEntries) = gate.content,
            let policy = gateEntries.first(where: { if case .scalar("on_missing_secrets", _) = $0.key.content { true } else { false } })?.value,
            case .scalar(let text, _) = policy.content
        else { return .skip }
        return Configuration.MissingSecrets(rawValue: text.lowercased()) ?? .skip
    }

    /// Checks configuration text; `path` only names the file in messages.
    public func load(text: String, path: String) throws(ConfigError) -> Configuration {
        let root: YAMLNode?
        do {
            root = try YAMLParser.parse(text)
        } catch {
            let isSyntaxError = error.message.hasPrefix("invalid YAML")
            throw ConfigError(
                file: path,
                line: error.line,
                column: error.column,
                keyPath: isSyntaxError ? keyNear(line: error.line, in: text) : "",
                message: isSyntaxError ? explain(error.message) : error.message
            )
        }
        guard let root, !root.isNull else {
            throw ConfigError(file: path, message: "the file is empty. The README shows a complete example.")
        }
        var reader = NodeReader(file: path, interpolation: Interpolation(environment: environment))
        do {
            return try reader.configuration(from: root)
        } catch {
            // A secret read before the failing key may reappear in a later value's message.
            var redacted = error
            for secret in reader.secretValues where secret.count >= 4 {
                redacted.message = redacted.message.replacing(secret, with: "[redacted]")
            }
            throw redacted
        }
    }
}

/// Returns the key written on a line, such as `email` in `  email: x`, to point at the spot of a syntax error.
private func keyNear(line: Int, in text: String) -> String {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    guard line >= 1, line <= lines.count else { return "" }
    let content = lines[line - 1].drop { $0 == " " || $0 == "-" }
    guard let colon = content.firstIndex(of: ":") else { return "" }
    let key = content[..<colon]
    return key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" } ? String(key) : ""
}

/// Adds the usual cause to libyaml's terse messages.
private func explain(_ message: String) -> String {
    if message.contains("mapping values are not allowed") {
        return message + ". Check the indentation of this line against the line above, and quote a value that contains ': '."
    }
    if message.contains("did not find expected key") || message.contains("could not find expected ':'") {
        return message + ". Check the indentation, and that each key ends with ':'."
    }
    if message.contains("found character that cannot start any token") {
        return message + ". YAML does not allow tabs for indentation; use spaces."
    }
    return message + "."
}

/// The keys each mapping accepts; the JSON Schema in `schema/llmops.schema.json` lists the same.
enum ConfigKeys {
    static let root = ["version", "server", "project", "defaults", "evaluations", "polling", "gate", "report"]
    static let server = [
        "url", "email", "password", "token", "ca_bundle", "request_timeout_seconds",
        "connect_timeout_seconds", "retry_seconds", "web_url", "allow_insecure_http",
    ]
    static let defaults = ["metrics", "judge"]
    static let evaluation = [
        "name", "label", "dataset", "datasets", "endpoint", "endpoints", "judge", "metrics", "thresholds",
    ]
    static let metric = ["code", "pass_threshold", "weight", "prompt"]
    static let polling = ["interval_seconds", "max_interval_seconds", "timeout_minutes", "max_concurrent"]
    static let gate = [
        "thresholds", "regression", "budgets", "failed_run", "cancelled_run", "no_data", "infrastructure_error",
        "inconclusive", "on_missing_secrets", "waivers", "waiver_label",
    ]
    static let budgets = Configuration.BudgetKind.allCases.map(\.rawValue)
    static let budget = ["max", "max_increase", "level"]
    static let threshold = ["min", "max", "min_raw", "max_raw", "min_pass_rate", "level"]
    static let regression = ["baseline", "max_drop", "confidence", "min_paired_cases"]
    static let report = [
        "comment", "comment_key", "worst_cases", "junit", "json", "markdown", "web_url", "skip_label", "max_pairs",
        "commit_status", "require_comment",
    ]
}

/// A scalar after interpolation, with where it came from.
struct ScalarValue {
    var text: String
    var node: YAMLNode
    var variables: [String]
    var isSecret: Bool

    /// The value as it may appear in a message: a secret shows only where it came from.
    var shown: String {
        if isSecret {
            return variables.isEmpty ? "<hidden>" : "the value of ${\(variables[0])}"
        }
        if variables.isEmpty {
            return "'\(text)'"
        }
        return "'\(text)' (from ${\(variables.joined(separator: "}, ${"))})"
    }
}

struct NodeReader {
    let file: String
    let interpolation: Interpolation
    var secretValues: [String] = []

    init(file: String, interpolation: Interpolation) {
        self.file = file
        self.interpolation = interpolation
    }

    func error(_ node: YAMLNode, _ path: String, _ message: String) -> ConfigError {
        ConfigError(file: file, line: node.line, column: node.column, keyPath: path, message: message)
    }

    // MARK: Structure

    /// Returns the entries of a mapping, rejecting unknown and duplicate keys.
    func mapping(_ node: YAMLNode, _ path: String, allowed: [String]) throws(ConfigError) -> [String: YAMLNode] {
        guard case .mapping(let entries) = node.content else {
            throw error(node, path, "expected a mapping (key: value lines), found \(node.kindName).")
        }
        var result: [String: YAMLNode] = [:]
        for (keyNode, value) in entries {
            guard case .scalar(let key, _) = keyNode.content else {
                throw error(keyNode, path, "keys must be plain words, found \(keyNode.kindName).")
            }
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            guard allowed.contains(key) else {
                var message = "unknown key '\(key)'."
                if let suggestion = closestMatch(to: key, in: allowed) {
                    message += " Did you mean '\(suggestion)'?"
                } else {
                    message += " Allowed here: \(allowed.joined(separator: ", "))."
                }
                throw error(keyNode, keyPath, message)
            }
            guard result[key] == nil else {
                throw error(keyNode, keyPath, "the key '\(key)' appears twice; keep one.")
            }
            result[key] = value
        }
        return result
    }

    /// Returns the entries of a mapping whose keys are free-form names (metric codes).
    func namedMapping(_ node: YAMLNode, _ path: String) throws(ConfigError) -> [(String, YAMLNode, YAMLNode)] {
        guard case .mapping(let entries) = node.content else {
            throw error(node, path, "expected a mapping, found \(node.kindName).")
        }
        var seen: Set<String> = []
        var result: [(String, YAMLNode, YAMLNode)] = []
        for (keyNode, value) in entries {
            guard case .scalar(let key, _) = keyNode.content else {
                throw error(keyNode, path, "keys must be plain words, found \(keyNode.kindName).")
            }
            let normalized = key.uppercased().replacing("-", with: "_").replacing(" ", with: "_")
            guard seen.insert(normalized).inserted else {
                throw error(keyNode, "\(path).\(key)", "'\(key)' appears twice; keep one.")
            }
            result.append((key, keyNode, value))
        }
        return result
    }

    func sequence(_ node: YAMLNode, _ path: String, allowsEmpty: Bool = false) throws(ConfigError) -> [YAMLNode] {
        guard case .sequence(let items) = node.content else {
            throw error(node, path, "expected a list, found \(node.kindName).")
        }
        guard allowsEmpty || !items.isEmpty else {
            throw error(node, path, "the list is empty; give at least one item or leave the key out.")
        }
        return items
    }

    // MARK: Scalars

    mutating func scalar(_ node: YAMLNode, _ path: String, isSecret: Bool = false) throws(ConfigError) -> ScalarValue {
        guard case .scalar(let raw, _) = node.content else {
            throw error(node, path, "expected a single value, found \(node.kindName).")
        }
        let expanded: Interpolation.Result
        do {
            expanded = try interpolation.expand(raw)
        } catch {
            switch error {
            case .unset(let variable):
                var failure = self.error(
                    node,
                    path,
                    "the environment variable \(variable) is not set. Set it in the CI job (as a secret if it is one), "
                        + "or give a default with ${\(variable):-value}."
                )
                failure.unsetVariable = variable
                throw failure
            case .malformed(let detail):
                throw self.error(node, path, "\(detail).")
            }
        }
        let secret = isSecret || expanded.variables.contains(where: SecretRegistry.isSecretName)
        if secret, !expanded.variables.isEmpty || isSecret {
            secretValues.append(expanded.text)
        }
        return ScalarValue(text: expanded.text, node: node, variables: expanded.variables, isSecret: secret)
    }

    mutating func string(_ node: YAMLNode, _ path: String, isSecret: Bool = false) throws(ConfigError) -> String {
        if node.isNull {
            throw error(node, path, "the value is empty (null); give a value or leave the key out.")
        }
        let value = try scalar(node, path, isSecret: isSecret)
        guard !value.text.isEmpty else {
            let origin = value.variables.isEmpty ? "" : " (${\(value.variables[0])} is empty)"
            var failure = error(node, path, "the value is empty\(origin); give a value or leave the key out.")
            // CI systems pass a secret that a job may not see as an empty string.
            failure.unsetVariable = value.variables.first
            throw failure
        }
        return value.text
    }

    mutating func number(
        _ node: YAMLNode,
        _ path: String,
        range: ClosedRange<Double>? = nil,
        unit: String = ""
    ) throws(ConfigError) -> Double {
        let value = try scalar(node, path)
        guard let number = Double(value.text.trimmingCharacters(" ")), number.isFinite else {
            throw error(node, path, "\(value.shown) is not a number; write a number\(unit.isEmpty ? "" : " of \(unit)").")
        }
        if let range, !range.contains(number) {
            throw error(
                node,
                path,
                "\(value.shown) is out of range; expected a number from \(format(range.lowerBound)) to \(format(range.upperBound))\(unit.isEmpty ? "" : " \(unit)")."
            )
        }
        return number
    }

    mutating func integer(_ node: YAMLNode, _ path: String, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let value = try scalar(node, path)
        guard let number = Int(value.text.trimmingCharacters(" ")) else {
            throw error(node, path, "\(value.shown) is not a whole number.")
        }
        guard range.contains(number) else {
            throw error(node, path, "\(value.shown) is out of range; expected a whole number from \(range.lowerBound) to \(range.upperBound).")
        }
        return number
    }

    mutating func boolean(_ node: YAMLNode, _ path: String) throws(ConfigError) -> Bool {
        let value = try scalar(node, path)
        switch value.text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(node, path, "\(value.shown) is not true or false.")
        }
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(
        _ node: YAMLNode,
        _ path: String,
        as type: T.Type
    ) throws(ConfigError) -> T where T.RawValue == String {
        let value = try scalar(node, path)
        if let result = T(rawValue: value.text.lowercased()) {
            return result
        }
        let names = T.allCases.map(\.rawValue)
        var message = "\(value.shown) is not one of \(names.joined(separator: ", "))."
        if let suggestion = closestMatch(to: value.text, in: names) {
            message += " Did you mean '\(suggestion)'?"
        }
        throw error(node, path, message)
    }

    /// Reads a string or a list of strings, rejecting duplicates.
    mutating func stringList(_ node: YAMLNode, _ path: String) throws(ConfigError) -> [String] {
        if case .scalar = node.content {
            return [try string(node, path)]
        }
        var result: [String] = []
        var seen: Set<String> = []
        for (index, item) in try sequence(node, path).enumerated() {
            let value = try string(item, "\(path)[\(index)]")
            guard seen.insert(value).inserted else {
                throw error(item, "\(path)[\(index)]", "'\(value)' is listed twice; keep one.")
            }
            result.append(value)
        }
        return result
    }

    private func format(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
    }
}

extension String {
    /// Returns the string without leading and trailing occurrences of `character`.
    func trimmingCharacters(_ character: Character) -> String {
        guard let first = firstIndex(where: { $0 != character }) else { return "" }
        let last = lastIndex(where: { $0 != character })!
        return String(self[first...last])
    }
}
