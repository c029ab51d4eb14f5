/*
 * fuzz_trigger_args.c
 *		libFuzzer target for src/trigger_args.c: the orders trigger's "key=value" arguments.
 *
 * Input: NUL-separated trigger arguments (as pg_trigger.tgargs holds them). Checked: a
 * parse either fails with a sentence or yields a configuration that respects the rules
 * trigger_args.h states (endpoint and order_id present, constants only where allowed and
 * never empty, a status column exactly when validated statuses are given), and every
 * column, constant or expression ("key:expr=TEXT") comes from the arguments (a constant is
 * the literal unquoted); payment_map needs a payment mapping.
 */
#include "postgres.h"

#include "trigger_args.h"
#include "fuzz.h"

#define MAXARGS 40

/* 'it''s' back to the literal: quote, value with quotes doubled, quote. */
static char *
quote(const char *v)
{
	char	   *out = palloc(2 * strlen(v) + 3);
	char	   *w = out;

	*w++ = '\'';
	for (; *v; v++)
	{
		if (*v == '\'')
			*w++ = '\'';
		*w++ = *v;
	}
	*w++ = '\'';
	*w = '\0';
	return out;
}

static bool
arg_has_value(int nargs, char **args, const char *key, const char *value)
{
	size_t		klen = strlen(key);

	for (int i = 0; i < nargs; i++)
		if (strncmp(args[i], key, klen) == 0 && args[i][klen] == '=' &&
			strcmp(args[i] + klen + 1, value) == 0)
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *args[MAXARGS];
	int			nargs = size == 0 ? 0 : fuzz_split(data, size, args, MAXARGS);
	S2STriggerArgs a;
	char	   *err = s2s_trigger_args_parse(nargs, args, &a);

	if (err != NULL)
	{
		FUZZ_CHECK(err[0] != '\0', "empty error");
		fuzz_reset();
		return 0;
	}
	FUZZ_CHECK(a.endpoint != NULL && a.endpoint[0] != '\0', "no endpoint");
	FUZZ_CHECK(arg_has_value(nargs, args, "endpoint", a.endpoint), "endpoint not from the args");
	FUZZ_CHECK(a.fields[S2S_F_ORDER_ID].column != NULL || a.fields[S2S_F_ORDER_ID].expr != NULL,
			   "no order_id column or expression");
	FUZZ_CHECK(a.fields[S2S_F_STATUS].expr == NULL, "status as an expression");
	if (a.payment_map)
		FUZZ_CHECK(arg_has_value(nargs, args, "payment_map", a.payment_map) &&
				   (a.fields[S2S_F_PAYMENT].column || a.fields[S2S_F_PAYMENT].expr),
				   "payment_map");
	FUZZ_CHECK((a.fields[S2S_F_STATUS].column != NULL) == (a.nvalidated > 0), "status rule");
	FUZZ_CHECK(a.nvalidated >= 0 && a.nvalidated <= nargs, "nvalidated %d", a.nvalidated);
	for (int i = 0; i < a.nvalidated; i++)
		FUZZ_CHECK(a.validated[i][0] != '\0' &&
				   arg_has_value(nargs, args, "validated_status", a.validated[i]), "validated");

	for (int f = 0; f < S2S_NFIELDS; f++)
	{
		const S2SFieldArg *fa = &a.fields[f];

		FUZZ_CHECK((fa->column != NULL) + (fa->constant != NULL) + (fa->expr != NULL) <= 1,
				   "more than one of column, constant and expression");
		if (fa->expr)
		{
			char	   *key = psprintf("%s:expr", s2s_field_names[f]);

			FUZZ_CHECK(fa->expr[0] != '\0' && arg_has_value(nargs, args, key, fa->expr),
					   "expression does not come from the args");
		}
		if (fa->column)
			FUZZ_CHECK(fa->column[0] != '\0' &&
					   arg_has_value(nargs, args, s2s_field_names[f], fa->column), "column");
		if (fa->constant)
		{
			FUZZ_CHECK(s2s_field_allows_constant((S2SField) f), "constant for %s", s2s_field_names[f]);
			FUZZ_CHECK(fa->constant[0] != '\0', "empty constant");
			FUZZ_CHECK(arg_has_value(nargs, args, s2s_field_names[f], quote(fa->constant)),
					   "constant does not round-trip");
		}
	}

	/* each kind either accepts the mapping or says why not */
	for (int k = 0; k < 3; k++)
	{
		char	   *msg = s2s_trigger_args_check_kind(&a, (S2SEndpointKind) k);
		S2SEndpointKind back;

		FUZZ_CHECK(msg == NULL || msg[0] != '\0', "empty message");
		FUZZ_CHECK(s2s_endpoint_kind_parse(s2s_endpoint_kind_name((S2SEndpointKind) k), &back) &&
				   back == (S2SEndpointKind) k, "kind names");
	}
	fuzz_reset();
	return 0;
}
