import FoundationEssentials

/// Starts every pair's evaluation, follows each to its end within the job deadline, and
/// fetches the results, with at most `maxConcurrent` evaluations running at once.
public struct Orchestrator: Sendable {
    public struct Options: Sendable {
        public var schedule: PollSchedule
        /// The whole-job deadline, on `clock.now`.
        public var deadline: Duration
        public var maxConcurrent: Int
        /// Start new runs even when an earlier attempt of this job left one for the same commit.
        public var isFresh: Bool
        /// How long a start request that timed out may still create a run on the server.
        public var lateStartGrace: Duration

        public init(schedule: PollSchedule, deadline: Duration, maxConcurrent: Int, isFresh: Bool, lateStartGrace: Duration = .seconds(60)) {
            self.schedule = schedule
            self.deadline = deadline
            self.maxConcurrent = maxConcurrent
            self.isFresh = isFresh
            self.lateStartGrace = lateStartGrace
        }
    }

    let client: LLMOpsClient
    let projectID: String
    let context: JobContext
    /// Identifies the job among jobs of the repository: config path and job name.
    let jobIdentity: String
    let clock: any AgentClock
    let random: RandomSource
    let logger: Logger
    let progress: ProgressLog
    let stateFile: RunStateFile
    let options: Options
    private let summary = ProgressSummary()

    public init(
        client: LLMOpsClient,
        projectID: String,
        context: JobContext,
        jobIdentity: String,
        clock: any AgentClock,
        random: RandomSource,
        logger: Logger,
        progress: ProgressLog,
        stateFile: RunStateFile,
        options: Options
    ) {
        self.client = client
        self.projectID = projectID
        self.context = context
        self.jobIdentity = jobIdentity
        self.clock = clock
        self.random = random
        self.logger = logger
        self.progress = progress
        self.stateFile = stateFile
        self.options = options
    }

    /// Evaluates every pair and returns their results in the order given.
    ///
    /// On cancellation of the calling task, the runs this job started and that have not
    /// ended are cancelled on the server before it returns.
    public func evaluate(_ pairs: [PlannedPair]) async -> [PairResult] {
        summary.start(total: pairs.count, at: clock.now)
        var results = [PairResult?](repeating: nil, count: pairs.count)
        await withTaskGroup(of: (Int, PairResult).self) { group in
            var next = 0
            let window = max(1, options.maxConcurrent)
            while next < min(window, pairs.count) {
                let index = next
                group.addTask { (index, await evaluate(pairs[index])) }
                next += 1
            }
            while let (index, result) = await group.next() {
                results[index] = result
                summary.finish(pairs[index].label)
                if next < pairs.count {
                    let pending = next
                    group.addTask { (pending, await evaluate(pairs[pending])) }
                    next += 1
                }
            }
        }
        await cancelUnfinishedRuns(reason: Task.isCancelled ? "the job was cancelled" : "this job could no longer follow the run")
        return results.enumerated().map { index, result in result ?? PairResult(pair: pairs[index], state: .interrupted) }
    }

    /// Cancels, on the server, every run this job started that has not ended.
    public func cancelUnfinishedRuns(reason: String) async {
        let unfinished = stateFile.unfinished
        guard !unfinished.isEmpty else { return }
        // A cancelled task cannot send requests, so the clean-up runs in a task of its own.
        await Task.detached { [client, stateFile, logger] in
            await withTaskGroup(of: Void.self) { group in
                for entry in unfinished {
                    group.addTask {
                        do {
                            try await client.cancel(runID: entry.runID)
                            stateFile.recordFinished(runID: entry.runID)
                            logger.notice("Cancelled the run on the server", metadata: ["pair": entry.label, "run.id": entry.runID, "reason": reason])
                        } catch {
                            logger.warning("Could not cancel the run", metadata: ["pair": entry.label, "run.id": entry.runID, "error": "\(error)"])
                        }
                    }
                }
            }
        }.value
    }

