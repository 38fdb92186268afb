import Foundation
import MirrordControl
import Testing

/// Requests of the control protocol: the wire format, the defaults, and strict decoding that
/// names what is wrong.
@Suite("Control requests: wire format and strict decoding")
struct ControlRequestTests {
    /// `text` decoded as a request line.
    func decode(_ text: String) throws(ControlRequestError) -> ControlRequest {
        try ControlRequest(line: Data(text.utf8))
    }

    /// The error `text` is refused with, or nil if it decodes.
    func refusal(_ text: String) -> ControlRequestError? {
        do throws(ControlRequestError) {
            _ = try decode(text)
            return nil
        } catch {
            return error
        }
    }

    @Test("inject-fault reads kind, module and frame; module defaults to active and frame to 0")
    func injectFault() throws {
        #expect(
            try decode(#"{"verb":"inject-fault","kind":"lost","module":"spare","frame":12}"#)
                == .injectFault(FaultInjection(kind: .lost, module: .spare, frame: 12)))
        #expect(
            try decode(#"{"verb":"inject-fault","kind":"correctable"}"#)
                == .injectFault(FaultInjection(kind: .correctable, module: .active, frame: 0)))
        #expect(try decode(#"{"frame":1.0,"kind":"uncorrectable","verb":"inject-fault"}"#).verb == .injectFault)
    }

