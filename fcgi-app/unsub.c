/*
 * unsub.c - signed one-click unsubscribe tokens (see unsub.h).
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "page.h"
#include "unsub.h"

static unsigned char key[256];
static size_t key_len;

int
unsub_load_key(const char *path)
{
	FILE *f = path != NULL && *path != '\0' ? fopen(path, "r") : NULL;
	if (f == NULL) {
		fprintf(stderr, "atrium: cannot read the unsubscribe key %s: %s\n",
		        path != NULL ? path : "(ATRIUM_UNSUBSCRIBE_KEY_FILE unset)",
		        strerror(errno));
		return -1;
	}
	unsigned char buf[sizeof(key) + 1];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	size_t b = 0;
	while (b < n && isspace(buf[b]))
		b++;
	while (n > b && isspace(buf[n - 1]))
		n--;
	if (n - b < UNSUB_KEY_MIN || n - b > sizeof(key)) {
		fprintf(stderr, "atrium: the unsubscribe key must hold %d to %zu bytes\n",
		        UNSUB_KEY_MIN, sizeof(key));
		OPENSSL_cleanse(buf, sizeof(buf));
		return -1;
	}
	memcpy(key, buf + b, n - b);
	key_len = n - b;
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

bool
unsub_have_key(void)
{
	return key_len > 0;
}

static bool
field_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

static bool
mac(const char *text, size_t n, unsigned char out[32])
{
	unsigned int len = 0;
	return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)text, n, out, &len) !=
	               NULL &&
	       len == 32;
}

char *
unsub_sign(struct arena *a, const struct unsub *u)
{
	if (key_len == 0 || !field_ok(u->tenant_id, sizeof(u->tenant_id)) ||
	    !field_ok(u->kind, sizeof(u->kind)) ||
	    !field_ok(u->recipient_id, sizeof(u->recipient_id)) ||
	    !field_ok(u->topic, sizeof(u->topic)) || !field_ok(u->channel, sizeof(u->channel)))
		return NULL;
	char text[256];
	int n = snprintf(text, sizeof(text), "v1|%s|%s|%s|%s|%s|%lld", u->tenant_id, u->kind,
	                 u->recipient_id, u->topic, u->channel, (long long)u->expires);
	if (n < 0 || (size_t)n >= sizeof(text))
		return NULL;
	unsigned char m[32];
	if (!mac(text, (size_t)n, m))
		return NULL;
	char *out = arena_alloc(a, 4 * ((size_t)n + 2) / 3 + 4 + 44 + 2);
	size_t k = b64url_encode(out, (const unsigned char *)text, (size_t)n);
	out[k++] = '.';
	b64url_encode(out + k, m, sizeof(m));
	return out;
}

/* Copies the next '|'-separated field of *p into out (cap bytes). */
static bool
next_field(const char **p, const char *end, char *out, size_t cap)
{
	const char *bar = memchr(*p, '|', (size_t)(end - *p));
	const char *stop = bar != NULL ? bar : end;
	size_t n = (size_t)(stop - *p);
	if (n == 0 || n >= cap)
		return false;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p = bar != NULL ? bar + 1 : end;
	return bar != NULL || stop == end;
}

int
unsub_verify(struct arena *a, const char *token, time_t now, struct unsub *u)
{
	if (key_len == 0 || token == NULL || strlen(token) > UNSUB_TOKEN_MAX)
		return -1;
	const char *dot = strchr(token, '.');
	if (dot == NULL)
		return -1;
	size_t tn = 0, mn = 0;
	unsigned char *text = b64url_decode(a, token, (size_t)(dot - token), &tn);
	unsigned char *given = b64url_decode(a, dot + 1, strlen(dot + 1), &mn);
	unsigned char want[32];
	if (text == NULL || given == NULL || mn != 32 || !mac((const char *)text, tn, want) ||
	    CRYPTO_memcmp(want, given, 32) != 0)
		return -1;
	const char *p = (const char *)text, *end = p + tn;
	char version[4], expires[24];
	memset(u, 0, sizeof(*u));
	if (!next_field(&p, end, version, sizeof(version)) || strcmp(version, "v1") != 0 ||
	    !next_field(&p, end, u->tenant_id, sizeof(u->tenant_id)) ||
	    !next_field(&p, end, u->kind, sizeof(u->kind)) ||
	    !next_field(&p, end, u->recipient_id, sizeof(u->recipient_id)) ||
	    !next_field(&p, end, u->topic, sizeof(u->topic)) ||
	    !next_field(&p, end, u->channel, sizeof(u->channel)) ||
	    !next_field(&p, end, expires, sizeof(expires)) || p != end)
		return -1;
	char *stop = NULL;
	long long e = strtoll(expires, &stop, 10);
	if (stop == NULL || *stop != '\0' || e < now)
		return -1;
	u->expires = (time_t)e;
	return 0;
}

const char *
unsub_topic_of(const char *template_name)
{
	if (strcmp(template_name, "message_digest") == 0)
		return "messages";
	if (strcmp(template_name, "deliverable_delivered") == 0 ||
	    strcmp(template_name, "deliverable_decision") == 0)
		return "deliverables";
	if (strcmp(template_name, "milestone_completed") == 0)
		return "milestones";
	return NULL;
}
