/*
 * s3sign.c - AWS Signature Version 4 query presigning (S3, R2, emulator).
 *
 * The steps are AWS's ("Authenticating Requests: Using Query Parameters"):
 * canonical request -> string to sign -> signing key -> signature.  Every
 * input is validated first, because the URL goes to a browser as is: an
 * endpoint or bucket that could smuggle a path, a userinfo or a second host
 * into the URL is refused, not escaped.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common.h"
#include "limits.h"
#include "s3sign.h"
#include "util.h"

/* S3's own limits, and bounds for the rest so that work stays small. */
#define S3_KEY_MAX          1024 /* object key bytes (S3 refuses longer keys) */
#define S3_BUCKET_MAX       255  /* legacy us-east-1 names; DNS-style ones are <= 63 */
#define S3_REGION_MAX       64
#define S3_AKID_MAX         128
#define S3_HEADERS_MAX      16   /* signed headers besides host */
#define S3_QUERY_MAX        16   /* extra query parameters */
#define S3_NAME_MAX         128  /* a header or query parameter name */
#define S3_HEADER_VALUE_MAX 2048 /* a header value */
/* a query value: room for the Content-Disposition of a LIMIT_FILENAME_CHARS
 * name of 4-byte characters (about 3.4 KB) */
#define S3_QUERY_VALUE_MAX 8192
#define S3_SHA256_LEN      32

static const char hex_upper[] = "0123456789ABCDEF";

/* Character classes in plain ASCII: <ctype.h> depends on the locale. */
static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool
is_unreserved(unsigned char c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool
is_lower_tchar(unsigned char c)
{
	/* RFC 9110 token characters without the upper-case letters */
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static char
to_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static void
encode_into(struct buf *b, const char *s, size_t n, bool keep_slash)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c) || (keep_slash && c == '/')) {
			buf_putc(b, (char)c);
		} else {
			char e[3] = {'%', hex_upper[c >> 4], hex_upper[c & 15]};
			buf_append(b, e, sizeof(e));
		}
	}
}

char *
s3_uri_encode(struct arena *a, const char *s, bool keep_slash)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s);
	struct buf b;
	buf_init(&b, a, n + 1);
	encode_into(&b, s, n, keep_slash);
	return (char *)(uintptr_t)buf_cstr(&b);
}

/* ---- validation ---- */

/* s is 1..max bytes, all of them in the class. */
static bool
valid_chars(const char *s, size_t max, bool (*cls)(unsigned char))
{
	if (s == NULL || s[0] == '\0')
		return false;
	size_t n = strnlen(s, max + 1);
	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!cls((unsigned char)s[i]))
			return false;
	return true;
}

static bool
is_region_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool
is_dns_bucket_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static bool
is_path_bucket_char(unsigned char c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_';
}

static bool
is_akid_char(unsigned char c)
{
	/* the credential scope is '/'-separated: a '/' would shift its fields */
	return c > 0x20 && c < 0x7f && c != '/';
}

static bool
is_secret_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/*
 * Virtual-hosted buckets become a DNS label prefix of the host, so only
 * [a-z0-9.-]; path-style ones also allow the legacy '_' and upper case.  Both
 * start and end with a letter or digit (S3's rule), which also rules out "."
 * and "..", segments a browser would resolve away before sending.
 */
static bool
valid_bucket(const char *bucket, bool path_style)
{
	if (!valid_chars(bucket, S3_BUCKET_MAX,
	                 path_style ? is_path_bucket_char : is_dns_bucket_char))
		return false;
	size_t n = strlen(bucket);
	return is_alnum((unsigned char)bucket[0]) && is_alnum((unsigned char)bucket[n - 1]);
}

/*
 * Keys: no control characters (they cannot be sent by a browser and have no
 * business in a header or a log), and no "." or ".." segment: browsers and
 * curl resolve those before sending, so the signed path would never match.
 */
