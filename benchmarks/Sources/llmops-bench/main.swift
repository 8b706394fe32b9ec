import LLMOpsCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

let usage = """
    Usage: llmops-bench gate-simulation [--pull-requests N] [--detection-pull-requests N] [--seed N]

    Monte-Carlo simulation of the merge gate's regression rule: prints markdown tables of
    the false-alarm rate (baseline and current scores from the same distribution) and of
    the detection rate of real drops, using the product's GatePolicy.

    Options:
      --pull-requests N            Simulated pull requests per false-alarm row (default 1000).
      --detection-pull-requests N  Simulated pull requests per detection row (default 500).
      --seed N                     Seed of the random numbers (default 20240601).

    """

struct Options {
    var falseAlarmPullRequests = 1000
    var detectionPullRequests = 500
    var seed: UInt64 = 20_240_601
}

func fail(_ message: String) -> Never {
    FileHandleOutput.standardError("llmops-bench: \(message)\n")
    exit(2)
}

func parseOptions(_ arguments: [String]) -> Options {
    guard arguments.first == "gate-simulation" else {
        if arguments.first == "--help" || arguments.first == "-h" {
            FileHandleOutput.standardOutput(usage)
            exit(0)
        }
        if let command = arguments.first {
            fail("unknown command '\(command)'. Expected 'gate-simulation'.\n\n\(usage)")
        }
        fail("missing command. Expected 'gate-simulation'.\n\n\(usage)")
    }
    var options = Options()
    var remaining = arguments.dropFirst()
    while let name = remaining.popFirst() {
        if name == "--help" || name == "-h" {
            FileHandleOutput.standardOutput(usage)
            exit(0)
        }
        guard let value = remaining.popFirst() else {
            fail("option \(name) needs a value.")
        }
        switch name {
        case "--pull-requests":
            guard let count = Int(value), count > 0 else { fail("--pull-requests must be a positive whole number, got '\(value)'.") }
            options.falseAlarmPullRequests = count
        case "--detection-pull-requests":
            guard let count = Int(value), count > 0 else { fail("--detection-pull-requests must be a positive whole number, got '\(value)'.") }
            options.detectionPullRequests = count
        case "--seed":
            guard let seed = UInt64(value) else { fail("--seed must be a non-negative whole number, got '\(value)'.") }
            options.seed = seed
        default:
            fail("unknown option '\(name)'.\n\n\(usage)")
        }
    }
    return options
}

/// Writes to stdout or stderr without Foundation.
enum FileHandleOutput {
    static func standardOutput(_ text: String) {
        print(text, terminator: "")
    }

    static func standardError(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }
}

let options = parseOptions(Array(CommandLine.arguments.dropFirst()))
let confidence = Configuration.Regression().confidence
let level = 1 - confidence

var falseAlarmSettings: [SimulationSetting] = []
for model in ScoreModel.allCases {
    for cases in [50, 100, 200] {
        for maxDrop in [0.02, 0.0] {
            falseAlarmSettings.append(SimulationSetting(model: model, cases: cases, drop: 0, maxDrop: maxDrop))
        }
    }
}
var detectionSettings: [SimulationSetting] = []
for model in ScoreModel.allCases {
    for drop in [0.02, 0.05, 0.10] {
        detectionSettings.append(SimulationSetting(model: model, cases: 100, drop: drop, maxDrop: 0.02))
    }
}

let simulator: GateSimulator
do {
    simulator = try GateSimulator()
} catch {
    fail("could not set up the simulation: \(error)")
}

func decimal(_ value: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits {
        scale *= 10
    }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int(scaled / scale)
    var fraction = String(Int(scaled) - whole * Int(scale))
    while fraction.count < digits {
        fraction = "0" + fraction
    }
    let sign = value < 0 && scaled > 0 ? "−" : ""
    return digits > 0 ? "\(sign)\(whole).\(fraction)" : "\(sign)\(whole)"
}

let falseAlarms = await simulator.simulateAll(falseAlarmSettings, pullRequests: options.falseAlarmPullRequests, seed: options.seed, table: 1)
let detections = await simulator.simulateAll(detectionSettings, pullRequests: options.detectionPullRequests, seed: options.seed, table: 2)

