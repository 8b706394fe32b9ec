import Testing
@testable import LLMOpsCI

@Suite struct ConfigurationLoaderTests {
    let minimal = """
        server:
          url: https://llmops.example.com
          email: ci@example.com
          password: ${LLMOPS_CI_PASSWORD}
        project: demo
        evaluations:
          - name: support-bot
            dataset: golden-qa
            metrics: [faithfulness]
        """

    func load(_ text: String, environment: [String: String] = ["LLMOPS_CI_PASSWORD": "s3cret#: value"]) throws(ConfigError) -> Configuration {
        try ConfigurationLoader(environment: environment).load(text: text, path: "llmops.yml")
    }

    func error(_ text: String, environment: [String: String] = ["LLMOPS_CI_PASSWORD": "s3cret#: value"]) -> ConfigError? {
        do {
            _ = try load(text, environment: environment)
            return nil
        } catch {
            return error
        }
    }

    @Test func loadsMinimalFileWithDefaults() throws {
        let configuration = try load(minimal)

        #expect(configuration.server.url == "https://llmops.example.com")
        #expect(configuration.server.password?.value == "s3cret#: value")
        #expect(configuration.evaluations[0].metrics.map(\.code) == ["FAITHFULNESS"])
        #expect(configuration.polling.intervalSeconds == 10)
        #expect(configuration.polling.timeoutMinutes == 30)
        #expect(configuration.gate.noData == .fail)
        #expect(configuration.secretValues.contains("s3cret#: value"))
    }

    @Test func interpolatedSecretCannotChangeStructure() throws {
        let configuration = try load(minimal, environment: ["LLMOPS_CI_PASSWORD": "a: b\n  project: evil # x"])

        #expect(configuration.project == "demo")
        #expect(configuration.server.password?.value == "a: b\n  project: evil # x")
    }

    @Test func unknownKeySuggestsClosestName() throws {
        let found = try #require(error(minimal + "\npolling:\n  interval_secnds: 5\n"))

        #expect(found.line == 11)
        #expect(found.keyPath == "polling.interval_secnds")
        #expect(found.message.contains("Did you mean 'interval_seconds'?"))
    }

    @Test func duplicateKeyIsRejected() throws {
        let found = try #require(error(minimal + "\nproject: other\n"))

        #expect(found.keyPath == "project")
        #expect(found.message.contains("twice"))
    }

    @Test func unsetVariableNamesVariableAndKey() throws {
        let found = try #require(error(minimal, environment: [:]))

        #expect(found.keyPath == "server.password")
        #expect(found.message.contains("LLMOPS_CI_PASSWORD is not set"))
        #expect(found.line == 4)
    }

    @Test func defaultAppliesWhenVariableIsUnset() throws {
        let text = minimal + "\npolling:\n  timeout_minutes: ${T:-45}\n"

        let configuration = try load(text)

        #expect(configuration.polling.timeoutMinutes == 45)
    }

    @Test func interpolatedNumberIsTypedAndChecked() throws {
        let text = minimal + "\npolling:\n  timeout_minutes: ${T}\n"

        #expect(try load(text, environment: ["LLMOPS_CI_PASSWORD": "x", "T": "12"]).polling.timeoutMinutes == 12)
        let found = try #require(error(text, environment: ["LLMOPS_CI_PASSWORD": "x", "T": "soon"]))
        #expect(found.message.contains("'soon' (from ${T}) is not a number"))
    }

    @Test func secretValueIsNeverEchoed() throws {
        let text = minimal.replacing("url: https://llmops.example.com", with: "url: ${LLMOPS_API_TOKEN}")

        let found = try #require(error(text, environment: ["LLMOPS_CI_PASSWORD": "x", "LLMOPS_API_TOKEN": "tok-value-123"]))

        #expect(!found.description.contains("tok-value-123"))
    }

    @Test(arguments: [
        ("\npolling:\n  timeout_minutes: -5\n", "polling.timeout_minutes", "out of range"),
        ("\npolling:\n  max_concurrent: 0\n", "polling.max_concurrent", "out of range"),
        ("\ngate:\n  failed_run: explode\n", "gate.failed_run", "not one of"),
        ("\nreport:\n  comment: updte\n", "report.comment", "Did you mean 'update'?"),
        ("\ngate:\n  thresholds:\n    faithfulness: { min: 1.5 }\n", "gate.thresholds.faithfulness.min", "out of range"),
        ("\ngate:\n  thresholds:\n    faithfulness: { min: 0.9, max: 0.5 }\n", "gate.thresholds.faithfulness", "greater than max"),
        ("\ngate:\n  regression:\n    max_drop: lots\n", "gate.regression.max_drop", "not an amount"),
    ])
    func rejectsInvalidValue(suffix: String, keyPath: String, fragment: String) throws {
        let found = try #require(error(minimal + suffix))

        #expect(found.keyPath == keyPath)
        #expect(found.message.contains(fragment))
    }

    @Test func emptyListIsRejected() throws {
        let found = try #require(error(minimal.replacing("metrics: [faithfulness]", with: "metrics: []")))

        #expect(found.keyPath == "evaluations[0].metrics")
        #expect(found.message.contains("empty"))
    }

