/// Escapes untrusted text (model outputs, dataset inputs, server messages) for markdown
/// that GitHub and GitLab render.
///
/// The result cannot break a table row or a `<details>` block, run HTML, close a code
/// fence, mention a person or team, or start a GitLab quick action.
public enum MarkdownEscaping {
    /// Escapes text for one table cell or one line: newlines become spaces.
    public static func inline(_ text: String, maxCharacters: Int? = nil) -> String {
        var source = text
        if let maxCharacters {
            source = shorten(source, to: maxCharacters)
        }
        // Escaping works on Unicode scalars, not characters: a combining mark after `|` forms
        // one character with it, but markdown still reads the `|`.
        var output = ""
        output.reserveCapacity(source.utf8.count)
        var isLineStart = true
        for scalar in source.unicodeScalars {
            switch scalar {
            case "\n", "\r", "\u{2028}", "\u{2029}":
                output += " "
            case "|": output += "\\|"
            case "\\": output += "\\\\"
            case "`": output += "\\`"
            case "*": output += "\\*"
            case "_": output += "\\_"
            case "[": output += "\\["
            case "]": output += "\\]"
            case "~": output += "\\~"
            case "#": output += isLineStart ? "\\#" : "#"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "&": output += "&amp;"
            case "@": output += "&#64;"
            case "/" where isLineStart: output += "&#47;"
            case "!": output += "\\!"
            case "$": output += "&#36;"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    output += " "
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
            isLineStart = false
        }
        return output
    }

    /// Shortens text to at most `count` characters (grapheme clusters), marking the cut with `…`.
    ///
    /// Cutting by grapheme cluster never splits a character, an emoji sequence or a
    /// combining mark.
    public static func shorten(_ text: String, to count: Int) -> String {
        guard count > 0 else { return "" }
        guard text.count > count else { return text }
        return String(text.prefix(max(count - 1, 0))) + "…"
    }
}
