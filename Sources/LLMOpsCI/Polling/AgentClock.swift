import FoundationEssentials

/// Monotonic time, sleeping and the wall clock, behind one protocol so that tests can
/// move time by hand.
public protocol AgentClock: Sendable {
    /// Time elapsed since an arbitrary fixed origin; never goes backwards.
    var now: Duration { get }
    /// The current wall-clock date, for timestamps in reports.
    var date: Date { get }
    func sleep(for duration: Duration) async throws
}

/// The real clock.
public struct SystemClock: AgentClock {
    private let origin = ContinuousClock.now

    public init() {}

    public var now: Duration { ContinuousClock.now - origin }
    public var date: Date { Date() }

    public func sleep(for duration: Duration) async throws {
        guard duration > .zero else { return }
        try await Task.sleep(for: duration)
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    public var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }

    /// Converts seconds to a duration, clamped to about 31 years so that a hostile number
    /// from a server (a rate-limit reset, a token expiry) cannot overflow.
    public static func seconds(_ value: Double) -> Duration {
        guard value.isFinite else { return value > 0 ? .seconds(Int64(1e9)) : .zero }
        let clamped = min(max(value, -1e9), 1e9)
        return .milliseconds(Int64((clamped * 1000).rounded()))
    }
}
