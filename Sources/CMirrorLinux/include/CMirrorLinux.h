#ifndef CMIRRORLINUX_H
#define CMIRRORLINUX_H

#include <stddef.h>
#include <stdint.h>

/// One region of pages PAGEMAP_SCAN reports (`struct page_region`, Linux 6.7+ uapi; declared here
/// because Debian 12's headers predate it).
typedef struct mirrord_page_region {
    uint64_t start;
    uint64_t end;
    uint64_t categories;
} mirrord_page_region;

/// Opens a userfaultfd with asynchronous write-protection (UFFD_FEATURE_WP_ASYNC and
/// UFFD_FEATURE_WP_UNPOPULATED). Tries a plain open, then UFFD_USER_MODE_ONLY (allowed to
/// unprivileged processes when vm.unprivileged_userfaultfd is 0). Returns the descriptor, or
/// -errno; `*step` names the step that failed ("userfaultfd", "UFFDIO_API", "features").
int mirrord_uffd_open(const char **step);

/// Registers [address, address+length) for write-protect tracking. 0 or -errno.
int mirrord_uffd_register_wp(int fd, void *address, size_t length);

/// Write-protects (on) or unprotects [address, address+length). 0 or -errno.
int mirrord_uffd_writeprotect(int fd, void *address, size_t length, int on);

/// One PAGEMAP_SCAN ioctl over [start, end) of the calling process for pages written since they
/// were last write-protected; with `clear`, write-protects the reported pages again in the same
/// step (PM_SCAN_WP_MATCHING). Reports at most `max_pages` pages (0: no limit) into at most
/// `vec_len` regions. Returns the number of regions, or -errno; `*walk_end` is where it stopped.
long mirrord_pagemap_scan(int pagemap_fd, uint64_t start, uint64_t end, int clear, uint64_t max_pages,
                          mirrord_page_region *vec, uint64_t vec_len, uint64_t *walk_end);

/// The baseline `mirrord-bench` holds the `uffd` harvest against: PAGEMAP_SCAN get-and-clear
/// (PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC) over [start, end) in calls of 512 regions, each
/// region's pages written out as page numbers from `start` into `out` (at most `capacity`).
/// Returns the pages reported, or -errno.
long mirrord_pagemap_get_and_clear_baseline(int pagemap_fd, uint64_t start, uint64_t end, uint32_t *out, size_t capacity);

/// Writes back and evicts from every cache level the lines of `[p, p + bytes)` (`clflush`, then a
/// fence): the bench copies the same frames twice with the caches in the same state, so that
/// the difference between the copies is what else changed (memory the host had to map back in).
void mirrord_flush_caches(const void *p, size_t bytes);

/// The bench's baseline of the blackout's look: one get-only `PAGEMAP_SCAN` walk of `[start, end)`
/// from one thread (512 regions a call); returns the written pages counted, or -errno.
long mirrord_pagemap_walk_baseline(int pagemap_fd, uint64_t start, uint64_t end);

/// What transparent huge pages change for userfaultfd write-protect tracking, measured on
/// anonymous memory (`mirrord_thp_probe`).
typedef struct mirrord_thp_costs {
    /// Bytes of the mapping backed by huge pages once filled, before tracking is armed (0 where
    /// the system gives none: `transparent_hugepage/enabled` = never).
    double huge_bytes;
    /// Write-protecting the whole mapping.
    double arm_us;
    /// One store to a protected page (for a huge page: the fault splits it), averaged.
    double first_store_ns;
    /// A get-only walk right after the first stores.
    double first_walk_us;
    /// A get-only walk after four more rounds of as many stores (huge pages split by then).
    double later_walk_us;
} mirrord_thp_costs;

/// Maps `bytes` of anonymous memory with (`huge` = 1) or without transparent huge pages, arms
/// userfaultfd write-protect over it, writes `fraction` of its pages, and measures `costs`.
/// Returns 0, or -errno.
int mirrord_thp_probe(size_t bytes, int huge, double fraction, mirrord_thp_costs *costs);
/// The classic userspace write tracking, as the baseline the 2022 pagemap get-and-clear proposal calls slow: the region
/// is write-protected with mprotect; a SIGSEGV handler records the faulting page in `bitmap` (one
/// bit a page) and unprotects it. One region per process. Returns 0 or -errno.
int mirrord_mprotect_start(void *base, size_t length, uint64_t *bitmap);

/// Stops tracking: the region is writable again and the handler ignores it.
void mirrord_mprotect_stop(void);

/// Stops tracking and forgets the region (before it is unmapped), so the handler claims no
/// fault in it any more.
void mirrord_mprotect_release(void);

/// Nonzero once the kernel refused to split the region further (vm.max_map_count): tracking
/// stopped being exact and the region was made writable whole.
int mirrord_mprotect_overflowed(void);

/// Get and/or clear the written pages of [first_page, end_page) into `out` (capacity `capacity`),
/// write-protecting each cleared page again before returning. Sets `*scan_end` and `*cleared`;
/// returns the pages reported, or -errno if re-protecting failed.
long mirrord_mprotect_harvest(size_t first_page, size_t end_page, int get, int clear, uint32_t *out,
                              size_t capacity, size_t *scan_end, size_t *cleared);

#endif
