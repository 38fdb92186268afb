#ifndef CMIRRORDENTRY_H
#define CMIRRORDENTRY_H

/// Whether the `mirrord` executable's constructor installed the start-up signal handlers before
/// `main` (1), so that no SIGTERM, SIGINT or SIGHUP in the process's first milliseconds kills it.
int mirrord_entry_signals_installed(void);

#endif
