import FoundationEssentials
import Testing
@testable import LLMOpsCI

/// Inputs that crash a libFuzzer target in fuzz/ or break one of its invariants, replayed
/// as ordinary tests. Each input is also saved under fuzz/crashes/TARGET/ for
/// `.build-fuzz/TARGET FILE`.
///
/// Inputs that crashed the process run as exit tests, in a child process, so that a
/// regression fails one test instead of ending the whole test run.
@Suite struct FuzzRegressionTests {
    // MARK: markdown target

    /// A markdown syntax character followed by a combining mark, which Swift joins into one
    /// `Character` (fuzz/crashes/markdown/, one file per case).
    static let syntaxWithCombiningMark: [(file: String, input: String)] = [
        ("pipe-with-combining-mark", "|\u{065D}"),
        ("backtick-with-combining-mark", "`\u{0310}"),
        ("less-than-with-combining-mark", "<\u{0313}"),
        ("greater-than-with-combining-mark", ">\u{0326}"),
        ("leading-slash-with-combining-mark", "/\u{0740}\u{FFFD}"),
    ]

    @Test(arguments: syntaxWithCombiningMark)
    func markdownEscapesSyntaxBeforeCombiningMark(file: String, input: String) {
        let escaped = MarkdownEscaping.inline(input)
        let scalars = Array(escaped.unicodeScalars)

        #expect(scalars.first != "/", "\(file): output \(escaped.debugDescription) starts with a raw '/'")
        #expect(!scalars.contains("<"), "\(file): output \(escaped.debugDescription) has a raw '<'")
        #expect(!scalars.contains(">"), "\(file): output \(escaped.debugDescription) has a raw '>'")
        #expect(
            unescapedScalars(in: escaped, among: ["|", "`"]).isEmpty,
            "\(file): output \(escaped.debugDescription) has an unescaped '|' or backtick"
        )
    }

    @Test func markdownKeepsCombiningMarkOfEscapedCharacter() {
        // A fix must keep the mark and escape only the syntax character before it.
        #expect(MarkdownEscaping.inline("a|\u{065D}b").unicodeScalars.contains("\u{065D}"))
    }

    // MARK: responses target

    /// `X-RateLimit-Reset` that is a whole number of seconds too large for `Duration`
    /// (fuzz/crashes/responses/ratelimit-reset-overflow).
    @Test func forgeRateLimitResetTooLargeDoesNotCrash() async {
        await #expect(processExitsWith: .success) {
            let transport = StubTransport { _ in
                HTTPResponse(
                    status: 403,
                    headers: [("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", "17880000601106011")],
                    body: Array(#"{"message":"API rate limit exceeded"}"#.utf8)
                )
            }
            let http = ForgeHTTP(
                transport: transport,
                headers: [],
                clock: VirtualClock(),
                random: RandomSource { 0.5 },
                logger: .disabled,
                deadline: .seconds(300)
            )
            _ = try? await http.send("GET", "https://api.github.com/repos/octo/repo/pulls/7")
        }
    }

    /// An access token whose `exp` claim is a date too far away for `Timestamp.format`
    /// (fuzz/crashes/responses/jwt-exp-overflow contains the claims `{"exp":1e300}`).
    @Test func loginTokenExpiryTooLargeDoesNotCrash() async {
        await #expect(processExitsWith: .success) {
            // The claims segment is base64url of {"exp":1e300}.
            let token = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjFlMzAwfQ.c2lnbmF0dXJl"
            let transport = StubTransport { _ in
                json(200, ["accessToken": .string(token), "refreshToken": "refresh-token"])
            }
            let client = LLMOpsClient(
                baseURL: "https://llmops.example.com",
                credentials: .password(email: "ci@example.com", password: Secret("password")),
                transport: transport,
                clock: VirtualClock(),
                logger: .disabled
            )
            try? await client.logIn()
            _ = await client.tokenExpiry()
        }
    }
}

/// Returns the offsets of scalars in `escaped` that are in `syntax` and not escaped by a
/// backslash, reading `\x` as an escaped `x` as CommonMark does.
private func unescapedScalars(in escaped: String, among syntax: Set<Unicode.Scalar>) -> [Int] {
    let scalars = Array(escaped.unicodeScalars)
    var offsets: [Int] = []
    var index = 0
    while index < scalars.count {
        if scalars[index] == "\\" {
            index += 2
            continue
        }
        if syntax.contains(scalars[index]) {
            offsets.append(index)
        }
        index += 1
    }
    return offsets
}
