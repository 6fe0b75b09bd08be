/*
 * limits.h - every size and count limit of the server in one place.
 *
 * Limits are checked before work is done: a request that is too large is
 * refused before it is parsed, a JSON body that nests too deeply before it is
 * built.
 */
#ifndef ATRIUM_LIMITS_H
#define ATRIUM_LIMITS_H

#define LIMIT_BODY_MAX          (1024 * 1024)              /* JSON request bodies (413 above) */
#define LIMIT_JSON_DEPTH        32                         /* nesting of JSON bodies (400 above) */
#define LIMIT_JSON_KEYS         100000                     /* object members in one body */
#define LIMIT_PATH_MAX          2048                       /* request path bytes */
#define LIMIT_QUERY_MAX         4096                       /* query string bytes */
#define LIMIT_PATH_SEGMENTS     16                         /* path segments the router looks at */
#define LIMIT_ROUTE_PARAMS      4                          /* {params} in one route pattern */
#define LIMIT_REQUEST_ID        128                        /* caller-supplied X-Request-Id */
#define LIMIT_HOST_MAX          253                        /* DNS name length */
#define LIMIT_PAGE_DEFAULT      50                         /* ?limit= default */
#define LIMIT_PAGE_MAX          200                        /* ?limit= maximum */
#define LIMIT_NAME_CHARS        200                        /* names and titles */
#define LIMIT_URL_CHARS         2048                       /* logo and favicon URLs */
#define LIMIT_DESCRIPTION_CHARS 20000                      /* descriptions (code points) */
#define LIMIT_EMAIL_CHARS       254                        /* RFC 5321 path limit */
#define LIMIT_SECRET_CHARS      4096                       /* write-only settings (tokens, keys) */
#define LIMIT_CONTENT_TYPES     64                         /* entries in blocked_content_types */
#define LIMIT_UPLOAD_MAX        (5LL * 1024 * 1024 * 1024) /* tenant max_upload_bytes ceiling */
#define LIMIT_POSITION          1000000000LL               /* |position| of milestones and tasks */
#define LIMIT_DOMAINS           100                        /* hosts per tenant */
#define LIMIT_MESSAGE_CHARS     10000                      /* message bodies (code points) */
#define LIMIT_MESSAGE_FILES     20                         /* attachments of one message */
#define LIMIT_DELIVERABLE_FILES 20                         /* attachments of one deliverable */
#define LIMIT_FILENAME_CHARS    255                        /* attachment file names */
#define LIMIT_COMMENT_CHARS     5000                       /* deliverable decision comments */
#define LIMIT_QUOTA_MAX         (1LL << 50)                /* tenant quota_bytes ceiling */
#define LIMIT_UPLOAD_DEFAULT    (50LL * 1024 * 1024)       /* max_upload_bytes default */
#define LIMIT_UPLOAD_URL_S      900                        /* presigned PUT lifetime */
#define LIMIT_DOWNLOAD_URL_S    300                        /* presigned GET lifetime */
#define LIMIT_ERRORS            50   /* validation errors reported in one 422 */
#define LIMIT_LOG_LINE          2048 /* one access-log line */
#define LIMIT_TENANT_CACHE      1024 /* host -> tenant cache slots per worker */

#endif
