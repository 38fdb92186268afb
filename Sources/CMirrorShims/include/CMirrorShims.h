#ifndef CMIRRORSHIMS_H
#define CMIRRORSHIMS_H

#include <stdint.h>

/// Blocks while `*word == expected` (FUTEX_WAIT_PRIVATE), for at most `timeout_ns` nanoseconds
/// (0 waits without a limit). Returns 0 when woken or when the value already differs, -1 on timeout
/// or interruption; callers always re-check the word.
int mirrord_futex_wait(uint32_t *word, uint32_t expected, uint64_t timeout_ns);

/// Wakes every thread blocked in `mirrord_futex_wait` on `word`.
void mirrord_futex_wake_all(uint32_t *word);

/// Names a thread (at most 15 bytes show), so that `top -H` and core dumps tell CPUs from DMA.
void mirrord_set_thread_name(unsigned long thread, const char *name);

/// A spin-wait hint to the processor (`pause` on x86-64).
static inline void mirrord_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// A full memory fence, for the rare slow paths that need store-load ordering.
static inline void mirrord_full_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

#endif