static bool
valid_key(const char *key)
{
	if (key == NULL || key[0] == '\0')
		return false;
	size_t n = strnlen(key, S3_KEY_MAX + 1);
	if (n > S3_KEY_MAX)
		return false;
	size_t seg = 0; /* start of the current segment */
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)key[i];
		if (i < n && (c < 0x20 || c == 0x7f))
			return false;
		if (i == n || c == '/') {
			size_t len = i - seg;
			if ((len == 1 && key[seg] == '.') ||
			    (len == 2 && key[seg] == '.' && key[seg + 1] == '.'))
				return false;
			seg = i + 1;
		}
	}
	return true;
}

/* The endpoint, split and normalised into what the browser will send. */
struct endpoint {
	bool https;
	bool ip_literal;
	const char *host; /* lower-case, "[...]" for IPv6 */
	int port;         /* 0: the scheme's default */
};

static bool
is_host_char(unsigned char c)
{
	/* DNS names, IPv4 addresses, and '_' (container names) */
	return is_alnum(c) || c == '-' || c == '.' || c == '_';
}

static bool
is_ipv6_char(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
	       c == ':' || c == '.';
}

/*
 * "http[s]://host[:port]" and nothing else: no userinfo, path (not even "/"),
 * query, fragment, percent-escape or whitespace.  The port is 1..65535
 * without leading zeros; the scheme's default port is dropped, as curl and
 * browsers drop it from the Host header.
 */
static int
parse_endpoint(struct arena *a, const char *s, struct endpoint *ep)
{
	if (s == NULL)
		return ERR_INVALID;
	size_t n = strnlen(s, LIMIT_HOST_MAX + 32);
	if (n > LIMIT_HOST_MAX + 16)
		return ERR_INVALID;
	const char *p;
	if (strncmp(s, "https://", 8) == 0) {
		ep->https = true;
		p = s + 8;
	} else if (strncmp(s, "http://", 7) == 0) {
		ep->https = false;
		p = s + 7;
	} else {
		return ERR_INVALID;
	}
	const char *end = s + n;
	const char *h = p;
	size_t hn;
	if (*p == '[') {
		p++;
		while (p < end && is_ipv6_char((unsigned char)*p))
			p++;
		if (p == h + 1 || p >= end || *p != ']')
			return ERR_INVALID;
		p++;
		ep->ip_literal = true;
	} else {
		while (p < end && is_host_char((unsigned char)*p))
			p++;
		if (p == h)
			return ERR_INVALID;
		ep->ip_literal = false;
	}
	hn = (size_t)(p - h);
	if (hn > LIMIT_HOST_MAX)
		return ERR_INVALID;
	ep->port = 0;
	if (p < end) {
		if (*p != ':')
			return ERR_INVALID;
		p++;
		if (p == end || end - p > 5 || *p == '0')
			return ERR_INVALID;
		long port = 0;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return ERR_INVALID;
			port = port * 10 + (*p - '0');
		}
		if (port > 65535)
			return ERR_INVALID;
		if (port != (ep->https ? 443 : 80))
			ep->port = (int)port;
	}
	char *host = arena_strndup(a, h, hn);
	for (size_t i = 0; i < hn; i++)
		host[i] = to_lower(host[i]);
	ep->host = host;
	return 0;
}

static bool
valid_method(const char *m)
{
	static const char *const methods[] = {"GET", "PUT", "HEAD", "DELETE"};
	if (m == NULL)
		return false;
	for (size_t i = 0; i < ARRAY_LEN(methods); i++)
		if (strcmp(m, methods[i]) == 0)
			return true;
	return false;
}

/* Header values must be sendable as is: printable ASCII and tabs (S3 wants
 * US-ASCII in headers anyway); CR and LF would split the header. */
static bool
valid_header_value(const char *v)
{
	if (v == NULL)
		return false;
	size_t n = strnlen(v, S3_HEADER_VALUE_MAX + 1);
	if (n > S3_HEADER_VALUE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return false;
	}
	return true;
}

