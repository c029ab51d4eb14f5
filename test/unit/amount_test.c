/*
 * amount_test.c
 *		Unit tests of src/amount.c: ISO 4217 minor units and amounts rendered with them
 *		(trailing zeros dropped beyond the minor unit, added up to it, a real fraction never
 *		rounded). Standalone: built and run by "make check-unit".
 */
#include <string.h>

#include "unit.h"
#include "amount.h"

static const char *
fmt(const char *amount, const char *currency)
{
	static char out[256];

	s2s_amount_format(amount, currency, out);
	return out;
}

static void
test_minor_units(void)
{
	CHECK_EQ_INT(s2s_currency_minor_unit("EUR"), 2, "EUR: 2");
	CHECK_EQ_INT(s2s_currency_minor_unit("USD"), 2, "USD: 2");
	CHECK_EQ_INT(s2s_currency_minor_unit("JPY"), 0, "JPY: 0");
	CHECK_EQ_INT(s2s_currency_minor_unit("KRW"), 0, "KRW: 0");
	CHECK_EQ_INT(s2s_currency_minor_unit("XOF"), 0, "XOF: 0");
	CHECK_EQ_INT(s2s_currency_minor_unit("KWD"), 3, "KWD: 3");
	CHECK_EQ_INT(s2s_currency_minor_unit("BHD"), 3, "BHD: 3");
	CHECK_EQ_INT(s2s_currency_minor_unit("TND"), 3, "TND: 3");
	CHECK_EQ_INT(s2s_currency_minor_unit("CLF"), 4, "CLF: 4");
	CHECK_EQ_INT(s2s_currency_minor_unit("UYW"), 4, "UYW: 4");
	CHECK_EQ_INT(s2s_currency_minor_unit("AED"), 2, "AED (first in the table): 2");
	CHECK_EQ_INT(s2s_currency_minor_unit("ZWL"), 2, "ZWL (last in the table): 2");
	CHECK_EQ_INT(s2s_currency_minor_unit("XAU"), -1, "XAU (gold, no minor unit): unknown");
	CHECK_EQ_INT(s2s_currency_minor_unit("XTS"), -1, "XTS (test code): unknown");
	CHECK_EQ_INT(s2s_currency_minor_unit("ABC"), -1, "ABC (not ISO 4217): unknown");
	CHECK_EQ_INT(s2s_currency_minor_unit("eur"), -1, "lower case is not a code");
	CHECK_EQ_INT(s2s_currency_minor_unit("EURO"), -1, "four letters");
	CHECK_EQ_INT(s2s_currency_minor_unit(""), -1, "empty");
	CHECK_EQ_INT(s2s_currency_minor_unit(NULL), -1, "NULL");
}

static void
test_format(void)
{
	CHECK_EQ_STR(fmt("123.4500", "EUR"), "123.45", "numeric(12,4) EUR: zeros beyond 2 dropped");
	CHECK_EQ_STR(fmt("123.4", "EUR"), "123.40", "EUR padded to 2");
	CHECK_EQ_STR(fmt("123", "EUR"), "123.00", "EUR integer padded to 2");
	CHECK_EQ_STR(fmt("1.2345", "EUR"), "1.2345", "a real fraction is never rounded");
	CHECK_EQ_STR(fmt("1.23450", "EUR"), "1.2345", "only zeros beyond the last significant digit go");
	CHECK_EQ_STR(fmt("100.00", "JPY"), "100", "JPY: no point");
	CHECK_EQ_STR(fmt("100.50", "JPY"), "100.5", "JPY with a real fraction keeps it");
	CHECK_EQ_STR(fmt("1.25", "KWD"), "1.250", "KWD padded to 3");
	CHECK_EQ_STR(fmt("1.25000", "KWD"), "1.250", "KWD cut to 3");
	CHECK_EQ_STR(fmt("2", "CLF"), "2.0000", "CLF padded to 4");
	CHECK_EQ_STR(fmt("0.00", "EUR"), "0.00", "zero in EUR");
	CHECK_EQ_STR(fmt("0", "JPY"), "0", "zero in JPY");
	CHECK_EQ_STR(fmt("-5.5000", "EUR"), "-5.50", "negative amount keeps its sign");
	CHECK_EQ_STR(fmt("0.001", "EUR"), "0.001", "sub-cent value kept");
	CHECK_EQ_STR(fmt("100.00", "ABC"), "100", "unknown code: shortest exact form");
	CHECK_EQ_STR(fmt("100.50", "XAU"), "100.5", "no minor unit: shortest exact form");
	CHECK_EQ_STR(fmt("100.50", NULL), "100.5", "no currency: shortest exact form");
	CHECK_EQ_STR(fmt("100.", "EUR"), "100.00", "a bare point");
	CHECK_EQ_STR(fmt("NaN", "EUR"), "NaN", "not a decimal: as it is");
	CHECK_EQ_STR(fmt("1e5", "EUR"), "1e5", "an exponent: as it is");
	CHECK_EQ_STR(fmt("", "EUR"), "", "empty: as it is");
	CHECK_EQ_STR(fmt("-", "EUR"), "-", "a sign alone: as it is");
	CHECK_EQ_STR(fmt(".5", "EUR"), ".5", "no integer digit: as it is");
	CHECK_EQ_STR(fmt("12345678901234567890.123456789000", "EUR"),
				 "12345678901234567890.123456789", "long values, exact");
}

int
main(void)
{
	test_minor_units();
	test_format();
	return unit_done("amount_test");
}
