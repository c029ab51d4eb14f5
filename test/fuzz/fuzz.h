/*
 * fuzz.h
 *		Helpers shared by the libFuzzer targets (test/fuzz/fuzz_*.c), see shim.c.
 */
#ifndef S2S_FUZZ_H
#define S2S_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Frees everything palloc'd since the last call (what a memory context reset does). */
extern void fuzz_reset(void);

extern char *fuzz_cstring(const uint8_t *data, size_t len);
extern int	fuzz_split(const uint8_t *data, size_t len, char **fields, int max);
extern uint64_t fuzz_take(const uint8_t **data, size_t *len, int n);

/* A property of the code under test failed: report it and crash, so libFuzzer saves the input. */
#define FUZZ_CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "property failed at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fprintf(stderr, "\n"); \
			abort(); \
		} \
	} while (0)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif							/* S2S_FUZZ_H */
