#define _GNU_SOURCE
#include "CMirrorLinux.h"

#include <errno.h>
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

int mirrord_memfd(const char *name, size_t size) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return -errno;
    if (ftruncate(fd, (off_t)size) != 0) { int e = errno; close(fd); return -e; }
    return fd;
}
