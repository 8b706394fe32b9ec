/// Delays between attempts: exponential growth with full jitter and a cap.
public struct Backoff: Sendable {
    public var base: Duration
    public var cap: Duration
    public var multiplier: Double

    public init(base: Duration, cap: Duration, multiplier: Double = 2) {
        self.base = base
        self.cap = cap
        self.multiplier = multiplier
    }

    /// Returns the upper bound of the delay before attempt `attempt` (0-based): `base * multiplier^attempt`, capped.
    public func ceiling(forAttempt attempt: Int) -> Duration {
        let grown = base.seconds * pow(multiplier, Double(min(attempt, 60)))
        return .seconds(min(grown, cap.seconds))
    }

    /// A delay drawn uniformly between half the ceiling and the ceiling.
    ///
    /// Full jitter (0 to the ceiling) spreads load best but can poll almost at once. Keeping
    /// the lower half bounds the request count while still desynchronising jobs.
    public func delay(forAttempt attempt: Int, random unit: Double) -> Duration {
        let ceiling = ceiling(forAttempt: attempt).seconds
        return .seconds(ceiling * (0.5 + 0.5 * min(max(unit, 0), 1)))
    }
}

/// Returns `base` raised to `exponent`, for the few powers backoff needs.
func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 {
        result *= base
        remaining -= 1
    }
    return result
}

/// Reads a `Retry-After` header: a number of seconds (an HTTP date is not supported and is ignored).
public func retryAfter(_ header: String?) -> Duration? {
    guard let header, let seconds = Double(header.trimmingCharacters(" ")), seconds >= 0 else { return nil }
    return .seconds(min(seconds, 3600))
}

/// A source of uniform random numbers in 0..<1, injectable for deterministic tests.
public struct RandomSource: Sendable {
    private let next: @Sendable () -> Double

    public init(_ next: @escaping @Sendable () -> Double) {
        self.next = next
    }

    public static let system = RandomSource { Double.random(in: 0..<1) }

    public func unit() -> Double { next() }
}
