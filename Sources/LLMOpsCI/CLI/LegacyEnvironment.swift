/// The single evaluation of the platform's own CI guide, built from its variables when
/// there is no configuration file: `LLMOPS_API_URL`, `LLMOPS_CI_EMAIL`,
/// `LLMOPS_CI_PASSWORD`, `PROJECT_ID`, `DATASET_ID` and optionally `ENDPOINT_ID`.
enum LegacyEnvironment {
    static let guideMetrics = ["FAITHFULNESS", "ANSWER_RELEVANCY", "BLEU"]

    static func configuration(_ variables: [String: String]) throws(ConfigError) -> Configuration? {
        guard let url = variables["LLMOPS_API_URL"], !url.isEmpty else { return nil }
        let required = ["LLMOPS_CI_EMAIL", "LLMOPS_CI_PASSWORD", "PROJECT_ID", "DATASET_ID"]
        let missing = required.filter { (variables[$0] ?? "").isEmpty }
        guard missing.isEmpty else {
            throw ConfigError(
                file: "environment",
                message: "no llmops.yml, and LLMOPS_API_URL is set but \(missing.joined(separator: ", ")) \(missing.count == 1 ? "is" : "are") not. "
                    + "Set \(missing.count == 1 ? "it" : "them"), or write an llmops.yml."
            )
        }
        var text = """
            server:
              url: ${LLMOPS_API_URL}
              email: ${LLMOPS_CI_EMAIL}
              password: ${LLMOPS_CI_PASSWORD}
            project: ${PROJECT_ID}
            evaluations:
              - name: ci-evaluation
                dataset: ${DATASET_ID}

            """
        if !(variables["ENDPOINT_ID"] ?? "").isEmpty {
            text += "    endpoint: ${ENDPOINT_ID}\n"
        }
        text += "    metrics: [\(guideMetrics.joined(separator: ", "))]\n"
        return try ConfigurationLoader(environment: variables).load(text: text, path: "environment (LLMOPS_API_URL and related variables)")
    }
}
