/*
 * mail.h - RFC 5322 messages and their delivery over SMTP with libcurl.
 *
 * mail_build() writes a multipart/alternative message (text/plain and
 * text/html, UTF-8, quoted-printable, every line at most 78 bytes) with
 * RFC 2047 encoded-words wherever a header carries non-ASCII text.
 * mail_send() hands it to one SMTP server and says whether a failure is
 * worth retrying.  Neither ever logs or returns the message body.
 */
#ifndef ATRIUM_MAIL_H
#define ATRIUM_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "arena.h"

#define MAIL_ADDRESS_MAX 254 /* RFC 5321 path limit, as LIMIT_EMAIL_CHARS */
#define MAIL_ERROR_MAX   256 /* bytes of mail_result.error */
/* bytes of a List-Unsubscribe URL: with "List-Unsubscribe: <>" the header
 * line stays well below RFC 5322's hard limit of 998 */
#define MAIL_LIST_URL_MAX 900

struct mail_message {
	const char *from_name; /* display name, UTF-8; NULL or "" for none */
	const char *from_addr; /* must pass mail_address_valid() */
	const char *reply_to;  /* NULL for none; must pass mail_address_valid() */
	const char *to_addr;   /* must pass mail_address_valid() */
	const char *subject;   /* UTF-8, one line */
	const char *text;      /* the text/plain part, UTF-8 */
	const char *html;      /* the text/html part, UTF-8 */
	/* NULL, or the one-click unsubscribe URL (RFC 8058): written as
	 * List-Unsubscribe: <URL> and List-Unsubscribe-Post; must pass
	 * mail_list_url_valid() */
	const char *list_unsubscribe;
};

/*
 * Writes the message (CRLF line ends) to *out, arena memory, *len bytes;
 * now is the Date.  Returns 0, or ERR_INVALID when an address does not
 * pass mail_address_valid() or list_unsubscribe not mail_list_url_valid().
 */
int mail_build(struct arena *a, const struct mail_message *m, time_t now, char **out, size_t *len);

/*
 * True for an ASCII addr-spec we are willing to put into a header and an
 * SMTP envelope: a dot-atom local part (at most 64 bytes), '@', a host name
 * of letters, digits, '-' and dots; at most MAIL_ADDRESS_MAX bytes in all.
 * Quoted local parts and address literals are refused: nothing of ours
 * writes them, and no CR, LF, space, '<' or '>' can slip through.
 */
bool mail_address_valid(const char *addr);

/*
 * True for an http(s) URL that can stand between the angle brackets of a
 * List-Unsubscribe header as it is: at most MAIL_LIST_URL_MAX bytes of
 * printable ASCII without space, '<', '>', '"', ',' and the other
 * characters RFC 3986 never leaves unencoded.  It is never folded (RFC 2369
 * would let a reader ignore the fold's whitespace, but not every reader
 * does) and never encoded (RFC 2047 does not apply to URLs).
 */
bool mail_list_url_valid(const char *url);

enum mail_starttls {
	MAIL_STARTTLS_OFF,      /* plain SMTP (a local catcher) */
	MAIL_STARTTLS_TRY,      /* STARTTLS when the server offers it */
	MAIL_STARTTLS_REQUIRED, /* fail rather than send in the clear */
};

struct mail_server {
	const char *url;      /* smtp://host:port[/ehlo-name] or smtps://... */
	const char *user;     /* NULL: no AUTH */
	const char *password; /* with user */
	enum mail_starttls starttls;
	const char *ca_file; /* PEM bundle to verify the server with; NULL: system CAs */
	long connect_timeout_s;
	long timeout_s; /* the whole transaction */
};

enum mail_status {
	MAIL_SENT,      /* the server accepted the message (250 after DATA) */
	MAIL_TEMPORARY, /* try again later: no answer, 4xx, TLS or AUTH trouble */
	MAIL_PERMANENT, /* the server refused this message for good (5xx) */
};

struct mail_result {
	enum mail_status status;
	long smtp_code;             /* the last SMTP reply code, 0 when none */
	char error[MAIL_ERROR_MAX]; /* "" when sent; the server's reply or curl's error */
};

/*
 * Sends msg (len bytes, from mail_build) from from_addr to to_addr through
 * the server s.  Always fills *res.  Needs curl_global_init() first.
 */
void mail_send(const struct mail_server *s, const char *from_addr, const char *to_addr,
               const char *msg, size_t len, struct mail_result *res);

/* Parses off|try|required; returns 0 or ERR_INVALID. */
int mail_starttls_parse(const char *s, enum mail_starttls *out);

/* The pieces of mail_build(), for the unit tests. */
/* Appends s quoted-printable encoded (LF or CRLF line ends become CRLF). */
void mail_put_qp(struct buf *b, const char *s);
/* Appends a display name as a quoted-string or RFC 2047 encoded-words;
 * col is the column the text starts at (for folding). */
void mail_put_phrase(struct buf *b, const char *s, size_t col);
/* Appends unstructured header text (Subject) raw or as encoded-words. */
void mail_put_unstructured(struct buf *b, const char *s, size_t col);

#endif
