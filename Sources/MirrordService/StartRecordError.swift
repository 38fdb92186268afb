/// Why a start could not be recorded: a later promote could not tell whether this host's export
/// is the newest, so the machine is not started.
package struct StartRecordError: Error, CustomStringConvertible, Sendable {
    /// The record.
    package var path: String
    /// What failed, for example `write /var/lib/mirrord/export.img.machine-started.new`.
    package var operation: String
    /// The system's reason.
    package var reason: String

    package var description: String {
        "cannot record the machine's start in \(path) (\(operation): \(reason)): a later promote could not tell "
            + "whether this host's export is the newest"
    }
}
