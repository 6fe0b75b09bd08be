/*
 * password.c - argon2id hashing, verification and the password rules.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <argon2.h>
#include <openssl/rand.h>

#include "config.h"
#include "password.h"

#define SALT_LEN     16
#define HASH_LEN     32
#define COMMON_SLOTS 131072 /* power of two, > 2 x the list */

/* lower-cased common passwords in an open-addressing table */
static char **common;
static size_t common_count;
static char dummy_hash[PASSWORD_HASH_MAX];

static size_t
slot_of(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)tolower((unsigned char)*s)) * 1099511628211ull;
	return (size_t)(h & (COMMON_SLOTS - 1));
}

bool
password_is_common(const char *s)
{
	if (common == NULL)
		return false;
	for (size_t i = slot_of(s), probes = 0; common[i] != NULL && probes < COMMON_SLOTS;
	     i = (i + 1) & (COMMON_SLOTS - 1), probes++)
		if (strcasecmp(common[i], s) == 0)
			return true;
	return false;
}

static int
common_add(const char *s)
{
	if (common_count >= COMMON_SLOTS / 2 || password_is_common(s))
		return 0;
	size_t i = slot_of(s);
	while (common[i] != NULL)
		i = (i + 1) & (COMMON_SLOTS - 1);
	common[i] = strdup(s);
	if (common[i] == NULL)
		return -1;
	common_count++;
	return 0;
}

static int
load_common(const char *path)
{
	json_object *list = json_object_from_file(path);
	int rc = -1;
	if (list == NULL || !json_object_is_type(list, json_type_array)) {
		fprintf(stderr, "atrium: %s is not a JSON array of passwords\n", path);
		goto out;
	}
	common = calloc(COMMON_SLOTS, sizeof(*common));
	if (common == NULL)
		goto out;
	size_t n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(list, i));
		if (s != NULL && *s != '\0' && common_add(s) != 0)
			goto out;
	}
	rc = 0;
out:
	json_object_put(list);
	return rc;
}

int
password_hash(const char *pw, size_t n, char out[PASSWORD_HASH_MAX])
{
	unsigned char salt[SALT_LEN];
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -1;
	int rc = argon2id_hash_encoded((uint32_t)config.argon2_t, (uint32_t)config.argon2_m_kib,
	                               (uint32_t)config.argon2_p, pw, n, salt, sizeof(salt),
	                               HASH_LEN, out, PASSWORD_HASH_MAX);
	return rc == ARGON2_OK ? 0 : -1;
}

bool
password_verify(const char *encoded, const char *pw, size_t n)
{
	if (encoded == NULL || strncmp(encoded, "$argon2id$", 10) != 0) {
		/* same work as a real check, and never a match */
		(void)argon2id_verify(dummy_hash, pw, n);
		return false;
	}
	return argon2id_verify(encoded, pw, n) == ARGON2_OK;
}

bool
password_needs_rehash(const char *encoded)
{
	char want[64];
	snprintf(want, sizeof(want), "$argon2id$v=19$m=%d,t=%d,p=%d$", config.argon2_m_kib,
	         config.argon2_t, config.argon2_p);
	return encoded == NULL || strncmp(encoded, want, strlen(want)) != 0;
}

void
password_check(const char *pw, size_t n, const char *email, const char *field,
               struct json_errors *e)
{
	size_t chars = utf8_chars(pw, n);
	if (chars < PASSWORD_MIN_CHARS) {
		json_errors_add(e, field, "too_short", "must be at least 15 characters");
		return;
	}
	if (chars > PASSWORD_MAX_CHARS || n > PASSWORD_MAX_BYTES) {
		json_errors_add(e, field, "too_long", "must be at most 256 characters");
		return;
	}
	if (password_is_common(pw)) {
		json_errors_add(e, field, "common_password",
		                "is on the list of commonly used passwords; choose another");
		return;
	}
	if (email != NULL && strcasecmp(pw, email) == 0)
		json_errors_add(e, field, "common_password", "must not be your email address");
}

int
password_init(void)
{
	const char *path = config.common_passwords_file;
	if (path == NULL || load_common(path) != 0) {
		fprintf(stderr, "atrium: cannot load the common-password list (%s)\n",
		        path != NULL ? path : "ATRIUM_COMMON_PASSWORDS_FILE not set");
		return -1;
	}
	unsigned char rnd[24];
	char pw[49];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(pw + 2 * i, 3, "%02x", rnd[i]);
	return password_hash(pw, strlen(pw), dummy_hash) == 0 ? 0 : -1;
}
