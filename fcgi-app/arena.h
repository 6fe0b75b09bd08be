/*
 * arena.h - per-request memory.
 *
 * Everything transient in a request comes from the request's arena and is
 * released at once when the request ends.  Foreign objects (PGresult,
 * json_object, EVP contexts) are registered with arena_defer() so that an
 * early return never leaks them.
 *
 * Out-of-memory policy: an arena allocation that fails aborts the worker.
 * The supervisor (multiwatch) starts a fresh one at once; the request in
 * flight gets a 502 from nginx and its transaction is rolled back by
 * PostgreSQL.  No caller checks arena allocations for NULL.
 */
#ifndef ATRIUM_ARENA_H
#define ATRIUM_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

/* Returns a new arena; aborts on out-of-memory. Owned by the caller. */
struct arena *arena_new(size_t chunk_size);
/* Runs the deferred destructors (last registered first) and frees all chunks
 * but the first, which is kept for the next request. */
void arena_reset(struct arena *a);
/* arena_reset() and frees the arena itself. */
void arena_free(struct arena *a);

/* size bytes aligned for any type; zeroed. */
void *arena_alloc(struct arena *a, size_t size);
/* NUL-terminated copy of n bytes of p. */
char *arena_strndup(struct arena *a, const char *p, size_t n);
char *arena_strdup(struct arena *a, const char *s);
/* printf into fresh arena memory. */
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Calls fn(p) when the arena is reset. */
void arena_defer(struct arena *a, void (*fn)(void *), void *p);
/* Bytes handed out since the last reset (for tests and diagnostics). */
size_t arena_used(const struct arena *a);

/* A growable byte buffer living in an arena. */
struct buf {
	struct arena *a;
	char *p;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b, struct arena *a, size_t cap);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keeps the contents NUL-terminated and returns them. */
const char *buf_cstr(struct buf *b);

#endif
