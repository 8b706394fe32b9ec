import CurlTransport
import Dispatch
import FoundationEssentials
import LLMOpsCI
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes all of `text` to a file descriptor without buffering, so that stdout and stderr
/// lines interleave in order in CI logs.
@Sendable func write(_ text: String, to descriptor: Int32) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        if written < 0 {
            if errno == EINTR { continue }
            return
        }
        bytes = bytes.dropFirst(written)
    }
}

let variables = ProcessInfo.processInfo.environment
let environment = AgentEnvironment(
    variables: variables,
    standardOutput: { write($0, to: STDOUT_FILENO) },
    standardError: { write($0, to: STDERR_FILENO) },
    makeTransport: { settings in CurlTransport(settings: settings, environment: variables) },
    clock: SystemClock(),
    random: .system,
    isTerminal: isatty(1) == 1
)

// The main thread waits on a semaphore rather than awaiting the job. Ending the program
// from an async top level unwinds the stack, and in a static binary that first sorts every
// unwind table entry, which cost about 20 ms of start-up time (BENCHMARKS.md).
let exitCode = LockedValue<Int32?>(nil)
let finished = DispatchSemaphore(value: 0)
let job = Task.detached {
    let code = await Agent(environment: environment).run(Array(CommandLine.arguments.dropFirst()))
    exitCode.withLock { $0 = code }
    finished.signal()
}

// On SIGINT or SIGTERM, cancel the job: it cancels its remote runs and writes the results it has.
// A second signal, or a clean-up that takes too long, ends the process at once.
let signalSources = installStopHandlers { job.cancel() }

finished.wait()
exit(exitCode.value ?? ExitCode.couldNotFinish)

/// Installs SIGINT and SIGTERM handlers on a Dispatch queue, because the main thread is
/// blocked waiting for the job.
nonisolated func installStopHandlers(onStop: @escaping @Sendable () -> Void) -> [DispatchSourceSignal] {
    let received = LockedValue(false)
    return [SIGINT, SIGTERM].map { signalNumber in
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler { @Sendable in
            let isRepeat = received.withLock { seen in
                defer { seen = true }
                return seen
            }
            if isRepeat {
                exit(ExitCode.couldNotFinish)
            }
            write("Received a stop signal; cancelling the remote runs of this job\n", to: STDERR_FILENO)
            onStop()
            DispatchQueue.global().asyncAfter(deadline: .now() + 20) { @Sendable in
                write("Clean-up took too long; exiting\n", to: STDERR_FILENO)
                exit(ExitCode.couldNotFinish)
            }
        }
        source.resume()
        return source
    }
}
