/*
 * fuzz_swaarm_json.c
 *		libFuzzer target for the parser of Swaarm's /click answer ({"id": "..."}),
 *		json_click_id() in src/swaarm_click.c.
 *
 * The parser is a static function of a file that also talks SPI and HTTP, so the file is
 * included here whole and linked with --gc-sections: only the parser and what it calls
 * survive, and the backend symbols the rest of the file needs are never resolved. (Moving
 * the parser to a pure module would make this include unnecessary.)
 *
 * Checked: the parser never reads past the body (the input is not NUL-terminated: ASan
 * sees any overrun), returns NULL or an id of 1 .. CLICK_MAX_ID_LEN printable ASCII bytes
 * without '"' or '\', and finds the id of a well-formed object built around a given value.
 */
#include "../../src/swaarm_click.c"

#include "fuzz.h"

static void
check_id(const char *id)
{
	size_t		len;

	if (id == NULL)
		return;
	len = strlen(id);
	FUZZ_CHECK(len >= 1 && len <= CLICK_MAX_ID_LEN, "id length %zu", len);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK((unsigned char) id[i] >= 0x20 && (unsigned char) id[i] < 0x7f,
				   "byte 0x%02x in the id", (unsigned char) id[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the body exactly as received: no terminating NUL after it */
	char	   *body = malloc(size ? size : 1);
	char	   *id;

	memcpy(body, data, size);
	check_id(json_click_id(body, size));
	free(body);

	/* the input as a value: {"a": [1, {"b": null}], "id": "<printable input>"} */
	if (size > 0 && size <= CLICK_MAX_ID_LEN)
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
			id = json_click_id(doc.data, doc.len);
			FUZZ_CHECK(id != NULL && strlen(id) == size && memcmp(id, data, size) == 0,
					   "id not found in a well-formed answer");
		}
	}
	fuzz_reset();
	return 0;
}
