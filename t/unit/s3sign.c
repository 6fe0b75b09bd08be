/*
 * Unit tests: SigV4 query presigning, S3 URI encoding, Content-Disposition.
 *
 * The first vector is AWS's published example ("Authenticating Requests:
 * Using Query Parameters (AWS Signature Version 4)"); the other pinned
 * signatures come from botocore's S3SigV4QueryAuth (t/s3sign-crosscheck.t
 * compares several hundred random cases against it).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "s3sign.h"
#include "tap.h"

#define AWS_AKID   "AKIAIOSFODNN7EXAMPLE"
#define AWS_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define AWS_NOW    ((time_t)1369353600) /* 20130524T000000Z */
#define AWS_QUERY                                                                                  \
	"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-"  \
	"east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-"        \
	"SignedHeaders=host&X-Amz-Signature="
#define AWS_SIG "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

/* s with control characters as \xNN, for test names (static buffer). */
static const char *
shown(const char *s)
{
	static char out[256];
	size_t o = 0;
	for (; *s != '\0' && o + 5 < sizeof(out); s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

static struct s3_target
aws_target(void)
{
	return (struct s3_target){.endpoint = "https://s3.amazonaws.com",
	                          .region = "us-east-1",
	                          .bucket = "examplebucket",
	                          .path_style = false,
	                          .access_key_id = AWS_AKID,
	                          .secret_access_key = AWS_SECRET};
}

static char *
aws_get(struct arena *a, const struct s3_target *t, const char *key)
{
	return s3_presign(a, t, "GET", key, AWS_NOW, 86400, NULL, 0, NULL, 0);
}

static void
test_aws_example(struct arena *a)
{
	struct s3_target t = aws_target();
	is_str(aws_get(a, &t, "test.txt"),
	       "https://examplebucket.s3.amazonaws.com/test.txt?" AWS_QUERY AWS_SIG,
	       "AWS's published presigned GET, virtual-hosted");

	/* the scheme's default port is not part of the Host a client sends */
	t.endpoint = "https://s3.amazonaws.com:443";
	is_str(aws_get(a, &t, "test.txt"),
	       "https://examplebucket.s3.amazonaws.com/test.txt?" AWS_QUERY AWS_SIG,
	       "explicit :443 on https is dropped from Host and URL");
	t.endpoint = "https://S3.Amazonaws.COM";
	is_str(aws_get(a, &t, "test.txt"),
	       "https://examplebucket.s3.amazonaws.com/test.txt?" AWS_QUERY AWS_SIG,
	       "host is lower-cased, as browsers send it");

	t.endpoint = "https://s3.amazonaws.com";
	t.path_style = true;
	is_str(aws_get(a, &t, "test.txt"),
	       "https://s3.amazonaws.com/examplebucket/test.txt?" AWS_QUERY
	       "733255ef022bec3f2a8701cd61d4b371f3f28c9f193a1f02279211d48d5193d7",
	       "path style: /bucket/key on the endpoint's host");

	t.endpoint = "http://s3.amazonaws.com:443";
	char *u = aws_get(a, &t, "test.txt");
	ok(u != NULL && strncmp(u, "http://s3.amazonaws.com:443/examplebucket/", 42) == 0,
	   "443 is not http's default: kept");
	t.endpoint = "http://s3.amazonaws.com:80";
	u = aws_get(a, &t, "test.txt");
	ok(u != NULL && strncmp(u, "http://s3.amazonaws.com/examplebucket/", 38) == 0,
	   "80 is http's default: dropped");
}

static void
test_put_headers(struct arena *a)
{
	struct s3_target t = {.endpoint = "http://127.0.0.1:9000",
	                      .region = "us-east-1",
	                      .bucket = "atrium",
	                      .path_style = true,
	                      .access_key_id = "ATR0123456789ABCDEFG",
	                      .secret_access_key = "k+/secret="};
	static const char want[] =
	        "http://127.0.0.1:9000/atrium/acme/1f0e/r%C3%A9sum%C3%A9%20%E2%9C%93%20%281%29.pdf?"
	        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ATR0123456789ABCDEFG%2F20231114%"
	        "2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20231114T221320Z&X-Amz-Expires=900&X-"
	        "Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost&X-Amz-Signature="
	        "0d2a30d48c3dd1d1261513ee2ba73de13e7a09cf897991a6e307506668bd6d2e";
	const char *key = "acme/1f0e/r\xc3\xa9sum\xc3\xa9 \xe2\x9c\x93 (1).pdf";
	struct s3_param h[] = {{"content-type", "application/pdf"}, {"content-length", "12345"}};
	is_str(s3_presign(a, &t, "PUT", key, 1700000000, 900, h, 2, NULL, 0), want,
	       "PUT, non-default port, path style, UTF-8 key, signed content-type/length");

	struct s3_param rev[] = {{"content-length", "12345"}, {"content-type", "application/pdf"}};
	is_str(s3_presign(a, &t, "PUT", key, 1700000000, 900, rev, 2, NULL, 0), want,
	       "signed headers are sorted whatever the caller's order");

	struct s3_param sp[] = {{"content-type", " \t application/pdf  "},
	                        {"content-length", "12345\t"}};
	is_str(s3_presign(a, &t, "PUT", key, 1700000000, 900, sp, 2, NULL, 0), want,
	       "header values are trimmed before signing");

	struct s3_param inner1[] = {{"content-type", "text/plain;  \t charset=utf-8"}};
	struct s3_param inner2[] = {{"content-type", "text/plain; charset=utf-8"}};
	char *u1 = s3_presign(a, &t, "PUT", "k", 1700000000, 900, inner1, 1, NULL, 0);
	char *u2 = s3_presign(a, &t, "PUT", "k", 1700000000, 900, inner2, 1, NULL, 0);
	ok(u1 != NULL && u2 != NULL && strcmp(u1, u2) == 0,
	   "inner runs of blanks collapse to one space");
	struct s3_param other[] = {{"content-type", "text/plain;charset=utf-8"}};
	char *u3 = s3_presign(a, &t, "PUT", "k", 1700000000, 900, other, 1, NULL, 0);
	ok(u3 != NULL && strcmp(u1, u3) != 0, "a different value changes the signature");
	char *u4 = s3_presign(a, &t, "GET", "k", 1700000000, 900, inner2, 1, NULL, 0);
	ok(u4 != NULL && strcmp(u2, u4) != 0, "the method is signed");
	char *u5 = s3_presign(a, &t, "PUT", "k", 1700000001, 900, inner2, 1, NULL, 0);
	ok(u5 != NULL && strcmp(u2, u5) != 0, "the time is signed");
	ok(s3_presign(a, &t, "HEAD", "k", 1700000000, 1, NULL, 0, NULL, 0) != NULL &&
	           s3_presign(a, &t, "DELETE", "k", 1700000000, S3_EXPIRES_MAX, NULL, 0, NULL, 0) !=
	                   NULL,
	   "HEAD and DELETE; expires 1 and S3_EXPIRES_MAX");
}

static void
test_query(struct arena *a)
{
	struct s3_target t = {.endpoint = "https://r2.example.com:8443",
	                      .region = "auto",
	                      .bucket = "atrium",
	                      .access_key_id = "akid",
	                      .secret_access_key = "secret"};
	const char *cd = s3_content_disposition(a, "r\xc3\xa9sum\xc3\xa9 \xe2\x9c\x93.pdf");
	struct s3_param q[] = {{"response-content-type", "application/pdf"},
	                       {"response-content-disposition", cd}};
	is_str(s3_presign(a, &t, "GET", "a b/c~d+e", 1700000000, 300, NULL, 0, q, 2),
	       "https://atrium.r2.example.com:8443/a%20b/c~d%2Be?X-Amz-Algorithm=AWS4-HMAC-SHA256&"
	       "X-Amz-Credential=akid%2F20231114%2Fauto%2Fs3%2Faws4_request&X-Amz-Date="
	       "20231114T221320Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&response-content-"
	       "disposition=attachment%3B%20filename%3D%22r_sum_%20_.pdf%22%3B%20filename%2A%"
	       "3DUTF-8%27%27r%25C3%25A9sum%25C3%25A9%2520%25E2%259C%2593.pdf&response-content-"
	       "type=application%2Fpdf&X-Amz-Signature="
	       "80dc8c127fa0447efa89cac18d9a4d147ce0be246fdb3950d6a8a35297ab8511",
	       "R2 region auto, virtual host with port, signed response-* parameters, sorted");

	struct s3_param dup[] = {{"a", "2"}, {"a", "1"}, {"a b", "x"}};
	char *u = s3_presign(a, &t, "GET", "k", 1700000000, 300, NULL, 0, dup, 3);
	ok(u != NULL && strstr(u, "?X-Amz-") != NULL && strstr(u, "&a=1&a=2&a%20b=x&") != NULL,
	   "parameters sort by encoded name then value");
	struct s3_param tok[] = {{"X-Amz-Security-Token", "tok/en"}};
	u = s3_presign(a, &t, "GET", "k", 1700000000, 300, NULL, 0, tok, 1);
	ok(u != NULL && strstr(u, "&X-Amz-Security-Token=tok%2Fen&") != NULL,
	   "a session token can be added");
}

static void
test_encode(struct arena *a)
{
	is_str(s3_uri_encode(a, "a b", false), "a%20b", "space is %%20, not +");
	is_str(s3_uri_encode(a, "a/b", true), "a/b", "'/' kept for keys");
	is_str(s3_uri_encode(a, "a/b", false), "a%2Fb", "'/' encoded elsewhere");
	is_str(s3_uri_encode(a, "r\xc3\xa9sum\xc3\xa9", false), "r%C3%A9sum%C3%A9",
	       "UTF-8 bytes, upper-case hex");
	is_str(s3_uri_encode(a, "\xe2\x9c\x93\xff", false), "%E2%9C%93%FF", "every high byte");
	is_str(s3_uri_encode(a, "AZaz09-._~", false), "AZaz09-._~", "unreserved stay, '~' too");
	is_str(s3_uri_encode(a, "a+b=c&d", false), "a%2Bb%3Dc%26d", "'+' '=' '&' encoded");
	is_str(s3_uri_encode(a, "!*'()%;:@$,?#[]", true),
	       "%21%2A%27%28%29%25%3B%3A%40%24%2C%3F%23%5B%5D", "reserved characters encoded");
	is_str(s3_uri_encode(a, "\x01\x7f", false), "%01%7F", "controls encoded");
	is_str(s3_uri_encode(a, "", false), "", "empty stays empty");
	ok(s3_uri_encode(a, NULL, false) == NULL, "NULL gives NULL");
}

/* Each call differs from a valid one in exactly one argument. */
static void
test_invalid(struct arena *a)
{
	struct s3_target good = {.endpoint = "https://s3.example.com",
	                         .region = "us-east-1",
	                         .bucket = "bucket",
	                         .access_key_id = "AKID",
	                         .secret_access_key = "secret"};
	struct s3_param h[] = {{"content-type", "text/plain"}};
	struct s3_param q[] = {{"response-content-type", "text/plain"}};
	ok(s3_presign(a, &good, "PUT", "k", 1700000000, 60, h, 1, q, 1) != NULL,
	   "the baseline is valid");
	ok(s3_presign(a, NULL, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL, "no target");

	static const char *const endpoints[] = {
	        "",
	        "s3.example.com",
	        "ftp://s3.example.com",
	        "HTTPS://s3.example.com",
	        "https:/s3.example.com",
	        "https://",
	        "https:///",
	        "https://s3.example.com/",
	        "https://s3.example.com/path",
	        "https://s3.example.com?x=1",
	        "https://s3.example.com#f",
	        "https://user@s3.example.com",
	        "https://user:pw@s3.example.com",
	        "https://s3.example.com:",
	        "https://s3.example.com:0",
	        "https://s3.example.com:08443",
	        "https://s3.example.com:65536",
	        "https://s3.example.com:123456",
	        "https://s3.example.com:-1",
	        "https://s3.example.com:84a",
	        "https://s3 .example.com",
	        " https://s3.example.com",
	        "https://s3.example.com ",
	        "https://s3.example.com\t",
	        "https://s3.example.com\r\n",
	        "https://s3.ex%61mple.com",
	        "https://s3.example.com\\x",
	        "https://[]",
	        "https://[::1",
	        "https://[::1]x",
	        "https://[::1]",
	};
	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
		struct s3_target t = good;
		t.endpoint = endpoints[i];
		ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
		   "endpoint '%s' refused", shown(endpoints[i]));
	}
	struct s3_target t = good;
	t.endpoint = NULL;
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "NULL endpoint refused");
	t = good;
	t.endpoint = "http://[::1]:9000";
	t.path_style = true;
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) != NULL,
	   "IPv6 literal accepted with path style...");
	t.path_style = false;
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "...and refused virtual-hosted");
	t = good;
	t.endpoint = "http://minio_1:9000";
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) != NULL,
	   "a container name with '_' is a host");

	static const char *const buckets[] = {"",           "Bucket",  "bu_cket", "a/b",
	                                      "-bucket",    "bucket.", ".",       "..",
	                                      "evil.com/x", "b@c",     "b c",     "b%41"};
	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		t = good;
		t.bucket = buckets[i];
		ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
		   "virtual-hosted bucket '%s' refused", buckets[i]);
	}
	t = good;
	t.bucket = NULL;
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "NULL bucket refused");
	t.path_style = true;
	t.bucket = "Legacy_Bucket";
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) != NULL,
	   "path style takes legacy bucket names");
	t.bucket = "..";
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "path style refuses '..' as a bucket");
	t.bucket = "a/b";
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "path style refuses '/' in a bucket");

	static const char *const regions[] = {"", "US-EAST-1", "us east", "us_east", "us/east"};
	for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
		t = good;
		t.region = regions[i];
		ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
		   "region '%s' refused", regions[i]);
	}
	t = good;
	t.region = NULL;
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "NULL region refused");

	t = good;
	t.access_key_id = "";
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "empty access key id refused");
	t.access_key_id = "AK/ID";
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "'/' in the access key id refused (it would shift the scope)");
	t.access_key_id = NULL;
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "NULL access key id refused");
	t = good;
	t.secret_access_key = "";
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "empty secret refused");
	t.secret_access_key = NULL;
	ok(s3_presign(a, &t, "GET", "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "NULL secret refused");

	static const char *const keys[] = {"",   "a\nb", "a\rb",  "a\tb", "a\x01",  "\x7f",     ".",
	                                   "..", "./a",  "a/./b", "a/..", "a/../b", "../../etc"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ok(s3_presign(a, &good, "GET", keys[i], 1700000000, 60, NULL, 0, NULL, 0) == NULL,
		   "key '%s' refused", shown(keys[i]));
	ok(s3_presign(a, &good, "GET", NULL, 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "NULL key refused");
	ok(s3_presign(a, &good, "GET", ".a/..b/...", 1700000000, 60, NULL, 0, NULL, 0) != NULL,
	   "dots inside longer segments are fine");
	char longkey[1026];
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[1025] = '\0';
	ok(s3_presign(a, &good, "GET", longkey, 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "key over 1024 bytes refused");
	longkey[1024] = '\0';
	ok(s3_presign(a, &good, "GET", longkey, 1700000000, 60, NULL, 0, NULL, 0) != NULL,
	   "key of 1024 bytes accepted");

	static const int expires[] = {0, -1, S3_EXPIRES_MAX + 1, -2147483647 - 1};
	for (size_t i = 0; i < sizeof(expires) / sizeof(expires[0]); i++)
		ok(s3_presign(a, &good, "GET", "k", 1700000000, expires[i], NULL, 0, NULL, 0) ==
		           NULL,
		   "expires %d refused", expires[i]);
	ok(s3_presign(a, &good, "GET", "k", -1, 60, NULL, 0, NULL, 0) == NULL,
	   "time before 1970 refused");
	ok(s3_presign(a, &good, "GET", "k", (time_t)253402300800LL, 60, NULL, 0, NULL, 0) == NULL,
	   "time after 9999 refused");

	static const char *const methods[] = {"", "get", "POST", "PATCH", "GET ", "OPTIONS"};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		ok(s3_presign(a, &good, methods[i], "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
		   "method '%s' refused", methods[i]);
	ok(s3_presign(a, &good, NULL, "k", 1700000000, 60, NULL, 0, NULL, 0) == NULL,
	   "NULL method refused");

	static const struct s3_param bad_headers[][2] = {
	        {{"Content-Type", "text/plain"}},
	        {{"", "x"}},
	        {{"content type", "x"}},
	        {{"content-type:", "x"}},
	        {{"x(y)", "x"}},
	        {{"host", "evil.example"}},
	        {{"content-type", "a\r\nx-evil: 1"}},
	        {{"content-type", "a\nb"}},
	        {{"content-type", "a\rb"}},
	        {{"content-type", "a\x01"}},
	        {{"content-type", "caf\xc3\xa9"}},
	        {{NULL, "x"}},
	        {{"content-type", NULL}},
	        {{"content-type", "a"}, {"content-type", "b"}},
	};
	for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
		size_t n = bad_headers[i][1].name != NULL ? 2 : 1;
		ok(s3_presign(a, &good, "PUT", "k", 1700000000, 60, bad_headers[i], n, NULL, 0) ==
		           NULL,
		   "header #%zu refused", i);
	}
	ok(s3_presign(a, &good, "PUT", "k", 1700000000, 60, NULL, 1, NULL, 0) == NULL,
	   "headers NULL with a count refused");
	struct s3_param odd[] = {{"x-amz-meta-a!#$%&'*+-.^_`|~0", ""}};
	ok(s3_presign(a, &good, "PUT", "k", 1700000000, 60, odd, 1, NULL, 0) != NULL,
	   "every token character in a name, empty value");

	static const struct s3_param bad_query[] = {
	        {"", "x"},
	        {NULL, "x"},
	        {"a", NULL},
	        {"X-Amz-Signature", "0"},
	        {"x-amz-date", "20000101T000000Z"},
	        {"X-Amz-Credential", "x"},
	        {"X-AMZ-EXPIRES", "1"},
	        {"X-Amz-SignedHeaders", "host"},
	        {"X-Amz-Algorithm", "x"},
	};
	for (size_t i = 0; i < sizeof(bad_query) / sizeof(bad_query[0]); i++)
		ok(s3_presign(a, &good, "GET", "k", 1700000000, 60, NULL, 0, &bad_query[i], 1) ==
		           NULL,
		   "query parameter #%zu refused", i);
	ok(s3_presign(a, &good, "GET", "k", 1700000000, 60, NULL, 0, NULL, 1) == NULL,
	   "query NULL with a count refused");
	struct s3_param many[17];
	for (size_t i = 0; i < 17; i++)
		many[i] = (struct s3_param){"x-amz-meta-a", "1"};
	ok(s3_presign(a, &good, "GET", "k", 1700000000, 60, NULL, 0, many, 17) == NULL,
	   "more than 16 query parameters refused");
	struct s3_param manyh[17];
	char names[17][8];
	for (size_t i = 0; i < 17; i++) {
		snprintf(names[i], sizeof(names[i]), "x-h%zu", i);
		manyh[i] = (struct s3_param){names[i], "1"};
	}
	ok(s3_presign(a, &good, "PUT", "k", 1700000000, 60, manyh, 16, NULL, 0) != NULL,
	   "16 signed headers accepted");
	ok(s3_presign(a, &good, "PUT", "k", 1700000000, 60, manyh, 17, NULL, 0) == NULL,
	   "17 signed headers refused");

	/* a download of a 255-character file name of 4-byte characters: the
	 * longest Content-Disposition the API can ask for must still sign */
	struct buf fn;
	buf_init(&fn, a, 1024);
	for (int i = 0; i < 255; i++)
		buf_puts(&fn, "\xf0\x9f\x98\x80");
	struct s3_param cd[] = {
	        {"response-content-disposition", s3_content_disposition(a, buf_cstr(&fn))}};
	ok(s3_presign(a, &good, "GET", "k", 1700000000, 60, NULL, 0, cd, 1) != NULL,
	   "the longest Content-Disposition fits (%zu bytes)", strlen(cd[0].value));
	char *big = arena_alloc(a, 8194);
	memset(big, 'v', 8193);
	struct s3_param bigq[] = {{"response-cache-control", big}};
	ok(s3_presign(a, &good, "GET", "k", 1700000000, 60, NULL, 0, bigq, 1) == NULL,
	   "query value over 8192 bytes refused");
	big[8192] = '\0';
	ok(s3_presign(a, &good, "GET", "k", 1700000000, 60, NULL, 0, bigq, 1) != NULL,
	   "query value of 8192 bytes accepted");
	big[2049] = '\0';
	struct s3_param bigh[] = {{"x-amz-meta-big", big}};
	ok(s3_presign(a, &good, "PUT", "k", 1700000000, 60, bigh, 1, NULL, 0) == NULL,
	   "header value over 2048 bytes refused");
	big[2048] = '\0';
	ok(s3_presign(a, &good, "PUT", "k", 1700000000, 60, bigh, 1, NULL, 0) != NULL,
	   "header value of 2048 bytes accepted");
}

static void
test_disposition(struct arena *a)
{
	is_str(s3_content_disposition(a, "report.pdf"),
	       "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf", "plain ASCII");
	is_str(s3_content_disposition(a, "my \"best\" file.txt"),
	       "attachment; filename=\"my _best_ file.txt\"; "
	       "filename*=UTF-8''my%20%22best%22%20file.txt",
	       "quotes replaced in the fallback, encoded in filename*");
	is_str(s3_content_disposition(a, "r\xc3\xa9sum\xc3\xa9 \xe2\x9c\x93.pdf"),
	       "attachment; filename=\"r_sum_ _.pdf\"; "
	       "filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%9C%93.pdf",
	       "UTF-8: one '_' per character in the fallback");
	is_str(s3_content_disposition(a, "a\r\nSet-Cookie: x=1\t\x7f.txt"),
	       "attachment; filename=\"a__Set-Cookie: x=1__.txt\"; "
	       "filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x%3D1%09%7F.txt",
	       "control characters never reach the header");
	is_str(s3_content_disposition(a, "../etc/passwd\\x"),
	       "attachment; filename=\".._etc_passwd_x\"; "
	       "filename*=UTF-8''..%2Fetc%2Fpasswd%5Cx",
	       "path separators replaced and encoded");
	is_str(s3_content_disposition(a, "a!#$&+-.^_`|~b;%'*()"),
	       "attachment; filename=\"a!#$&+-.^_`|~b;%'*()\"; "
	       "filename*=UTF-8''a!#$&+-.^_`|~b%3B%25%27%2A%28%29",
	       "RFC 8187 attr-chars stay, the rest is encoded");
	is_str(s3_content_disposition(a, "\xff\xfe\x80x"),
	       "attachment; filename=\"__x\"; filename*=UTF-8''%FF%FE%80x",
	       "bytes that are not UTF-8 still give a safe header");
	is_str(s3_content_disposition(a, ""), "attachment", "empty name: plain attachment");
	is_str(s3_content_disposition(a, NULL), "attachment", "NULL name: plain attachment");
}

int
main(void)
{
	struct arena *a = arena_new(64 * 1024);
	test_aws_example(a);
	test_put_headers(a);
	test_query(a);
	test_encode(a);
	test_invalid(a);
	test_disposition(a);
	arena_free(a);
	return done_testing();
}
