/*
 * config.c - environment settings with range-checked parsing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "config.h"

struct config config;

int
config_parse_int(const char *s, long long min, long long max, long long *out)
{
	if (s == NULL || *s == '\0')
		return -1;
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
int_setting(const char *name, long long def, long long min, long long max, int *out)
{
	const char *s = getenv(name);
	long long v = def;
	if (s != NULL && *s != '\0' && config_parse_int(s, min, max, &v) != 0) {
		fprintf(stderr, "atrium: %s must be an integer in [%lld, %lld]\n", name, min, max);
		return -1;
	}
	*out = (int)v;
	return 0;
}

int
config_load(void)
{
	config.db_dsn = getenv("ATRIUM_DB_DSN");
	if (config.db_dsn == NULL || *config.db_dsn == '\0') {
		fputs("atrium: ATRIUM_DB_DSN is not set (libpq connection string)\n", stderr);
		return -1;
	}
	config.api_host = getenv("ATRIUM_API_HOST");
	if (config.api_host != NULL && *config.api_host == '\0')
		config.api_host = NULL;
	if (int_setting("ATRIUM_TENANT_CACHE_TTL", 5, 0, 3600, &config.tenant_cache_ttl) != 0 ||
	    int_setting("ATRIUM_PUBLIC_PORT", 443, 1, 65535, &config.public_port) != 0 ||
	    int_setting("ATRIUM_ACCESS_TTL", 900, 30, 900, &config.access_ttl) != 0 ||
	    int_setting("ATRIUM_REFRESH_TTL", 2592000, 60, 31536000, &config.refresh_ttl) != 0 ||
	    int_setting("ATRIUM_REFRESH_GRACE_S", 60, 0, 600, &config.refresh_grace) != 0 ||
	    int_setting("ATRIUM_INVITE_TTL", 604800, 60, 2592000, &config.invite_ttl) != 0 ||
	    int_setting("ATRIUM_RESET_TTL", 3600, 60, 86400, &config.reset_ttl) != 0 ||
	    int_setting("ATRIUM_LOCKOUT_BASE_S", 900, 1, 86400, &config.lockout_base) != 0 ||
	    int_setting("ATRIUM_ARGON2_M_KIB", 19456, 19456, 4194304, &config.argon2_m_kib) != 0 ||
	    int_setting("ATRIUM_ARGON2_T", 2, 2, 100, &config.argon2_t) != 0 ||
	    int_setting("ATRIUM_ARGON2_P", 1, 1, 16, &config.argon2_p) != 0 ||
	    int_setting("ATRIUM_S3_PATH_STYLE", 1, 0, 1, &config.s3_path_style) != 0 ||
	    int_setting("ATRIUM_S3_TIMEOUT_S", 20, 1, 600, &config.s3_timeout) != 0 ||
	    int_setting("ATRIUM_DIGEST_WINDOW_S", 300, 0, 86400, &config.digest_window) != 0)
		return -1;
	config.s3_endpoint = getenv("ATRIUM_S3_ENDPOINT");
	config.s3_public_endpoint = getenv("ATRIUM_S3_PUBLIC_ENDPOINT");
	if (config.s3_public_endpoint == NULL || *config.s3_public_endpoint == '\0')
		config.s3_public_endpoint = config.s3_endpoint;
	config.s3_region = getenv("ATRIUM_S3_REGION");
	if (config.s3_region == NULL || *config.s3_region == '\0')
		config.s3_region = "us-east-1";
	config.s3_bucket = getenv("ATRIUM_S3_BUCKET");
	config.s3_access_key_id = getenv("ATRIUM_S3_ACCESS_KEY_ID");
	config.s3_secret_access_key = getenv("ATRIUM_S3_SECRET_ACCESS_KEY");
	config.jwt_private_key_file = getenv("ATRIUM_JWT_PRIVATE_KEY_FILE");
	config.jwt_kid = getenv("ATRIUM_JWT_KID");
	config.jwt_public_keys_dir = getenv("ATRIUM_JWT_PUBLIC_KEYS_DIR");
	config.jwt_issuer = getenv("ATRIUM_JWT_ISSUER");
	if (config.jwt_issuer == NULL || *config.jwt_issuer == '\0')
		config.jwt_issuer = "atrium";
	config.common_passwords_file = getenv("ATRIUM_COMMON_PASSWORDS_FILE");
#ifdef ATRIUM_REPO_DIR
	/* a development build finds the list in its own checkout */
	if (config.common_passwords_file == NULL || *config.common_passwords_file == '\0')
		config.common_passwords_file = ATRIUM_REPO_DIR
		        "/node_modules/@zxcvbn-ts/language-common/src/passwords.json";
#endif
	return 0;
}
