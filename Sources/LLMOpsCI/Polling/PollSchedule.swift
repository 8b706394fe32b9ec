/// Chooses when to look at a running evaluation again.
///
/// Without any estimate it backs off exponentially from `interval` to `cap`. With an
/// expected duration (from earlier runs of the same name, or from progress counts) it
/// halves the remaining distance to the expected finish, so that it polls sparsely early
/// and densely near the end, and backs off again from `interval` once that time has passed.
public struct PollSchedule: Sendable {
    public var interval: Duration
    public var cap: Duration

    public init(interval: Duration, cap: Duration) {
        self.interval = interval
        self.cap = cap
    }

    /// - Parameters:
    ///   - attempt: polls made so far for this run, 0 before the first.
    ///   - elapsed: time since the run was started.
    ///   - expected: the estimated total duration of the run, if any.
    ///   - random: a uniform number in 0..<1 for jitter.
    public func delay(attempt: Int, elapsed: Duration, expected: Duration?, random: Double) -> Duration {
        let backoff = Backoff(base: interval, cap: cap)
        guard let expected, expected > .zero else {
            return backoff.delay(forAttempt: attempt, random: random)
        }
        let remaining = expected - elapsed
        if remaining > interval * 2 {
            let half = remaining / 2
            return min(max(half, interval), cap)
        }
        if remaining > .zero {
            return min(max(remaining, interval / 2), interval)
        }
        // Past the estimate: back off from the base interval, counting from the estimate.
        let overdueSteps = Int(((elapsed - expected) / interval).rounded(.down))
        return backoff.delay(forAttempt: max(0, Int(log2(Double(overdueSteps + 1)))), random: random)
    }
}

private func log2(_ value: Double) -> Double {
    var result = 0.0
    var remaining = value
    while remaining >= 2 {
        remaining /= 2
        result += 1
    }
    return result
}

/// Estimates a run's total duration from the durations of earlier runs: their median.
public func expectedDuration(fromHistory durations: [Duration]) -> Duration? {
    let valid = durations.filter { $0 > .zero }.sorted()
    guard !valid.isEmpty else { return nil }
    return valid[valid.count / 2]
}

/// Estimates a run's total duration from its progress counts, when it reports any.
public func expectedDuration(elapsed: Duration, done: Int, total: Int) -> Duration? {
    guard total > 0, done > 0, done < total else { return nil }
    return elapsed * (Double(total) / Double(done))
}