var output = ""
output += "Each simulated pull request has \(GateSimulator.pairs) pairs × \(GateSimulator.metricCodes.count) metrics "
output += "(expected scores \(GateSimulator.metricMeans.map { decimal($0, 2) }.joined(separator: ", "))), "
output += "so the gate makes \(GateSimulator.pairs * GateSimulator.metricCodes.count) Holm-corrected comparisons per pull request. "
output += "Confidence \(decimal(confidence, 2)), so the allowed false-alarm rate is \(decimal(level, 2)) per pull request. "
output += "Seed \(options.seed).\n\n"

output += "False alarms: baseline and current scores drawn from the same distribution, \(options.falseAlarmPullRequests) pull requests per row. "
output += "`max_drop` 0 leaves the Wilcoxon test alone in charge.\n\n"
output += "| Score model | Cases | max_drop | Failed pull requests | False-alarm rate | 95% interval | Significantly above \(decimal(level, 2)) |\n"
output += "|---|---:|---:|---:|---:|---:|---|\n"
for outcome in falseAlarms {
    let setting = outcome.setting
    let interval = wilsonInterval(successes: outcome.failedPullRequests, trials: outcome.pullRequests)
    output += "| \(setting.model.rawValue) | \(setting.cases) | \(decimal(setting.maxDrop, 2)) | \(outcome.failedPullRequests) of \(outcome.pullRequests) "
    output += "| \(decimal(outcome.failureRate, 4)) | \(decimal(interval.lowerBound, 4))–\(decimal(interval.upperBound, 4)) "
    output += "| \(interval.lowerBound > level ? "yes" : "no") |\n"
}
let pooledFailures = falseAlarms.reduce(0) { $0 + $1.failedPullRequests }
let pooledPullRequests = falseAlarms.reduce(0) { $0 + $1.pullRequests }
let pooledInterval = wilsonInterval(successes: pooledFailures, trials: pooledPullRequests)
output += "\nOver all \(falseAlarms.count) rows: \(pooledFailures) of \(pooledPullRequests) pull requests failed, "
output += "a rate of \(decimal(Double(pooledFailures) / Double(max(pooledPullRequests, 1)), 4)) "
output += "(95% interval \(decimal(pooledInterval.lowerBound, 4))–\(decimal(pooledInterval.upperBound, 4))).\n"

output += "\nDetection: the first metric (expected score \(decimal(GateSimulator.metricMeans[0], 2))) of one pair drops by the given amount, "
output += "and every other comparison is unchanged. Each row has \(options.detectionPullRequests) pull requests, with max_drop 0.02.\n\n"
output += "| Score model | Cases | True drop | Mean observed Δ | Dropped metric failed | Pull request failed |\n"
output += "|---|---:|---:|---:|---:|---:|\n"
for outcome in detections {
    let setting = outcome.setting
    output += "| \(setting.model.rawValue) | \(setting.cases) | \(decimal(setting.drop, 2)) | \(decimal(outcome.meanDroppedMetricDelta, 4)) "
    output += "| \(decimal(outcome.droppedMetricFailureRate, 3)) | \(decimal(outcome.failureRate, 3)) |\n"
}

output += "\nThe gate fails a metric when its observed drop exceeds max_drop and the one-sided Wilcoxon test, "
output += "after the Holm correction, finds the scores lower than the baseline's. The test compares with no change, not with "
output += "max_drop, so a true drop equal to max_drop (the 0.02 rows) still fails some pull requests.\n"
output += "\nScore models:\n\n"
for model in ScoreModel.allCases {
    output += "- \(model.rawValue): \(model.description).\n"
}
FileHandleOutput.standardOutput(output)

let exceeded = falseAlarms.filter { wilsonInterval(successes: $0.failedPullRequests, trials: $0.pullRequests).lowerBound > level }
if !exceeded.isEmpty {
    FileHandleOutput.standardError(
        "llmops-bench: the false-alarm rate is significantly above \(decimal(level, 2)) in \(exceeded.count) of \(falseAlarms.count) settings.\n"
    )
}
