/*
 * store.h - a tenant's object store: settings, limits, presigned URLs and
 * the check that an upload really arrived.
 *
 * A tenant that set store.bucket, store.access_key_id and
 * store.secret_access_key (PATCH /team/branding) uses its own bucket (R2,
 * S3, any S3-compatible store); every other tenant uses the deployment's
 * (ATRIUM_S3_*).  Object keys are chosen here, never by users.
 */
#ifndef ATRIUM_STORE_H
#define ATRIUM_STORE_H

#include <json-c/json.h>
#include <stdbool.h>

#include "http.h"
#include "s3sign.h"

struct store {
	struct s3_target worker;  /* the endpoint the workers reach (the HEAD check) */
	struct s3_target browser; /* the endpoint browsers are sent to */
	long long max_upload;     /* bytes of one file */
	long long quota;          /* bytes of all the tenant's files; -1: no quota */
	json_object *blocked;     /* array of refused content types */
};

/* Loads the tenant's store settings and limits.  Returns 0, ERR_DB, or
 * ERR_UNAVAILABLE with a 503 answer when no store is configured at all. */
int store_load(struct request *r, struct store *s);

/* True when content_type is on the tenant's blocked list. */
bool store_blocked(const struct store *s, const char *content_type);

/* tenants/{tenant}/projects/{project}/{attachment} */
char *store_object_key(struct request *r, const char *project_id, const char *attachment_id);

/* Where the browser uploads the object that will live at key:
 * incoming/{key}.  Only the server writes key itself (a copy once the upload
 * is confirmed), so no upload URL can change a confirmed file; a lifecycle
 * rule on incoming/ may expire abandoned uploads. */
char *store_upload_key(struct request *r, const char *key);

/* A presigned PUT for the browser to the upload key of key: content-type and
 * content-length signed.  *expires_at gets the RFC 3339 expiry.  NULL on a
 * signing failure. */
char *store_upload_url(struct request *r, const struct store *s, const char *key,
                       const char *content_type, long long size, const char **expires_at);
/* A presigned GET for the browser that downloads as an attachment under
 * filename with the stored content type. */
char *store_download_url(struct request *r, const struct store *s, const char *key,
                         const char *filename, const char *content_type, const char **expires_at);

/* What the store holds under a key. */
struct store_object {
	long long size;
	char content_type[256];
	char etag[160];
	char sha256[65]; /* lower-case hex of the bytes read back */
};

enum store_check_result {
	STORE_OK = 0,
	STORE_MISSING = 1,  /* no object (or not readable with our keys) */
	STORE_MISMATCH = 2, /* size or type differ from what was declared */
	STORE_FAILED = 3,   /* the store could not be asked (network, 5xx) */
};

/*
 * Confirms an upload: a signed HEAD of the upload key (the object exists with
 * the declared size and content type), a server-side copy to key, then a
 * signed GET of key that streams the bytes through SHA-256 (reading at most
 * size bytes), so that the attachment's sha256 names exactly what downloads
 * return.  An upload already copied by an earlier attempt (that died before
 * its commit) is found at key.  *why gets a short reason for the 409 detail.
 */
enum store_check_result store_check(struct request *r, const struct store *s, const char *key,
                                    long long size, const char *content_type,
                                    struct store_object *o, const char **why);

/* Deletes the upload copy once confirmed (best effort: a failure is logged,
 * the object only costs storage). */
void store_forget_upload(struct request *r, const struct store *s, const char *key);

#endif
