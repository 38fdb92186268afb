#define _GNU_SOURCE
#include "CMirrorShims.h"

#include <pthread.h>
#include <sched.h>

#include <errno.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#include <nmmintrin.h>
#endif
#include <string.h>
#include <linux/futex.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int mirrord_futex_wait(uint32_t *word, uint32_t expected, uint64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000ull);
        ts.tv_nsec = (long)(timeout_ns % 1000000000ull);
        tsp = &ts;
    }
    long r = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
    if (r == 0 || errno == EAGAIN) return 0;
    return -1;
}

void mirrord_futex_wake_all(uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

void mirrord_set_thread_name(unsigned long thread, const char *name) {
    pthread_setname_np((pthread_t)thread, name);
}

int mirrord_thread_id(void) { return (int)syscall(SYS_gettid); }

int mirrord_current_cpu(void) { return sched_getcpu(); }

/// The CPUs the process may use (the main thread's affinity): 0, or -errno.
static int process_cpus(cpu_set_t *set) {
    return sched_getaffinity(getpid(), sizeof *set, set) == 0 ? 0 : -errno;
}

int mirrord_allowed_cpus(void) {
    cpu_set_t set;
    int status = process_cpus(&set);
    return status == 0 ? CPU_COUNT(&set) : status;
}

int mirrord_run_away_from(int tid, int excluded) {
    cpu_set_t set;
    int status = process_cpus(&set);
    if (status != 0) return status;
    if (excluded >= 0 && excluded < CPU_SETSIZE) CPU_CLR(excluded, &set);
    if (CPU_COUNT(&set) == 0) return -EINVAL;
    return sched_setaffinity(tid, sizeof set, &set) == 0 ? 0 : -errno;
}

void mirrord_copy_streaming(void *dst, const void *src, size_t n) {
#if defined(__x86_64__)
    char *d = dst;
    const char *s = src;
    for (size_t i = 0; i < n; i += 64) {
        __m128i a = _mm_load_si128((const __m128i *)(s + i));
        __m128i b = _mm_load_si128((const __m128i *)(s + i + 16));
        __m128i c = _mm_load_si128((const __m128i *)(s + i + 32));
        __m128i e = _mm_load_si128((const __m128i *)(s + i + 48));
        _mm_stream_si128((__m128i *)(d + i), a);
        _mm_stream_si128((__m128i *)(d + i + 16), b);
        _mm_stream_si128((__m128i *)(d + i + 32), c);
        _mm_stream_si128((__m128i *)(d + i + 48), e);
    }
    _mm_sfence();
#else
    memcpy(dst, src, n);
#endif
}

size_t mirrord_baseline_get_and_clear(uint64_t *words, size_t count, uint32_t *out, size_t capacity) {
    size_t written = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t w = __atomic_load_n(&words[i], __ATOMIC_RELAXED);
        if (w == 0) continue;
        w = __atomic_exchange_n(&words[i], 0, __ATOMIC_ACQ_REL);
        while (w && written < capacity) {
            out[written++] = (uint32_t)(i * 64 + (size_t)__builtin_ctzll(w));
            w &= w - 1;
        }
        if (written == capacity) break;
    }
    return written;
}

int mirrord_memfd(const char *name, size_t size) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return -errno;
    if (ftruncate(fd, (off_t)size) != 0) { int e = errno; close(fd); return -e; }
    return fd;
}

int mirrord_peer_credentials(int fd, int *pid, unsigned *uid, unsigned *gid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -errno;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

// CRC-32C: the hardware instruction when present (checked once), else a byte-wise table of the
// reflected polynomial 0x82F63B78. Both compute the same standard CRC-32C (initial and final
// inversion included), so a checksum written by one host checks on another.
static uint32_t crc32c_table[256];

static void crc32c_table_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc32c_table[i] = c;
    }
}

static uint32_t crc32c_portable(uint32_t crc, const unsigned char *p, size_t n) {
    static int ready;
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        crc32c_table_init();
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    crc = ~crc;
    while (n--) crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) { c = _mm_crc32_u8((uint32_t)c, *p++); n--; }
    while (n >= 8) {
        uint64_t word;
        __builtin_memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        n -= 8;
    }
    while (n--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
#endif

uint32_t mirrord_crc32c(uint32_t crc, const void *data, size_t n) {
#if defined(__x86_64__)
    static int hardware = -1;
    int has = __atomic_load_n(&hardware, __ATOMIC_RELAXED);
    if (has < 0) {
        has = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        __atomic_store_n(&hardware, has, __ATOMIC_RELAXED);
    }
    if (has) return crc32c_sse42(crc, data, n);
#endif
    return crc32c_portable(crc, data, n);
}
