/*
 * db.h - the worker's one PostgreSQL connection.
 *
 * One persistent libpq connection per worker; statements are prepared once
 * per connection (lazily, on first use, so that a worker starts while the
 * database is down); each request runs in one transaction whose tenant
 * context is set with set_config(..., true) and so dies with it.  When the
 * connection is lost the request answers 503 and the next request
 * reconnects: no worker restart is needed.
 */
#ifndef ATRIUM_DB_H
#define ATRIUM_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "http.h"

/* A prepared statement: modules define these next to their handlers. */
struct stmt {
	const char *name;
	const char *sql;
	int nparams;
	unsigned prepared_gen; /* connection generation it was prepared on */
};

/* Remembers the conninfo; connects lazily. */
void db_init(const char *dsn);
/* Closes the connection (shutdown). */
void db_close(void);

/*
 * Starts the request's transaction, (re)connecting when needed; with
 * tenant_id it also sets app.tenant_id in the same round trip.  Returns 0,
 * or ERR_UNAVAILABLE when the database cannot be reached.
 */
int db_begin(struct request *r, const char *tenant_id);
/* Commits; returns 0 or ERR_DB / ERR_UNAVAILABLE. */
int db_commit(struct request *r);
/* Rolls back if a transaction is open; never fails loudly. */
void db_rollback(struct request *r);

/*
 * Runs stmt with text parameters (NULL = SQL NULL).  The result is owned by
 * r->arena.  Returns NULL on failure, after which db_fail() answers.
 */
PGresult *db_exec(struct request *r, struct stmt *st, const char *const *params);

/* Sets the problem answer for the last failure (SQLSTATE mapped once here:
 * 23505 -> 409, connection loss -> 503, anything else -> 500) and returns
 * ERR_DB or ERR_UNAVAILABLE. */
int db_fail(struct request *r);
/* SQLSTATE of the last failure ("" when none). */
const char *db_sqlstate(void);
/* Constraint named by the last failure ("" when none). */
const char *db_constraint(void);
/* True when the last failure lost the connection. */
bool db_lost(void);

/* Convenience: value of row/col or NULL when SQL NULL. */
const char *db_get(const PGresult *res, int row, int col);

#endif