/* Names we set ourselves; a caller's copy would make the URL ambiguous. */
static bool
reserved_query_name(const char *name)
{
	static const char *const ours[] = {"X-Amz-Algorithm",     "X-Amz-Credential",
	                                   "X-Amz-Date",          "X-Amz-Expires",
	                                   "X-Amz-SignedHeaders", "X-Amz-Signature"};
	for (size_t i = 0; i < ARRAY_LEN(ours); i++)
		if (strcasecmp(name, ours[i]) == 0)
			return true;
	return false;
}

/* ---- canonical request ---- */

struct kv {
	const char *name;
	const char *value;
};

static int
kv_cmp(const void *x, const void *y)
{
	const struct kv *a = x, *b = y;
	int c = strcmp(a->name, b->name);
	return c != 0 ? c : strcmp(a->value, b->value);
}

/* The value trimmed, with inner runs of blanks collapsed to one space
 * (SigV4's Trimall); the value was validated, so only SP and HTAB are blank. */
static const char *
trimall(struct arena *a, const char *v)
{
	struct buf b;
	size_t n = strlen(v);
	buf_init(&b, a, n + 1);
	bool blank = false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] == ' ' || v[i] == '\t') {
			blank = true;
			continue;
		}
		if (blank && b.len > 0)
			buf_putc(&b, ' ');
		blank = false;
		buf_putc(&b, v[i]);
	}
	return buf_cstr(&b);
}

/* Signed headers: host plus the caller's, validated, sorted by name.  Returns
 * the count in *n, or ERR_INVALID (bad name or value, duplicate, host). */
static int
collect_headers(struct arena *a, const char *host, const struct s3_param *headers, size_t nheaders,
                struct kv **out, size_t *n)
{
	if (nheaders > S3_HEADERS_MAX || (nheaders > 0 && headers == NULL))
		return ERR_INVALID;
	struct kv *h = arena_alloc(a, (nheaders + 1) * sizeof(*h));
	h[0].name = "host";
	h[0].value = host;
	for (size_t i = 0; i < nheaders; i++) {
		if (!valid_chars(headers[i].name, S3_NAME_MAX, is_lower_tchar) ||
		    !valid_header_value(headers[i].value))
			return ERR_INVALID;
		for (size_t j = 0; j <= i; j++)
			if (strcmp(h[j].name, headers[i].name) == 0)
				return ERR_INVALID;
		h[i + 1].name = headers[i].name;
		h[i + 1].value = trimall(a, headers[i].value);
	}
	qsort(h, nheaders + 1, sizeof(*h), kv_cmp);
	*out = h;
	*n = nheaders + 1;
	return 0;
}

static const char *
signed_header_list(struct arena *a, const struct kv *h, size_t n)
{
	struct buf b;
	buf_init(&b, a, 64);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(&b, ';');
		buf_puts(&b, h[i].name);
	}
	return buf_cstr(&b);
}

/* ---- crypto ---- */

static int
hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
            unsigned char out[S3_SHA256_LEN])
{
	unsigned int len = 0;
	const EVP_MD *md = EVP_sha256();
	if (md == NULL || klen > (size_t)INT32_MAX) /* HMAC() takes an int */
		return ERR_INTERNAL;
	if (HMAC(md, key, (int)klen, msg, mlen, out, &len) == NULL || len != S3_SHA256_LEN)
		return ERR_INTERNAL;
	return 0;
}

