/// Where the daemon's control socket is and who may use it (`[control]`).
package struct ControlOptions: Sendable, Hashable {
    /// `control.socket`: the socket's path (`""`: no control socket).
    package var socketPath = "/run/mirrord/control.sock"
    /// `control.group`: a group whose members may connect besides root (`""`: none).
    package var group = ""

    /// The defaults.
    package init() {}
}
