/*
 * arena.c - chunked bump allocator with deferred destructors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "common.h"

#define ARENA_ALIGN 16

struct chunk {
	struct chunk *next;
	size_t size;
	size_t used;
	/* flexible array holding the chunk's bytes, aligned for any type */
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct deferred {
	struct deferred *next;
	void (*fn)(void *);
	void *p;
};

struct arena {
	struct chunk *head;
	size_t chunk_size;
	struct deferred *defers;
	size_t total;
};

static void
oom(void)
{
	static const char msg[] = "atrium: out of memory, exiting\n";
	/* write(2) would need unistd; fputs on stderr is unbuffered anyway */
	fputs(msg, stderr);
	abort();
}

static struct chunk *
chunk_new(size_t size)
{
	struct chunk *c = malloc(sizeof(*c) + size);
	if (c == NULL)
		oom();
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

struct arena *
arena_new(size_t chunk_size)
{
	struct arena *a = malloc(sizeof(*a));
	if (a == NULL)
		oom();
	a->chunk_size = chunk_size < 1024 ? 1024 : chunk_size;
	a->head = chunk_new(a->chunk_size);
	a->defers = NULL;
	a->total = 0;
	return a;
}

void
arena_reset(struct arena *a)
{
	/* Destructors run before the memory goes: they may use arena data. */
	while (a->defers != NULL) {
		struct deferred *d = a->defers;
		a->defers = d->next;
		d->fn(d->p);
	}
	struct chunk *c = a->head;
	while (c->next != NULL) {
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
	/* c is the first chunk allocated: keep it */
	c->used = 0;
	a->head = c;
	a->total = 0;
}

void
arena_free(struct arena *a)
{
	if (a == NULL)
		return;
	arena_reset(a);
	free(a->head);
	free(a);
}

void *
arena_alloc(struct arena *a, size_t size)
{
	size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need < size)
		oom();
	struct chunk *c = a->head;
	if (c->size - c->used < need) {
		size_t sz = need > a->chunk_size ? need : a->chunk_size;
		struct chunk *n = chunk_new(sz);
		/* New chunks go behind the head's successor list; the first chunk
		 * stays last so that arena_reset() can keep it. */
		n->next = c;
		a->head = n;
		c = n;
	}
	void *p = c->data + c->used;
	c->used += need;
	a->total += need;
	memset(p, 0, size);
	return p;
}

char *
arena_strndup(struct arena *a, const char *p, size_t n)
{
	char *s = arena_alloc(a, n + 1);
	if (n > 0)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *
arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	char *s = arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	int m = vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (m != n)
		oom();
	return s;
}

void
arena_defer(struct arena *a, void (*fn)(void *), void *p)
{
	struct deferred *d = arena_alloc(a, sizeof(*d));
	d->fn = fn;
	d->p = p;
	d->next = a->defers;
	a->defers = d;
}

size_t
arena_used(const struct arena *a)
{
	return a->total;
}

void
buf_init(struct buf *b, struct arena *a, size_t cap)
{
	b->a = a;
	b->cap = cap < 64 ? 64 : cap;
	b->p = arena_alloc(a, b->cap);
	b->len = 0;
}

static void
buf_reserve(struct buf *b, size_t extra)
{
	if (b->cap - b->len > extra)
		return;
	size_t cap = b->cap;
	while (cap - b->len <= extra) {
		if (cap > SIZE_MAX / 2)
			oom();
		cap *= 2;
	}
	char *p = arena_alloc(b->a, cap);
	memcpy(p, b->p, b->len);
	b->p = p;
	b->cap = cap;
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	int m = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (m != n)
		oom();
	b->len += (size_t)n;
}

const char *
buf_cstr(struct buf *b)
{
	buf_reserve(b, 1);
	b->p[b->len] = '\0';
	return b->p;
}
