/*
 * redact.c
 *		Masking secrets in text received from a network (pure: see redact.h).
 *
 * The forms looked for are those a secret takes on its way out (raw in a header,
 * percent-encoded in a query or form) and those a receiver may turn it into when it
 * quotes the request (decoded, re-encoded with lower-case hex digits or only in part,
 * '+' for a space, letters in another case). Matching reads the original text and writes
 * the masked copy, so that one secret's mask never hides another secret's occurrence.
 *
 * Cost: for each secret, a comparison per byte of text that stops at the first byte that
 * differs, so about the text's length for a random secret (the worst case, a text built
 * to almost match everywhere, is length x secret length).
 */
#include <string.h>

#include "hex.h"
#include "redact.h"

static inline unsigned char
fold(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char) (c + ('a' - 'A')) : c;
}

/* Does the text at p, taken as one byte, stand for the secret's byte c? */
static inline bool
raw_matches(unsigned char t, unsigned char c)
{
	return fold(t) == fold(c) ||
		(t == '+' && c == ' ') ||		/* form encoding */
		(t == ' ' && (c < 0x20 || c == 0x7F));	/* a header value's control character */
}

typedef enum
{
	ESC_NO,						/* not an escape of c */
	ESC_YES,					/* %XX that decodes to c (either case) */
	ESC_CUT						/* '%' or '%X' that the end of a cut text interrupts */
} EscapeMatch;

static inline EscapeMatch
escape_matches(const unsigned char *in, size_t len, size_t p, unsigned char c, bool cut)
{
	int			hi;
	int			lo;

	if (in[p] != '%')
		return ESC_NO;
	if (p + 2 >= len)
	{
		/* the rest of the escape was cut off: whatever it was, it may be the secret's */
		if (cut && (p + 1 >= len || s2s_hex_value(in[p + 1]) >= 0))
			return ESC_CUT;
		return ESC_NO;
	}
	hi = s2s_hex_value(in[p + 1]);
	lo = s2s_hex_value(in[p + 2]);
	if (hi < 0 || lo < 0)
		return ESC_NO;
	return fold((unsigned char) (hi * 16 + lo)) == fold(c) ? ESC_YES : ESC_NO;
}

/*
 * Length of the occurrence of the secret s (m bytes) that starts at in + i, 0 when there
 * is none. In a cut text, the start of the secret running into the end counts (up to the
 * end). The only text that two forms can read differently is "%25" for a secret's '%'
 * (an escaped '%', or a raw '%' followed by "25"): decode_first chooses the reading,
 * and the caller tries both for a secret that has a '%'.
 */
static size_t
occurrence_at(const unsigned char *in, size_t len, size_t i,
			  const unsigned char *s, size_t m, bool cut, bool decode_first)
{
	size_t		p = i;

	for (size_t j = 0; j < m; j++)
	{
		unsigned char c = s[j];
		bool		raw;
		EscapeMatch esc;

		if (p >= len)
			return cut ? len - i : 0;
		raw = raw_matches(in[p], c);
		esc = escape_matches(in, len, p, c, cut);
		/* an escape cut by the end may be c's: the rest of the text may be the secret's */
		if (esc == ESC_CUT)
			return len - i;
		if (esc == ESC_YES && (decode_first || !raw))
			p += 3;
		else if (raw)
			p += 1;
		else
			return 0;
	}
	return p - i;
}

size_t
s2s_redact(const char *in, size_t len, char *out,
		   const char *const *secrets, int nsecrets, bool cut)
{
	const unsigned char *text = (const unsigned char *) in;
	size_t		changed = 0;

	memcpy(out, in, len);
	for (int k = 0; k < nsecrets; k++)
	{
		const unsigned char *s = (const unsigned char *) secrets[k];
		size_t		m;
		int			readings;

		if (s == NULL || s[0] == '\0')
			continue;
		m = strlen((const char *) s);
		readings = memchr(s, '%', m) != NULL ? 2 : 1;
		for (int r = 0; r < readings; r++)
		{
			/* every start, so that overlapping occurrences are all masked */
			for (size_t i = 0; i < len; i++)
			{
				size_t		n = occurrence_at(text, len, i, s, m, cut, r == 1);

				if (n == 0)
					continue;
				memset(out + i, S2S_REDACT_CHAR, n);
			}
		}
	}
	for (size_t i = 0; i < len; i++)
		changed += (out[i] != in[i]);
	return changed;
}
