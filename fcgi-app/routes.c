/*
 * routes.c - the route table: every endpoint of the API in one place
 * (docs/openapi.yaml describes the same set; a test compares them).
 */
#include "db.h"
#include "json.h"
#include "router.h"
#include "tenant.h"

static struct stmt q_health = {"health", "SELECT 1", 0, 0};

/* GET /healthz: the transaction is open, so the database answered BEGIN;
 * one real statement proves it can execute too. */
static int
h_healthz(struct request *r)
{
	if (db_exec(r, &q_health, NULL) == NULL)
		return ERR_DB;
	json_object *o = json_new_object(r->arena);
	json_add_str(o, "status", "ok");
	json_add_str(o, "db", "ok");
	http_json(r, 200, o);
	return 0;
}

const struct route routes[] = {
        {"GET", "/healthz", SURFACE_HEALTH, BODY_NONE, NULL, h_healthz},
        {"GET", "/branding", SURFACE_PUBLIC, BODY_NONE, NULL, h_branding_get},
        {"GET", "/team/branding", SURFACE_TEAM, BODY_NONE, NULL, h_team_branding_get},
        {"PATCH", "/team/branding", SURFACE_TEAM, BODY_PATCH, branding_patch_fields,
         h_team_branding_patch},
        {"GET", "/team/domains", SURFACE_TEAM, BODY_NONE, NULL, h_team_domains_list},
        {"POST", "/team/domains", SURFACE_TEAM, BODY_CREATE, domain_create_fields,
         h_team_domains_create},
        {"DELETE", "/team/domains/{host}", SURFACE_TEAM, BODY_NONE, NULL, h_team_domains_delete},
};

const size_t routes_count = sizeof(routes) / sizeof(routes[0]);
