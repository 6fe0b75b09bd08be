/*
 * token.c - ES256 access tokens with libjwt, pinned verification, JWKS.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "page.h"
#include "token.h"
#include "util.h"

#define MAX_KEYS    8
#define KEY_PEM_MAX 4096
#define CLOCK_SKEW  60

struct vkey {
	char kid[65];
	unsigned char pem[KEY_PEM_MAX];
	size_t pem_len;
	EVP_PKEY *pkey; /* parsed once at start-up */
};

static struct vkey keys[MAX_KEYS];
static size_t nkeys;
static unsigned char sign_pem[KEY_PEM_MAX];
static size_t sign_pem_len;
static char *jwks;
static EVP_PKEY *sign_key; /* the same key, parsed once */

static int
read_file(const char *path, unsigned char *buf, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, cap - 1, f);
	int more = fgetc(f);
	fclose(f);
	if (n == 0 || more != EOF)
		return -1;
	buf[n] = '\0';
	*len = n;
	return 0;
}

/* kid: what a file name may carry, and what a header may name */
static bool
kid_ok(const char *k, size_t n)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '-' || k[i] == '_' || k[i] == '.'))
			return false;
	return true;
}

/* base64url of a P-256 coordinate, left-padded to 32 bytes */
static int
coord_b64(const BIGNUM *bn, char out[48])
{
	unsigned char buf[32];
	if (BN_bn2binpad(bn, buf, sizeof(buf)) != (int)sizeof(buf))
		return -1;
	b64url_encode(out, buf, sizeof(buf));
	return 0;
}

static int
jwk_of(struct vkey *k, json_object *arr)
{
	BIO *bio = BIO_new_mem_buf(k->pem, (int)k->pem_len);
	EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIGNUM *x = NULL, *y = NULL;
	char xs[48], ys[48], curve[32];
	int rc = -1;
	if (pkey == NULL || !EVP_PKEY_is_a(pkey, "EC") ||
	    EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
	                                   NULL) != 1 ||
	    strcmp(curve, "prime256v1") != 0 ||
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
	    coord_b64(x, xs) != 0 || coord_b64(y, ys) != 0)
		goto out;
	json_object *j = json_object_new_object();
	json_add_str(j, "kty", "EC");
	json_add_str(j, "crv", "P-256");
	json_add_str(j, "x", xs);
	json_add_str(j, "y", ys);
	json_add_str(j, "kid", k->kid);
	json_add_str(j, "use", "sig");
	json_add_str(j, "alg", "ES256");
	json_object_array_add(arr, j);
	k->pkey = pkey;
	pkey = NULL;
	rc = 0;
out:
	BN_free(x);
	BN_free(y);
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return rc;
}

static int
load_public_keys(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && nkeys < MAX_KEYS) {
		size_t n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".pem") != 0 || !kid_ok(de->d_name, n - 4))
			continue;
		struct vkey *k = &keys[nkeys];
		char path[1024];
		int w = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (w < 0 || (size_t)w >= sizeof(path) ||
		    read_file(path, k->pem, sizeof(k->pem), &k->pem_len) != 0)
			continue;
		memcpy(k->kid, de->d_name, n - 4);
		k->kid[n - 4] = '\0';
		nkeys++;
	}
	closedir(d);
	return nkeys > 0 ? 0 : -1;
}

int
token_init(void)
{
	if (config.jwt_private_key_file == NULL || config.jwt_kid == NULL ||
	    config.jwt_public_keys_dir == NULL) {
		fputs("atrium: ATRIUM_JWT_PRIVATE_KEY_FILE, ATRIUM_JWT_KID and "
		      "ATRIUM_JWT_PUBLIC_KEYS_DIR must be set\n",
		      stderr);
		return -1;
	}
	if (read_file(config.jwt_private_key_file, sign_pem, sizeof(sign_pem), &sign_pem_len) !=
	            0 ||
	    load_public_keys(config.jwt_public_keys_dir) != 0) {
		fputs("atrium: cannot read the JWT keys\n", stderr);
		return -1;
	}
	BIO *bio = BIO_new_mem_buf(sign_pem, (int)sign_pem_len);
	sign_key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (sign_key == NULL || !EVP_PKEY_is_a(sign_key, "EC")) {
		fputs("atrium: ATRIUM_JWT_PRIVATE_KEY_FILE is not a P-256 private key\n", stderr);
		return -1;
	}
	bool signer_known = false;
	json_object *doc = json_object_new_object(), *arr = json_object_new_array();
	for (size_t i = 0; i < nkeys; i++) {
		if (strcmp(keys[i].kid, config.jwt_kid) == 0)
			signer_known = true;
		if (jwk_of(&keys[i], arr) != 0) {
			fprintf(stderr, "atrium: %s.pem is not a P-256 public key\n", keys[i].kid);
			json_object_put(arr);
			json_object_put(doc);
			return -1;
		}
	}
	json_object_object_add(doc, "keys", arr);
	jwks = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
	json_object_put(doc);
	if (!signer_known || jwks == NULL) {
		fputs("atrium: ATRIUM_JWT_KID has no public key in ATRIUM_JWT_PUBLIC_KEYS_DIR\n",
		      stderr);
		return -1;
	}
	return 0;
}

