/*
 * fuzz_redact.c
 *		libFuzzer target for src/redact.c: masking secrets in a received text.
 *
 * Input: one flags byte (cut, form of the planted secret, upper/lower hex), one byte for
 * where to plant the secret, then NUL-separated fields: a text and a secret. The secret is
 * planted into the text in the chosen form (raw, percent-encoded with upper- or lower-case
 * hex digits, form-encoded). Checked properties:
 *  - the output has the input's length and every byte is the input's or the mask;
 *  - no byte of the planted secret survives, whatever the form;
 *  - every prefix of the text, redacted as a cut text, shows no byte of the planted
 *    secret either;
 *  - redacting twice changes nothing more (the mask is stable).
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "redact.h"
#include "fuzz.h"

static void
plant(StringInfo buf, const char *secret, int form)
{
	static const char upper[] = "0123456789ABCDEF";
	static const char lower[] = "0123456789abcdef";

	for (const unsigned char *p = (const unsigned char *) secret; *p; p++)
	{
		switch (form)
		{
			case 0:				/* raw */
				appendStringInfoChar(buf, (char) *p);
				break;
			case 1:				/* every byte encoded, upper case */
			case 2:				/* lower case */
				{
					const char *h = form == 1 ? upper : lower;

					appendStringInfoChar(buf, '%');
					appendStringInfoChar(buf, h[*p >> 4]);
					appendStringInfoChar(buf, h[*p & 0x0F]);
					break;
				}
			default:			/* form encoding: '+' for a space, the rest as the renderer */
				if (*p == ' ')
					appendStringInfoChar(buf, '+');
				else if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
						 (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
						 *p == '~')
					appendStringInfoChar(buf, (char) *p);
				else
					appendStringInfo(buf, "%%%c%c", upper[*p >> 4], upper[*p & 0x0F]);
				break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int			flags = (int) fuzz_take(&data, &size, 1);
	int			where = (int) fuzz_take(&data, &size, 1);
	char	   *f[2] = {0};
	int			n = fuzz_split(data, size, f, 2);
	const char *text = n > 0 ? f[0] : "";
	const char *secret = n > 1 ? f[1] : "";
	const char *secrets[1];
	StringInfoData in;
	size_t		at;
	size_t		end;
	char	   *out;
	char	   *again;

	/* plant the secret at a position of the text */
	initStringInfo(&in);
	at = strlen(text) == 0 ? 0 : (size_t) where % (strlen(text) + 1);
	appendBinaryStringInfo(&in, text, (int) at);
	plant(&in, secret, flags & 3);
	end = in.len;
	appendStringInfoString(&in, text + at);
	secrets[0] = secret;

	out = palloc(in.len + 1);
	(void) s2s_redact(in.data, in.len, out, secrets, 1, (flags & 4) != 0);
	for (int i = 0; i < in.len; i++)
		FUZZ_CHECK(out[i] == in.data[i] || out[i] == S2S_REDACT_CHAR,
				   "byte %d is neither the input's nor the mask", i);
	for (size_t i = at; i < end; i++)
		FUZZ_CHECK(out[i] == S2S_REDACT_CHAR, "byte %zu of the planted secret survives", i);

	again = palloc(in.len + 1);
	(void) s2s_redact(out, in.len, again, secrets, 1, (flags & 4) != 0);
	if (strchr(secret, S2S_REDACT_CHAR) == NULL)
		FUZZ_CHECK(memcmp(out, again, in.len) == 0, "redacting twice changes more");

	/* every cut through the planted secret */
	if (secret[0] != '\0')
		for (size_t cut = at + 1; cut <= end; cut++)
		{
			(void) s2s_redact(in.data, cut, out, secrets, 1, true);
			for (size_t i = at; i < cut; i++)
				FUZZ_CHECK(out[i] == S2S_REDACT_CHAR,
						   "cut at %zu: byte %zu of the planted secret survives", cut, i);
		}

	fuzz_reset();
	return 0;
}
