/// The version of this agent, sent in `User-Agent` and printed by `--version`.
public enum AgentVersion {
    public static let current = "0.1.0"
}
