/*
 * shim.c
 *		Backend memory functions for the libFuzzer targets, outside the server.
 *
 * The pure modules (click.c, render.c, retry.c, trigger_args.c) call palloc and friends
 * and never pfree everything they allocate: in the server a memory context frees it all
 * at once. Here every allocation is a separate malloc (so that AddressSanitizer sees each
 * one's bounds) linked into one list, and fuzz_reset() frees the list after each input:
 * the same "free by context" contract, with no leak reported and no memory growth.
 * StringInfo, psprintf and qsort come from PostgreSQL's frontend libpgcommon/libpgport,
 * which call these functions. Requests above MaxAllocSize abort, where the server would
 * raise an error: for a few KB of input that is always a size-computation bug.
 */
#include "postgres.h"

#include <stdio.h>
#include <stdlib.h>

#include "utils/memutils.h"

#include "fuzz.h"

typedef struct Chunk
{
	struct Chunk *prev;
	struct Chunk *next;
	size_t		size;
	size_t		magic;			/* keeps the user area 16-byte aligned, catches bad pfree */
} Chunk;

#define CHUNK_MAGIC ((size_t) 0x5332534d454d4f52)

static Chunk all = {&all, &all, 0, 0};

static void
die(const char *what, size_t size)
{
	fprintf(stderr, "fuzz shim: %s (%zu bytes)\n", what, size);
	abort();
}

static void *
chunk_alloc(size_t size, int flags)
{
	Chunk	   *c;

	if (size > ((flags & MCXT_ALLOC_HUGE) ? MaxAllocHugeSize : MaxAllocSize))
		die("invalid memory alloc request size", size);
	c = (flags & MCXT_ALLOC_ZERO) ? calloc(1, sizeof(Chunk) + size) : malloc(sizeof(Chunk) + size);
	if (c == NULL)
	{
		if (flags & MCXT_ALLOC_NO_OOM)
			return NULL;
		die("out of memory", size);
	}
	c->size = size;
	c->magic = CHUNK_MAGIC;
	c->prev = &all;
	c->next = all.next;
	all.next->prev = c;
	all.next = c;
	return c + 1;
}

static Chunk *
chunk_of(void *pointer)
{
	Chunk	   *c = ((Chunk *) pointer) - 1;

	if (c->magic != CHUNK_MAGIC)
		die("pfree or repalloc of a pointer palloc did not return", 0);
	return c;
}

static void *
chunk_realloc(void *pointer, size_t size, size_t limit)
{
	Chunk	   *c;
	Chunk	   *n;

	if (size > limit)
		die("invalid memory alloc request size", size);
	c = chunk_of(pointer);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	n = realloc(c, sizeof(Chunk) + size);
	if (n == NULL)
		die("out of memory", size);
	n->size = size;
	n->prev = &all;
	n->next = all.next;
	all.next->prev = n;
	all.next = n;
	return n + 1;
}

void *
palloc(Size size)
{
	return chunk_alloc(size, 0);
}

void *
palloc0(Size size)
{
	return chunk_alloc(size, MCXT_ALLOC_ZERO);
}

void *
palloc_extended(Size size, int flags)
{
	return chunk_alloc(size, flags);
}

void *
repalloc(void *pointer, Size size)
{
	return chunk_realloc(pointer, size, MaxAllocSize);
}

void *
repalloc_huge(void *pointer, Size size)
{
	return chunk_realloc(pointer, size, MaxAllocHugeSize);
}

void
pfree(void *pointer)
{
	Chunk	   *c = chunk_of(pointer);

	c->prev->next = c->next;
	c->next->prev = c->prev;
	c->magic = 0;
	free(c);
}

char *
pstrdup(const char *in)
{
	size_t		len = strlen(in);
	char	   *out = chunk_alloc(len + 1, 0);

	memcpy(out, in, len + 1);
	return out;
}

char *
pnstrdup(const char *in, Size size)
{
	size_t		len = strnlen(in, size);
	char	   *out = chunk_alloc(len + 1, 0);

	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

/* Frontend names of the same functions, so that fe_memutils.o is never linked in. */
void *
pg_malloc(size_t size)
{
	return chunk_alloc(size, 0);
}

void *
pg_malloc0(size_t size)
{
	return chunk_alloc(size, MCXT_ALLOC_ZERO);
}

void *
pg_malloc_extended(size_t size, int flags)
{
	return chunk_alloc(size, flags);
}

void *
pg_realloc(void *pointer, size_t size)
{
	return chunk_realloc(pointer, size, MaxAllocHugeSize);
}

char *
pg_strdup(const char *in)
{
	return pstrdup(in);
}

void
pg_free(void *pointer)
{
	pfree(pointer);
}

/*
 * Assert() in the pure modules (built with USE_ASSERT_CHECKING here). 16 dropped the
 * errorType argument (every caller passed "FailedAssertion"). A definition must match
 * the header's declaration, so this branch stays here rather than behind a wrapper in
 * compat.h.
 */
#if PG_VERSION_NUM >= 160000
void
ExceptionalCondition(const char *conditionName, const char *fileName, int lineNumber)
{
	fprintf(stderr, "TRAP: failed Assert(\"%s\"), File: \"%s\", Line: %d\n",
			conditionName, fileName, lineNumber);
	abort();
}
#else
void
ExceptionalCondition(const char *conditionName, const char *errorType,
					 const char *fileName, int lineNumber)
{
	fprintf(stderr, "TRAP: %s(\"%s\", File: \"%s\", Line: %d)\n",
			errorType, conditionName, fileName, lineNumber);
	abort();
}
#endif

void
fuzz_reset(void)
{
	while (all.next != &all)
		pfree(all.next + 1);
}

/* A NUL-terminated copy of data[0..len) (palloc'd: freed by fuzz_reset). */
char *
fuzz_cstring(const uint8_t *data, size_t len)
{
	char	   *s = chunk_alloc(len + 1, 0);

	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

/*
 * Splits the input at NUL bytes into at most max NUL-terminated strings (the last one
 * takes the rest). Returns the count. Fields are palloc'd.
 */
int
fuzz_split(const uint8_t *data, size_t len, char **fields, int max)
{
	int			n = 0;
	size_t		start = 0;

	while (n < max)
	{
		const uint8_t *nul = (n == max - 1) ? NULL : memchr(data + start, 0, len - start);
		size_t		end = nul ? (size_t) (nul - data) : len;

		fields[n++] = fuzz_cstring(data + start, end - start);
		if (nul == NULL)
			break;
		start = end + 1;
	}
	return n;
}

/* Reads a little-endian integer of n bytes (n <= 8) from the input, advancing it. */
uint64_t
fuzz_take(const uint8_t **data, size_t *len, int n)
{
	uint64_t	v = 0;

	for (int i = 0; i < n && *len > 0; i++)
	{
		v |= (uint64_t) (**data) << (8 * i);
		(*data)++;
		(*len)--;
	}
	return v;
}