    private func evaluate(_ pair: PlannedPair) async -> PairResult {
        let startedAt = clock.now
        let key = stableHash("\(jobIdentity)|\(pair.fingerprint)|\(context.commit ?? "")")
        let reference = TriggerReference(branch: context.branch, commit: context.commit, key: key).encoded

        var history: [Duration] = []
        var run: Run
        var isAttached = false
        var mayHaveLateDuplicate = false
        do {
            let lookup = try await lookUp(pair, key: key)
            history = lookup.history
            if let existing = lookup.existing, !options.isFresh {
                run = existing
                isAttached = true
                progress.pair(pair.label, "attached to run #\(existing.runNumber.map(String.init) ?? "?") (\(existing.status)) from an earlier attempt of this job")
            } else {
                (run, mayHaveLateDuplicate) = try await start(pair, reference: reference, key: key)
                progress.pair(pair.label, "started run #\(run.runNumber.map(String.init) ?? "?")")
            }
        } catch is CancellationError {
            return PairResult(pair: pair, state: .interrupted)
        } catch let error as APIError where error.kind == .cancelled {
            return PairResult(pair: pair, state: .interrupted)
        } catch {
            progress.pair(pair.label, "could not start: \(error)")
            return PairResult(pair: pair, state: .error("\(error)"))
        }
        if !run.status.isTerminal {
            stateFile.recordStarted(runID: run.id, label: pair.label)
        }

        let expected = expectedDuration(fromHistory: history)
        var pollCount = 0
        var lastStatus = run.status
        var hasWarnedOverdue = false
        while !run.status.isTerminal {
            let elapsed = clock.now - startedAt
            var estimate = expected
            if let total = run.totalCases, let done = run.completedCases.map({ $0 + (run.failedCases ?? 0) }),
                let fromProgress = expectedDuration(elapsed: elapsed, done: done, total: total)
            {
                estimate = fromProgress
            }
            var delay = options.schedule.delay(attempt: pollCount, elapsed: elapsed, expected: estimate, random: random.unit())
            let remaining = options.deadline - clock.now
            if remaining <= .zero {
                progress.pair(pair.label, "timed out while \(run.status); cancelling the run")
                await cancel(run, pair: pair)
                return PairResult(pair: pair, state: .timedOut(lastStatus: "\(run.status)"), run: run, isAttached: isAttached, pollCount: pollCount)
            }
            delay = min(delay, remaining)
            do {
                try await clock.sleep(for: delay)
                run = try await client.run(id: run.id)
                pollCount += 1
            } catch is CancellationError {
                return PairResult(pair: pair, state: .interrupted, run: run, isAttached: isAttached, pollCount: pollCount)
            } catch let error as APIError where error.kind == .cancelled {
                return PairResult(pair: pair, state: .interrupted, run: run, isAttached: isAttached, pollCount: pollCount)
            } catch let error as APIError where error.status == 404 {
                stateFile.recordFinished(runID: run.id)
                progress.pair(pair.label, "the run was deleted on the server")
                return PairResult(pair: pair, state: .cancelled("the run was deleted on the server"), run: run, isAttached: isAttached, pollCount: pollCount)
            } catch {
                progress.pair(pair.label, "lost track of the run: \(error)")
                return PairResult(pair: pair, state: .error("\(error)"), run: run, isAttached: isAttached, pollCount: pollCount)
            }
            summary.update(pair.label, status: "\(run.status)")
            if let line = summary.lineIfDue(at: clock.now) {
                progress.line(line)
            }
            if run.status != lastStatus {
                progress.pair(pair.label, "\(lastStatus) → \(run.status)")
                if case .unknown(let text) = run.status {
                    logger.warning("The server reported a status this agent does not know; waiting for a known one", metadata: ["pair": pair.label, "status": text])
                }
                lastStatus = run.status
            }
            if let expected, !hasWarnedOverdue, run.status == .pending, clock.now - startedAt > expected * 3 + options.schedule.interval {
                hasWarnedOverdue = true
                logger.warning(
                    "The run is still PENDING long after earlier runs of the same name had finished; the platform's engine may not be picking it up",
                    metadata: ["pair": pair.label, "run.id": run.id, "expected.seconds": String(Int(expected.seconds))]
                )
            }
        }
        stateFile.recordFinished(runID: run.id)
        let duration = clock.now - startedAt
        if mayHaveLateDuplicate {
            // Give a late start request time to land, so that its run can be found and cancelled.
            let waited = clock.now - startedAt
            if waited < options.lateStartGrace {
                try? await clock.sleep(for: options.lateStartGrace - waited)
            }
            await cancelDuplicates(of: pair, key: key, keeping: run.id)
        }

        switch run.status {
        case .failed:
            let message = run.errorMessage ?? "the server gave no error message"
            progress.pair(pair.label, "FAILED: \(message)")
            return PairResult(pair: pair, state: .failed(message), run: run, isAttached: isAttached, pollCount: pollCount, duration: duration)
        case .cancelled:
            progress.pair(pair.label, "CANCELLED on the server")
            return PairResult(pair: pair, state: .cancelled("the run was cancelled on the server"), run: run, isAttached: isAttached, pollCount: pollCount, duration: duration)
        default:
            break
        }

        do {
            let results = try await client.results(runID: run.id, expectedCount: run.totalCases)
            let scores = pair.metrics.map { metric in
                MetricScore.compute(code: metric.code, results: results, summary: run.metricSummaries[metric.code])
            }
            progress.pair(pair.label, "completed: \(results.count) case results")
            return PairResult(pair: pair, state: .completed, run: run, results: results, scores: scores, isAttached: isAttached, pollCount: pollCount, duration: duration)
        } catch is CancellationError {
            return PairResult(pair: pair, state: .interrupted, run: run, isAttached: isAttached, pollCount: pollCount)
        } catch {
            progress.pair(pair.label, "could not read the results: \(error)")
            return PairResult(pair: pair, state: .error("could not read the results: \(error)"), run: run, isAttached: isAttached, pollCount: pollCount, duration: duration)
        }
    }

