// Process-level shims for the service: signals during start-up, SIGBUS on the modules, the
// machine's memory.
#define _GNU_SOURCE
#include "CMirrorShims.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

// Start-up signals: until the service's own handlers are in place, SIGTERM and SIGINT are
// recorded instead of killing the process, and SIGHUP is ignored. SIGPIPE is ignored for good:
// a reader that has gone makes a write fail with EPIPE, which the writer reports (the summary's
// exit 74), instead of killing the process without a word.

static volatile sig_atomic_t startup_signal = 0;

static void record_startup_signal(int signal) { startup_signal = signal; }

void mirrord_startup_signals_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = record_startup_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
}

int mirrord_startup_signal(void) { return startup_signal; }

void mirrord_startup_signals_restore(void) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    if (startup_signal) raise(startup_signal);
}

// SIGBUS on a module: a file-backed image truncated behind our back or a full filesystem (or a
// memory error). The handler writes the region's prepared line and ends the process with the
// status given; a SIGBUS anywhere else is not ours to explain and goes to the handler that was
// there before (the runtime's crash report, or the default action).

#define MIRRORD_SIGBUS_REGIONS 4
#define MIRRORD_SIGBUS_MESSAGE 1024

struct sigbus_region {
    uintptr_t start;
    uintptr_t end;
    size_t length;
    char message[MIRRORD_SIGBUS_MESSAGE];
};

static struct sigbus_region sigbus_regions[MIRRORD_SIGBUS_REGIONS];
static atomic_int sigbus_region_count = 0;
static int sigbus_status = 74;
static struct sigaction sigbus_previous;

static void on_sigbus(int signal, siginfo_t *info, void *context) {
    (void)context;
    uintptr_t address = (uintptr_t)info->si_addr;
    int count = atomic_load(&sigbus_region_count);
    for (int i = 0; i < count; i++) {
        if (address >= sigbus_regions[i].start && address < sigbus_regions[i].end) {
            ssize_t ignored = write(2, sigbus_regions[i].message, sigbus_regions[i].length);
            (void)ignored;
            _exit(sigbus_status);
        }
    }
    /* Not a module: whoever handled SIGBUS before (the runtime's crash report) does. */
    sigaction(signal, &sigbus_previous, NULL);
    raise(signal);
}

int mirrord_sigbus_watch(const void *base, size_t size, const char *message, int status) {
    int index = atomic_load(&sigbus_region_count);
    if (index >= MIRRORD_SIGBUS_REGIONS) return -1;
    struct sigbus_region *region = &sigbus_regions[index];
    region->start = (uintptr_t)base;
    region->end = (uintptr_t)base + size;
    strncpy(region->message, message, MIRRORD_SIGBUS_MESSAGE - 2);
    region->message[MIRRORD_SIGBUS_MESSAGE - 2] = 0;
    region->length = strlen(region->message);
    region->message[region->length++] = '\n';
    sigbus_status = status;
    atomic_store(&sigbus_region_count, index + 1);
    if (index == 0) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = on_sigbus;
        sigemptyset(&action.sa_mask);
        action.sa_flags = SA_SIGINFO;
        sigaction(SIGBUS, &action, &sigbus_previous);
    }
    return 0;
}

int64_t mirrord_total_memory(void) {
    struct sysinfo info;
    if (sysinfo(&info) != 0) return -1;
    return (int64_t)info.totalram * (int64_t)(info.mem_unit ? info.mem_unit : 1);
}
