/* Unit tests: arena allocation, destructors, buffers. */
#include <stdint.h>

#include "arena.h"
#include "tap.h"

static int destroyed;

static void
destroy(void *p)
{
	destroyed += *(int *)p;
}

int
main(void)
{
	struct arena *a = arena_new(1024);
	char *s = arena_strdup(a, "hello");
	is_str(s, "hello", "strdup copies");
	int *x = arena_alloc(a, sizeof(int));
	ok(*x == 0, "allocations are zeroed");
	ok(((uintptr_t)x % 16) == 0, "allocations are 16-byte aligned");
	/* bigger than a chunk */
	char *big = arena_alloc(a, 100000);
	big[99999] = 'x';
	ok(big[99999] == 'x', "large allocation usable");
	is_str(arena_printf(a, "%d-%s", 42, "x"), "42-x", "printf formats");

	static int one = 1, ten = 10;
	arena_defer(a, destroy, &one);
	arena_defer(a, destroy, &ten);
	arena_reset(a);
	ok(destroyed == 11, "destructors ran on reset");
	ok(arena_used(a) == 0, "reset releases everything");
	arena_reset(a);
	ok(destroyed == 11, "destructors run once");

	struct buf b;
	buf_init(&b, a, 4);
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i % 10);
	ok(b.len == 2000, "buffer grows (len %zu)", b.len);
	ok(strncmp(buf_cstr(&b), "0,1,2,", 6) == 0, "buffer keeps contents");
	buf_append(&b, "", 0);
	ok(b.p[b.len] == '\0', "buffer stays terminated");
	arena_free(a);
	return done_testing();
}
