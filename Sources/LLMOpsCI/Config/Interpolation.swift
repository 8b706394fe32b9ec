/// Expands `${VAR}` and `${VAR:-default}` in one scalar; `$$` stands for a literal `$`.
struct Interpolation {
    struct Result {
        var text: String
        var variables: [String]
    }

    enum Failure: Error {
        case unset(variable: String)
        case malformed(String)
    }

    let environment: [String: String]

    func expand(_ text: String) throws(Failure) -> Result {
        guard text.contains("$") else { return Result(text: text, variables: []) }
        var output = ""
        var variables: [String] = []
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            guard character == "$", next < text.endIndex else {
                output.append(character)
                index = next
                continue
            }
            if text[next] == "$" {
                output.append("$")
                index = text.index(after: next)
                continue
            }
            guard text[next] == "{" else {
                output.append(character)
                index = next
                continue
            }
            guard let close = text[next...].firstIndex(of: "}") else {
                throw .malformed("'${' has no closing '}'")
            }
            let inner = text[text.index(after: next)..<close]
            let name: Substring
            var fallback: Substring?
            if let separator = inner.firstRange(of: ":-") {
                name = inner[..<separator.lowerBound]
                fallback = inner[separator.upperBound...]
            } else {
                name = inner
            }
            guard isVariableName(name) else {
                throw .malformed("'${\(inner)}' is not a variable reference; names use letters, digits and '_'")
            }
            variables.append(String(name))
            if let value = environment[String(name)], !(value.isEmpty && fallback != nil) {
                output += value
            } else if let fallback {
                output += fallback
            } else {
                throw .unset(variable: String(name))
            }
            index = text.index(after: close)
        }
        return Result(text: output, variables: variables)
    }

    private func isVariableName(_ name: Substring) -> Bool {
        guard let first = name.first, first == "_" || first.isLetter && first.isASCII else { return false }
        return name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" }
    }
}
