/*
 * password.h - argon2id password hashes and the password rules.
 *
 * Rules (NIST SP 800-63B rev 4, password-only accounts): 15 to 256 code
 * points, any characters, compared exactly as typed, no composition rules;
 * refused when on the common-passwords list (loaded at start-up from
 * ATRIUM_COMMON_PASSWORDS_FILE, a JSON array: npm @zxcvbn-ts/language-common)
 * or equal to the account's email.  The hash parameters live in the encoded
 * hash, so raising them later rehashes at the next login.
 */
#ifndef ATRIUM_PASSWORD_H
#define ATRIUM_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"

#define PASSWORD_MIN_CHARS 15
#define PASSWORD_MAX_CHARS 256
/* bodies carrying more password bytes than this are refused before hashing */
#define PASSWORD_MAX_BYTES 1024
#define PASSWORD_HASH_MAX  160

/* Loads the common-password list and prepares the dummy hash used for
 * unknown accounts; returns 0 or -1 with a message on stderr. */
int password_init(void);

/* Encodes an argon2id hash of pw (n bytes) into out; 0 or -1. */
int password_hash(const char *pw, size_t n, char out[PASSWORD_HASH_MAX]);

/*
 * Verifies pw against encoded; encoded NULL verifies against a dummy hash
 * with the same cost so that unknown accounts take as long (and fail).
 */
bool password_verify(const char *encoded, const char *pw, size_t n);

/* True when encoded was made with other parameters than the current ones. */
bool password_needs_rehash(const char *encoded);

/* Adds field errors for pw (length, common list, equal to email). */
void password_check(const char *pw, size_t n, const char *email, const char *field,
                    struct json_errors *e);

/* Test hook: true when s (NUL-terminated, any case) is on the common list. */
bool password_is_common(const char *s);

#endif
