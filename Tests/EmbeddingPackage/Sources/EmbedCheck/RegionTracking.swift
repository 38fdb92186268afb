import MirrorCore
import MirrorLinux

#if canImport(Glibc)
import Glibc
#endif

/// The code of MirrorLinux's article "Track a real process region with uffd": the tracking a
/// ``RealMMUBackend`` makes, over a region this program maps itself.
enum RegionTracking {
    /// Maps 64 anonymous pages, tracks them with `backend`, writes pages 5 and 6, and returns the
    /// pages a harvest reports.
    static func writtenPages(backend: RealMMUBackend) throws -> [Int] {
        let pageSize = 4096
        let pages = 64
        guard let region = mmap(nil, pages * pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            region != MAP_FAILED
        else {
            throw HardwareError(.trackingUnavailable, operation: "mmap", message: "no memory")
        }
        defer { munmap(region, pages * pageSize) }

        let tracking = try backend.makeTracking(cpuView: region, byteCount: pages * pageSize, frameSize: pageSize)
        try tracking.startTracking()
        defer { tracking.stopTracking() }
        region.storeBytes(of: 1, toByteOffset: 5 * pageSize, as: UInt8.self)
        region.storeBytes(of: 1, toByteOffset: 6 * pageSize + 100, as: UInt8.self)

        let output = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: pages)
        defer { output.deallocate() }
        let result = try tracking.harvest(frames: 0..<pages, get: true, clear: true, into: output)
        return output[0..<result.reported].map { Int($0) }
    }

    /// Whether exactly pages 5 and 6 come back.
    static func run(backend: RealMMUBackend) throws -> Bool {
        let pages = try writtenPages(backend: backend)
        print("embed-test: a region of our own, tracked by \(backend.backendName): pages \(pages) written")
        return pages == [5, 6]
    }
}
