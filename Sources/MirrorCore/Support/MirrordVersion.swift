/// The version of mirrord and mirrorctl, printed by `--version` and reported by the control
/// socket's `status`, so that an operator can tell which build runs.
public enum MirrordVersion {
    /// The release, `MAJOR.MINOR.PATCH`.
    public static let string = "0.5.0"
}
