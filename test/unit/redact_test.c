/*
 * redact_test.c
 *		Unit tests of src/redact.c: every form of a secret is masked, nothing else is, in
 *		whole and cut texts. Standalone: built and run by "make check-unit".
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "redact.h"

#define KEY "603ed1800000000000000000-5f8a9c000000000000000abc"

/* in redacted with the given secrets, as a C string (static buffer) */
static const char *
red(const char *in, bool cut, const char *s1, const char *s2, size_t *found)
{
	static char out[4096];
	const char *secrets[2] = {s1, s2};
	size_t		len = strlen(in);
	size_t		n = s2s_redact(in, len, out, secrets, 2, cut);

	out[len] = '\0';
	if (found)
		*found = n;
	return out;
}

static void
test_forms(void)
{
	size_t		n;

	CHECK_EQ_STR(red("GET /p?key=" KEY "&id=1 HTTP/1.1", false, KEY, NULL, &n),
				 "GET /p?key=*************************************************&id=1 HTTP/1.1",
				 "raw secret in a request line");
	CHECK_EQ_INT(n, 49, "the key's 49 bytes changed");
	CHECK_EQ_STR(red("no secret here", false, KEY, NULL, &n), "no secret here",
				 "text without the secret is unchanged");
	CHECK_EQ_INT(n, 0, "nothing changed");
	CHECK_EQ_STR(red("k=A-B", false, "a-b", NULL, NULL), "k=***", "letters in another case");
	CHECK_EQ_STR(red("t=to%2Bk%2Fen!", false, "to+k/en", NULL, NULL), "t=***********!",
				 "percent-encoded, upper-case hex");
	CHECK_EQ_STR(red("t=to%2bk%2fen!", false, "to+k/en", NULL, NULL), "t=***********!",
				 "percent-encoded, lower-case hex");
	CHECK_EQ_STR(red("t=%74%6F%6B%65%6E;", false, "token", NULL, NULL), "t=***************;",
				 "every byte percent-encoded");
	CHECK_EQ_STR(red("t=t%6fk%65n;", false, "token", NULL, NULL), "t=*********;",
				 "encoded in part");
	CHECK_EQ_STR(red("t=a+b%20c;", false, "a b c", NULL, NULL), "t=*******;",
				 "form encoding: '+' for a space");
	CHECK_EQ_STR(red("Authorization: a b\r\n", false, "a\nb", NULL, NULL),
				 "Authorization: ***\r\n", "header value: control character sent as a space");
	CHECK_EQ_STR(red("x=%C3%A9t%C3%A9 y=\xC3\xA9t\xC3\xA9", false, "\xC3\xA9t\xC3\xA9", NULL, NULL),
				 "x=************* y=*****", "UTF-8 secret, encoded and raw");
	CHECK_EQ_STR(red("a%25b and a%b", false, "a%b", NULL, &n), "***** and ***",
				 "a '%' in the secret: encoded and raw");
	CHECK_EQ_INT(n, 8, "both readings found");
	CHECK_EQ_STR(red("a%2525", false, "a%25", NULL, NULL), "******",
				 "a '%' in the secret followed by 25");
	CHECK_EQ_STR(red("k1=" KEY " k2=" KEY, false, KEY, NULL, &n),
				 "k1=************************************************* k2=*************************************************",
				 "every occurrence");
	CHECK_EQ_INT(n, 98, "two occurrences");
}

static void
test_several_and_overlaps(void)
{
	CHECK_EQ_STR(red("ababa", false, "aba", NULL, NULL), "*****",
				 "overlapping occurrences of one secret");
	CHECK_EQ_STR(red("xabcdefx", false, "abcd", "cdef", NULL), "x******x",
				 "overlapping occurrences of two secrets are both masked");
	CHECK_EQ_STR(red("one two", false, "one", "two", NULL), "*** ***", "two secrets");
	CHECK_EQ_STR(red("abc", false, NULL, "", NULL), "abc", "NULL and empty secrets are ignored");
	CHECK_EQ_STR(red("banana", false, "a", NULL, NULL), "b*n*n*",
				 "a one-byte secret masks every occurrence of that byte");
	CHECK_EQ_STR(red("", true, "abc", NULL, NULL), "", "empty text");
}

static void
test_cut(void)
{
	/* the body was cut in the middle of the secret */
	CHECK_EQ_STR(red("GET /p?key=603ed18", true, KEY, NULL, NULL), "GET /p?key=*******",
				 "cut text: a start of the secret at the end is masked");
	CHECK_EQ_STR(red("GET /p?key=603ed18", false, KEY, NULL, NULL), "GET /p?key=603ed18",
				 "whole text: a start of the secret at the end is not the secret");
	CHECK_EQ_STR(red("t=to%2", true, "to+k", NULL, NULL), "t=****",
				 "cut inside an escape");
	CHECK_EQ_STR(red("t=to%", true, "to+k", NULL, NULL), "t=***", "cut right after the '%'");
	CHECK_EQ_STR(red("t=to%2", true, "tox", NULL, NULL), "t=****",
				 "cut inside an escape that might be the secret's");
	CHECK_EQ_STR(red("t=t%6", true, "token", NULL, NULL), "t=***", "cut escape, encoded in part");
	CHECK_EQ_STR(red("end: 6", true, KEY, NULL, NULL), "end: *",
				 "a single first byte of the secret at the end of a cut text");
	CHECK_EQ_STR(red("end: x", true, KEY, NULL, NULL), "end: x",
				 "a cut text not ending with a start of the secret is unchanged");
	CHECK_EQ_STR(red("\xC3", true, "\xC3\xA9t\xC3\xA9", NULL, NULL), "*",
				 "cut inside a UTF-8 character of the secret");
}

/* Every prefix of an echoed request line, cut, shows no 2 consecutive bytes of the key. */
static void
test_every_cut(void)
{
	const char *line = "GET /p?key=" KEY "&id=1&x=%36%30%33 HTTP/1.1";
	size_t		len = strlen(line);
	bool		ok = true;

	for (size_t cut = 1; cut <= len; cut++)
	{
		char		out[256];
		const char *secrets[1] = {KEY};
		const char *key_at = line + strlen("GET /p?key=");

		s2s_redact(line, cut, out, secrets, 1, true);
		/* no byte of where the key was survives */
		for (size_t i = 0; i < cut; i++)
			if (line + i >= key_at && line + i < key_at + strlen(KEY) && out[i] != '*')
				ok = false;
	}
	CHECK(ok, "every cut of a request line masks all of the key it shows");
}

int
main(void)
{
	test_forms();
	test_several_and_overlaps();
	test_cut();
	test_every_cut();
	return unit_done("redact_test");
}
