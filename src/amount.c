/*
 * amount.c
 *		Amounts as the networks show them (pure): the ISO 4217 minor unit of a currency,
 *		and numeric's text rendered with it.
 *
 * An orders table's numeric(12,4) column stores 123.45 as "123.4500"; Affilae and Swaarm
 * show amounts as "123.45" (and a yen amount as "100", a dinar amount as "1.250"). The
 * renderer (render.c) passes every amount through s2s_amount_format() for the currency it
 * goes out with. The rule never changes the value: trailing zeros are dropped only beyond
 * the minor unit, zeros are only ever added up to it, and a value with more digits than
 * the minor unit (1.2345 EUR) is sent with all of them, never rounded.
 *
 * The table is ISO 4217's list of active codes (and a few recently withdrawn ones whose
 * minor unit is known), as published by SIX (list one). Codes it does not hold, and those
 * ISO 4217 gives no minor unit ("N.A.": precious metals, SDR, the test and no-currency
 * codes), are rendered in the shortest exact form.
 */
#include "postgres.h"

#include "amount.h"

typedef struct CurrencyUnit
{
	char		code[4];
	signed char minor;
} CurrencyUnit;

/* Sorted by code (bsearch). */
static const CurrencyUnit currencies[] = {
	{"AED", 2}, {"AFN", 2}, {"ALL", 2}, {"AMD", 2}, {"ANG", 2}, {"AOA", 2}, {"ARS", 2},
	{"AUD", 2}, {"AWG", 2}, {"AZN", 2}, {"BAM", 2}, {"BBD", 2}, {"BDT", 2}, {"BGN", 2},
	{"BHD", 3}, {"BIF", 0}, {"BMD", 2}, {"BND", 2}, {"BOB", 2}, {"BOV", 2}, {"BRL", 2},
	{"BSD", 2}, {"BTN", 2}, {"BWP", 2}, {"BYN", 2}, {"BZD", 2}, {"CAD", 2}, {"CDF", 2},
	{"CHE", 2}, {"CHF", 2}, {"CHW", 2}, {"CLF", 4}, {"CLP", 0}, {"CNY", 2}, {"COP", 2},
	{"COU", 2}, {"CRC", 2}, {"CUC", 2}, {"CUP", 2}, {"CVE", 2}, {"CZK", 2}, {"DJF", 0},
	{"DKK", 2}, {"DOP", 2}, {"DZD", 2}, {"EGP", 2}, {"ERN", 2}, {"ETB", 2}, {"EUR", 2},
	{"FJD", 2}, {"FKP", 2}, {"GBP", 2}, {"GEL", 2}, {"GHS", 2}, {"GIP", 2}, {"GMD", 2},
	{"GNF", 0}, {"GTQ", 2}, {"GYD", 2}, {"HKD", 2}, {"HNL", 2}, {"HRK", 2}, {"HTG", 2},
	{"HUF", 2}, {"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"IQD", 3}, {"IRR", 2}, {"ISK", 0},
	{"JMD", 2}, {"JOD", 3}, {"JPY", 0}, {"KES", 2}, {"KGS", 2}, {"KHR", 2}, {"KMF", 0},
	{"KPW", 2}, {"KRW", 0}, {"KWD", 3}, {"KYD", 2}, {"KZT", 2}, {"LAK", 2}, {"LBP", 2},
	{"LKR", 2}, {"LRD", 2}, {"LSL", 2}, {"LYD", 3}, {"MAD", 2}, {"MDL", 2}, {"MGA", 2},
	{"MKD", 2}, {"MMK", 2}, {"MNT", 2}, {"MOP", 2}, {"MRU", 2}, {"MUR", 2}, {"MVR", 2},
	{"MWK", 2}, {"MXN", 2}, {"MXV", 2}, {"MYR", 2}, {"MZN", 2}, {"NAD", 2}, {"NGN", 2},
	{"NIO", 2}, {"NOK", 2}, {"NPR", 2}, {"NZD", 2}, {"OMR", 3}, {"PAB", 2}, {"PEN", 2},
	{"PGK", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"PYG", 0}, {"QAR", 2}, {"RON", 2},
	{"RSD", 2}, {"RUB", 2}, {"RWF", 0}, {"SAR", 2}, {"SBD", 2}, {"SCR", 2}, {"SDG", 2},
	{"SEK", 2}, {"SGD", 2}, {"SHP", 2}, {"SLE", 2}, {"SLL", 2}, {"SOS", 2}, {"SRD", 2},
	{"SSP", 2}, {"STN", 2}, {"SVC", 2}, {"SYP", 2}, {"SZL", 2}, {"THB", 2}, {"TJS", 2},
	{"TMT", 2}, {"TND", 3}, {"TOP", 2}, {"TRY", 2}, {"TTD", 2}, {"TWD", 2}, {"TZS", 2},
	{"UAH", 2}, {"UGX", 0}, {"USD", 2}, {"USN", 2}, {"UYI", 0}, {"UYU", 2}, {"UYW", 4},
	{"UZS", 2}, {"VED", 2}, {"VES", 2}, {"VND", 0}, {"VUV", 0}, {"WST", 2}, {"XAF", 0},
	{"XCD", 2}, {"XCG", 2}, {"XOF", 0}, {"XPF", 0}, {"YER", 2}, {"ZAR", 2}, {"ZMW", 2},
	{"ZWG", 2}, {"ZWL", 2}
};

int
s2s_currency_minor_unit(const char *code)
{
	int			lo = 0;
	int			hi = lengthof(currencies) - 1;

	if (code == NULL || strlen(code) != 3)
		return -1;
	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = strcmp(code, currencies[mid].code);

		if (c == 0)
			return currencies[mid].minor;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -1;
}

void
s2s_amount_format(const char *amount, const char *currency, char *out)
{
	const char *p = amount;
	const char *point;
	size_t		int_len;
	size_t		frac_len = 0;
	size_t		sig;
	size_t		digits;
	int			minor;
	char	   *w = out;

	/* only "[-]digits[.digits]" (numeric's output) is reshaped; anything else as it is */
	if (*p == '-')
		p++;
	if (!(*p >= '0' && *p <= '9'))
	{
		strcpy(out, amount);
		return;
	}
	while (*p >= '0' && *p <= '9')
		p++;
	point = p;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			frac_len++;
	if (*p != '\0')
	{
		strcpy(out, amount);
		return;
	}

	int_len = point - amount;
	sig = frac_len;
	while (sig > 0 && point[sig] == '0')
		sig--;
	minor = s2s_currency_minor_unit(currency);
	digits = (minor >= 0 && (size_t) minor > sig) ? (size_t) minor : sig;

	memcpy(w, amount, int_len);
	w += int_len;
	if (digits > 0)
	{
		size_t		copied = Min(digits, frac_len);

		*w++ = '.';
		memcpy(w, point + 1, copied);
		w += copied;
		for (; copied < digits; copied++)
			*w++ = '0';
	}
	*w = '\0';
}
