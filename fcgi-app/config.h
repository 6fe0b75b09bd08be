/*
 * config.h - settings read once from the environment at start-up.
 * The README lists every variable.
 */
#ifndef ATRIUM_CONFIG_H
#define ATRIUM_CONFIG_H

struct config {
	const char *db_dsn;   /* ATRIUM_DB_DSN (required) */
	const char *api_host; /* ATRIUM_API_HOST or NULL */
	int tenant_cache_ttl; /* ATRIUM_TENANT_CACHE_TTL seconds (default 5) */
	int public_port;      /* ATRIUM_PUBLIC_PORT (default 443) */
};

extern struct config config;

/* Fills config from the environment; returns 0 or -1 with a message on
 * stderr for a missing or invalid setting. */
int config_load(void);

/* Parses a decimal integer in [min, max]; returns 0 or -1. */
int config_parse_int(const char *s, long long min, long long max, long long *out);

#endif