static int
sha256_hex(const void *p, size_t n, char out[2 * S3_SHA256_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	const EVP_MD *alg = EVP_sha256();
	if (alg == NULL || EVP_Digest(p, n, md, &len, alg, NULL) != 1 || len != S3_SHA256_LEN)
		return ERR_INTERNAL;
	util_hex(md, S3_SHA256_LEN, out);
	return 0;
}

/*
 * kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), "s3"),
 * "aws4_request"), then the signature is HMAC(kSigning, string to sign).  The
 * intermediate keys are wiped: they are as good as the secret for a day.
 */
static int
sign(const char *secret, const char *date, const char *region, const char *sts,
     char out[2 * S3_SHA256_LEN + 1])
{
	unsigned char ksecret[4 + LIMIT_SECRET_CHARS];
	unsigned char k1[S3_SHA256_LEN], k2[S3_SHA256_LEN];
	int rc = ERR_INTERNAL;
	size_t sn = strlen(secret);
	if (sn > LIMIT_SECRET_CHARS)
		goto out;
	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret, sn);
	if (hmac_sha256(ksecret, 4 + sn, date, strlen(date), k1) != 0 ||
	    hmac_sha256(k1, sizeof(k1), region, strlen(region), k2) != 0 ||
	    hmac_sha256(k2, sizeof(k2), "s3", 2, k1) != 0 ||
	    hmac_sha256(k1, sizeof(k1), "aws4_request", 12, k2) != 0 ||
	    hmac_sha256(k2, sizeof(k2), sts, strlen(sts), k1) != 0)
		goto out;
	util_hex(k1, sizeof(k1), out);
	rc = 0;
out:
	OPENSSL_cleanse(ksecret, sizeof(ksecret));
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	return rc;
}

