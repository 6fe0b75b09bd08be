/*
 * log.c - single-write log lines (atomic on an O_APPEND file, so lines of
 * several workers never interleave).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "limits.h"
#include "log.h"
#include "router.h"

void
log_escape(char *out, size_t out_len, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (out_len == 0)
		return;
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char tmp[7];
		size_t n;
		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			n = 2;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(tmp, "\\u00", 4);
			tmp[4] = hex[c >> 4];
			tmp[5] = hex[c & 15];
			n = 6;
		} else {
			tmp[0] = (char)c;
			n = 1;
		}
		if (o + n >= out_len)
			break;
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o] = '\0';
}

void
log_timestamp(char *out, size_t n)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t w = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	if (w > 0 && w < n)
		snprintf(out + w, n - w, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

void
log_write_line(char *line, int len, size_t cap)
{
	if (len < 0)
		return;
	if ((size_t)len >= cap - 1) {
		/* truncated: keep it one line */
		len = (int)cap - 2;
	}
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)len);
	(void)w;
}

void
log_access(const struct request *r)
{
	char line[LIMIT_LOG_LINE], ts[40], method[16], route[256], code[48], tenant[48];
	log_timestamp(ts, sizeof(ts));
	log_escape(method, sizeof(method), r->method);
	log_escape(route, sizeof(route),
	           r->route != NULL ? r->route->pattern : (r->route_name ? r->route_name : "-"));
	log_escape(code, sizeof(code), r->problem_code != NULL ? r->problem_code : "");
	log_escape(tenant, sizeof(tenant), r->has_tenant ? r->tenant.code : "");
	int n = snprintf(line, sizeof(line),
	                 "{\"t\":\"%s\",\"level\":\"access\",\"rid\":\"%s\",\"tenant\":\"%s\","
	                 "\"method\":\"%s\",\"route\":\"%s\",\"status\":%d,\"code\":\"%s\","
	                 "\"us\":%llu}",
	                 ts, r->request_id, tenant, method, route, r->status, code,
	                 (unsigned long long)(http_now_us() - r->start_us));
	log_write_line(line, n, sizeof(line));
}

void
log_vmessage(const char *level, const char *rid, const char *fmt, va_list ap)
{
	char msg[1024], esc[1400], ts[40], line[LIMIT_LOG_LINE];
	int m = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (m < 0)
		return;
	/* libpq messages end in a newline */
	size_t len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		msg[--len] = '\0';
	log_escape(esc, sizeof(esc), msg);
	log_timestamp(ts, sizeof(ts));
	int n = rid != NULL ? snprintf(line, sizeof(line),
	                               "{\"t\":\"%s\",\"level\":\"%s\",\"rid\":\"%s\",\"pid\":%ld,"
	                               "\"msg\":\"%s\"}",
	                               ts, level, rid, (long)getpid(), esc)
	                    : snprintf(line, sizeof(line),
	                               "{\"t\":\"%s\",\"level\":\"%s\",\"pid\":%ld,\"msg\":\"%s\"}",
	                               ts, level, (long)getpid(), esc);
	log_write_line(line, n, sizeof(line));
}

void
log_error(const struct request *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmessage("error", r != NULL ? r->request_id : "", fmt, ap);
	va_end(ap);
}
