import Synchronization

/// A value behind a mutex, for state that several tasks or threads share.
public final class LockedValue<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ value: Value) {
        mutex = Mutex(value)
    }

    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try mutex.withLock { value in try body(&value) }
    }

    public var value: Value {
        mutex.withLock { $0 }
    }
}
