/*
 * s3sign.h - AWS Signature Version 4 query presigning for S3-compatible
 * stores (AWS S3, Cloudflare R2, the local emulator).
 *
 * The browser talks to the store with these URLs (PUT to upload, GET to
 * download); the worker uses them too, for the HEAD that confirms an upload.
 * Payloads are never signed (UNSIGNED-PAYLOAD): the store checks the signed
 * headers (content-type, content-length) instead.
 */
#ifndef ATRIUM_S3SIGN_H
#define ATRIUM_S3SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "arena.h"

/* Where objects live and who signs: one tenant's store settings. */
struct s3_target {
	const char *endpoint; /* "https://host[:port]" or "http://host[:port]", no path */
	const char *region;   /* "us-east-1"; "auto" for Cloudflare R2 */
	const char *bucket;
	bool path_style; /* endpoint/bucket/key instead of bucket.host/key */
	const char *access_key_id;
	const char *secret_access_key;
};

/* A name/value pair: a signed header (lower-case name) or a query parameter. */
struct s3_param {
	const char *name;
	const char *value;
};

#define S3_EXPIRES_MAX 604800 /* SigV4's limit: 7 days */

/*
 * A presigned URL for method ("GET", "PUT", "HEAD") on the object key (raw,
 * UTF-8; '/' separates segments and is kept, everything else is encoded per
 * the S3 rules), valid expires seconds (1..S3_EXPIRES_MAX) from now.
 * headers: headers the request must carry with exactly these values, signed
 * besides host (names lower-case).  query: extra query parameters covered by
 * the signature (e.g. response-content-disposition).  Returns the URL in
 * arena memory, or NULL when the target or an argument is unusable (bad
 * endpoint, empty bucket or key, expires out of range).
 */
char *s3_presign(struct arena *a, const struct s3_target *t, const char *method, const char *key,
                 time_t now, int expires, const struct s3_param *headers, size_t nheaders,
                 const struct s3_param *query, size_t nquery);

/* RFC 3986 percent-encoding as SigV4 wants it: unreserved characters
 * (A-Z a-z 0-9 - . _ ~) stay, every other byte becomes %XX (upper-case hex);
 * keep_slash leaves '/' as is (object key paths). */
char *s3_uri_encode(struct arena *a, const char *s, bool keep_slash);

/*
 * A Content-Disposition value that makes a browser download the file under
 * its original name: attachment; filename="<ASCII fallback>";
 * filename*=UTF-8''<RFC 8187 encoding>.  The fallback replaces anything that
 * is not printable ASCII, and '"', '\\', '/', with '_'.  Control characters
 * never reach the header.
 */
char *s3_content_disposition(struct arena *a, const char *filename);

#endif