const char *
token_jwks(void)
{
	return jwks;
}

static void
free_md_ctx(void *p)
{
	EVP_MD_CTX_free(p);
}

static void
free_ecdsa_sig(void *p)
{
	ECDSA_SIG_free(p);
}

/* base64url of a JSON object, in arena memory */
static char *
segment_of(struct request *r, json_object *o)
{
	size_t n = 0;
	const char *s = json_render(r->arena, o, &n);
	char *out = arena_alloc(r->arena, 4 * ((n + 2) / 3) + 1);
	b64url_encode(out, (const unsigned char *)s, n);
	return out;
}

/*
 * Signing and verifying use OpenSSL's ECDSA directly rather than libjwt:
 * libjwt 1.10 (Debian 12) writes "typ":"JWT" into every header it signs and
 * refuses, with EINVAL, any token whose typ is not "JWT", so it can neither
 * issue nor accept RFC 9068 access tokens (typ at+jwt).  Doing ES256 here
 * also leaves no algorithm to confuse: only ES256, only configured keys.
 */
int
token_issue(struct request *r, const char *user_id, const char *session_id, const char **token)
{
	unsigned char rnd[16], der[128], raw[64];
	char jti[33];
	size_t der_len = sizeof(der);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return ERR_INTERNAL;
	util_hex(rnd, sizeof(rnd), jti);
	long now = (long)time(NULL);

	json_object *hdr = json_new_object(r->arena);
	json_add_str(hdr, "alg", "ES256");
	json_add_str(hdr, "typ", "at+jwt");
	json_add_str(hdr, "kid", config.jwt_kid);
	json_object *cl = json_new_object(r->arena);
	json_add_str(cl, "iss", config.jwt_issuer);
	json_add_str(cl, "aud", TOKEN_AUDIENCE);
	json_add_str(cl, "sub", user_id);
	json_add_str(cl, "tid", r->tenant.id);
	json_add_str(cl, "sid", session_id);
	json_add_int(cl, "iat", now);
	json_add_int(cl, "exp", now + config.access_ttl);
	json_add_str(cl, "jti", jti);
	const char *input = arena_printf(r->arena, "%s.%s", segment_of(r, hdr), segment_of(r, cl));

	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return ERR_INTERNAL;
	arena_defer(r->arena, free_md_ctx, ctx);
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, sign_key) != 1 ||
	    EVP_DigestSign(ctx, der, &der_len, (const unsigned char *)input, strlen(input)) != 1)
		return ERR_INTERNAL;
	/* JWS wants r || s, 32 bytes each, not the DER that OpenSSL returns */
	const unsigned char *dp = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &dp, (long)der_len);
	if (sig == NULL)
		return ERR_INTERNAL;
	arena_defer(r->arena, free_ecdsa_sig, sig);
	const BIGNUM *sr = NULL, *ss = NULL;
	ECDSA_SIG_get0(sig, &sr, &ss);
	if (BN_bn2binpad(sr, raw, 32) != 32 || BN_bn2binpad(ss, raw + 32, 32) != 32)
		return ERR_INTERNAL;
	char sig64[96];
	b64url_encode(sig64, raw, sizeof(raw));
	*token = arena_printf(r->arena, "%s.%s", input, sig64);
	return 0;
}

/* Decodes one base64url JWT segment into a strict JSON object. */
static json_object *
segment_json(struct request *r, const char *p, size_t n)
{
	size_t len = 0;
	unsigned char *raw = b64url_decode(r->arena, p, n, &len);
	struct json_parse jp;
	if (raw == NULL || json_parse_body(r->arena, (const char *)raw, len, &jp) != 0)
		return NULL;
	return jp.root;
}

static const char *
str_member(json_object *o, const char *key)
{
	json_object *v = json_get(o, key);
	return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
	                                                             : NULL;
}

static bool
int_member(json_object *o, const char *key, long *out)
{
	json_object *v = json_get(o, key);
	if (v == NULL || !json_object_is_type(v, json_type_int))
		return false;
	*out = (long)json_object_get_int64(v);
	return true;
}

static const struct vkey *
key_by_kid(const char *kid)
{
	for (size_t i = 0; kid != NULL && i < nkeys; i++)
		if (strcmp(keys[i].kid, kid) == 0)
			return &keys[i];
	return NULL;
}

