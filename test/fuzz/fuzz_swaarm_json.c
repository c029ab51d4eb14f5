/*
 * fuzz_swaarm_json.c
 *		libFuzzer target for the reading of Swaarm's /click answer ({"id": "..."}),
 *		s2s_swaarm_answer_id() in src/swaarm_answer.c, over PostgreSQL's JSON parser
 *		(the frontend build of common/jsonapi.c in libpgcommon).
 *
 * Checked: nothing reads past the body (the input is not NUL-terminated: ASan sees any
 * overrun), the result is NULL or an id of 1 .. S2S_SWAARM_ID_MAX printable ASCII bytes,
 * and the id of a well-formed object built around a given value is found.
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "click.h"
#include "swaarm_answer.h"

#include "fuzz.h"

static void
check_id(const char *id)
{
	size_t		len;

	if (id == NULL)
		return;
	len = strlen(id);
	FUZZ_CHECK(len >= 1 && len <= S2S_SWAARM_ID_MAX, "id length %zu", len);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK((unsigned char) id[i] > 0x20 && (unsigned char) id[i] < 0x7f,
				   "byte 0x%02x in the id", (unsigned char) id[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the body exactly as received: no terminating NUL after it */
	char	   *body = malloc(size ? size : 1);
	char	   *id;

	memcpy(body, data, size);
	check_id(s2s_swaarm_answer_id(body, size));
	free(body);

	/* the input as a value: {"a": [1, {"b": null}], "id": "<printable input>"} */
	if (size > 0 && size <= S2S_SWAARM_ID_MAX)
	{
		StringInfoData doc;
		bool		printable = true;

		for (size_t i = 0; i < size; i++)
			printable &= data[i] >= 0x21 && data[i] < 0x7f && data[i] != '"' && data[i] != '\\';
		if (printable)
		{
			initStringInfo(&doc);
			appendStringInfoString(&doc, " {\"a\": [1, {\"b\": null}, \"x\\\"y\"], \"id\" : \"");
			appendBinaryStringInfo(&doc, (const char *) data, (int) size);
			appendStringInfoString(&doc, "\"}\n");
			id = s2s_swaarm_answer_id(doc.data, doc.len);
			FUZZ_CHECK(id != NULL && strlen(id) == size && memcmp(id, data, size) == 0,
					   "id not found in a well-formed answer");
		}
	}
	fuzz_reset();
	return 0;
}
