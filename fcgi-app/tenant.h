/*
 * tenant.h - Host -> tenant, console API keys, branding and domains.
 */
#ifndef ATRIUM_TENANT_H
#define ATRIUM_TENANT_H

#include "http.h"

/*
 * Resolves r->host to a tenant (per-worker cache with a short TTL, then the
 * database) inside the request's transaction and sets app.tenant_id.  On the
 * deployment's API host no tenant is set and r->api_host is true.  Returns
 * 0, ERR_NOT_FOUND (answer: 404 tenant_not_found) or a database error.
 */
int tenant_resolve(struct request *r);

/*
 * Before the transaction: fills r->tenant from the per-worker cache (or
 * marks the API host) without touching the database.  Returns the tenant id
 * to set with BEGIN, or NULL when tenant_resolve() must look it up.
 */
const char *tenant_from_cache(struct request *r);

/*
 * Authenticates a team (console) request: x-api-key + x-client-code (or the
 * x-erix-* aliases).  The code must name the Host's tenant (on the API host
 * it selects the tenant); the key is looked up by its prefix and compared by
 * SHA-256 in constant time; revoked keys are refused.  Every failure is the
 * same 401.  Returns 0 or a negative code with the answer set.
 */
int tenant_auth_team(struct request *r);

/* Forgets this worker's cached entry for host (after a domain delete). */
void tenant_cache_forget(const char *host);

int h_branding_get(struct request *r);
int h_team_branding_get(struct request *r);
int h_team_branding_patch(struct request *r);
int h_team_domains_list(struct request *r);
int h_team_domains_create(struct request *r);
int h_team_domains_delete(struct request *r);

extern const struct field branding_patch_fields[];
extern const struct field domain_create_fields[];

#endif
