#!/usr/bin/perl
# Migrations and the database's own wall: re-running migrate is a no-op,
# every table has row-level security enabled and forced, the application
# role owns nothing and cannot bypass RLS, and sees nothing without a tenant.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;

my $t = new_tenant();
my $u = new_tenant();

my $out = `@{[repo_root()]}/scripts/migrate 2>&1`;
is($? >> 8, 0, 'migrate re-run succeeds') or diag $out;
unlike($out, qr/applied\s+\d{3}_/i, 'and applies nothing') or diag $out;
my $versions = psql_admin('SELECT string_agg(version, \',\' ORDER BY version) FROM schema_migrations');
like($versions, qr/^001/, "recorded: $versions");

my $tables = psql_admin(q{SELECT string_agg(c.relname || ':' || c.relrowsecurity || c.relforcerowsecurity, ' ' ORDER BY c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'schema_migrations'});
ok(length $tables, "tables: $tables");
for my $pair (split / /, $tables) {
    my ($name, $flags) = split /:/, $pair;
    is($flags, 'truetrue', "$name: RLS enabled and forced");
}

my $role = psql_admin(q{SELECT rolsuper || ',' || rolbypassrls FROM pg_roles WHERE rolname = 'atrium_app'});
is($role, 'false,false', 'application role: no superuser, no BYPASSRLS');
my $owned = psql_admin(q{SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND r.rolname = 'atrium_app'});
is($owned, '0', 'application role owns no table');

# as the application role
sub app_sql {
    my ($sql) = @_;
    local $ENV{PGPASSFILE};
    open(my $fh, '-|', 'psql', env_of('ATRIUM_DB_DSN'), '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', $sql)
        or die;
    local $/;
    my $o = <$fh> // '';
    close $fh;
    $o =~ s/\s+\z//;
    return $o;
}
is(app_sql('SELECT count(*) FROM tenants'), '0', 'no tenant context: no tenants visible');
is(app_sql('SELECT count(*) FROM api_keys'), '0', 'no tenant context: no keys visible');
is(app_sql('SELECT count(*) FROM tenant_domains'), '0', 'no tenant context: no hosts visible');
like(app_sql("BEGIN; SELECT set_config('app.tenant_id', '$t->{tenant_id}', true); SELECT count(*) FROM tenant_domains; COMMIT;"),
    qr/^1$/m, 'own tenant: its host only');
like(app_sql("BEGIN; SELECT set_config('app.tenant_id', '$t->{tenant_id}', true); SELECT count(*) FROM tenants; COMMIT;"),
    qr/^1$/m, 'own tenant row only');
like(app_sql("BEGIN; SELECT set_config('app.host', '$u->{host}', true); SELECT count(*) FROM tenant_domains; COMMIT;"),
    qr/^1$/m, 'a host lookup reveals exactly the named host');
# writing into another tenant is refused by the policy
my $err = `psql '@{[env_of('ATRIUM_DB_DSN')]}' -XAtq -v ON_ERROR_STOP=1 -c "BEGIN; SELECT set_config('app.tenant_id', '$t->{tenant_id}', true); INSERT INTO tenant_domains (tenant_id, host) VALUES ('$u->{tenant_id}', 'sneaky.example.com'); COMMIT;" 2>&1`;
like($err, qr/row-level security/, 'insert for another tenant violates RLS');

done_testing();
