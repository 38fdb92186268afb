import Foundation
import MirrorCore
import Synchronization
import Testing

@testable import MirrorEmulation

extension MachineSuites {
    /// Failover, simplex and re-duplex on the emulated machine under CPU stores and DMA, checked
    /// against the workload's own record of what it stored (``StoreRecord``), which shares no
    /// code with the store path.
    @Suite("Failover to the spare with nothing lost, and re-duplex after a replacement")
    struct FailoverTests {
        /// A machine whose workload keeps its record (the MMU off: the record is exact then).
        func recordingMachine(seed: UInt64 = 1) throws -> EmulatedMachine {
            var options = testOptions(pattern: .uniform, seed: seed)
            options.mmu.enabled = false
            options.workload.churn = 0
            options.recordsStores = true
            return try EmulatedMachine(options: options)
        }

        /// Starts the machine and duplexes it; the CPUs and DMA keep running in lockstep.
        func duplexed(_ machine: EmulatedMachine) throws {
            try machine.start()
            waitUntil("the CPUs have stored") { machine.storeCount > 0 }
            let summary = DuplexEngine(hardware: machine, policy: testPolicy).run()
            #expect(summary.isDuplexed, "\(summary.message)")
        }

        /// Lets the CPUs make `count` more stores.
        func storesGo(on machine: EmulatedMachine, _ count: Int = 20_000) {
            let reached = machine.storeCount + count
            waitUntil("the CPUs made \(count) more stores") { machine.storeCount >= reached }
        }

        @Test(
            "losing the whole active module while duplexed: the CPUs and DMA go on with the spare, nothing lost",
            arguments: [UInt64(1), 2])
        func activeModuleLost(seed: UInt64) throws {
            let machine = try recordingMachine(seed: seed)
            let record = try #require(machine.storeRecord)
            try duplexed(machine)
            storesGo(on: machine)
            let survivor = machine.spare
            try machine.inject(ModuleFault(.lost, module: .active))
            #expect(machine.takeFaults() == [ModuleFault(.lost, module: .active)])
            let blackout = try machine.failOver()
            #expect(blackout > 0)
            #expect(machine.active === survivor, "the former spare runs the machine")
            #expect(!machine.hasSpare && !machine.isLockstep)
            storesGo(on: machine)
            machine.shutdown()
            #expect(record.storedUnits > 1_000, "the workload stored little: the check proves little")
            #expect(record.lostUnits(in: machine.active) == [], "every completed store is on the surviving module")
            #expect(record.lostUnits(in: machine.spare).count > record.storedUnits / 2, "the failed module is poisoned")
        }

        @Test("an uncorrectable error in one active frame: failover, and the frame's data comes from the spare")
        func uncorrectableActiveFrame() throws {
            let machine = try recordingMachine()
            let record = try #require(machine.storeRecord)
            try duplexed(machine)
            storesGo(on: machine)
            let frame = machine.geometry.frameCount / 3
            try machine.inject(ModuleFault(.uncorrectable, module: .active, frame: frame))
            _ = try machine.failOver()
            machine.shutdown()
            #expect(record.lostUnits(in: machine.active) == [])
            let size = machine.geometry.frameSize
            let poisoned = (0..<size).allSatisfy {
                machine.active.base.load(fromByteOffset: frame * size + $0, as: UInt8.self) == 0xDE
            }
            #expect(!poisoned, "the frame on the surviving module holds its data, not the poison")
        }

        @Test("negative control: with lockstep off before the active module fails, the checker finds the lost stores")
        func lockstepOffLosesStores() throws {
            let machine = try recordingMachine()
            let record = try #require(machine.storeRecord)
            try duplexed(machine)
            machine.setLockstep(false)
            machine.setDMADualWrite(false)
            storesGo(on: machine)
            try machine.inject(ModuleFault(.lost, module: .active))
            _ = try machine.failOver()
            machine.shutdown()
            #expect(record.lostUnits(in: machine.active).count > 100, "stores made outside lockstep must be missing")
        }

        @Test(
            "the spare failing in each phase of a duplex aborts it cleanly: never duplexed, lockstep off",
            arguments: [DuplexState.fullCopy, .passes, .blackout, .verify])
        func spareFailsDuringDuplex(phase: DuplexState) throws {
            let machine = try recordingMachine()
            try machine.start()
            waitUntil("the CPUs have stored") { machine.storeCount > 0 }
            let engine = DuplexEngine(hardware: machine, policy: testPolicy)
            // As the service does: the fault's doorbell aborts the duplex.
            machine.setFaultDoorbell { engine.stopToken.abort(because: $0) }
            let injected = Atomic<Bool>(false)
            let fault = ModuleFault(.lost, module: .spare)
            let summary = engine.run { event in
                guard !injected.load(ordering: .relaxed) else { return }
                switch (phase, event) {
                case (.blackout, .fullCopyCompleted):
                    // Raised inside the next blackout (a look, or the final one), the CPUs stopped.
                    machine.injectAtNextBlackout(fault)
                case (_, .stateChanged(_, let to)) where to == phase && phase != .blackout:
                    try? machine.inject(fault)
                default:
                    return
                }
                injected.store(true, ordering: .relaxed)
            }
            let fired = injected.load(ordering: .relaxed)
            #expect(fired)
            #expect(summary.outcome == .failed(.moduleFailed), "\(summary.message)")
            #expect(summary.message.contains("spare module: module lost"))
            #expect(!machine.isLockstep && !machine.isInBlackout)
            storesGo(on: machine, 1_000)
            machine.shutdown()
        }

        @Test("a replaced spare is duplexed anew: verified equal, lockstep on, nothing lost")
        func replacementIsReduplexed() throws {
            let machine = try recordingMachine()
            let record = try #require(machine.storeRecord)
            try duplexed(machine)
            try machine.inject(ModuleFault(.lost, module: .spare))
            machine.removeSpare()
            #expect(!machine.hasSpare)
            storesGo(on: machine)
            try machine.installSpare()
            #expect(!differingFrames(machine).isEmpty, "a replacement holds arbitrary contents")
            let summary = DuplexEngine(hardware: machine, policy: testPolicy).run()
            #expect(summary.isDuplexed, "\(summary.message)")
            #expect(summary.verify?.mismatches == 0)
            storesGo(on: machine)
            machine.shutdown()
            #expect(differingFrames(machine) == [])
            #expect(record.lostUnits(in: machine.active) == [])
            #expect(record.lostUnits(in: machine.spare) == [])
        }

        @Test("no failover without a spare, and a spare cannot be installed twice")
        func refusals() throws {
            let machine = try EmulatedMachine(options: quietOptions())
            machine.removeSpare()
            #expect(throws: HardwareError.self) { try machine.failOver() }
            #expect(throws: HardwareError.self) { try machine.inject(ModuleFault(.lost, module: .spare)) }
            try machine.installSpare()
            #expect(throws: HardwareError.self) { try machine.installSpare() }
        }
    }
}
