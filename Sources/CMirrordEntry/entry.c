// The `mirrord` executable's first code: a constructor, run by the dynamic loader before the
// Swift runtime's initialisers and `main`, installs the start-up signal handlers (SIGTERM and
// SIGINT recorded, SIGHUP ignored), so that a signal in the first milliseconds of the process
// (`mirrord & kill -HUP $!`) cannot kill it. Only this executable links it: the tests and the
// other commands keep the default actions.
#include "CMirrordEntry.h"

#include "CMirrorShims.h"

#include <signal.h>

static int installed = 0;

__attribute__((constructor(101))) static void mirrord_entry_install_signals(void) {
    mirrord_startup_signals_install();
    // A launcher may have started mirrord with these blocked, so that none is lost or fatal before
    // this first code runs (the dynamic loader's fraction of a millisecond): with the handlers in
    // place, one that is pending is taken now (SIGHUP's is discarded: it is ignored).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    installed = 1;
}

int mirrord_entry_signals_installed(void) { return installed; }
