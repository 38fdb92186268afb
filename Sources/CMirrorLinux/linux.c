#define _GNU_SOURCE
#include "CMirrorLinux.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

struct mirrord_pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define MIRRORD_PAGEMAP_SCAN _IOWR('f', 16, struct mirrord_pm_scan_arg)
#define MIRRORD_PM_SCAN_WP_MATCHING 1ULL
#define MIRRORD_PM_SCAN_CHECK_WPASYNC 2ULL
#define MIRRORD_PAGE_IS_WRITTEN (1ULL << 1)

int mirrord_uffd_open(const char **step) {
    *step = "userfaultfd";
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && (errno == EPERM || errno == EACCES))
        fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0) return -errno;
    struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
    *step = "UFFDIO_API";
    if (ioctl(fd, UFFDIO_API, &api) != 0) { int e = errno; close(fd); return -e; }
    *step = "features";
    if ((api.features & (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED)) !=
        (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED)) { close(fd); return -EOPNOTSUPP; }
    *step = "";
    return fd;
}

int mirrord_uffd_register_wp(int fd, void *address, size_t length) {
    struct uffdio_register r = { .range = { (uintptr_t)address, length }, .mode = UFFDIO_REGISTER_MODE_WP };
    return ioctl(fd, UFFDIO_REGISTER, &r) == 0 ? 0 : -errno;
}

int mirrord_uffd_writeprotect(int fd, void *address, size_t length, int on) {
    struct uffdio_writeprotect w = { .range = { (uintptr_t)address, length }, .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0 };
    return ioctl(fd, UFFDIO_WRITEPROTECT, &w) == 0 ? 0 : -errno;
}

long mirrord_pagemap_scan(int pagemap_fd, uint64_t start, uint64_t end, int clear, uint64_t max_pages,
                          mirrord_page_region *vec, uint64_t vec_len, uint64_t *walk_end) {
    struct mirrord_pm_scan_arg a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.flags = MIRRORD_PM_SCAN_CHECK_WPASYNC | (clear ? MIRRORD_PM_SCAN_WP_MATCHING : 0);
    a.start = start;
    a.end = end;
    a.vec = (uintptr_t)vec;
    a.vec_len = vec_len;
    a.max_pages = max_pages;
    a.category_mask = MIRRORD_PAGE_IS_WRITTEN;
    a.return_mask = MIRRORD_PAGE_IS_WRITTEN;
    long n = ioctl(pagemap_fd, MIRRORD_PAGEMAP_SCAN, &a);
    *walk_end = a.walk_end;
    return n < 0 ? -errno : n;
}

long mirrord_pagemap_get_and_clear_baseline(int pagemap_fd, uint64_t start, uint64_t end, uint32_t *out, size_t capacity) {
    mirrord_page_region vec[512];
    size_t reported = 0;
    uint64_t at = start;
    while (at < end && reported < capacity) {
        uint64_t walk_end = at;
        long n = mirrord_pagemap_scan(pagemap_fd, at, end, 1, capacity - reported, vec, 512, &walk_end);
        if (n < 0) return n;
        for (long i = 0; i < n; i++) {
            for (uint64_t page = vec[i].start; page < vec[i].end && reported < capacity; page += 4096) {
                out[reported++] = (uint32_t)((page - start) / 4096);
            }
        }
        if (walk_end <= at) break;
        at = walk_end;
    }
    return (long)reported;
}

/* ---- mprotect + SIGSEGV tracking ------------------------------------------------------------ */

static char *mp_base;
static size_t mp_length;
static _Atomic(uint64_t) *mp_bitmap;
static atomic_int mp_active;
static atomic_int mp_overflow;
static struct sigaction mp_previous;
static volatile sig_atomic_t mp_installed;

static void mp_handler(int sig, siginfo_t *info, void *context) {
    int saved_errno = errno;
    char *address = info->si_addr;
    if (mp_base && address >= mp_base && address < mp_base + mp_length) {
        /* Ours, even just after mirrord_mprotect_stop (a store that raced the final unprotect).
           Unprotect first, then record: a harvest that clears the bit in between re-protects
           nothing of this page (its bit was not set yet), and the bit set afterwards keeps the
           page in the next harvest. The other order could leave the page writable with no bit. */
        size_t page = (size_t)(address - mp_base) / 4096;
        if (mprotect(mp_base + page * 4096, 4096, PROT_READ | PROT_WRITE) != 0) {
            /* vm.max_map_count: no more VMAs to split into. Make the region writable whole
               (one VMA again) and say that tracking is no longer exact. */
            atomic_store(&mp_overflow, 1);
            mprotect(mp_base, mp_length, PROT_READ | PROT_WRITE);
        }
        if (atomic_load(&mp_active)) atomic_fetch_or(&mp_bitmap[page / 64], 1ULL << (page % 64));
        errno = saved_errno;
        return;
    }
    /* Not ours: put back whatever was there (a later start installs ours again) and let the
       fault happen again under it. */
    sigaction(SIGSEGV, &mp_previous, NULL);
    mp_installed = 0;
    errno = saved_errno;
    (void)sig;
    (void)context;
}

int mirrord_mprotect_start(void *base, size_t length, uint64_t *bitmap) {
    mp_base = base;
    mp_length = length;
    mp_bitmap = (_Atomic(uint64_t) *)bitmap;
    atomic_store(&mp_overflow, 0);
    if (!mp_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = mp_handler;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, &mp_previous) != 0) return -errno;
        mp_installed = 1;
    }
    atomic_store(&mp_active, 1);
    if (mprotect(base, length, PROT_READ) != 0) { int e = errno; atomic_store(&mp_active, 0); return -e; }
    return 0;
}

void mirrord_mprotect_stop(void) {
    if (!atomic_exchange(&mp_active, 0)) return;
    mprotect(mp_base, mp_length, PROT_READ | PROT_WRITE);
}

int mirrord_mprotect_overflowed(void) { return atomic_load(&mp_overflow); }

void mirrord_mprotect_release(void) {
    mirrord_mprotect_stop();
    mp_base = NULL;
    mp_length = 0;
}

long mirrord_mprotect_harvest(size_t first_page, size_t end_page, int get, int clear, uint32_t *out,
                              size_t capacity, size_t *scan_end, size_t *cleared) {
    size_t reported = 0, taken = 0;
    size_t run_start = 0, run_end = 0; /* pages to write-protect again, as one run */
    *scan_end = end_page;
    for (size_t page = first_page; page < end_page; page++) {
        uint64_t bit = 1ULL << (page % 64);
        if (!(atomic_load_explicit(&mp_bitmap[page / 64], memory_order_relaxed) & bit)) continue;
        if (get && reported == capacity) { *scan_end = page; break; }
        if (clear) {
            /* Clear first, then protect: a store in between lands before the protection and is
               seen by the copy that follows; every store after it faults and sets the bit again. */
            atomic_fetch_and(&mp_bitmap[page / 64], ~bit);
            taken++;
            if (run_end == page) {
                run_end = page + 1;
            } else {
                if (run_end > run_start && mprotect(mp_base + run_start * 4096, (run_end - run_start) * 4096, PROT_READ) != 0)
                    return -errno;
                run_start = page;
                run_end = page + 1;
            }
        }
        if (get) out[reported++] = (uint32_t)page;
    }
    if (run_end > run_start && mprotect(mp_base + run_start * 4096, (run_end - run_start) * 4096, PROT_READ) != 0)
        return -errno;
    *cleared = taken;
    return (long)reported;
}
