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
	    int_setting("ATRIUM_PUBLIC_PORT", 443, 1, 65535, &config.public_port) != 0)
		return -1;
	return 0;
}
