/*
 * redact_copy.h
 *		A copy of a text with a secret masked, allocated in the current memory context
 *		(redact_copy.c): the backend side of redact.h.
 */
#ifndef S2S_REDACT_COPY_H
#define S2S_REDACT_COPY_H

/*
 * A palloc'd, NUL-terminated copy of text with every form of secret masked (s2s_redact);
 * secret may be NULL. For libcurl's words and our own reasons before they are stored or
 * raised.
 */
extern char *s2s_redact_copy(const char *text, const char *secret);

#endif							/* S2S_REDACT_COPY_H */
