/*
 * main.c - atrium-fcgi: the FastCGI accept loop.
 *
 * spawn-fcgi hands the listening socket over as file descriptor 0 and
 * multiwatch restarts a worker that dies.  SIGTERM lets the request in
 * flight finish, then the worker exits.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "app.h"
#include "arena.h"
#include "config.h"
#include "db.h"
#include "events.h"
#include "http.h"
#include "log.h"
#include "password.h"
#include "token.h"
#include "unsub.h"

static volatile sig_atomic_t stopping;

static void
on_term(int sig)
{
	(void)sig;
	stopping = 1;
	/* makes a blocked accept() give up instead of retrying on EINTR */
	FCGX_ShutdownPending();
}

static void
install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: accept() must return */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int
main(void)
{
	FCGX_Request fr;
	install_signals();
	if (config_load() != 0 || token_init() != 0 || password_init() != 0)
		return 2;
	/* without the key, /unsubscribe refuses every token */
	const char *unsub_key = getenv("ATRIUM_UNSUBSCRIBE_KEY_FILE");
	if (unsub_key != NULL && *unsub_key != '\0' && unsub_load_key(unsub_key) != 0)
		return 2;
	if (FCGX_Init() != 0) {
		fputs("atrium: FCGX_Init failed\n", stderr);
		return 1;
	}
	if (FCGX_InitRequest(&fr, 0, 0) != 0) {
		fputs("atrium: FCGX_InitRequest failed\n", stderr);
		return 1;
	}
	db_init(config.db_dsn);
	struct arena *arena = arena_new(64 * 1024);
	while (!stopping && FCGX_Accept_r(&fr) >= 0) {
		struct request r;
		if (http_request_init(&r, arena, fr.in, fr.out, fr.envp) == 0)
			app_handle(&r);
		http_send(&r);
		/* real-time events of the committed change: after the answer, so
		 * the writer never waits for the fan-out */
		FCGX_FFlush(fr.out);
		events_flush(&r);
		log_access(&r);
		FCGX_Finish_r(&fr);
		arena_reset(arena);
	}
	FCGX_Free(&fr, 1);
	arena_free(arena);
	db_close();
	return 0;
}