    /// Looks up what the server has for this pair. That is a run an earlier attempt of this
    /// job started for the same commit (found by the key in its trigger reference), and the
    /// durations of earlier completed runs of the same name.
    private func lookUp(_ pair: PlannedPair, key: String) async throws -> (existing: Run?, history: [Duration]) {
        let page = try await client.runs(projectID: projectID, search: pair.runName, status: nil, page: 0, size: 20)
        var history: [Duration] = []
        var candidates: [String] = []
        for item in page.content where item["name"].string == pair.runName {
            let status = RunStatus(item["status"].string)
            if status == .completed,
                let created = item["createdAt"].string.flatMap(Timestamp.parse),
                let completed = item["completedAt"].string.flatMap(Timestamp.parse)
            {
                history.append(.seconds(completed.timeIntervalSince(created)))
            }
            if status == .pending || status == .running || status == .completed, let id = item["id"].string {
                candidates.append(id)
            }
        }
        // Only the newest few can belong to this commit; older ones are earlier commits' runs.
        for id in candidates.prefix(3) {
            let run = try await client.run(id: id)
            if TriggerReference.parse(run.triggerReference)?.key == key {
                return (run, history)
            }
        }
        return (nil, history)
    }

    /// Starts the pair's run. The request is not idempotent, so after an ambiguous failure
    /// the agent looks for the run the request may have created before trying again.
    private func start(_ pair: PlannedPair, reference: String, key: String) async throws -> (run: Run, mayHaveLateDuplicate: Bool) {
        let body = pair.startRequest(triggerReference: reference)
        var attempt = 0
        var mayHaveLateDuplicate = false
        while true {
            do {
                return (try await client.startEvaluation(projectID: projectID, body: body), mayHaveLateDuplicate)
            } catch let error as APIError where isAmbiguous(error) && attempt < 3 {
                attempt += 1
                // A request that timed out may still be processed; a refused or rejected one is not.
                mayHaveLateDuplicate = mayHaveLateDuplicate || error.status == 504 || error.message.contains("timed out")
                logger.debug("Start request failed ambiguously; looking for the run before retrying", metadata: ["pair": pair.label, "error": "\(error)"])
                try await clock.sleep(for: Backoff(base: .seconds(1), cap: .seconds(8)).delay(forAttempt: attempt, random: random.unit()))
                if let existing = try await lookUp(pair, key: key).existing {
                    return (existing, mayHaveLateDuplicate)
                }
            }
        }
    }

