/*
 * log.h - the access log and error log, both one line per event on stderr
 * (the stack appends the workers' stderr to log/atrium-fcgi.log).  Every
 * user-derived value passes log_escape() so a client cannot forge lines.
 */
#ifndef ATRIUM_LOG_H
#define ATRIUM_LOG_H

#include <stdarg.h>

#include "http.h"

/* One JSON line: time, request id, tenant, method, route, status, µs. */
void log_access(const struct request *r);
/* One {t, level, [rid,] pid, msg} line; rid NULL leaves it out. */
void log_vmessage(const char *level, const char *rid, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));
/* An error with the request id (r may be NULL). */
void log_error(const struct request *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* RFC 3339 UTC with milliseconds into out. */
void log_timestamp(char *out, size_t n);
/* Writes line (len bytes, cap its buffer size) plus a newline to stderr in
 * one write(2), so lines of processes sharing an O_APPEND log never
 * interleave; an over-long line is cut, never split. */
void log_write_line(char *line, int len, size_t cap);
/* Writes s escaped for a JSON string into out (always NUL-terminated). */
void log_escape(char *out, size_t out_len, const char *s);

#endif
