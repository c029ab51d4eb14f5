/*
 * swaarm_answer.c
 *		The click ID in Swaarm's /click answer ({"id": "..."}) (pure).
 *
 * PostgreSQL's JSON parser (common/jsonapi.h) reads the answer; a few semantic actions
 * keep the value of the top-level "id" member and count the nesting. The rules of an ID
 * are in swaarm_answer.h; s2s_swaarm_check (click.c) then applies the one rule for
 * Swaarm click IDs, the one record_click applies too.
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

#include "click.h"
#include "compat.h"
#include "swaarm_answer.h"

typedef struct AnswerState
{
	int			depth;			/* containers open around the current value */
	bool		is_object;		/* the top-level value is an object */
	bool		too_deep;		/* a value sits deeper than S2S_SWAARM_ANSWER_MAX_DEPTH */
	bool		in_id;			/* inside the value of a top-level "id" member */
	char	   *id;				/* the last valid top-level "id", or NULL */
} AnswerState;

/* A scalar that is an ID: printable ASCII, or the digits of a non-negative integer. */
static bool
scalar_is_id(const char *token, JsonTokenType type)
{
	size_t		len;

	if (token == NULL || (type != JSON_TOKEN_STRING && type != JSON_TOKEN_NUMBER))
		return false;
	len = strlen(token);
	if (len == 0 || len > S2S_SWAARM_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) token[i];

		if (type == JSON_TOKEN_NUMBER ? (c < '0' || c > '9') : (c < 0x21 || c > 0x7e))
			return false;
	}
	return true;
}

/* Every value is checked for depth where it starts: as a member or as an element. */
static bool
value_depth_ok(AnswerState *st)
{
	if (st->depth > S2S_SWAARM_ANSWER_MAX_DEPTH)
		st->too_deep = true;
	return !st->too_deep;
}

static s2s_json_action
answer_container_start(void *state)
{
	AnswerState *st = (AnswerState *) state;

	st->depth++;
	S2S_JSON_ACTION_DONE(true);
}

static s2s_json_action
answer_object_start(void *state)
{
	AnswerState *st = (AnswerState *) state;

	if (st->depth == 0)
		st->is_object = true;
	st->depth++;
	S2S_JSON_ACTION_DONE(true);
}

static s2s_json_action
answer_container_end(void *state)
{
	AnswerState *st = (AnswerState *) state;

	st->depth--;
	S2S_JSON_ACTION_DONE(true);
}

static s2s_json_action
answer_field_start(void *state, char *fname, bool isnull)
{
	AnswerState *st = (AnswerState *) state;

	if (st->depth == 1)
	{
		st->in_id = (strcmp(fname, "id") == 0);
		/* the last "id" counts, even when its value is not an ID */
		if (st->in_id)
			st->id = NULL;
	}
	S2S_JSON_ACTION_DONE(value_depth_ok(st));
}

static s2s_json_action
answer_field_end(void *state, char *fname, bool isnull)
{
	AnswerState *st = (AnswerState *) state;

	if (st->depth == 1)
		st->in_id = false;
	S2S_JSON_ACTION_DONE(true);
}

static s2s_json_action
answer_element_start(void *state, bool isnull)
{
	S2S_JSON_ACTION_DONE(value_depth_ok((AnswerState *) state));
}

static s2s_json_action
answer_scalar(void *state, char *token, JsonTokenType type)
{
	AnswerState *st = (AnswerState *) state;

	if (st->depth == 1 && st->in_id)
		st->id = scalar_is_id(token, type) ? token : NULL;
	S2S_JSON_ACTION_DONE(true);
}

/*
 * The body as the parser is given it, or NULL when it nests containers too deep to hold
 * an ID; one pass over its strings and brackets, for two things the parser cannot be
 * left to do alone:
 *
 * - Depth. Before 16 the semantic actions cannot stop the parser, which recurses once
 *   per container, and a 16 kB answer of '[' exhausts the server's stack (an ERROR of
 *   its own instead of "no click ID"). A container opened inside MAX_DEPTH + 1 others is
 *   a value deeper than MAX_DEPTH, so the answer holds no ID (the actions apply the exact
 *   rule to anything shallower).
 *
 * - Escapes. The parser decodes every string when member names are wanted, and refuses
 *   a document holding \u0000 or an unpaired surrogate, or (on 15, with an ERROR) a
 *   non-ASCII escape in a database whose encoding is not UTF-8. None of these can be
 *   part of an ID or of the name "id" (they are not printable ASCII), and neither can
 *   \u0001, which replaces each of them in a copy (same length): a string holding one
 *   stays "not an ID" instead of making the whole answer unreadable.
 *
 * Strings are told apart as the parser does for every document it accepts; on any other
 * the parser fails, at the latest where this scan and it would first disagree.
 */
static const char *
prepare_body(const char *body, size_t len)
{
	char	   *copy = NULL;
	bool		in_string = false;
	int			open = 0;

	for (size_t i = 0; i < len; i++)
	{
		char		hex[5];
		unsigned long code;

		if (!in_string)
		{
			if (body[i] == '"')
				in_string = true;
			else if (body[i] == '[' || body[i] == '{')
			{
				if (++open > S2S_SWAARM_ANSWER_MAX_DEPTH + 1)
					return NULL;
			}
			else if (body[i] == ']' || body[i] == '}')
				open--;
			continue;
		}
		if (body[i] == '"')
		{
			in_string = false;
			continue;
		}
		if (body[i] != '\\' || i + 1 >= len)
			continue;
		i++;
		if (body[i] != 'u' || len - i < 5)
			continue;
		memcpy(hex, body + i + 1, 4);
		hex[4] = '\0';
		if (strspn(hex, "0123456789abcdefABCDEF") != 4)
			continue;			/* not four hex digits: the parser refuses it */
		code = strtoul(hex, NULL, 16);
		if (code == 0 || code > 0x7f)
		{
			if (copy == NULL)
			{
				copy = palloc(len);
				memcpy(copy, body, len);
			}
			memcpy(copy + i + 1, "0001", 4);
		}
		i += 4;
	}
	return copy ? copy : body;
}

char *
s2s_swaarm_answer_id(const char *body, size_t len)
{
	AnswerState st = {0};
	JsonSemAction sem = {0};
	JsonLexContext *lex;
	JsonParseErrorType rc;
	const char *json = prepare_body(body, len);

	if (json == NULL)
		return NULL;

	sem.semstate = &st;
	sem.object_start = answer_object_start;
	sem.object_end = answer_container_end;
	sem.array_start = answer_container_start;
	sem.array_end = answer_container_end;
	sem.object_field_start = answer_field_start;
	sem.object_field_end = answer_field_end;
	sem.array_element_start = answer_element_start;
	sem.scalar = answer_scalar;

	/* JSON is UTF-8 (RFC 8259); only ASCII escapes are left to decode in any case */
	lex = s2s_json_lex_create(json, len, PG_UTF8, true);
	rc = pg_parse_json(lex, &sem);
	s2s_json_lex_free(lex);

	if (rc != JSON_SUCCESS || !st.is_object || st.too_deep)
		return NULL;
	return st.id;
}
