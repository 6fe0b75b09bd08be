#!/usr/bin/perl
# Tenant hosts: list with keyset pagination, add, remove; a host belongs to
# one tenant; the last host cannot be removed; a removed host stops serving.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;

my $a = new_tenant();
my $b = new_tenant();
my $base = env_of('ATRIUM_BASE_DOMAIN');

my $r = team_api($a, GET => '/team/domains');
is($r->{status}, 200, 'list');
is_deeply([map { $_->{host} } @{ $r->{json}{data} }], [$a->{host}], 'the creation host');
is($r->{json}{next_cursor}, undef, 'single page');
like($r->{json}{data}[0]{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'RFC 3339 UTC time');

my @extra = map { "x$_-$a->{code}.$base" } 1 .. 5;
for my $h (@extra) {
    $r = team_api($a, POST => '/team/domains', json => { host => $h });
    is($r->{status}, 201, "add $h");
    is($r->{json}{host}, $h, 'answer names the host');
}
$r = api(GET => '/branding', host => $extra[0]);
is($r->{status}, 200, 'new host serves the tenant');
is($r->{json}{tenant_code}, $a->{code}, 'as tenant A');

# keyset pagination, stable when rows are added between pages
my @seen;
my $cursor;
my $pages = 0;
do {
    my $q = '/team/domains?limit=2' . (defined $cursor ? "&cursor=$cursor" : '');
    $r = team_api($a, GET => $q);
    is($r->{status}, 200, "page $pages");
    push @seen, map { $_->{host} } @{ $r->{json}{data} };
    $cursor = $r->{json}{next_cursor};
    if ($pages++ == 0) {
        # inserted before the cursor position: must not shift later pages
        team_api($a, POST => '/team/domains', json => { host => "a0-$a->{code}.$base" });
    }
} while (defined $cursor && $pages < 10);
my @want = sort ($a->{host}, @extra);
my %seen = map { $_ => 1 } @seen;
is(scalar(@seen), scalar(keys %seen), 'no host twice across pages');
ok(!(grep { !$seen{$_} } @want), 'every original host seen once');

# conflicts and validation
$r = team_api($b, POST => '/team/domains', json => { host => $extra[1] });
is($r->{status}, 409, "B cannot take A's host");
is($r->{json}{code}, 'conflict', 'conflict');
$r = team_api($a, POST => '/team/domains', json => { host => $extra[1] });
is($r->{status}, 409, 'duplicate within the tenant');
for my $bad ('UPPER.example.com', 'nodots', '-bad.example.com', 'a..b.com', 'x' x 254, 'sp ace.com') {
    $r = team_api($a, POST => '/team/domains', json => { host => $bad });
    is($r->{status}, 422, 'invalid host ' . substr($bad, 0, 20));
    is($r->{json}{errors}[0]{field}, 'host', 'names the field');
}
$r = team_api($a, POST => '/team/domains', json => {});
is($r->{json}{errors}[0]{code}, 'required', 'host required');
$r = team_api($a, POST => '/team/domains', json => { host => "y.$base", created_at => 'x' });
is($r->{status}, 422, 'read-only field refused');

# B never sees A's hosts and cannot delete them
$r = team_api($b, GET => '/team/domains');
is_deeply([map { $_->{host} } @{ $r->{json}{data} }], [$b->{host}], "B lists only its host");
$r = team_api($b, DELETE => "/team/domains/$extra[2]");
is($r->{status}, 404, "B deleting A's host: 404");
is($r->{json}{code}, 'not_found', 'not_found');
is(api(GET => '/branding', host => $extra[2])->{status}, 200, "A's host still serves");

# delete
$r = team_api($a, DELETE => "/team/domains/$extra[2]");
is($r->{status}, 204, 'delete');
is($r->{content} // '', '', 'no body');
$r = team_api($a, DELETE => "/team/domains/$extra[2]");
is($r->{status}, 404, 'second delete: 404');
# each worker caches Host -> tenant for ATRIUM_TENANT_CACHE_TTL seconds:
# once that has passed, no worker may serve the removed host
select(undef, undef, undef, (env_of('ATRIUM_TENANT_CACHE_TTL') // 5) + 0.3);
my @after = map { api(GET => '/branding', host => $extra[2]) } 1 .. 12;
is(scalar(grep { $_->{status} != 404 } @after), 0, 'removed host stops serving after the cache TTL');
is(scalar(grep { ($_->{json}{code} // '') ne 'tenant_not_found' } @after), 0, 'as an unknown host');

# the last host stays
$r = team_api($b, DELETE => "/team/domains/$b->{host}");
is($r->{status}, 409, 'the last host cannot be removed');
is($r->{json}{code}, 'invalid_state', 'invalid_state');
is(api(GET => '/branding', host => $b->{host})->{status}, 200, 'and still serves');

# audit
my $n = psql_admin("BEGIN; SELECT set_config('app.tenant_id', '$a->{tenant_id}', true); "
    . "SELECT count(*) FROM audit_log WHERE action IN ('domain.create', 'domain.delete'); COMMIT;");
like($n, qr/^7$/m, 'six adds and one delete audited');

done_testing();
