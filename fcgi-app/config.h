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

	/* client identity */
	const char *jwt_private_key_file;  /* ATRIUM_JWT_PRIVATE_KEY_FILE (PEM, P-256) */
	const char *jwt_kid;               /* ATRIUM_JWT_KID: the signing key's id */
	const char *jwt_public_keys_dir;   /* ATRIUM_JWT_PUBLIC_KEYS_DIR: <kid>.pem each */
	const char *jwt_issuer;            /* ATRIUM_JWT_ISSUER (default "atrium") */
	const char *common_passwords_file; /* ATRIUM_COMMON_PASSWORDS_FILE */
	int access_ttl;                    /* ATRIUM_ACCESS_TTL seconds (900) */
	int refresh_ttl;                   /* ATRIUM_REFRESH_TTL seconds (2592000, sliding) */
	int refresh_grace;                 /* ATRIUM_REFRESH_GRACE_S (60) */
	int invite_ttl;                    /* ATRIUM_INVITE_TTL (604800) */
	int reset_ttl;                     /* ATRIUM_RESET_TTL (3600) */
	int lockout_base;                  /* ATRIUM_LOCKOUT_BASE_S (900): first lock, doubles */
	int argon2_m_kib;                  /* ATRIUM_ARGON2_M_KIB (19456) */
	int argon2_t;                      /* ATRIUM_ARGON2_T (2) */
	int argon2_p;                      /* ATRIUM_ARGON2_P (1) */

	/* the deployment's object store (a tenant may bring its own) */
	const char *s3_endpoint;          /* ATRIUM_S3_ENDPOINT: what the workers reach */
	const char *s3_public_endpoint;   /* ATRIUM_S3_PUBLIC_ENDPOINT: what browsers reach
	                                     (default: ATRIUM_S3_ENDPOINT) */
	const char *s3_region;            /* ATRIUM_S3_REGION (us-east-1; "auto" for R2) */
	const char *s3_bucket;            /* ATRIUM_S3_BUCKET */
	const char *s3_access_key_id;     /* ATRIUM_S3_ACCESS_KEY_ID */
	const char *s3_secret_access_key; /* ATRIUM_S3_SECRET_ACCESS_KEY */
	int s3_path_style;                /* ATRIUM_S3_PATH_STYLE (1): endpoint/bucket/key */
	int digest_window;                /* ATRIUM_DIGEST_WINDOW_S (300): message digests */
	int s3_timeout; /* ATRIUM_S3_TIMEOUT_S (20): the upload check's HEAD + GET */
};

extern struct config config;

/* Fills config from the environment; returns 0 or -1 with a message on
 * stderr for a missing or invalid setting. */
int config_load(void);

/* Parses a decimal integer in [min, max]; returns 0 or -1. */
int config_parse_int(const char *s, long long min, long long max, long long *out);

#endif
