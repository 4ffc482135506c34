import Foundation
import FuzzSupport
@testable import Marquee

/// The JSON body reader: no crash on any bytes; what it accepts is nested no deeper than the
/// limit, reads back the same once written by the encoder the answers use, and the body reader
/// agrees with it; the field checks of a handler take any member without crashing.
runFuzzer { bytes in
    let parsed: JSONValue
    do {
        parsed = try JSONReader.parse(bytes)
    } catch {
        if (error as? JSONReader.Failure) == .tooDeep { check(JSONBody.nestingDepth(bytes) > JSONBody.maxDepth, "tooDeep below the limit") }
        check((try? JSONReader.object(bytes)) == nil, "the body reader accepted what the parser refused")
        return
    }
    check(JSONBody.nestingDepth(bytes) <= JSONBody.maxDepth, "accepted a document deeper than \(JSONBody.maxDepth)")
    let written: Data
    do {
        written = try JSONEncoder().encode(parsed)
    } catch {
        fatalError("the encoder refused a parsed document: \(error)")
    }
    guard let again = try? JSONReader.parse(Array(written)) else {
        fatalError("the parser refused what the encoder wrote: \(String(decoding: written, as: UTF8.self))")
    }
    check(sameDocument(parsed, again), "\(parsed) was written and read back as \(again)")

    let object = try? JSONReader.object(bytes)
    if case .object(let members) = parsed {
        check(object == members, "the body reader disagrees with the parser on an object")
        var errors = FieldErrors()
        for field in members.keys { _ = errors.string(members, field, maxLength: 64) }
        if !errors.isEmpty { check((try? errors.check()) == nil, "field problems did not become a 400") }
    } else {
        check(object == nil, "the body reader accepted a document that is not an object")
    }
}

/// Equal, numbers compared by value: the encoder writes 1.0 as 1, which reads back as an Int.
func sameDocument(_ left: JSONValue, _ right: JSONValue) -> Bool {
    switch (left, right) {
    case (.array(let a), .array(let b)): a.count == b.count && zip(a, b).allSatisfy(sameDocument)
    case (.object(let a), .object(let b)): a.count == b.count && a.allSatisfy { key, value in b[key].map { sameDocument(value, $0) } ?? false }
    case (.int(let a), .double(let b)), (.double(let b), .int(let a)): Double(a) == b
    default: left == right
    }
}
