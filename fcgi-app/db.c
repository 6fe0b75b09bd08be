/*
 * db.c - connection, lazy prepared statements, transactions, reconnect.
 */
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "log.h"

/* Do not hammer a database that is down: between failed connection attempts
 * requests answer 503 at once for this long. */
#define DB_RETRY_US 200000u

static PGconn *conn;
static const char *conninfo;
static unsigned generation = 1;
static uint64_t last_connect_fail_us;
static char last_sqlstate[6];
static char last_constraint[64];
static bool last_lost;

void
db_init(const char *dsn)
{
	conninfo = dsn;
}

void
db_close(void)
{
	PQfinish(conn);
	conn = NULL;
}

static void
notice_quiet(void *arg, const PGresult *res)
{
	(void)arg;
	(void)res;
}

static int
connect_now(struct request *r)
{
	uint64_t now = http_now_us();
	if (last_connect_fail_us != 0 && now - last_connect_fail_us < DB_RETRY_US)
		return ERR_UNAVAILABLE;
	PQfinish(conn);
	/* earlier keywords are defaults the DSN may override */
	const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *const vals[] = {"2", "atrium-fcgi", conninfo, NULL};
	conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		log_error(r, "db connect failed: %s",
		          conn != NULL ? PQerrorMessage(conn) : "out of memory");
		PQfinish(conn);
		conn = NULL;
		last_connect_fail_us = now;
		return ERR_UNAVAILABLE;
	}
	PQsetNoticeReceiver(conn, notice_quiet, NULL);
	last_connect_fail_us = 0;
	generation++;
	return 0;
}

static void
remember_failure(const PGresult *res)
{
	const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *cn = res != NULL ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	snprintf(last_sqlstate, sizeof(last_sqlstate), "%s", st != NULL ? st : "");
	snprintf(last_constraint, sizeof(last_constraint), "%s", cn != NULL ? cn : "");
	last_lost = conn == NULL || PQstatus(conn) != CONNECTION_OK ||
	            strncmp(last_sqlstate, "08", 2) == 0 || strncmp(last_sqlstate, "57P", 3) == 0;
}

/*
 * Test builds: fail the request's Nth database call (statement or COMMIT) as
 * a server error would, so the drills can prove every handler ends in a
 * clean 5xx with nothing written.
 */
static bool
injected_fault(struct request *r, const char *what)
{
#ifdef ATRIUM_FAULTS
	if (r->fault_db > 0 && ++r->db_calls == r->fault_db) {
		snprintf(last_sqlstate, sizeof(last_sqlstate), "XX000");
		last_constraint[0] = '\0';
		last_lost = false;
		log_error(r, "injected fault at database call %d (%s)", r->db_calls, what);
		return true;
	}
#else
	(void)r;
	(void)what;
#endif
	return false;
}

static int
exec_simple(struct request *r, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok) {
		remember_failure(res);
		log_error(r, "%s failed: %s", sql, PQerrorMessage(conn));
	}
	PQclear(res);
	return ok ? 0 : ERR_DB;
}

/*
 * BEGIN and, when the tenant is already known, the tenant context in one
 * round trip (libpq pipeline mode): the common request costs BEGIN+context,
 * its statements, COMMIT.
 */
static int
begin_pipelined(struct request *r, const char *tenant_id)
{
	const char *params[1] = {tenant_id};
	int rc = ERR_DB;
	if (PQenterPipelineMode(conn) != 1)
		goto out;
	if (PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
	    PQsendQueryParams(conn, "SELECT set_config('app.tenant_id', $1, true)", 1, NULL, params,
	                      NULL, NULL, 0) != 1 ||
	    PQpipelineSync(conn) != 1)
		goto drain;
	rc = 0;
drain:
	/* two results (each followed by NULL), then the sync marker */
	for (int seen = 0; seen < 3;) {
		PGresult *res = PQgetResult(conn);
		if (res == NULL) {
			if (PQstatus(conn) != CONNECTION_OK) {
				rc = ERR_DB;
				break;
			}
			continue;
		}
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			if (rc == 0)
				log_error(r, "BEGIN (pipelined) failed: %s",
				          PQresultErrorMessage(res));
			remember_failure(res);
			rc = ERR_DB;
		}
		seen++;
		PQclear(res);
	}
