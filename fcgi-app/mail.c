/*
 * mail.c - building RFC 5322 / MIME messages and sending them over SMTP.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common.h"
#include "mail.h"

/* RFC 5322 recommends lines of at most 78 characters; we stay below. */
#define MAIL_LINE 76
/* Text that fits this many columns stays readable instead of encoded. */
#define MAIL_PLAIN_PHRASE_MAX 60

static bool
atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

bool
mail_address_valid(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t n = strlen(addr);
	if (at == NULL || n > MAIL_ADDRESS_MAX)
		return false;
	size_t local = (size_t)(at - addr);
	if (local == 0 || local > 64 || addr[0] == '.' || at[-1] == '.')
		return false;
	for (size_t i = 0; i < local; i++) {
		unsigned char c = (unsigned char)addr[i];
		if (c == '.') {
			if (addr[i + 1] == '.')
				return false;
		} else if (!atext(c)) {
			return false;
		}
	}
	/* the domain: labels of letters, digits and inner hyphens */
	const char *d = at + 1;
	size_t label = 0;
	if (*d == '\0')
		return false;
	for (; *d != '\0'; d++) {
		unsigned char c = (unsigned char)*d;
		if (c == '.') {
			if (label == 0 || d[-1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 && d[-1] != '-';
}

bool
mail_list_url_valid(const char *url)
{
	size_t skip;
	if (strncmp(url, "https://", 8) == 0)
		skip = 8;
	else if (strncmp(url, "http://", 7) == 0)
		skip = 7;
	else
		return false;
	size_t n = strlen(url);
	if (n == skip || n > MAIL_LIST_URL_MAX)
		return false;
	for (size_t i = skip; i < n; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c <= 0x20 || c >= 0x7f || strchr("<>\"\\^`{|},", c) != NULL)
			return false;
	}
	return true;
}

int
mail_starttls_parse(const char *s, enum mail_starttls *out)
{
	if (strcmp(s, "off") == 0)
		*out = MAIL_STARTTLS_OFF;
	else if (strcmp(s, "try") == 0)
		*out = MAIL_STARTTLS_TRY;
	else if (strcmp(s, "required") == 0)
		*out = MAIL_STARTTLS_REQUIRED;
	else
		return ERR_INVALID;
	return 0;
}

/* ------------------------------------------------------------ encodings */

void
mail_put_qp(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;
	for (const char *p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '\r' && p[1] == '\n')
			continue; /* the \n writes the line break */
		if (c == '\n') {
			buf_append(b, "\r\n", 2);
			col = 0;
			continue;
		}
		/* Whitespace before a line break would be stripped in transit;
		 * "From " starting a line gets mangled by mbox-minded relays. */
		bool eol = p[1] == '\0' || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');
		bool from = col == 0 && strncmp(p, "From ", 5) == 0;
		bool literal = !from && ((c >= 33 && c <= 126 && c != '=') ||
		                         ((c == ' ' || c == '\t') && !eol));
		size_t w = literal ? 1 : 3;
		/* a soft break ("=" at the end) keeps lines at MAIL_LINE */
		if (col + w > MAIL_LINE - 1) {
			buf_append(b, "=\r\n", 3);
			col = 0;
		}
		if (literal) {
			buf_putc(b, (char)c);
		} else {
			char e[3] = {'=', hex[c >> 4], hex[c & 15]};
			buf_append(b, e, 3);
		}
		col += w;
	}
}

/*
 * RFC 2047 "B" encoded-words, each at most MAIL_LINE columns with the fold
 * before it, never splitting a UTF-8 sequence (a decoder may refuse a word
 * that does not hold whole characters).
 */
static void
put_encoded_words(struct buf *b, const char *s, size_t col)
{
	static const char pre[] = "=?UTF-8?B?", post[] = "?=";
	size_t n = strlen(s), i = 0;
	while (i < n) {
		size_t room = MAIL_LINE - (sizeof(pre) - 1) - (sizeof(post) - 1);
		room = col < room ? room - col : 4;
		size_t take = room / 4 * 3;
		if (take == 0)
			take = 3;
		if (take > n - i)
			take = n - i;
		while (take > 1 && i + take < n && ((unsigned char)s[i + take] & 0xc0) == 0x80)
			take--;
		unsigned char enc[4 * 64 / 3 + 8];
		if (take > 63)
			take = 63;
		int len = EVP_EncodeBlock(enc, (const unsigned char *)s + i, (int)take);
		if (i > 0)
			buf_append(b, "\r\n ", 3);
		buf_append(b, pre, sizeof(pre) - 1);
		buf_append(b, enc, (size_t)len);
		buf_append(b, post, sizeof(post) - 1);
		i += take;
		col = 1;
	}
}

/* True when every byte is printable ASCII. */
static bool
printable_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

void
mail_put_phrase(struct buf *b, const char *s, size_t col)
{
	if (printable_ascii(s) && strlen(s) <= MAIL_PLAIN_PHRASE_MAX) {
		/* a quoted-string: any special (",", "<", "@"...) is harmless in it */
		buf_putc(b, '"');
		for (; *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				buf_putc(b, '\\');
			buf_putc(b, *s);
		}
		buf_putc(b, '"');
		return;
	}
	put_encoded_words(b, s, col);
}

void
mail_put_unstructured(struct buf *b, const char *s, size_t col)
{
	/* "=?" in raw text could be taken for the start of an encoded-word */
	if (printable_ascii(s) && col + strlen(s) <= MAIL_LINE && strstr(s, "=?") == NULL) {
		buf_puts(b, s);
		return;
	}
	put_encoded_words(b, s, col);
}

/* ------------------------------------------------------------ message */

static void
put_date(struct buf *b, time_t now)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	gmtime_r(&now, &tm);
	/* RFC 5322 date-time, in English whatever the locale */
	buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
	           tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	           tm.tm_sec);
}