    /// Cancels runs of this pair and job other than `keeping`: a start request that timed out
    /// may still have created a run after the agent started another one.
    private func cancelDuplicates(of pair: PlannedPair, key: String, keeping runID: String) async {
        do {
            let page = try await client.runs(projectID: projectID, search: pair.runName, status: nil, page: 0, size: 20)
            for item in page.content where item["name"].string == pair.runName && item["id"].string != runID {
                let status = RunStatus(item["status"].string)
                guard status == .pending || status == .running, let id = item["id"].string else { continue }
                let duplicate = try await client.run(id: id)
                guard TriggerReference.parse(duplicate.triggerReference)?.key == key else { continue }
                try await client.cancel(runID: id)
                logger.notice("Cancelled a duplicate run left by a start request that timed out", metadata: ["pair": pair.label, "run.id": id])
            }
        } catch {
            logger.warning("Could not check for duplicate runs", metadata: ["pair": pair.label, "error": "\(error)"])
        }
    }

    private func isAmbiguous(_ error: APIError) -> Bool {
        switch error.kind {
        case .unreachable, .invalidResponse:
            return true
        case .rejected:
            return [500, 502, 503, 504].contains(error.status ?? 0) && error.errorCode != "INTERNAL_ERROR"
                || error.status == 429
        case .unauthorized, .cancelled:
            return false
        }
    }

    private func cancel(_ run: Run, pair: PlannedPair) async {
        do {
            try await client.cancel(runID: run.id)
            stateFile.recordFinished(runID: run.id)
        } catch {
            logger.warning("Could not cancel the run", metadata: ["pair": pair.label, "run.id": run.id, "error": "\(error)"])
        }
    }
}

/// The state of every pair, summarised in one line at most once a minute, when a poll happens to run.
final class ProgressSummary: Sendable {
    private let interval = Duration.seconds(60)
    private let state = LockedValue<(total: Int, finished: Int, statuses: [String: String], lastLine: Duration, startedAt: Duration)>((0, 0, [:], .zero, .zero))

    func start(total: Int, at now: Duration) {
        state.withLock { $0 = (total, 0, [:], now, now) }
    }

    func update(_ label: String, status: String) {
        state.withLock { $0.statuses[label] = status }
    }

    func finish(_ label: String) {
        state.withLock { current in
            current.finished += 1
            current.statuses[label] = nil
        }
    }

    /// Returns a summary line when a minute has passed since the last one.
    func lineIfDue(at now: Duration) -> String? {
        state.withLock { current in
            guard now - current.lastLine >= interval else { return nil }
            current.lastLine = now
            var counts: [String: Int] = [:]
            for status in current.statuses.values {
                counts[status, default: 0] += 1
            }
            let waiting = counts.keys.sorted().map { "\(counts[$0]!) \($0)" }.joined(separator: ", ")
            let elapsed = formatDuration(now - current.startedAt)
            return "\(current.finished) of \(current.total) pairs finished after \(elapsed)" + (waiting.isEmpty ? "" : "; waiting on \(waiting)")
        }
    }
}

/// Progress lines on stderr that a person watching the CI log can follow: one per state
/// change of a pair, not one per poll.
public struct ProgressLog: Sendable {
    private let write: @Sendable (String) -> Void

    public init(write: @escaping @Sendable (String) -> Void) {
        self.write = write
    }

    public static let silent = ProgressLog { _ in }

    public func pair(_ label: String, _ message: String) {
        write("[\(label)] \(message)")
    }

    public func line(_ message: String) {
        write(message)
    }
}
