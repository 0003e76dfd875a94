import Testing

@testable import YAMLSource

@Suite struct YAMLSourceTests {
    struct Sample: Decodable {
        var name: String
        var steps: [String]
        var nested: Nested
        struct Nested: Decodable { var count: Int }
    }

    @Test func brokenYAMLSaysWhereAndWhy() {
        let error = #expect(throws: YAMLSource.Problem.self) { try YAMLSource("name: a\nsteps: [one\nnested: {count: 1}\n") }
        #expect(error?.line == 3, "\(String(describing: error))")
        #expect(error?.message.hasPrefix("is not valid YAML: ") == true && error!.message.count > "is not valid YAML: ".count)
        #expect(throws: YAMLSource.Problem(line: nil, field: nil, message: "is empty")) { try YAMLSource("") }
    }

    @Test func anUnknownKeyIsFoundWithItsLineAtTheRootOrInsideAMapping() throws {
        let source = try YAMLSource("name: a\ngaol: b\nnested:\n  count: 1\n  cuont: 2\n")
        #expect(source.unknownKey(known: ["name", "nested"]) == .init(line: 2, field: "gaol", message: "is not a known setting"))
        #expect(source.unknownKey(at: ["nested"], known: ["count"]) == .init(line: 5, field: "nested.cuont", message: "is not a known setting"))
        #expect(source.unknownKey(at: ["nested"], known: ["count", "cuont"]) == nil)
    }

    @Test func aWrongTypeNamesTheFieldItsLineAndWhatItShouldBe() throws {
        let source = try YAMLSource("name: a\nsteps:\n  one: 1\nnested: {count: 1}\n")
        let error = #expect(throws: YAMLSource.Problem.self) { try source.decode(Sample.self) }
        #expect(error == .init(line: 2, field: "steps", message: "should be a list"))
        let missing = try YAMLSource("name: a\nsteps: []\nnested: {}\n")
        #expect(throws: YAMLSource.Problem(line: 3, field: "nested.count", message: "is missing")) { try missing.decode(Sample.self) }
        let notNumber = try YAMLSource("name: a\nsteps: []\nnested:\n  count: many\n")
        #expect(throws: YAMLSource.Problem(line: 4, field: "nested.count", message: "should be a whole number")) { try notNumber.decode(Sample.self) }
    }
}
