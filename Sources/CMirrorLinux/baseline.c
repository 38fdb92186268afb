// Baselines for `mirrord-bench`: the kernel's own costs, measured from C on the same mapping or on
// plain anonymous memory, beside which mirrord's figures are reported.
#define _GNU_SOURCE
#include "CMirrorLinux.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

static uint64_t baseline_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

long mirrord_pagemap_walk_baseline(int pagemap_fd, uint64_t start, uint64_t end) {
    mirrord_page_region vec[512];
    long pages = 0;
    uint64_t at = start;
    while (at < end) {
        uint64_t walk_end = at;
        long n = mirrord_pagemap_scan(pagemap_fd, at, end, 0, 0, vec, 512, &walk_end);
        if (n < 0) return n;
        for (long i = 0; i < n; i++) pages += (long)((vec[i].end - vec[i].start) / 4096);
        if (n < 512 || walk_end <= at) break;
        at = walk_end;
    }
    return pages;
}

// Written pages of a walk from a fixed pseudo-random sequence (the same pages for 4 KiB and huge).
static void write_pages(char *base, size_t pages, size_t count, uint64_t *seed, char value) {
    for (size_t i = 0; i < count; i++) {
        *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
        base[((*seed >> 17) % pages) * 4096] = value;
    }
}

int mirrord_thp_probe(size_t bytes, int huge, double fraction, mirrord_thp_costs *costs) {
    memset(costs, 0, sizeof *costs);
    char *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return -errno;
    int rc = 0, uffd = -1, pagemap = -1;
    if (madvise(base, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0) { rc = -errno; goto out; }
    memset(base, 1, bytes);
    const char *step;
    uffd = mirrord_uffd_open(&step);
    if (uffd < 0) { rc = uffd; goto out; }
    pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap < 0) { rc = -errno; goto out; }
    // What backs the mapping: its huge pages, from smaps' AnonHugePages of this range.
    FILE *smaps = fopen("/proc/self/smaps", "r");
    if (smaps) {
        char line[256];
        int inside = 0;
        while (fgets(line, sizeof line, smaps)) {
            unsigned long lo, hi;
            if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
                inside = lo <= (unsigned long)base && (unsigned long)base < hi;
                continue;
            }
            unsigned long kb;
            if (inside && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1) costs->huge_bytes = (double)kb * 1024;
        }
        fclose(smaps);
    }
    if ((rc = mirrord_uffd_register_wp(uffd, base, bytes)) != 0) goto out;
    uint64_t t = baseline_now();
    if ((rc = mirrord_uffd_writeprotect(uffd, base, bytes, 1)) != 0) goto out;
    costs->arm_us = (double)(baseline_now() - t) / 1e3;
    size_t pages = bytes / 4096, count = (size_t)((double)pages * fraction);
    if (count == 0) count = 1;
    uint64_t seed = 11;
    uint64_t start = (uint64_t)(uintptr_t)base, end = start + bytes;
    t = baseline_now();
    write_pages(base, pages, count, &seed, 2);
    costs->first_store_ns = (double)(baseline_now() - t) / (double)count;
    t = baseline_now();
    long walked = mirrord_pagemap_walk_baseline(pagemap, start, end);
    costs->first_walk_us = (double)(baseline_now() - t) / 1e3;
    if (walked < 0) { rc = (int)walked; goto out; }
    // Re-protect what was written (get-and-clear), write as many pages again, walk again: by now
    // each written huge page has been split.
    uint32_t *list = malloc(sizeof(uint32_t) * (count + 1));
    if (!list) { rc = -ENOMEM; goto out; }
    long cleared = mirrord_pagemap_get_and_clear_baseline(pagemap, start, end, list, count + 1);
    free(list);
    if (cleared < 0) { rc = (int)cleared; goto out; }
    for (int round = 0; round < 4; round++) write_pages(base, pages, count, &seed, 3);
    t = baseline_now();
    walked = mirrord_pagemap_walk_baseline(pagemap, start, end);
    costs->later_walk_us = (double)(baseline_now() - t) / 1e3;
    if (walked < 0) rc = (int)walked;
out:
    if (pagemap >= 0) close(pagemap);
    if (uffd >= 0) close(uffd);
    munmap(base, bytes);
    return rc;
}

void mirrord_flush_caches(const void *p, size_t bytes) {
#if defined(__x86_64__)
    const char *c = p;
    for (size_t i = 0; i < bytes; i += 64) _mm_clflush(c + i);
    _mm_mfence();
#else
    (void)p;
    (void)bytes;
#endif
}
