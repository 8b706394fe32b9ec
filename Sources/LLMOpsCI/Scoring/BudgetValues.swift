/// Per-run resource figures that budgets limit: total tokens and cost, and the median and
/// 95th percentile of the cases' model latency.
public enum BudgetValues {
    public static func compute(run: Run?, results: [CaseResult]) -> [Configuration.BudgetKind: Double] {
        var values: [Configuration.BudgetKind: Double] = [:]
        let caseTokens = results.reduce(0.0) { $0 + ($1.inputTokens ?? 0) + ($1.outputTokens ?? 0) }
        // The server may leave its totals at 0 when its engine does not report them.
        if let tokens = run?.totalTokens, tokens > 0 {
            values[.totalTokens] = tokens
        } else if caseTokens > 0 {
            values[.totalTokens] = caseTokens
        }
        if let cost = run?.totalCost, cost > 0 {
            values[.totalCost] = cost
        }
        let latencies = results.compactMap(\.latencyMilliseconds).filter(\.isFinite).sorted()
        values[.latencyP50] = percentile(latencies, 0.5)
        values[.latencyP95] = percentile(latencies, 0.95)
        return values
    }
}
