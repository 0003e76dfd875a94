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
        guard let value = self.member(name) else { return nil }
        guard case .string(let text) = value else { throw JSONShapeError("\(self.located(name)) is not a string") }
        return text
    }

    public func int(_ name: String) throws(JSONShapeError) -> Int? {
        guard let value = self.member(name) else { return nil }
        guard case .number(let number) = value, let integer = Int(exactly: number) else { throw JSONShapeError("\(self.located(name)) is not an integer") }
        return integer
    }

    public func double(_ name: String) throws(JSONShapeError) -> Double? {
        guard let value = self.member(name) else { return nil }
        guard case .number(let number) = value else { throw JSONShapeError("\(self.located(name)) is not a number") }
        return number
    }

    public func bool(_ name: String) throws(JSONShapeError) -> Bool? {
        guard let value = self.member(name) else { return nil }
        guard case .bool(let flag) = value else { throw JSONShapeError("\(self.located(name)) is not true or false") }
        return flag
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
}

/// JSON that is not of the shape expected: the member's path and what it is not.
public struct JSONShapeError: Error, Hashable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
