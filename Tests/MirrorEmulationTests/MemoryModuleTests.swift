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