static bool
audience_ok(json_object *claims)
{
	json_object *aud = json_get(claims, "aud");
	if (aud != NULL && json_object_is_type(aud, json_type_string))
		return strcmp(json_object_get_string(aud), TOKEN_AUDIENCE) == 0;
	if (aud == NULL || !json_object_is_type(aud, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(aud); i++) {
		json_object *a = json_object_array_get_idx(aud, i);
		if (a != NULL && json_object_is_type(a, json_type_string) &&
		    strcmp(json_object_get_string(a), TOKEN_AUDIENCE) == 0)
			return true;
	}
	return false;
}

static bool
copy_uuid(char dst[37], const char *src)
{
	if (src == NULL || check_uuid(src, strlen(src)) != NULL)
		return false;
	memcpy(dst, src, 37);
	return true;
}

static void
free_md(void *p)
{
	EVP_MD_CTX_free(p);
}

/* ECDSA P-256 / SHA-256 over input; sig is the JWS form (r || s). */
static bool
es256_ok(struct request *r, const struct vkey *k, const char *input, size_t n, const char *sig,
         size_t sn)
{
	size_t raw_len = 0;
	unsigned char *raw = b64url_decode(r->arena, sig, sn, &raw_len);
	if (raw == NULL || raw_len != 64)
		return false;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *br = BN_bin2bn(raw, 32, NULL), *bs = BN_bin2bn(raw + 32, 32, NULL);
	unsigned char *der = NULL;
	bool ok = false;
	if (es == NULL || br == NULL || bs == NULL || ECDSA_SIG_set0(es, br, bs) != 1) {
		BN_free(br);
		BN_free(bs);
		goto out;
	}
	int der_len = i2d_ECDSA_SIG(es, &der);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		goto out;
	arena_defer(r->arena, free_md, ctx);
	ok = der_len > 0 && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
	     EVP_DigestVerify(ctx, der, (size_t)der_len, (const unsigned char *)input, n) == 1;
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	return ok;
}

int
token_verify(struct request *r, const char *token, struct token_claims *c, bool *expired)
{
	*expired = false;
	size_t n = strlen(token);
	if (n == 0 || n > TOKEN_MAX_BYTES)
		return ERR_INVALID;
	const char *d1 = memchr(token, '.', n);
	const char *d2 = d1 != NULL ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token)) : NULL;
	if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)) != NULL ||
	    d2 + 1 == token + n)
		return ERR_INVALID; /* not three non-empty-signature segments */

	/* 1. the header, exactly as we issue it */
	json_object *hdr = segment_json(r, token, (size_t)(d1 - token));
	if (hdr == NULL || json_object_object_length(hdr) != 3)
		return ERR_INVALID;
	const char *alg = str_member(hdr, "alg"), *typ = str_member(hdr, "typ");
	const char *kid = str_member(hdr, "kid");
	const struct vkey *key = kid != NULL && kid_ok(kid, strlen(kid)) ? key_by_kid(kid) : NULL;
	if (alg == NULL || strcmp(alg, "ES256") != 0 || typ == NULL ||
	    strcasecmp(typ, "at+jwt") != 0 || key == NULL)
		return ERR_INVALID;

	/* 2. the signature, ES256 with that key only */
	if (!es256_ok(r, key, token, (size_t)(d2 - token), d2 + 1, n - (size_t)(d2 + 1 - token)))
		return ERR_INVALID;

	/* 3. the claims, from the signed bytes */
	json_object *claims = segment_json(r, d1 + 1, (size_t)(d2 - d1 - 1));
	long exp = 0, iat = 0, nbf = 0, now = (long)time(NULL);
	const char *iss = str_member(claims, "iss"), *jti = str_member(claims, "jti");
	if (claims == NULL || iss == NULL || strcmp(iss, config.jwt_issuer) != 0 ||
	    !audience_ok(claims) || jti == NULL || strlen(jti) > 64 ||
	    !int_member(claims, "exp", &exp) || !int_member(claims, "iat", &iat) ||
	    iat > now + CLOCK_SKEW || exp - iat > config.access_ttl || exp <= iat ||
	    (json_has(claims, "nbf") &&
	     (!int_member(claims, "nbf", &nbf) || nbf > now + CLOCK_SKEW)) ||
	    !copy_uuid(c->sub, str_member(claims, "sub")) ||
	    !copy_uuid(c->tid, str_member(claims, "tid")) ||
	    !copy_uuid(c->sid, str_member(claims, "sid")))
		return ERR_INVALID;
	/* a token of another tenant is useless on this tenant's host */
	if (!r->has_tenant || strcasecmp(c->tid, r->tenant.id) != 0)
		return ERR_INVALID;
	c->exp = exp;
	if (exp <= now) {
		*expired = true;
		return ERR_INVALID;
	}
	return 0;
}
