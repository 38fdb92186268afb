/// What the bench reads of the copy helper around one blackout, to say where a long final copy's
/// time went: which thread to read the scheduler's counters of, whether a job was shared, and how
/// long the helper took to take it up.
package struct CopyHelperSnapshot: Sendable, Hashable {
    /// The helper thread's kernel ID (its counters are in `/proc/self/task/ID/schedstat`).
    package var threadID: Int32
    /// Jobs posted to the helper since it started: a copy between two snapshots was shared when
    /// this moved.
    package var jobsPosted: UInt64
    /// From the last job's post to the helper claiming it; nil when the caller did the whole job
    /// before the helper woke (it copied alone).
    package var lastWakeNanoseconds: UInt64?
}