static void
random_hex(char *out, size_t bytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[32];
	if (bytes > sizeof(r))
		bytes = sizeof(r);
	if (RAND_bytes(r, (int)bytes) != 1) {
		/* a Message-ID or a boundary need to be unique, not secret */
		for (size_t i = 0; i < bytes; i++)
			r[i] = (unsigned char)rand();
	}
	for (size_t i = 0; i < bytes; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[2 * bytes] = '\0';
}

/* Offset of the current line's first byte in b. */
static size_t
line_start(const struct buf *b)
{
	size_t i = b->len;
	while (i > 0 && b->p[i - 1] != '\n')
		i--;
	return i;
}

static void
put_part(struct buf *b, const char *boundary, const char *type, const char *body)
{
	buf_printf(b,
	           "--%s\r\n"
	           "Content-Type: %s; charset=utf-8\r\n"
	           "Content-Transfer-Encoding: quoted-printable\r\n"
	           "\r\n",
	           boundary, type);
	mail_put_qp(b, body);
	/* the CRLF before the next delimiter belongs to the delimiter */
	buf_append(b, "\r\n", 2);
}

/* A copy of header text with control characters as spaces: even inside
 * encoded-words a header must not smuggle a line break to the reader. */
static const char *
header_text(struct arena *a, const char *s)
{
	char *d = arena_strdup(a, s);
	for (char *p = d; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return d;
}

int
mail_build(struct arena *a, const struct mail_message *m, time_t now, char **out, size_t *len)
{
	if (!mail_address_valid(m->from_addr) || !mail_address_valid(m->to_addr) ||
	    (m->reply_to != NULL && !mail_address_valid(m->reply_to)) ||
	    (m->list_unsubscribe != NULL && !mail_list_url_valid(m->list_unsubscribe)))
		return ERR_INVALID;
	char boundary[16 + 2 * 16 + 1], id[2 * 16 + 1];
	/* "=_" never occurs in quoted-printable text: the boundary cannot */
	memcpy(boundary, "=_atrium_", 9);
	random_hex(boundary + 9, 16);
	random_hex(id, 16);

	struct buf b;
	buf_init(&b, a, 2048 + 3 * (strlen(m->text) + strlen(m->html)));
	put_date(&b, now);
	buf_puts(&b, "From: ");
	if (m->from_name != NULL && m->from_name[0] != '\0') {
		mail_put_phrase(&b, header_text(a, m->from_name), 6);
		/* fold before the address rather than run past MAIL_LINE */
		size_t col = b.len - line_start(&b);
		buf_puts(&b, col + 3 + strlen(m->from_addr) > MAIL_LINE ? "\r\n " : " ");
	}
	buf_printf(&b, "<%s>\r\n", m->from_addr);
	if (m->reply_to != NULL)
		buf_printf(&b, "Reply-To: <%s>\r\n", m->reply_to);
	buf_printf(&b, "To: <%s>\r\n", m->to_addr);
	buf_puts(&b, "Subject: ");
	mail_put_unstructured(&b, header_text(a, m->subject), 9);
	buf_puts(&b, "\r\n");
	if (m->list_unsubscribe != NULL)
		/* RFC 8058: a POST of List-Unsubscribe=One-Click to the URL
		 * unsubscribes, no confirmation page (which a GET may show) */
		buf_printf(&b,
		           "List-Unsubscribe: <%s>\r\n"
		           "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
		           m->list_unsubscribe);
	buf_printf(&b,
	           "Message-ID: <%s@%s>\r\n"
	           "MIME-Version: 1.0\r\n"
	           /* RFC 3834: no vacation replies to a machine */
	           "Auto-Submitted: auto-generated\r\n"
	           "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n"
	           "\r\n"
	           "This is a multi-part message in MIME format.\r\n"
	           "\r\n",
	           id, strrchr(m->from_addr, '@') + 1, boundary);
	put_part(&b, boundary, "text/plain", m->text);
	put_part(&b, boundary, "text/html", m->html);
	buf_printf(&b, "--%s--\r\n", boundary);
	*out = b.p;
	*len = b.len;
	return 0;
}

/* ------------------------------------------------------------ SMTP */

struct upload {
	const char *p;
	size_t len;
	size_t off;
};

static size_t
read_cb(char *dst, size_t size, size_t nmemb, void *userdata)
{
	struct upload *u = userdata;
	size_t room = size * nmemb, left = u->len - u->off;
	size_t n = left < room ? left : room;
	memcpy(dst, u->p + u->off, n);
	u->off += n;
	return n;
}

/* The server's last error reply (4xx/5xx), for last_error: it says why
 * better than curl's "RCPT failed: 550" (and curl's QUIT afterwards gets a
 * "221 Bye" that must not hide it).  Only what the server sent
 * (CURLINFO_HEADER_IN) is looked at: what we send includes AUTH credentials
 * and the message. */
struct reply {
	char line[MAIL_ERROR_MAX - 16];
};

static int
debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *userdata)
{
	struct reply *r = userdata;
	(void)h;
	if (type != CURLINFO_HEADER_IN || size < 3)
		return 0;
	/* one or more reply lines; keep the last non-empty one, printable only */
	size_t end = size;
	while (end > 0 && (data[end - 1] == '\r' || data[end - 1] == '\n'))
		end--;
	size_t start = end;
	while (start > 0 && data[start - 1] != '\n')
		start--;
	size_t n = end - start, o = 0;
	if (n < 3 || (data[start] != '4' && data[start] != '5'))
		return 0;
	/* printable ASCII only: it goes into a log line and a text column */
	for (size_t i = 0; i < n && o + 1 < sizeof(r->line); i++) {
		unsigned char c = (unsigned char)data[start + i];
		r->line[o++] = c < 0x20 || c > 0x7e ? '?' : (char)c;
	}
	r->line[o] = '\0';
	return 0;
}

/*
 * Which failures are the message's fault.  A 5xx answer to MAIL, RCPT or
 * DATA is final for this message (RFC 5321 4.2.1).  Everything else is
 * retried: no answer, timeouts, 4xx, and a 5xx to the greeting, EHLO,
 * STARTTLS or AUTH, which says the server or our configuration is wrong,
 * not this message (fix it and the rows still go out).
 */
static enum mail_status
classify(CURLcode rc, long code)
{
	if (rc == CURLE_OK)
		return MAIL_SENT;
	if (code < 500 || code > 599)
		return MAIL_TEMPORARY;
	switch (rc) {
	case CURLE_LOGIN_DENIED:
	case CURLE_USE_SSL_FAILED:
	case CURLE_REMOTE_ACCESS_DENIED:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		return MAIL_TEMPORARY;
	default:
		return MAIL_PERMANENT;
	}
}

void
mail_send(const struct mail_server *s, const char *from_addr, const char *to_addr, const char *msg,
          size_t len, struct mail_result *res)
{
	CURL *h = NULL;
	struct curl_slist *rcpt = NULL;
	char from[MAIL_ADDRESS_MAX + 3], to[MAIL_ADDRESS_MAX + 3];
	char errbuf[CURL_ERROR_SIZE] = "";
	struct reply last = {.line = ""};
	struct upload up = {.p = msg, .len = len, .off = 0};

	memset(res, 0, sizeof(*res));
	res->status = MAIL_TEMPORARY;
	int nf = snprintf(from, sizeof(from), "<%s>", from_addr);
	int nt = snprintf(to, sizeof(to), "<%s>", to_addr);
	if (nf < 0 || (size_t)nf >= sizeof(from) || nt < 0 || (size_t)nt >= sizeof(to)) {
		res->status = MAIL_PERMANENT;
		snprintf(res->error, sizeof(res->error), "address too long");
		return;
	}
	if ((h = curl_easy_init()) == NULL || (rcpt = curl_slist_append(NULL, to)) == NULL) {
		snprintf(res->error, sizeof(res->error), "out of memory (curl)");
		goto out;
	}
	static const long use_ssl[] = {
	        [MAIL_STARTTLS_OFF] = CURLUSESSL_NONE,
	        [MAIL_STARTTLS_TRY] = CURLUSESSL_TRY,
	        [MAIL_STARTTLS_REQUIRED] = CURLUSESSL_ALL,
	};
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(h, opt, val);                                        \
	} while (0)
	SET(CURLOPT_URL, s->url);
	/* nothing but SMTP, whatever the URL says, and no redirects anywhere */
	SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SET(CURLOPT_MAIL_FROM, from);
	SET(CURLOPT_MAIL_RCPT, rcpt);
	SET(CURLOPT_UPLOAD, 1L);
	SET(CURLOPT_READFUNCTION, read_cb);
	SET(CURLOPT_READDATA, &up);
	SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	SET(CURLOPT_USE_SSL, use_ssl[s->starttls]);
	/* signals belong to the daemon: SIGTERM must not abort a transfer */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT, s->connect_timeout_s);
	SET(CURLOPT_TIMEOUT, s->timeout_s);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_DEBUGFUNCTION, debug_cb);
	SET(CURLOPT_DEBUGDATA, &last);
	/* VERBOSE only routes the protocol to debug_cb; nothing is printed */
	SET(CURLOPT_VERBOSE, 1L);
	if (s->ca_file != NULL)
		SET(CURLOPT_CAINFO, s->ca_file);
	if (s->user != NULL) {
		SET(CURLOPT_USERNAME, s->user);
		SET(CURLOPT_PASSWORD, s->password != NULL ? s->password : "");
	}
#undef SET
	if (rc != CURLE_OK) {
		snprintf(res->error, sizeof(res->error), "curl setup: %s", curl_easy_strerror(rc));
		goto out;
	}
	rc = curl_easy_perform(h);
	long code = 0;
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
		code = 0;
	res->smtp_code = code;
	res->status = classify(rc, code);
	if (res->status == MAIL_SENT)
		goto out;
	char code_s[8];
	snprintf(code_s, sizeof(code_s), "%03ld", code);
	if (code >= 400 && strncmp(last.line, code_s, 3) == 0)
		snprintf(res->error, sizeof(res->error), "smtp %s", last.line);
	else
		snprintf(res->error, sizeof(res->error), "smtp: %.200s",
		         errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
out:
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(h);
}