/* "20130524T000000Z" and "20130524" for now; years 1970..9999 only. */
static int
amz_date(time_t now, char stamp[17], char day[9])
{
	struct tm tm;
	if (now < 0 || gmtime_r(&now, &tm) == NULL || tm.tm_year > 9999 - 1900)
		return ERR_INVALID;
	if (strftime(stamp, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		return ERR_INVALID;
	memcpy(day, stamp, 8);
	day[8] = '\0';
	return 0;
}

/* ---- presigning ---- */

static int
check_target(const struct s3_target *t, struct arena *a, struct endpoint *ep)
{
	if (t == NULL || parse_endpoint(a, t->endpoint, ep) != 0)
		return ERR_INVALID;
	if (!t->path_style && ep->ip_literal)
		return ERR_INVALID; /* no bucket.[::1] */
	if (!valid_bucket(t->bucket, t->path_style) ||
	    !valid_chars(t->region, S3_REGION_MAX, is_region_char) ||
	    !valid_chars(t->access_key_id, S3_AKID_MAX, is_akid_char) ||
	    !valid_chars(t->secret_access_key, LIMIT_SECRET_CHARS, is_secret_char))
		return ERR_INVALID;
	return 0;
}

/* The query parameters, encoded and sorted: ours and the caller's. */
static int
collect_query(struct arena *a, const struct kv *amz, size_t namz, const struct s3_param *query,
              size_t nquery, struct kv **out, size_t *n)
{
	if (nquery > S3_QUERY_MAX || (nquery > 0 && query == NULL))
		return ERR_INVALID;
	struct kv *q = arena_alloc(a, (namz + nquery) * sizeof(*q));
	for (size_t i = 0; i < namz; i++) {
		q[i].name = s3_uri_encode(a, amz[i].name, false);
		q[i].value = s3_uri_encode(a, amz[i].value, false);
	}
	for (size_t i = 0; i < nquery; i++) {
		const struct s3_param *p = &query[i];
		if (p->name == NULL || p->name[0] == '\0' || p->value == NULL ||
		    reserved_query_name(p->name) ||
		    strnlen(p->name, S3_NAME_MAX + 1) > S3_NAME_MAX ||
		    strnlen(p->value, S3_QUERY_VALUE_MAX + 1) > S3_QUERY_VALUE_MAX)
			return ERR_INVALID;
		q[namz + i].name = s3_uri_encode(a, p->name, false);
		q[namz + i].value = s3_uri_encode(a, p->value, false);
	}
	qsort(q, namz + nquery, sizeof(*q), kv_cmp);
	*out = q;
	*n = namz + nquery;
	return 0;
}

char *
s3_presign(struct arena *a, const struct s3_target *t, const char *method, const char *key,
           time_t now, int expires, const struct s3_param *headers, size_t nheaders,
           const struct s3_param *query, size_t nquery)
{
	struct endpoint ep;
	char stamp[17], day[9];
	if (check_target(t, a, &ep) != 0 || !valid_method(method) || !valid_key(key) ||
	    expires < 1 || expires > S3_EXPIRES_MAX || amz_date(now, stamp, day) != 0)
		return NULL;

	/* What the browser sends as Host, and the path it requests. */
	const char *port = ep.port != 0 ? arena_printf(a, ":%d", ep.port) : "";
	const char *host = t->path_style ? arena_printf(a, "%s%s", ep.host, port)
	                                 : arena_printf(a, "%s.%s%s", t->bucket, ep.host, port);
	struct buf path;
	buf_init(&path, a, strlen(key) * 3 + strlen(t->bucket) + 3);
	buf_putc(&path, '/');
	if (t->path_style) {
		encode_into(&path, t->bucket, strlen(t->bucket), false);
		buf_putc(&path, '/');
	}
	encode_into(&path, key, strlen(key), true);

	struct kv *h, *q;
	size_t nh, nq;
	if (collect_headers(a, host, headers, nheaders, &h, &nh) != 0)
		return NULL;
	const char *signed_headers = signed_header_list(a, h, nh);
	const char *scope = arena_printf(a, "%s/%s/s3/aws4_request", day, t->region);
	const struct kv amz[] = {
	        {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
	        {"X-Amz-Credential", arena_printf(a, "%s/%s", t->access_key_id, scope)},
	        {"X-Amz-Date", stamp},
	        {"X-Amz-Expires", arena_printf(a, "%d", expires)},
	        {"X-Amz-SignedHeaders", signed_headers},
	};
	if (collect_query(a, amz, ARRAY_LEN(amz), query, nquery, &q, &nq) != 0)
		return NULL;
	struct buf cq;
	buf_init(&cq, a, 256);
	for (size_t i = 0; i < nq; i++)
		buf_printf(&cq, "%s%s=%s", i > 0 ? "&" : "", q[i].name, q[i].value);

	struct buf cr;
	buf_init(&cr, a, path.len + cq.len + 256);
	buf_printf(&cr, "%s\n%s\n%s\n", method, buf_cstr(&path), buf_cstr(&cq));
	for (size_t i = 0; i < nh; i++)
		buf_printf(&cr, "%s:%s\n", h[i].name, h[i].value);
	buf_printf(&cr, "\n%s\nUNSIGNED-PAYLOAD", signed_headers);

	char cr_hash[2 * S3_SHA256_LEN + 1], sig[2 * S3_SHA256_LEN + 1];
	if (sha256_hex(cr.p, cr.len, cr_hash) != 0)
		return NULL;
	const char *sts = arena_printf(a, "AWS4-HMAC-SHA256\n%s\n%s\n%s", stamp, scope, cr_hash);
	if (sign(t->secret_access_key, day, t->region, sts, sig) != 0)
		return NULL;
	return arena_printf(a, "%s://%s%s?%s&X-Amz-Signature=%s", ep.https ? "https" : "http", host,
	                    buf_cstr(&path), buf_cstr(&cq), sig);
}

/* ---- Content-Disposition ---- */

static bool
is_attr_char(unsigned char c)
{
	/* RFC 8187 attr-char */
	return is_alnum(c) || (c != '\0' && strchr("!#$&+-.^_`|~", c) != NULL);
}

char *
s3_content_disposition(struct arena *a, const char *filename)
{
	if (filename == NULL || filename[0] == '\0')
		return arena_strdup(a, "attachment");
	size_t n = strlen(filename);
	struct buf b;
	buf_init(&b, a, 4 * n + 64);
	buf_puts(&b, "attachment; filename=\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)filename[i];
		if (c >= 0x80 && c < 0xc0)
			continue; /* UTF-8 continuation: one '_' per character */
		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '/')
			buf_putc(&b, '_');
		else
			buf_putc(&b, (char)c);
	}
	buf_puts(&b, "\"; filename*=UTF-8''");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)filename[i];
		if (is_attr_char(c)) {
			buf_putc(&b, (char)c);
		} else {
			char e[3] = {'%', hex_upper[c >> 4], hex_upper[c & 15]};
			buf_append(&b, e, sizeof(e));
		}
	}
	return (char *)(uintptr_t)buf_cstr(&b);
}
