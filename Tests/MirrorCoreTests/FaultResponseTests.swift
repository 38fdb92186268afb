import MirrorCore
import Testing

@Suite("Fault responses: the rules of fault tolerance in service, as a table")
struct FaultResponseTests {
    let activeLost = ModuleFault(.lost, module: .active)
    let spareLost = ModuleFault(.lost, module: .spare)
    let activeFrame = ModuleFault(.uncorrectable, module: .active, frame: 7)
    let activeCorrectable = ModuleFault(.correctable, module: .active, frame: 7)

    @Test("duplexed: the active module failing fails over, the spare failing is removed")
    func duplexed() {
        #expect(FaultResponse.decide(activeLost, failing: true, state: .duplexed, hasSpare: true) == .failOver)
        #expect(FaultResponse.decide(activeFrame, failing: true, state: .duplexed, hasSpare: true) == .failOver)
        #expect(FaultResponse.decide(activeCorrectable, failing: true, state: .duplexed, hasSpare: true) == .failOver)
        #expect(FaultResponse.decide(spareLost, failing: true, state: .duplexed, hasSpare: true) == .removeSpare)
        #expect(FaultResponse.decide(activeCorrectable, failing: false, state: .duplexed, hasSpare: true) == .noted)
    }

    @Test("duplexing: a failing spare ends the duplex; the active module lost loses memory; a predicted failure waits")
    func duplexing() {
        #expect(FaultResponse.decide(spareLost, failing: true, state: .duplexing, hasSpare: true) == .abortDuplex)
        #expect(
            FaultResponse.decide(activeCorrectable, failing: true, state: .duplexing, hasSpare: true)
                == .failOverWhenDuplexed)
        guard
            case .fatal(let what) = FaultResponse.decide(activeFrame, failing: true, state: .duplexing, hasSpare: true)
        else {
            Issue.record("an uncorrectable active frame before the spare is duplexed must be fatal")
            return
        }
        #expect(what.contains("the data of frame 7 is lost"))
    }

    @Test("simplex: a second failure says exactly what was lost; a removed spare cannot fail")
    func simplex() {
        guard case .fatal(let what) = FaultResponse.decide(activeLost, failing: true, state: .simplex, hasSpare: false)
        else {
            Issue.record("losing the only module must be fatal")
            return
        }
        #expect(
            what
                == "a second failure while simplex: active module module lost, with no duplexed spare to fail over to: the machine's memory is lost"
        )
        #expect(FaultResponse.decide(spareLost, failing: true, state: .simplex, hasSpare: false) == .noted)
        #expect(FaultResponse.decide(spareLost, failing: true, state: .simplex, hasSpare: true) == .removeSpare)
        #expect(FaultResponse.decide(activeCorrectable, failing: true, state: .simplex, hasSpare: false) == .noted)
    }

    @Test(
        "correctable errors predict a failure at the limit within the window, and follow the module through a failover")
    func ledger() {
        var ledger = CorrectableErrorLedger(limit: 3, window: 1_000)
        let predicted = [0, 500, 1_200, 1_300].map { ledger.record(.spare, now: UInt64($0)) }
        #expect(predicted == [false, false, false, true], "the first error left the window before the third")
        ledger.failedOver()
        #expect(ledger.count(.active, now: 1_300) == 3 && ledger.count(.spare, now: 1_300) == 0)
        var never = CorrectableErrorLedger(limit: 0, window: 1_000)
        let none = (0..<100).map { never.record(.active, now: UInt64($0)) }
        #expect(!none.contains(true), "a limit of 0 never predicts a failure")
    }
}
