import Testing

@testable import MirrordService

#if canImport(Glibc)
import Glibc
#endif

@Suite("Service thread: made once, every job on it")
struct ServiceThreadTests {
    @Test("a thousand jobs (a duplex, then scrub slices) all run on the one thread made at start-up")
    func oneThread() async throws {
        let thread = try ServiceThread(name: "test-service")
        defer { thread.stop() }
        var seen: Set<UInt> = []
        for job in 0..<1_000 {
            let (id, value) = await thread.run { (UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))), job * 2) }
            #expect(value == job * 2)
            seen.insert(id)
        }
        #expect(seen.count == 1, "jobs ran on \(seen.count) threads")
        #expect(!seen.contains(UInt(pthread_self())), "not on the caller's thread")
    }

    @Test("stop ends the thread after the job it runs; stopping twice is harmless")
    func stop() async throws {
        let thread = try ServiceThread(name: "test-stop")
        #expect(await thread.run { 7 } == 7)
        thread.stop()
        thread.stop()
    }
}
