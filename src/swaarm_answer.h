/*
 * swaarm_answer.h
 *		The click ID in Swaarm's /click answer (pure).
 *
 * Swaarm answers GET <tracking domain>/click?no_redirect=true&... with {"id": "..."}.
 * No catalog or network access and no ereport here, so that the fuzz target links this
 * module alone (with PostgreSQL's frontend libpgcommon, which holds the JSON parser).
 */
#ifndef S2S_SWAARM_ANSWER_H
#define S2S_SWAARM_ANSWER_H

#include <stddef.h>

/* Containers nested deeper than this around a value make the answer hold no click ID. */
#define S2S_SWAARM_ANSWER_MAX_DEPTH 64

/*
 * The click ID in body[0..len) (not NUL-terminated): the top-level "id" member of a JSON
 * object, a string of printable ASCII (0x21-0x7E once its escapes are decoded) or a
 * non-negative integer, 1 to S2S_SWAARM_ID_MAX bytes; the last "id" counts when there
 * are several. NULL when the body is no such object. The result is palloc'd.
 */
extern char *s2s_swaarm_answer_id(const char *body, size_t len);

#endif							/* S2S_SWAARM_ANSWER_H */
