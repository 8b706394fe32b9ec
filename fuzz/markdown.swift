// libFuzzer target for `MarkdownEscaping.inline`, which escapes untrusted text (model
// outputs, dataset inputs, server messages) for one table cell or line of the report.
//
// Besides crashes, it stops on any output that a markdown renderer could read as
// structure: an unescaped `|` or backtick, a raw `<` or `>`, a line break, or a `/` at the
// start. The checks work on Unicode scalars, because a renderer reads scalars and not the
// grapheme clusters that Swift's `Character` groups them into. scripts/fuzz builds and
// runs this target.

@testable import LLMOpsCI

/// Character limits passed as `maxCharacters`: none, zero and negative (empty output), and
/// small values that cut inside the input.
private let characterLimits: [Int?] = [nil, -1, 0, 1, 2, 7, 80]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMarkdownEscaping(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    for limit in characterLimits {
        let escaped = MarkdownEscaping.inline(text, maxCharacters: limit)
        if let problem = structuralProblem(in: escaped) {
            let limitText = limit.map(String.init) ?? "nil"
            fatalError(
                "MarkdownEscaping.inline(maxCharacters: \(limitText)) output \(problem.description) "
                    + "Output scalars around it: \(scalarList(escaped, around: problem.index))"
            )
        }
    }
    return 0
}

/// A place in the escaped text that markdown would read as structure.
struct StructuralProblem {
    /// Offset of the offending scalar in the output's Unicode scalars.
    var index: Int
    var description: String
}

/// Returns the first scalar of `escaped` that markdown would read as structure, or nil
/// when there is none.
///
/// A backslash escapes the scalar after it, as in CommonMark, so `\|` and `\\` are fine.
func structuralProblem(in escaped: String) -> StructuralProblem? {
    let scalars = Array(escaped.unicodeScalars)
    if scalars.first == "/" {
        return StructuralProblem(index: 0, description: "starts with a raw '/', which GitLab can read as a quick action.")
    }
    var index = 0
    while index < scalars.count {
        let scalar = scalars[index]
        switch scalar {
        case "\\":
            // The escaped scalar must exist, or the backslash would escape what follows the cell.
            guard index + 1 < scalars.count else {
                return StructuralProblem(index: index, description: "ends with a lone backslash.")
            }
            index += 2
            continue
        case "|":
            return StructuralProblem(index: index, description: "contains an unescaped '|', which splits a table cell.")
        case "`":
            return StructuralProblem(index: index, description: "contains an unescaped backtick, which opens a code span.")
        case "<", ">":
            return StructuralProblem(index: index, description: "contains a raw '\(scalar)', which can start HTML.")
        case "\n", "\r", "\u{2028}", "\u{2029}":
            return StructuralProblem(index: index, description: "contains the line break U+\(hex(scalar)).")
        default:
            break
        }
        index += 1
    }
    return nil
}

private func hex(_ scalar: Unicode.Scalar) -> String {
    let digits = String(scalar.value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// Lists up to eight scalars on each side of `index`, marking the one at `index` with `>`.
private func scalarList(_ text: String, around index: Int) -> String {
    let scalars = Array(text.unicodeScalars)
    let window = max(0, index - 8)..<min(scalars.count, index + 9)
    return window.map { position in
        (position == index ? ">" : "") + "U+" + hex(scalars[position])
    }.joined(separator: " ")
}
