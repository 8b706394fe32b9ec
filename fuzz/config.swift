// libFuzzer target for the configuration loader: YAML parsing with libyaml, the node
// limits, `${VAR}` interpolation and the typed checks of every section.
//
// Any input may fail to load, but none may crash the loader or make it hang, and no error
// message may contain the value of a secret variable that the input itself does not spell
// out. scripts/fuzz builds and runs this target.

@testable import LLMOpsCI

/// The environment that `${VAR}` references resolve against. The password contains `#` and
/// `: `, so an interpolated value that changed the YAML structure would show.
private let environment = [
    "LLMOPS_API_URL": "https://llmops.example.com",
    "LLMOPS_CI_EMAIL": "ci@example.com",
    "LLMOPS_CI_PASSWORD": "Kq7#: vault-only Zx",
    "LLMOPS_TOKEN": "tkn.Wm4Rj8Lp.Qa",
    "LLMOPS_POLL_INTERVAL_SECONDS": "15",
    "EMPTY": "",
]

/// Environment values that a message must never contain.
private let secretValues = [environment["LLMOPS_CI_PASSWORD"]!, environment["LLMOPS_TOKEN"]!]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigurationLoader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        _ = try ConfigurationLoader(environment: environment).load(text: text, path: "llmops.yml")
    } catch {
        checkNoSecret(in: error.description, input: text)
    }
    return 0
}

/// Stops the run when `message` shows a secret that reached it through interpolation.
///
/// A secret counts as written in the input, and so may appear, when the input contains any
/// 4-character piece of it: a file can then spell the value out with literals and defaults.
private func checkNoSecret(in message: String, input: String) {
    for secret in secretValues where message.contains(secret) {
        let characters = Array(secret)
        let isWrittenInInput = (0...(characters.count - 4)).contains { start in
            input.contains(String(characters[start..<start + 4]))
        }
        if !isWrittenInInput {
            fatalError("A configuration error shows the value of a secret variable: \(message)")
        }
    }
}
