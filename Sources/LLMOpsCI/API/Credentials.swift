import FoundationEssentials

/// The credentials the agent authenticates with to LLMOps Eval.
public enum Credentials: Sendable {
    case password(email: String, password: Secret)
    /// A ready access token, which cannot be renewed.
    case token(Secret)
}

/// The tokens of the current session.
struct TokenState: Sendable {
    var accessToken: Secret
    var refreshToken: Secret?
    /// The `exp` claim of the access token, when it could be read.
    var expiresAt: Date?
    /// When this agent received the token, to tell how long it lives.
    var obtainedAt: Date

    /// Whether the token should be renewed now: within `margin` of its expiry, or within a
    /// quarter of its lifetime for short-lived tokens.
    func isExpiring(at now: Date, margin: TimeInterval) -> Bool {
        guard let expiresAt else { return false }
        let lifetime = expiresAt.timeIntervalSince(obtainedAt)
        return expiresAt.timeIntervalSince(now) < min(margin, max(lifetime / 4, 1))
    }
}

/// Reads the `exp` claim of a JWT without checking its signature (the server checks it).
func expiryOfJWT(_ token: String) -> Date? {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3 else { return nil }
    var base64 = parts[1].replacing("-", with: "+").replacing("_", with: "/")
    while base64.count % 4 != 0 {
        base64 += "="
    }
    guard let data = Data(base64Encoded: String(base64)), let claims = try? JSONValue.parse(Array(data)) else { return nil }
    guard let expiry = claims["exp"].double, expiry.isFinite, expiry > 0, expiry < 253_402_300_799 else { return nil }
    return Date(timeIntervalSince1970: expiry)
}

/// Serialises token renewal, so that concurrent requests that see an expired token cause
/// one refresh, not one each: the refresh token rotates, and a second use would fail.
actor SessionStore {
    private var state: TokenState?
    private var renewal: Task<TokenState, Error>?

    var current: TokenState? { state }

    func set(_ newState: TokenState?) {
        state = newState
    }

    /// Returns a usable session, renewing it when `shouldRenew` returns true.
    ///
    /// When the caller saw `staleToken` rejected but another task has renewed since, the
    /// newer session is returned without another renewal.
    func session(
        staleToken: String?,
        shouldRenew: @Sendable (TokenState?) -> Bool,
        renew: @escaping @Sendable (TokenState?) async throws -> TokenState
    ) async throws -> TokenState {
        if let renewal {
            return try await renewal.value
        }
        if let state {
            let isStale = staleToken != nil && state.accessToken.value == staleToken
            if !isStale, !shouldRenew(state) {
                return state
            }
        }
        let previous = state
        let task = Task { try await renew(previous) }
        renewal = task
        do {
            let renewed = try await task.value
            state = renewed
            renewal = nil
            return renewed
        } catch {
            renewal = nil
            throw error
        }
    }
}
