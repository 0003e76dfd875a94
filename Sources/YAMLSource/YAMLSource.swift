import Yams

/// A YAML file as its reader needs it for good errors: the composed nodes (with their lines),
/// what is wrong with the text itself (where, and why), the line of any coding path, unknown
/// keys, and decoding errors in words (`pitch: should be a list`), never Yams' or Swift's own.
public struct YAMLSource {
    /// What is wrong, and where: `line` is 1-based, `field` the dotted path (`closings.callback`).
    public struct Problem: Error, Sendable, Hashable {
        public var line: Int?
        public var field: String?
        public var message: String
    }

    public let root: Node

    public init(root: Node) { self.root = root }

    /// Composes `text`; an empty document or broken YAML is a `Problem` with the line and the
    /// parser's reason.
    public init(_ text: String) throws(Problem) {
        let composed: Node?
        do {
            composed = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw Self.problem(error)
        } catch {
            throw Problem(line: nil, field: nil, message: "is not valid YAML")
        }
        guard let composed else { throw Problem(line: nil, field: nil, message: "is empty") }
        self.root = composed
    }

    static func problem(_ error: YamlError) -> Problem {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return Problem(line: mark.line, field: nil, message: "is not valid YAML: \(problem)")
        default:
            return Problem(line: nil, field: nil, message: "is not valid YAML")
        }
    }

    /// The first key of the mapping at `path` (the root when empty) that is not in `known`.
    public func unknownKey(at path: [String] = [], known: Set<String>) -> Problem? {
        var node = self.root
        for key in path {
            guard let child = node.mapping?[key] else { return nil }
            node = child
        }
        for key in node.mapping.map({ Array($0.keys) }) ?? [] {
            guard let name = key.string, !known.contains(name) else { continue }
            return Problem(line: key.mark?.line, field: (path + [name]).joined(separator: "."), message: "is not a known setting")
        }
        return nil
    }

    /// The first unknown key in any item of the list at the root key `list`.
    public func unknownKeyInItems(of list: String, known: Set<String>) -> Problem? {
        for (index, item) in (self.root.mapping?[list]?.sequence.map(Array.init) ?? []).enumerated() {
            for key in item.mapping.map({ Array($0.keys) }) ?? [] {
                guard let name = key.string, !known.contains(name) else { continue }
                return Problem(line: key.mark?.line, field: "\(list)[\(index)].\(name)", message: "is not a known setting")
            }
        }
        return nil
    }

    /// Decodes `type` from the nodes; a decoding error becomes a `Problem` with the line of its path.
    public func decode<T: Decodable>(_ type: T.Type) throws(Problem) -> T {
        do {
            return try YAMLDecoder().decode(type, from: self.root)
        } catch let error as DecodingError {
            throw self.problem(error)
        } catch {
            throw Problem(line: nil, field: nil, message: "cannot be read")
        }
    }

    public func problem(_ error: DecodingError) -> Problem {
        switch error {
        case .keyNotFound(let key, let context):
            return Problem(line: self.line(of: context.codingPath), field: Self.name(context.codingPath + [key]), message: "is missing")
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return Problem(line: self.line(of: context.codingPath), field: Self.name(context.codingPath), message: "should be \(Self.kind(type))")
        case .dataCorrupted(let context):
            return Problem(line: self.line(of: context.codingPath), field: Self.name(context.codingPath), message: context.debugDescription)
        @unknown default:
            return Problem(line: nil, field: nil, message: "cannot be read")
        }
    }

    /// The line a coding path starts on, 1-based: the key's own line for block values.
    public func line(of path: [any CodingKey]) -> Int? {
        var node = self.root
        var line = self.root.mark?.line
        for key in path {
            if let index = key.intValue, let sequence = node.sequence, index < sequence.count {
                node = sequence[index]
            } else if let mapping = node.mapping, let child = mapping[key.stringValue] {
                if let keyNode = mapping.keys.first(where: { $0.string == key.stringValue }) { line = keyNode.mark?.line }
                node = child
                continue
            } else {
                break
            }
            line = node.mark?.line ?? line
        }
        return line
    }

    /// `retry.busy.delay`, `pitch[2]`.
    public static func name(_ path: [any CodingKey]) -> String {
        var name = ""
        for key in path {
            if let index = key.intValue {
                name += "[\(index)]"
            } else {
                name += name.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return name
    }

    /// What a Swift type is called in a YAML file.
    public static func kind(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "a whole number"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "text"
        case is Node.Scalar.Type: return "a single value, not a list or a mapping"
        case is Node.Mapping.Type: return "a mapping of names to values"
        case is Node.Sequence.Type: return "a list"
        default: return "a \(String(describing: type).lowercased())"
        }
    }
}
