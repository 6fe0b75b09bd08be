#!/usr/bin/perl
# Console credentials: every API-key failure is the same 401; keys are bound
# to their tenant; revoked keys stop working; the x-erix-* aliases and the
# deployment's API host work.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;

my $a = new_tenant();
my $b = new_tenant();

my $ok = team_api($a, GET => '/team/branding');
is($ok->{status}, 200, 'valid key and code');

my $key = $a->{api_key};
(my $flipped = $key) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
(my $other_prefix = $key) =~ s/^atr_(.)/'atr_' . ($1 eq 'a' ? 'b' : 'a')/e;
my %cases = (
    'no credentials'            => { 'x-api-key' => undef, 'x-client-code' => undef },
    'key without code'          => { 'x-client-code' => undef },
    'code without key'          => { 'x-api-key' => undef },
    'wrong secret'              => { 'x-api-key' => $flipped },
    'unknown prefix'            => { 'x-api-key' => $other_prefix },
    'malformed key'             => { 'x-api-key' => 'not-a-key' },
    'empty key'                 => { 'x-api-key' => '' },
    'key of B'                  => { 'x-api-key' => $b->{api_key} },
    'code of B'                 => { 'x-client-code' => $b->{code} },
    'key and code of B on A'    => { 'x-api-key' => $b->{api_key}, 'x-client-code' => $b->{code} },
    'unknown code'              => { 'x-client-code' => 'zz-nobody' },
    'upper-case code'           => { 'x-client-code' => uc $a->{code} },
    'SQL in code'               => { 'x-client-code' => q{' OR 1=1 --} },
    'very long key'             => { 'x-api-key' => 'atr_' . ('a' x 5000) },
);
my $body;
for my $name (sort keys %cases) {
    my $r = team_api($a, GET => '/team/branding', headers => $cases{$name});
    is($r->{status}, 401, "$name: 401");
    is($r->{json}{code}, 'unauthorized', "$name: unauthorized");
    my $shape = join ',', map { "$_=" . ($_ eq 'request_id' ? '' : $r->{json}{$_}) } sort keys %{ $r->{json} };
    $body //= $shape;
    is($shape, $body, "$name: same body as every other failure");
}

# the key of B works on B's host only
is(team_api($b, GET => '/team/branding')->{status}, 200, 'B on its own host');
is(team_api($b, GET => '/team/branding', host => $a->{host})->{status}, 401, "B's credentials on A's host");

# aliases
my $r = api(GET => '/team/branding', host => $a->{host},
    headers => { 'x-erix-api-key' => $a->{api_key}, 'x-erix-client-code' => $a->{code} });
is($r->{status}, 200, 'x-erix-* aliases');

# a second key, then revocation
my $k2 = new_api_key($a, 'ci');
is(team_api($a, GET => '/team/branding', headers => { 'x-api-key' => $k2->{api_key} })->{status}, 200,
    'second key works');
my $prefix = substr($k2->{api_key}, 4, 12);
my ($out, $rc) = run_atrium('apikey', 'revoke', $a->{code}, $prefix);
is($rc, 0, 'revoke command') or diag $out;
$r = team_api($a, GET => '/team/branding', headers => { 'x-api-key' => $k2->{api_key} });
is($r->{status}, 401, 'revoked key refused at once');
is(team_api($a, GET => '/team/branding')->{status}, 200, 'the other key still works');
my $list = run_atrium('apikey', 'list', $a->{code});
like($list, qr/\Q$prefix\E/, 'list shows the prefix');
unlike($list, qr/\Q$k2->{api_key}\E/, 'list never shows a secret');

# the deployment's API host: the code chooses the tenant
my $api_host = env_of('ATRIUM_API_HOST');
SKIP: {
    skip 'ATRIUM_API_HOST not set', 9 unless $api_host;
    $r = team_api($a, GET => '/team/branding', host => $api_host);
    is($r->{status}, 200, 'team surface on the API host');
    is($r->{json}{tenant_code}, $a->{code}, 'tenant chosen by the code');
    $r = team_api($a, GET => '/team/branding', host => $api_host, headers => { 'x-client-code' => $b->{code} });
    is($r->{status}, 401, "A's key with B's code on the API host");
    $r = api(GET => '/healthz', host => $api_host);
    is($r->{status}, 200, 'health on the API host');
    $r = api(GET => '/branding', host => $api_host);
    is($r->{status}, 404, 'no public surface on the API host');
    is($r->{json}{code}, 'tenant_not_found', 'tenant_not_found there');
    $r = team_api($a, DELETE => '/team/branding', host => $api_host);
    is($r->{status}, 405, 'a wrong method on the team surface there is a 405');
    $r = team_api($a, GET => '/no-such', host => $api_host);
    is($r->{status}, 404, 'unknown path on the API host');
    $r = team_api($a, POST => '/team/domains', host => $api_host, json => { host => $api_host });
    is($r->{status}, 422, 'the API host cannot become a tenant host');
}

# the key's use is recorded, its secret never stored
my $row = psql_admin("BEGIN; SELECT set_config('app.tenant_id', '$a->{tenant_id}', true); "
    . "SELECT count(*) FILTER (WHERE last_used_at IS NOT NULL) || ':' || count(*) FROM api_keys; COMMIT;");
like($row, qr/^\d+:2$/m, 'two keys for A');
like($row, qr/^[12]:2$/m, 'last use recorded');

done_testing();
