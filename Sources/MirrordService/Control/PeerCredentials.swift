import CMirrorShims

#if canImport(Glibc)
import Glibc
#endif

/// Who is at the other end of a Unix socket (`SO_PEERCRED`), and whether they may use the
/// control socket: root, the daemon's own user, or a member of the configured group.
struct PeerCredentials: Sendable, Equatable {
    var pid: Int32
    var uid: uid_t
    var gid: gid_t

    /// The credentials of the peer of `socket`, or nil if the kernel would not say.
    init?(socket: Int32) {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        guard mirrord_peer_credentials(socket, &pid, &uid, &gid) == 0 else { return nil }
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// The kernel's overflow uid and gid (`/proc/sys/kernel/overflowuid`), 65534 on Linux.
    static let overflowID: UInt32 = 65_534

    /// Credentials as given (tests).
    init(pid: Int32, uid: uid_t, gid: gid_t) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// Whether this peer may connect: root, the daemon's user, or a member of `group` (by primary
    /// group or membership; "" names none).
    func isAllowed(group: String) -> Bool {
        if uid == 0 || uid == geteuid() { return true }
        // In a user namespace (PrivateUsers=yes) every unmapped user and group shows as the
        // overflow id: it names nobody in particular and is never let in by a group.
        guard uid != Self.overflowID, gid != Self.overflowID else { return false }
        guard !group.isEmpty, let entry = getgrnam(group) else { return false }
        if entry.pointee.gr_gid == gid { return true }
        guard let user = getpwuid(uid) else { return false }
        let name = String(cString: user.pointee.pw_name)
        var member = entry.pointee.gr_mem
        while let pointer = member?.pointee {
            if String(cString: pointer) == name { return true }
            member = member?.advanced(by: 1)
        }
        return false
    }
}
