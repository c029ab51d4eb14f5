/*
 * redact.h
 *		Masking secrets (Affilae key, Swaarm token) in text received from a network
 *		(pure).
 *
 * A receiver may quote the request it got: an error page echoing the request line, a
 * proxy showing the URL. Whatever part of such an answer is stored (s2s.deliveries,
 * s2s.attempts), quoted in an error or logged goes through s2s_redact() first. No
 * catalog, network, allocation or ereport here: the function is tested and fuzzed alone.
 */
#ifndef S2S_REDACT_H
#define S2S_REDACT_H

#include <stdbool.h>
#include <stddef.h>

/* The byte that replaces every byte of a secret found in a text. */
#define S2S_REDACT_CHAR '*'

/*
 * Copies in[0..len) to out[0..len) (same length; out must not overlap in), replacing by
 * S2S_REDACT_CHAR every byte of every occurrence of any of the nsecrets secrets, in any
 * form a request or a receiver may give it:
 *	- raw, ASCII letters in either case;
 *	- percent-encoded, wholly or in part, with upper- or lower-case hex digits (what the
 *	  renderer sends, and what a receiver that re-encodes shows);
 *	- form-encoded: '+' for a space;
 *	- as a header value: a control character replaced by a space.
 * All occurrences are found in "in" before any byte is masked, so overlapping
 * occurrences of several secrets are all masked. When "cut" (the text is the start of a
 * longer one), text at its end that is the start of a secret in any of these forms is
 * masked too: a body cut in the middle of a secret never shows its first part.
 * NULL and empty secrets are ignored; a very short secret masks every occurrence of its
 * characters, as it must. Returns the number of bytes changed (0: nothing found).
 */
extern size_t s2s_redact(const char *in, size_t len, char *out,
						 const char *const *secrets, int nsecrets, bool cut);

#endif							/* S2S_REDACT_H */
