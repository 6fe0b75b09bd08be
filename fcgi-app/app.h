/*
 * app.h - one request from parsed parameters to a complete answer:
 * route -> transaction -> tenant -> credentials -> body -> handler ->
 * commit or roll back.
 */
#ifndef ATRIUM_APP_H
#define ATRIUM_APP_H

#include "http.h"

/* Fills in r's answer; never fails (errors become problem answers). */
void app_handle(struct request *r);

#endif
