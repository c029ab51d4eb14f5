/*
 * redact_copy.c
 *		A copy of a text with a secret masked, allocated in the current memory context:
 *		what the worker and s2s.swaarm_click use before an error text is stored or raised.
 *
 * The masking itself is redact.c's, which allocates nothing so that it is unit-tested and
 * fuzzed outside the server; this is its one backend-side wrapper.
 */
#include "postgres.h"

#include "redact.h"
#include "redact_copy.h"

char *
s2s_redact_copy(const char *text, const char *secret)
{
	size_t		len = strlen(text);
	char	   *out = palloc(len + 1);

	(void) s2s_redact(text, len, out, &secret, 1, false);
	out[len] = '\0';
	return out;
}
