/* Unit tests: base64url used by cursors. */
#include "page.h"
#include "tap.h"

int
main(void)
{
	struct arena *a = arena_new(4096);
	char out[64];
	size_t n;
	b64url_encode(out, (const unsigned char *)"\xfb\xff", 2);
	is_str(out, "-_8", "URL alphabet, no padding");
	b64url_encode(out, (const unsigned char *)"acme.portal.localhost", 21);
	unsigned char *d = b64url_decode(a, out, strlen(out), &n);
	ok(d != NULL && n == 21 && memcmp(d, "acme.portal.localhost", 21) == 0, "round trip");
	ok(b64url_decode(a, "a", 1, &n) == NULL, "impossible length refused");
	ok(b64url_decode(a, "ab+/", 4, &n) == NULL, "standard alphabet refused");
	ok(b64url_decode(a, "a!bc", 4, &n) == NULL, "garbage refused");
	d = b64url_decode(a, "YQ", 2, &n);
	ok(d != NULL && n == 1 && d[0] == 'a', "unpadded input decodes");
	d = b64url_decode(a, "", 0, &n);
	ok(d != NULL && n == 0, "empty decodes to empty");
	arena_free(a);
	return done_testing();
}
