/// The rule of the settings a CPU may have its own of (`workload.cpu_rates`,
/// `workload.cpu_patterns`): a list with one entry a CPU, or empty for the shared value on every
/// CPU. Said once here for the configuration's checks and the machine's writers alike.
package enum PerCPU {
    /// The value of CPU `cpu`: its own entry when `own` has one, else `shared`.
    package static func value<Value>(cpu: Int, own: [Value], shared: Value) -> Value {
        cpu < own.count ? own[cpu] : shared
    }

    /// Whether the value of any of the first `cpus` CPUs satisfies `test`.
    package static func any<Value>(
        cpus: Int, own: [Value], shared: Value, where test: (Value) -> Bool
    ) -> Bool {
        (0..<max(0, cpus)).contains { test(value(cpu: $0, own: own, shared: shared)) }
    }
}