    @Test func pairListedTwiceIsRejected() throws {
        let text = minimal + "\n  - name: again\n    dataset: golden-qa\n    metrics: [faithfulness]\n"

        let found = try #require(error(text))

        #expect(found.keyPath == "evaluations[1]")
        #expect(found.message.contains("already evaluated by evaluations[0]"))
    }

    @Test func plainHTTPToRemoteHostIsRefused() throws {
        let found = try #require(error(minimal.replacing("https://llmops.example.com", with: "http://llmops.example.com")))

        #expect(found.keyPath == "server.url")
        #expect(found.message.contains("allow_insecure_http"))
    }

    @Test(arguments: ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"])
    func plainHTTPToLoopbackIsAllowed(url: String) throws {
        #expect(try load(minimal.replacing("https://llmops.example.com", with: url)).server.url == url)
    }

    @Test func aliasExpansionIsCapped() throws {
        var text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...7 {
            let previous = level == 1 ? "a" : "a\(level - 1)"
            text += "a\(level): &a\(level) [*\(previous), *\(previous), *\(previous), *\(previous), *\(previous), *\(previous), *\(previous), *\(previous), *\(previous), *\(previous)]\n"
        }

        let found = try #require(error(text))

        #expect(found.message.contains("expands to more than"))
    }

    @Test func nestingDepthIsCapped() throws {
        let text = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)

        let found = try #require(error(text))

        #expect(found.message.contains("nests deeper"))
    }

    @Test func syntaxErrorNamesLine() throws {
        let found = try #require(error("server:\n  url: x\n bad: [\n"))

        #expect(found.line != nil)
        #expect(found.message.contains("invalid YAML"))
    }

    @Test func matrixExpandsDatasetsAndEndpoints() throws {
        let text = minimal + "\n  - name: matrix\n    datasets: [a, b]\n    endpoints: [x, y]\n    metrics: [bleu]\n"

        let configuration = try load(text)

        #expect(configuration.evaluations[1].datasets == ["a", "b"])
        #expect(configuration.evaluations[1].endpoints == ["x", "y"])
    }

    @Test func metricOverridesAreRead() throws {
        let text = minimal.replacing("metrics: [faithfulness]", with: "metrics: [{ code: toxicity, pass_threshold: 0.9, weight: 2 }]")

        let metric = try load(text).evaluations[0].metrics[0]

        #expect(metric == Configuration.Metric(code: "TOXICITY", passThreshold: 0.9, weight: 2))
    }
}

@Suite struct InterpolationTests {
    let interpolation = Interpolation(environment: ["A": "1", "EMPTY": ""])

    @Test func expandsVariablesAndEscapes() throws {
        #expect(try interpolation.expand("x${A}y$$z").text == "x1y$z")
    }

    @Test func usesDefaultForUnsetOrEmpty() throws {
        #expect(try interpolation.expand("${B:-two}").text == "two")
        #expect(try interpolation.expand("${EMPTY:-three}").text == "three")
    }

    @Test func rejectsUnclosedReference() {
        #expect(throws: Interpolation.Failure.self) { try interpolation.expand("${A") }
    }
}

@Suite struct ConfigurationEdgeTests {
    let minimal = """
        server:
          url: https://llmops.example.com
          token: ${LLMOPS_TOKEN}
        project: demo
        evaluations:
          - name: support-bot
            dataset: golden-qa
            metrics: [faithfulness]
        """

    func load(_ text: String) throws(ConfigError) -> Configuration {
        try ConfigurationLoader(environment: ["LLMOPS_TOKEN": "token-value-1234"]).load(text: text, path: "llmops.yml")
    }

    @Test func longFirstIntervalRaisesDefaultCap() throws {
        let polling = try load(minimal + "\npolling:\n  interval_seconds: 120\n").polling

        #expect(polling.maxIntervalSeconds == 120)
    }

    @Test(arguments: [
        ("https://api", "https://api"),
        ("https://api/", "https://api"),
        ("https://llmops.example.com/api", "https://llmops.example.com"),
        ("https://llmops.example.com/api/", "https://llmops.example.com"),
    ])
    func apiSuffixIsStrippedOnlyAsPath(url: String, expected: String) throws {
        let configuration = try load(minimal.replacing("https://llmops.example.com", with: url))

        #expect(configuration.server.url == expected)
    }

    @Test func hostStartingWith127IsNotLoopback() {
        #expect(!ServerAddress.isLoopback("127.attacker.example"))
        #expect(ServerAddress.isLoopback("127.0.0.53"))
    }

    @Test func secretReusedElsewhereIsRedactedInError() throws {
        let text = minimal + "\npolling:\n  timeout_minutes: ${LLMOPS_TOKEN}\n"

        #expect {
            _ = try load(text)
        } throws: { error in
            !"\(error)".contains("token-value-1234")
        }
    }

    @Test func commentFalseMeansOff() throws {
        #expect(try load(minimal + "\nreport:\n  comment: false\n").report.comment == .off)
    }
}

@Suite struct LargeConfigurationTests {
    @Test func longMetricListLoads() throws {
        var text = "server:\n  url: https://x.example\n  token: t\nproject: p\nevaluations:\n  - name: a\n    dataset: d\n    metrics:\n"
        for index in 0..<30_000 {
            text += "      - m\(index)\n"
        }

        let configuration = try ConfigurationLoader(environment: [:]).load(text: text, path: "big.yml")

        #expect(configuration.evaluations[0].metrics.count == 30_000)
    }
}
