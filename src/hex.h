/*
 * hex.h
 *		Reading hexadecimal digits (pure): click IDs (click.c) and percent-escapes
 *		(redact.c).
 *
 * Inline, so that redact.c's per-byte matching loops pay no call, and free of
 * postgres.h, so that redact.c stays buildable without the server's headers.
 */
#ifndef S2S_HEX_H
#define S2S_HEX_H

/* The value of one hexadecimal digit, either case; -1 for any other byte. */
static inline int
s2s_hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif							/* S2S_HEX_H */
