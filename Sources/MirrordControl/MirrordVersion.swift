/// The version of mirrord and mirrorctl, printed by `--version` and reported by the control
/// socket's `status`, so that an operator can tell which build runs.
///
/// It lives with the control protocol because both executables print it and `mirrorctl` links
/// nothing of the engine: the one constant the two tools share besides the protocol.
package enum MirrordVersion {
    /// The release, `MAJOR.MINOR.PATCH`.
    package static let string = "0.5.0"
}
