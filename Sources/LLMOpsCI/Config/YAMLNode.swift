import CYaml

/// One node of a parsed YAML document, with the place where it starts.
public struct YAMLNode: Sendable {
    public enum Content: Sendable {
        case scalar(String, isPlain: Bool)
        case sequence([YAMLNode])
        case mapping([(key: YAMLNode, value: YAMLNode)])
    }

    public var content: Content
    /// 1-based line of the node's first character.
    public var line: Int
    /// 1-based column of the node's first character.
    public var column: Int

    /// Whether this is a plain `null`, `~` or empty scalar.
    public var isNull: Bool {
        guard case .scalar(let text, let isPlain) = content, isPlain else { return false }
        return text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
    }

    var kindName: String {
        switch content {
        case .scalar: isNull ? "null" : "a scalar"
        case .sequence: "a list"
        case .mapping: "a mapping"
        }
    }
}

/// Limits that keep a hostile file from exhausting memory or the stack.
public struct YAMLLimits: Sendable {
    public var maxBytes = 1 << 20
    public var maxDepth = 64
    /// Nodes in the document after aliases are expanded.
    public var maxNodes = 100_000

    public init() {}
}

/// A YAML syntax error or a broken limit, with the place where it was found.
public struct YAMLError: Error, Sendable {
    public let message: String
    public let line: Int
    public let column: Int
}

/// Parses YAML text into a tree of nodes with libyaml's event parser.
///
/// Anchors and aliases are expanded into copies, so the tree has no references; the node
/// limit bounds that expansion.
public enum YAMLParser {
    public static func parse(_ text: String, limits: YAMLLimits = YAMLLimits()) throws(YAMLError) -> YAMLNode? {
        let bytes = Array(text.utf8)
        guard bytes.count <= limits.maxBytes else {
            throw YAMLError(
                message: "the file is \(bytes.count) bytes, more than the limit of \(limits.maxBytes) bytes",
                line: 1,
                column: 1
            )
        }
        var builder = TreeBuilder(limits: limits)
        do {
            try bytes.withUnsafeBufferPointer { buffer in
                try builder.run(buffer)
            }
        } catch let error as YAMLError {
            throw error
        } catch {
            throw YAMLError(message: "\(error)", line: 1, column: 1)
        }
        return builder.root
    }
}

private struct TreeBuilder {
    /// A sequence or mapping being built. It is a class so that appending a child mutates
    /// the one array in place, because copying an enum payload on every append made long lists quadratic.
    final class Frame {
        let isMapping: Bool
        let line: Int
        let column: Int
        let anchor: String?
        var items: [YAMLNode] = []
        var entries: [(key: YAMLNode, value: YAMLNode)] = []
        var pendingKey: YAMLNode?

        init(isMapping: Bool, line: Int, column: Int, anchor: String?) {
            self.isMapping = isMapping
            self.line = line
            self.column = column
            self.anchor = anchor
        }
    }

    let limits: YAMLLimits
    var stack: [Frame] = []
    var anchors: [String: YAMLNode] = [:]
    var nodeCount = 0
    var root: YAMLNode?
    var documentCount = 0

    init(limits: YAMLLimits) {
        self.limits = limits
    }

    mutating func run(_ buffer: UnsafeBufferPointer<UInt8>) throws {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLError(message: "libyaml could not start a parser", line: 1, column: 1)
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)

        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else {
                throw syntaxError(parser)
            }
            defer { yaml_event_delete(&event) }
            let line = Int(event.start_mark.line) + 1
            let column = Int(event.start_mark.column) + 1

            switch event.type {
            case YAML_STREAM_END_EVENT:
                return
            case YAML_DOCUMENT_START_EVENT:
                documentCount += 1
                if documentCount > 1 {
                    throw YAMLError(message: "the file contains more than one YAML document; keep only one", line: line, column: column)
                }
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
                let node = YAMLNode(content: .scalar(text, isPlain: scalar.style == YAML_PLAIN_SCALAR_STYLE), line: line, column: column)
                try add(node, anchor: string(scalar.anchor))
            case YAML_SEQUENCE_START_EVENT:
                try push(Frame(isMapping: false, line: line, column: column, anchor: string(event.data.sequence_start.anchor)))
            case YAML_MAPPING_START_EVENT:
                try push(Frame(isMapping: true, line: line, column: column, anchor: string(event.data.mapping_start.anchor)))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                try pop()
            case YAML_ALIAS_EVENT:
                let name = string(event.data.alias.anchor) ?? ""
                guard let target = anchors[name] else {
                    throw YAMLError(message: "the alias *\(name) refers to no anchor", line: line, column: column)
                }
                var copy = target
                copy.line = line
                copy.column = column
                nodeCount += count(target)
                try checkNodeCount(line: line, column: column)
                try add(copy, anchor: nil, counted: true)
            default:
                break
            }
        }
    }

    private func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }

    private func syntaxError(_ parser: yaml_parser_t) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        let context = parser.context.map { String(cString: $0) + ": " } ?? ""
        return YAMLError(
            message: "invalid YAML: \(context)\(problem)",
            line: Int(parser.problem_mark.line) + 1,
            column: Int(parser.problem_mark.column) + 1
        )
    }

    private func count(_ node: YAMLNode) -> Int {
        switch node.content {
        case .scalar: 1
        case .sequence(let items): 1 + items.reduce(0) { $0 + count($1) }
        case .mapping(let entries): 1 + entries.reduce(0) { $0 + count($1.key) + count($1.value) }
        }
    }

    private func checkNodeCount(line: Int, column: Int) throws {
        guard nodeCount <= limits.maxNodes else {
            throw YAMLError(
                message: "the document expands to more than \(limits.maxNodes) nodes (aliases included); simplify it",
                line: line,
                column: column
            )
        }
    }

    private mutating func push(_ frame: Frame) throws {
        guard stack.count < limits.maxDepth else {
            throw YAMLError(message: "the document nests deeper than \(limits.maxDepth) levels", line: frame.line, column: frame.column)
        }
        stack.append(frame)
    }

    private mutating func pop() throws {
        guard let frame = stack.popLast() else { return }
        let content: YAMLNode.Content = frame.isMapping ? .mapping(frame.entries) : .sequence(frame.items)
        try add(YAMLNode(content: content, line: frame.line, column: frame.column), anchor: frame.anchor)
    }

    private mutating func add(_ node: YAMLNode, anchor: String?, counted: Bool = false) throws {
        if !counted {
            nodeCount += 1
            try checkNodeCount(line: node.line, column: node.column)
        }
        if let anchor {
            anchors[anchor] = node
        }
        guard let top = stack.last else {
            root = node
            return
        }
        if !top.isMapping {
            top.items.append(node)
        } else if let pendingKey = top.pendingKey {
            top.entries.append((key: pendingKey, value: node))
            top.pendingKey = nil
        } else {
            top.pendingKey = node
        }
    }
}
