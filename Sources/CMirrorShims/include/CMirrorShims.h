#ifndef CMIRRORSHIMS_H
#define CMIRRORSHIMS_H

#include <stddef.h>
#include <stdint.h>

/// Blocks while `*word == expected` (FUTEX_WAIT_PRIVATE), for at most `timeout_ns` nanoseconds
/// (0 waits without a limit). Returns 0 when woken or when the value already differs, -1 on timeout
/// or interruption; callers always re-check the word.
int mirrord_futex_wait(uint32_t *word, uint32_t expected, uint64_t timeout_ns);

/// Wakes every thread blocked in `mirrord_futex_wait` on `word`.
void mirrord_futex_wake_all(uint32_t *word);

/// Names a thread (at most 15 bytes show), so that `top -H` and core dumps tell CPUs from DMA.
void mirrord_set_thread_name(unsigned long thread, const char *name);

/// The calling thread's kernel thread ID (gettid(2)).
int mirrord_thread_id(void);

/// The CPU the calling thread runs on (sched_getcpu(3)), or -1.
int mirrord_current_cpu(void);

/// How many CPUs the process may use (the main thread's affinity), or -errno.
int mirrord_allowed_cpus(void);

/// Lets thread `tid` run on every CPU the process may use (the main thread's affinity) but
/// `excluded`: a thread woken by one that keeps its core busy then starts on another core
/// instead of waiting for it. Returns 0, or -errno (-EINVAL, nothing changed, when no other CPU
/// is allowed).
int mirrord_run_away_from(int tid, int excluded);

/// Copies `n` bytes (a multiple of 64; both pointers 16-byte aligned) with non-temporal stores
/// that bypass the caches, then fences: for bulk copies of whole frames, where ordinary stores
/// would first read every destination line (about a third more memory traffic).
void mirrord_copy_streaming(void *dst, const void *src, size_t n);

/// The plain bitmap get-and-clear that `mirrord-bench` holds the harvest against: for each
/// non-zero word, exchange it with zero and append its set bits' indices to `out`, stopping when
/// `capacity` entries are written. Returns the number written.
size_t mirrord_baseline_get_and_clear(uint64_t *words, size_t count, uint32_t *out, size_t capacity);

/// The CRC-32C (Castagnoli) of `n` bytes, continuing from `crc` (0 to start): the checksum of
/// each frame an epoch ships, checked before a takeover replays it. The SSE4.2 `crc32`
/// instruction where the CPU has it (several GB/s), a table elsewhere; both give the same value.
uint32_t mirrord_crc32c(uint32_t crc, const void *data, size_t n);

/// An anonymous memory file of `size` bytes (memfd_create), or -errno: shared memory that can be
/// mapped twice (the CPUs' view and the DMA engine's).
int mirrord_memfd(const char *name, size_t size);

/// The credentials of the peer of a connected Unix socket (SO_PEERCRED): 0, or -errno.
int mirrord_peer_credentials(int fd, int *pid, unsigned *uid, unsigned *gid);

/// A spin-wait hint to the processor (`pause` on x86-64).
static inline void mirrord_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Until the service's own signal handlers are in place (while the machine is being built, which
/// takes seconds for large modules): SIGTERM and SIGINT are recorded instead of killing the
/// process, SIGHUP is ignored. Installing other handlers later replaces these. SIGPIPE is
/// ignored for the process's life: a write to a reader that has gone fails with EPIPE instead.
void mirrord_startup_signals_install(void);

/// The SIGTERM or SIGINT recorded since `mirrord_startup_signals_install` (0: none).
int mirrord_startup_signal(void);

/// On a SIGBUS at an address in [base, base + size), writes `message` (one line; at most ~1 KiB)
/// to standard error and ends the process with `status`, instead of a crash: for memory whose
/// backing can go away (an image file truncated or on a full filesystem). At most 4 regions.
/// Returns 0, or -1 when no region is left.
int mirrord_sigbus_watch(const void *base, size_t size, const char *message, int status);

/// The machine's total memory in bytes (sysinfo(2)), or -1: for where /proc/meminfo is hidden.
int64_t mirrord_total_memory(void);

/// Sets SIGTERM, SIGINT and SIGHUP back to their default actions, for commands that are not the
/// service (`--check-config`); a SIGTERM or SIGINT recorded before acts now.
void mirrord_startup_signals_restore(void);

#endif
