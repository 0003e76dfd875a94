import JSON
import Testing

/// Members by name and type: absent when left out or null, refused by path when of another type.
@Suite struct JSONObjectTests {
    let object: JSONObject

    init() throws {
        let value = try #require(JSONReader.read(Array(#"{"s":"x","i":3,"d":0.5,"b":true,"n":null,"o":{"a":[{"k":1},{"k":"2"}]}}"#.utf8)))
        self.object = try JSONObject(value)
    }

    @Test func membersAreReadByTheirTypes() throws {
        #expect(try self.object.string("s") == "x" && self.object.int("i") == 3 && self.object.double("d") == 0.5 && self.object.bool("b") == true)
        #expect(try self.object.double("i") == 3)
        #expect(try self.object.string("n") == nil && self.object.string("missing") == nil && self.object.object("n") == nil)
        let elements = try #require(try self.object.object("o")?.objects("a"))
        #expect(elements.map(\.path) == ["o.a[0]", "o.a[1]"])
        #expect(try elements[0].int("k") == 1)
    }

    @Test func aMemberOfAnotherTypeIsRefusedByItsPath() throws {
        #expect(throws: JSONShapeError("s is not an integer")) { try self.object.int("s") }
        #expect(throws: JSONShapeError("d is not an integer")) { try self.object.int("d") }
        #expect(throws: JSONShapeError("i is not true or false")) { try self.object.bool("i") }
        #expect(throws: JSONShapeError("o.a[1].k is not an integer")) { try self.object.object("o")?.objects("a")?[1].int("k") }
        #expect(throws: JSONShapeError("o is not an array")) { try self.object.objects("o") }
        #expect(throws: JSONShapeError("s is not an object")) { try self.object.object("s") }
        #expect(throws: JSONShapeError("not a JSON object")) { try JSONObject(.array([])) }
    }
}