    @Test(
        "a Bool, a fraction, a negative number, a string or null is not a frame",
        arguments: [
            ("true", "true"), ("false", "false"), ("1.5", "1.5"), ("-1", "-1"), (#""3""#, #""3""#), ("null", "null"),
            ("1e30", "1e+30"), ("[1]", "an array"), (#"{"n":1}"#, "an object"),
        ])
    func badFrame(value: String, shown: String) {
        let line = #"{"verb":"inject-fault","kind":"uncorrectable","frame":"# + value + #","module":"spare"}"#
        let error = refusal(line)
        #expect(error == .invalidField("frame", expected: "a non-negative integer", found: shown))
        #expect(error?.description == "\"frame\" must be a non-negative integer, not \(shown)")
    }

    @Test("an unknown field is refused by name, in a payload and beside a verb that takes none")
    func unknownField() {
        let misspelt = refusal(#"{"verb":"inject-fault","kind":"lost","frmae":3}"#)
        #expect(misspelt == .unknownField("frmae", verb: .injectFault))
        #expect(misspelt?.description == "unknown field \"frmae\" in inject-fault; it takes kind, module, frame")
        let stray = refusal(#"{"verb":"status","kind":"lost"}"#)
        #expect(stray == .unknownField("kind", verb: .status))
        #expect(stray?.description == "unknown field \"kind\": status takes no field but \"verb\"")
        for verb in ControlVerb.allCases where verb != .injectFault {
            #expect(refusal(#"{"verb":"\#(verb.rawValue)","force":true}"#) == .unknownField("force", verb: verb))
        }
    }

    @Test("a missing required field is refused by name")
    func missingField() {
        let kind = refusal(#"{"verb":"inject-fault","module":"spare","frame":3}"#)
        #expect(kind == .missingField("kind", verb: .injectFault))
        #expect(kind?.description == "inject-fault needs \"kind\"")
        let verb = refusal(#"{"kind":"lost"}"#)
        #expect(verb == .missingField("verb", verb: nil))
        #expect(
            verb?.description
                == "a request needs \"verb\": one of status, inject-fault, replace-spare, reduplex, scrub, watch, take-over"
        )
    }

    @Test("an unknown verb is refused with the known ones; a verb must be a string")
    func unknownVerb() {
        let error = refusal(#"{"verb":"format-disk"}"#)
        #expect(error == .unknownVerb("format-disk"))
        #expect(
            error?.description
                == "unknown verb \"format-disk\"; known: status, inject-fault, replace-spare, reduplex, scrub, watch, take-over"
        )
        #expect(
            refusal(#"{"verb":7}"#)
                == .invalidField(
                    "verb", expected: "one of status, inject-fault, replace-spare, reduplex, scrub, watch, take-over",
                    found: "7"))
    }

    @Test("a kind or module that is not one of the protocol's names is refused with them")
    func badNames() {
        #expect(
            refusal(#"{"verb":"inject-fault","kind":"melted"}"#)
                == .invalidField("kind", expected: "one of lost, uncorrectable, correctable", found: #""melted""#))
        #expect(
            refusal(#"{"verb":"inject-fault","kind":"lost","module":1}"#)
                == .invalidField("module", expected: "one of active, spare", found: "1"))
    }

    @Test(
        "a line that is not one JSON object says so",
        arguments: ["\u{1}\u{2}garbage", "", "[1]", #""status""#, "42", "null", #"{"verb":"status"} {}"#])
    func notAnObject(line: String) {
        let error = refusal(line)
        #expect(error == .notAnObject)
        #expect(error?.description == "not a JSON object on one line")
    }

    @Test(
        "every request survives a round trip through its line",
        arguments: [
            ControlRequest.status, .replaceSpare, .reduplex, .scrub, .watch, .takeOver(TakeoverRequest()),
            .takeOver(TakeoverRequest(startRecord: "/var/lib/mirrord/export.img.machine-started", compared: true)),
            .takeOver(TakeoverRequest(told: "4711-523.17")),
            .injectFault(FaultInjection(kind: .lost)),
            .injectFault(FaultInjection(kind: .uncorrectable, module: .spare, frame: 81_234)),
            .injectFault(FaultInjection(kind: .correctable, module: .active, frame: 0)),
        ])
    func roundTrip(request: ControlRequest) throws {
        let line = try ControlCoding.line(for: request)
        #expect(!line.contains(UInt8(ascii: "\n")))
        #expect(try ControlRequest(line: line) == request)
    }

    @Test("take-over reads start_record (an absolute path) and compared (a Bool), both optional")
    func takeOver() throws {
        #expect(try decode(#"{"verb":"take-over"}"#) == .takeOver(TakeoverRequest()))
        #expect(
            try decode(#"{"verb":"take-over","start_record":"/srv/export.img.machine-started","compared":true}"#)
                == .takeOver(TakeoverRequest(startRecord: "/srv/export.img.machine-started", compared: true)))
        #expect(
            refusal(#"{"verb":"take-over","start_record":"export.img.machine-started"}"#)
                == .invalidField("start_record", expected: "an absolute path", found: #""export.img.machine-started""#))
        #expect(
            refusal(#"{"verb":"take-over","compared":"yes"}"#)
                == .invalidField("compared", expected: "true or false", found: #""yes""#))
        #expect(
            refusal(#"{"verb":"take-over","record":"/x"}"#)?.description
                == "unknown field \"record\" in take-over; it takes start_record, compared, told")
    }

    @Test("take-over told names a go line's token, alone: nothing else is asked beside it")
    func told() throws {
        #expect(
            try decode(#"{"verb":"take-over","told":"4711-523.17"}"#) == .takeOver(TakeoverRequest(told: "4711-523.17"))
        )
        #expect(
            String(decoding: try ControlCoding.line(for: .takeOver(TakeoverRequest(told: "a_b"))), as: UTF8.self)
                == #"{"told":"a_b","verb":"take-over"}"#)
        for bad in [#""""#, #""a b""#, #""a/b""#, "\"" + String(repeating: "x", count: 65) + "\"", "7"] {
            #expect(
                refusal(#"{"verb":"take-over","told":"# + bad + "}")
                    == .invalidField(
                        "told", expected: "a go line's token (1 to 64 of A-Z a-z 0-9 . _ -)",
                        found: bad.count > 42 ? "\"" + String(repeating: "x", count: 40) + "\"" : bad))
        }
        #expect(
            refusal(#"{"verb":"take-over","told":"t","start_record":"/r"}"#)
                == .invalidField("start_record", expected: "absent beside told", found: #""/r""#))
        #expect(
            refusal(#"{"verb":"take-over","told":"t","compared":true}"#)
                == .invalidField("compared", expected: "absent beside told", found: "true"))
        // compared: false beside told is the default, said out loud.
        #expect(
            try decode(#"{"verb":"take-over","told":"t","compared":false}"#) == .takeOver(TakeoverRequest(told: "t")))
    }

    @Test("the wire format is unchanged: one object, the verb beside its payload, keys sorted")
    func wireFormat() throws {
        let fault = ControlRequest.injectFault(FaultInjection(kind: .lost, module: .spare, frame: 12))
        #expect(
            String(decoding: try ControlCoding.line(for: fault), as: UTF8.self)
                == #"{"frame":12,"kind":"lost","module":"spare","verb":"inject-fault"}"#)
        #expect(
            String(decoding: try ControlCoding.line(for: .replaceSpare), as: UTF8.self) == #"{"verb":"replace-spare"}"#)
    }
}
