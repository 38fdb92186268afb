import Foundation
import MirrorCore
import Testing

@testable import MirrorEmulation

@Suite("Image files: regular files of this user only, space reserved before mapping")
struct MemoryModuleTests {
    func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("images-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("an image is created, sized with its blocks allocated, and reopened")
    func created() throws {
        let path = try directory() + "/active.img"
        do {
            let module = try MemoryModule(byteCount: 1 << 20, backing: .file(path: path), name: "active")
            module.base.storeBytes(of: 0xAB, as: UInt8.self)
        }
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_size == 1 << 20)
        #expect(Int(info.st_blocks) * 512 >= 1 << 20, "blocks reserved, not a sparse file")
        let again = try MemoryModule(byteCount: 1 << 20, backing: .file(path: path), name: "active")
        #expect(again.base.load(as: UInt8.self) == 0xAB)
    }

    @Test("a symlink in place of an image is refused and its target left alone")
    func symlink() throws {
        let dir = try directory()
        let target = dir + "/precious"
        try "precious".write(toFile: target, atomically: false, encoding: .utf8)
        #expect(Foundation.symlink(target, dir + "/active.img") == 0)
        #expect {
            _ = try MemoryModule(byteCount: 1 << 20, backing: .file(path: dir + "/active.img"), name: "active")
        } throws: { error in
            (error as? HardwareError)?.code == .imageFile && "\(error)".contains("active.img: is a symbolic link")
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious")
    }

    @Test("a directory in place of an image is refused")
    func notRegular() throws {
        let dir = try directory()
        try FileManager.default.createDirectory(atPath: dir + "/spare.img", withIntermediateDirectories: false)
        #expect {
            _ = try MemoryModule(byteCount: 1 << 20, backing: .file(path: dir + "/spare.img"), name: "spare")
        } throws: { error in
            "\(error)".contains("spare.img: ") && (error as? HardwareError)?.code == .imageFile
        }
    }
}

@Suite("A module mapped private from an image: the file's contents, no copy, the file untouched")
struct PrivateImageTests {
    @Test("the module reads the file from its offset; its writes stay in the process; short files are refused")
    func privateImage() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("private-\(UUID().uuidString).img")
            .path
        defer { unlink(path) }
        let offset = 12_288
        var bytes = [UInt8](repeating: 0, count: offset + (1 << 20))
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 12) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        do {
            let module = try MemoryModule(
                byteCount: 1 << 20, backing: .privateImage(path: path, offset: UInt64(offset)), name: "active")
            #expect(Array(UnsafeRawBufferPointer(start: module.base, count: 1 << 20)) == Array(bytes[offset...]))
            memset(module.base, 0, 1 << 20)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes), "the file keeps its contents")
        #expect {
            _ = try MemoryModule(
                byteCount: 2 << 20, backing: .privateImage(path: path, offset: UInt64(offset)), name: "active")
        } throws: { error in
            (error as? HardwareError)?.code == .imageFile
                && "\(error)".contains("the module needs 2MiB from offset 12288")
        }
    }

    @Test("a machine given its active memory starts simplex: not filled, no spare")
    func machineGiven() throws {
        var options = EmulatedMachine.Options()
        options.memorySize = 1 << 20
        options.mmu.enabled = false
        options.workload.churn = 0
        options.activeMemory = .provided
        let machine = try EmulatedMachine(options: options)
        defer { machine.shutdown() }
        #expect(!machine.hasSpare)
        #expect(UnsafeRawBufferPointer(start: machine.active.base, count: 1 << 20).allSatisfy { $0 == 0 })
    }
}
