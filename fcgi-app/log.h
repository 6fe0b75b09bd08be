/*
 * log.h - the access log and error log, both one line per event on stderr
 * (the stack appends the workers' stderr to log/atrium-fcgi.log).  Every
 * user-derived value passes log_escape() so a client cannot forge lines.
 */
#ifndef ATRIUM_LOG_H
#define ATRIUM_LOG_H

#include "http.h"

/* One JSON line: time, request id, tenant, method, route, status, µs. */
void log_access(const struct request *r);
/* An error with the request id (r may be NULL). */
void log_error(const struct request *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes s escaped for a JSON string into out (always NUL-terminated). */
void log_escape(char *out, size_t out_len, const char *s);

#endif
