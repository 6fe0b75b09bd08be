/*
 * router.c - segment-wise matching of the route table.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "limits.h"
#include "router.h"

bool
router_is_uuid(const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

/* Splits p into at most max segments; returns the count or -1 when the
 * path has more, or an empty segment (a doubled or trailing slash). */
static int
split(struct str p, struct str *seg, int max)
{
	int n = 0;
	size_t i = 0;
	if (p.n == 0)
		return 0;
	if (p.p[0] != '/')
		return -1;
	i = 1;
	while (i <= p.n) {
		size_t start = i;
		while (i < p.n && p.p[i] != '/')
			i++;
		if (i == start || n == max)
			return -1;
		seg[n++] = (struct str){p.p + start, i - start};
		i++;
	}
	return n;
}

static bool
is_id_param(const char *name, size_t n)
{
	return (n == 2 && memcmp(name, "id", 2) == 0) ||
	       (n > 3 && memcmp(name + n - 3, "_id", 3) == 0);
}

/* Matches one pattern against the path segments. */
static bool
match_pattern(const char *pattern, const struct str *seg, int nseg, struct str *params,
              int *nparams)
{
	struct str pseg[LIMIT_PATH_SEGMENTS];
	int np = split((struct str){pattern, strlen(pattern)}, pseg, LIMIT_PATH_SEGMENTS);
	if (np != nseg)
		return false;
	int k = 0;
	for (int i = 0; i < np; i++) {
		struct str ps = pseg[i];
		if (ps.n >= 2 && ps.p[0] == '{' && ps.p[ps.n - 1] == '}') {
			if (is_id_param(ps.p + 1, ps.n - 2) && !router_is_uuid(seg[i].p, seg[i].n))
				return false;
			if (k == LIMIT_ROUTE_PARAMS)
				return false;
			params[k++] = seg[i];
			continue;
		}
		if (ps.n != seg[i].n || memcmp(ps.p, seg[i].p, ps.n) != 0)
			return false;
	}
	*nparams = k;
	return true;
}

enum route_result
router_match(const struct route *table, size_t n, const char *method, struct str path,
             const struct route **out, struct str *params, int *nparams, char *allow,
             size_t allow_len)
{
	static const char base[] = API_BASE;
	size_t bl = sizeof(base) - 1;
	struct str seg[LIMIT_PATH_SEGMENTS];
	if (allow_len > 0)
		allow[0] = '\0';
	if (path.n < bl || memcmp(path.p, base, bl) != 0)
		return ROUTE_NO_PATH;
	struct str rest = {path.p + bl, path.n - bl};
	int nseg = split(rest, seg, LIMIT_PATH_SEGMENTS);
	if (nseg <= 0)
		return ROUTE_NO_PATH;
	bool path_found = false;
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		struct str tmp[LIMIT_ROUTE_PARAMS];
		int k = 0;
		if (!match_pattern(table[i].pattern, seg, nseg, tmp, &k))
			continue;
		path_found = true;
		/* HEAD is answered like GET without the body (http_send) */
		if (strcmp(table[i].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(table[i].method, "GET") == 0)) {
			*out = &table[i];
			memcpy(params, tmp, sizeof(tmp));
			*nparams = k;
			return ROUTE_FOUND;
		}
		/* collect Allow, once per method */
		if (allow_len > 0 && strstr(allow, table[i].method) == NULL) {
			int w = snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "",
			                 table[i].method);
			if (w > 0 && (size_t)w < allow_len - used)
				used += (size_t)w;
		}
	}
	return path_found ? ROUTE_NO_METHOD : ROUTE_NO_PATH;
}
