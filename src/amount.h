/*
 * amount.h
 *		Amounts as the networks show them (pure): ISO 4217 minor units, and numeric's text
 *		turned into "123.45" for the currency it is in.
 *
 * Plain C on caller-provided buffers: no catalog, no setting, no palloc, no ereport, so
 * that the unit tests and the render fuzz target link it as it is.
 */
#ifndef S2S_AMOUNT_H
#define S2S_AMOUNT_H

/* Most digits after the point that an ISO 4217 minor unit asks for (CLF, UYW: 4). */
#define S2S_AMOUNT_MAX_MINOR 4

/* Bytes s2s_amount_format may need for an amount of text length len, NUL included. */
#define S2S_AMOUNT_BUFSIZE(len) ((len) + S2S_AMOUNT_MAX_MINOR + 2)

/*
 * The ISO 4217 minor unit of a currency code (the digits after the point: 2 for EUR, 0
 * for JPY, 3 for KWD, 4 for CLF), or -1 when the code is not in ISO 4217 or has no minor
 * unit there (gold XAU, SDR XDR, test code XTS, ...). NULL gives -1.
 */
extern int	s2s_currency_minor_unit(const char *code);

/*
 * amount (numeric's text form: "-123.4500", "100.00", "7") written into out as the
 * networks show an amount in currency: at least the currency's minor unit of digits after
 * the point, trailing zeros beyond it dropped, and never fewer digits than the value has
 * (a real fraction is never rounded away: 1.2345 EUR stays "1.2345"). For a currency of
 * unknown minor unit (or NULL), the exact value in its shortest form ("100.50" -> "100.5",
 * "100.00" -> "100"). Text that is not a plain decimal number is copied as it is. out
 * must hold S2S_AMOUNT_BUFSIZE(strlen(amount)) bytes.
 */
extern void s2s_amount_format(const char *amount, const char *currency, char *out);

#endif							/* S2S_AMOUNT_H */
