/*
 * unit.h
 *		A minimal TAP producer for the standalone C unit tests (test/unit/).
 *
 * Each check prints "ok N - what" or "not ok N - what"; unit_done() prints the plan and a
 * "NAME: N passed, M failed" line and returns the exit status. No PostgreSQL headers:
 * the tests link the pure modules directly.
 */
#ifndef S2S_UNIT_H
#define S2S_UNIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* the PostgreSQL typedefs that the modules' headers use */
typedef int64_t int64;

static int	unit_passed;
static int	unit_failed;

static bool __attribute__((format(printf, 2, 3), unused))
unit_check(bool ok, const char *fmt, ...)
{
	va_list		ap;

	printf("%s %d - ", ok ? "ok" : "not ok", unit_passed + unit_failed + 1);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		unit_passed++;
	else
		unit_failed++;
	return ok;
}

#define CHECK(cond, ...) unit_check((cond), __VA_ARGS__)
#define CHECK_EQ_INT(got, want, what) \
	do { long long g_ = (long long) (got), w_ = (long long) (want); \
		if (!unit_check(g_ == w_, "%s", (what))) \
			printf("#   got %lld, want %lld\n", g_, w_); } while (0)
#define CHECK_EQ_STR(got, want, what) \
	do { const char *g_ = (got), *w_ = (want); \
		bool e_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_; \
		if (!unit_check(e_, "%s", (what))) \
			printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); } while (0)

static int __attribute__((unused))
unit_done(const char *name)
{
	printf("1..%d\n", unit_passed + unit_failed);
	printf("%s: %d passed, %d failed\n", name, unit_passed, unit_failed);
	return unit_failed == 0 ? 0 : 1;
}

#endif							/* S2S_UNIT_H */
