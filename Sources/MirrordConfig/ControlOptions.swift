/// Where the daemon's control socket is and who may use it (`[control]`).
public struct ControlOptions: Sendable, Hashable {
    /// `control.socket`: the socket's path (`""`: no control socket).
    public var socketPath = "/run/mirrord/control.sock"
    /// `control.group`: a group whose members may connect besides root (`""`: none).
    public var group = ""

    /// The defaults.
    public init() {}
}
