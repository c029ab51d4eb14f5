/*
 * initfirst.c
 *		Makes the preloaded ASan runtime initialise before any library constructor runs.
 *
 * postgres is not instrumented, so test/asan/run preloads libasan into it. The runtime
 * then initialises lazily, on the first malloc: with Debian 12's postgres that first
 * malloc happens inside newlocale(), called by libp11-kit's constructor (loaded through
 * libldap and gnutls), and initialising there leaves glibc's locale lock corrupted: the
 * server hangs in bindtextdomain() before printing anything. This library is linked with
 * -z initfirst, so ld.so runs its constructor before every other one; its malloc
 * initialises the runtime at a safe point.
 */
#include <stdlib.h>

__attribute__((constructor))
static void
s2s_asan_init_first(void)
{
	free(malloc(1));
}
