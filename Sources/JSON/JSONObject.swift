/// One JSON object's members, read by name and type with `JSONDecoder`'s rules: a member left
/// out or `null` is absent, one of another type is an error that names it by its path.
public struct JSONObject: Sendable {
    public let members: [String: JSONValue]
    /// Where the object is in what was read: "" for the value itself, "choices[0].delta" for a member's.
    public let path: String

    public init(_ value: JSONValue, path: String = "") throws(JSONShapeError) {
        guard case .object(let members) = value else { throw JSONShapeError(path.isEmpty ? "not a JSON object" : "\(path) is not an object") }
        self.members = members
        self.path = path
    }

    /// The path of member `name`.
    public func located(_ name: String) -> String { self.path.isEmpty ? name : "\(self.path).\(name)" }

    public func string(_ name: String) throws(JSONShapeError) -> String? {
        try self.member(name, "a string") { if case .string(let text) = $0 { text } else { nil } }
    }

    public func int(_ name: String) throws(JSONShapeError) -> Int? {
        try self.member(name, "an integer") { if case .number(let number) = $0 { Int(exactly: number) } else { nil } }
    }

    public func double(_ name: String) throws(JSONShapeError) -> Double? {
        try self.member(name, "a number") { if case .number(let number) = $0 { number } else { nil } }
    }

    public func bool(_ name: String) throws(JSONShapeError) -> Bool? {
        try self.member(name, "true or false") { if case .bool(let flag) = $0 { flag } else { nil } }
    }

    public func object(_ name: String) throws(JSONShapeError) -> JSONObject? {
        guard let value = self.member(name) else { return nil }
        return try JSONObject(value, path: self.located(name))
    }

    /// An array of objects.
    public func objects(_ name: String) throws(JSONShapeError) -> [JSONObject]? {
        guard let value = self.member(name) else { return nil }
        guard case .array(let elements) = value else { throw JSONShapeError("\(self.located(name)) is not an array") }
        var objects: [JSONObject] = []
        for (index, element) in elements.enumerated() { objects.append(try JSONObject(element, path: "\(self.located(name))[\(index)]")) }
        return objects
    }

    private func member(_ name: String) -> JSONValue? {
        guard let value = self.members[name], value != .null else { return nil }
        return value
    }

    /// Member `name` as `take` reads it; `kind` names what it should have been.
    private func member<Value>(_ name: String, _ kind: String, _ take: (JSONValue) -> Value?) throws(JSONShapeError) -> Value? {
        guard let value = self.member(name) else { return nil }
        guard let taken = take(value) else { throw JSONShapeError("\(self.located(name)) is not \(kind)") }
        return taken
    }
}

/// JSON that is not of the shape expected: the member's path and what it is not.
public struct JSONShapeError: Error, Hashable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