out:
	if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF && PQexitPipelineMode(conn) != 1)
		rc = ERR_DB;
	if (rc != 0)
		remember_failure(NULL);
	return rc;
}

static int
begin_once(struct request *r, const char *tenant_id)
{
	return tenant_id != NULL ? begin_pipelined(r, tenant_id) : exec_simple(r, "BEGIN");
}

int
db_begin(struct request *r, const char *tenant_id)
{
	last_sqlstate[0] = '\0';
	last_lost = false;
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		if (connect_now(r) != 0) {
			last_lost = true;
			return ERR_UNAVAILABLE;
		}
	}
	if (begin_once(r, tenant_id) == 0)
		return 0;
	/* A connection that died while idle (database restarted) fails here
	 * first; nothing has happened yet, so reconnect and try once more. */
	if (connect_now(r) != 0 || begin_once(r, tenant_id) != 0) {
		last_lost = true;
		return ERR_UNAVAILABLE;
	}
	return 0;
}

int
db_commit(struct request *r)
{
	if (injected_fault(r, "COMMIT")) {
		db_rollback(r);
		return ERR_DB;
	}
	if (exec_simple(r, "COMMIT") != 0)
		return last_lost ? ERR_UNAVAILABLE : ERR_DB;
	return 0;
}

void
db_rollback(struct request *r)
{
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		return;
	if (PQtransactionStatus(conn) == PQTRANS_IDLE)
		return;
	PGresult *res = PQexec(conn, "ROLLBACK");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		log_error(r, "ROLLBACK failed: %s", PQerrorMessage(conn));
	PQclear(res);
}

static void
clear_result(void *p)
{
	PQclear(p);
}

PGresult *
db_exec(struct request *r, struct stmt *st, const char *const *params)
{
	if (conn == NULL) {
		last_lost = true;
		return NULL;
	}
	if (injected_fault(r, st->name))
		return NULL;
	if (st->prepared_gen != generation) {
		PGresult *pr = PQprepare(conn, st->name, st->sql, st->nparams, NULL);
		if (PQresultStatus(pr) != PGRES_COMMAND_OK) {
			remember_failure(pr);
			log_error(r, "prepare %s failed: %s", st->name, PQerrorMessage(conn));
			PQclear(pr);
			return NULL;
		}
		PQclear(pr);
		st->prepared_gen = generation;
	}
	PGresult *res = PQexecPrepared(conn, st->name, st->nparams, params, NULL, NULL, 0);
	if (res == NULL) {
		remember_failure(NULL);
		log_error(r, "%s: %s", st->name, PQerrorMessage(conn));
		return NULL;
	}
	arena_defer(r->arena, clear_result, res);
	ExecStatusType s = PQresultStatus(res);
	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
		remember_failure(res);
		/* expected conflicts are answered by the caller, not logged */
		if (strcmp(last_sqlstate, "23505") != 0 && strcmp(last_sqlstate, "23503") != 0)
			log_error(r, "%s: %s", st->name, PQresultErrorMessage(res));
		return NULL;
	}
	return res;
}

const char *
db_sqlstate(void)
{
	return last_sqlstate;
}

const char *
db_constraint(void)
{
	return last_constraint;
}

bool
db_lost(void)
{
	return last_lost;
}

int
db_fail(struct request *r)
{
	if (last_lost) {
		http_add_header(r, "Retry-After", "1");
		http_problem(r, 503, "unavailable", "the database is unavailable, retry shortly");
		return ERR_UNAVAILABLE;
	}
	if (strcmp(last_sqlstate, "23505") == 0) {
		http_problem(r, 409, "conflict", "a resource with these values already exists");
		return ERR_DB;
	}
	if (strcmp(last_sqlstate, "40001") == 0 || strcmp(last_sqlstate, "40P01") == 0) {
		http_add_header(r, "Retry-After", "1");
		http_problem(r, 503, "unavailable", "a concurrent change interfered, retry");
		return ERR_DB;
	}
	http_problem(r, 500, "internal", "an internal error occurred; quote the request id");
	return ERR_DB;
}

const char *
db_get(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}
