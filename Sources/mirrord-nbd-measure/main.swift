// mirrord-nbd-measure: times a pipelined write of a whole source file to an NBD export, for
// scripts/nbd-measure.sh, which runs nbdcopy on the same bytes to the same export in the same run.
// Not a test: it prints figures. The baseline `mirrord bench --only remote` will grow from.
//
// Usage: mirrord-nbd-measure URI SOURCE [IN_FLIGHT [REQUEST_BYTES [REPEATS [CONNECTIONS]]]]
import MirrorNBD

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Seconds on the monotonic clock.
func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// `value` with two decimals, without Foundation.
func twoDecimals(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

/// Prints to stderr and exits 1.
func fail(_ message: String) -> Never {
    let line = "mirrord-nbd-measure: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    fail("usage: mirrord-nbd-measure URI SOURCE [IN_FLIGHT [REQUEST_BYTES [REPEATS [CONNECTIONS]]]]")
}
let uri = arguments[1]
let inFlight = arguments.count > 3 ? Int(arguments[3]) ?? 64 : 64
let requestBytes = arguments.count > 4 ? Int(arguments[4]) ?? 256 << 10 : 256 << 10
let repeats = arguments.count > 5 ? Int(arguments[5]) ?? 3 : 3
let connections = arguments.count > 6 ? Int(arguments[6]) ?? 1 : 1
let frameSize = 4096

// The active memory: the source file read into page-aligned anonymous memory.
let fd = open(arguments[2], O_RDONLY)
guard fd >= 0 else { fail("open \(arguments[2]): \(String(cString: strerror(errno)))") }
var status = stat()
fstat(fd, &status)
let size = Int(status.st_size)
guard size > 0, size % frameSize == 0 else { fail("\(arguments[2]): size \(size) is not whole 4 KiB frames") }
let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
var loaded = 0
while loaded < size {
    let n = read(fd, memory.baseAddress! + loaded, size - loaded)
    guard n > 0 else { fail("read \(arguments[2]): \(String(cString: strerror(errno)))") }
    loaded += n
}
close(fd)

do {
    let sessionStart = now()
    // One connection: the pipelined writer itself; more: split across them (multi-conn).
    let single: NBDPipelinedWriter?
    let multi: NBDMultiConnectionWriter?
    if connections > 1 {
        multi = try NBDMultiConnectionWriter(
            uri: uri, connections: connections, maxInFlight: inFlight, maxRequestBytes: requestBytes)
        single = nil
    } else {
        single = try NBDPipelinedWriter(
            export: try NBDExport(uri: uri), maxInFlight: inFlight, maxRequestBytes: requestBytes)
        multi = nil
    }
    let exportSize = single?.export.size ?? multi!.writers[0].export.size
    guard exportSize >= UInt64(size) else { fail("\(uri) holds \(exportSize) bytes, fewer than \(size)") }
    var times: [Double] = []
    var flushTimes: [Double] = []
    var summary: NBDPipelinedWriter.Summary?
    for _ in 0..<repeats {
        let start = now()
        if let single {
            summary = try single.write(
                from: UnsafeRawBufferPointer(memory), frames: 0..<(size / frameSize), frameSize: frameSize)
        } else {
            summary = try multi!.write(
                from: UnsafeRawBufferPointer(memory), frames: 0..<(size / frameSize), frameSize: frameSize)
        }
        let written = now()
        try single?.flush()
        try multi?.flush()
        times.append(now() - start)
        flushTimes.append(now() - written)
    }
    for writer in single.map({ [$0] }) ?? multi!.writers { try writer.export.shutdown() }
    // What nbdcopy's wall time covers too, but for its process start and its read of the source:
    // connect, every write, flush, disconnect (meaningful with one repeat).
    let session = now() - sessionStart
    times.sort()
    let median = times[times.count / 2]
    let mib = size >> 20
    print(
        "pipelined write+flush \(mib) MiB, \(multi?.connections ?? 1) connection(s), \(inFlight) in flight each, "
            + "\(requestBytes >> 10) KiB requests "
            + "(\(summary?.requests ?? 0) requests, peak \(summary?.peakInFlight ?? 0) in flight): "
            + "best \(Int(times[0] * 1e3)) ms, median \(Int(median * 1e3)) ms, "
            + "\(twoDecimals(Double(size) / times[0] / 1e9)) GB/s best")
    // Context: what a local copy of the same bytes costs on this host (memcpy, best of 3), measured
    // after the session so its 256 MiB of fresh pages do not disturb it.
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
    memset(scratch.baseAddress!, 1, size)
    var memcpyBest = Double.infinity
    for _ in 0..<3 {
        let start = now()
        memcpy(scratch.baseAddress!, memory.baseAddress!, size)
        memcpyBest = min(memcpyBest, now() - start)
    }
    scratch.deallocate()
    print(
        "memcpy \(mib) MiB on this host: \(Int(memcpyBest * 1e3)) ms, "
            + "\(twoDecimals(Double(size) / memcpyBest / 1e9)) GB/s")
    print("flush share: \(flushTimes.map { Int($0 * 1e3) }) ms")
    print("ms-best \(times[0] * 1e3)")
    print("ms-session \(session * 1e3)")
} catch {
    fail("\(error)")
}
