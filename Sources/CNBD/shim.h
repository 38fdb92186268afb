#ifndef MIRRORD_CNBD_SHIM_H
#define MIRRORD_CNBD_SHIM_H
/* libnbd's whole C API. It has no variadic functions; its NBD_NULL_* macros are compound
   literals Swift cannot import, so Swift builds nbd_completion_callback values itself. */
#include <libnbd.h>
#endif
