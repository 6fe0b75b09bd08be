#!/usr/bin/perl
# Client identity across hosts and tenants: a tenant's token, invites and
# links follow the tenant over all of its hosts (and only its hosts); the API
# host and unknown hosts serve no client surface; every client-surface call
# with a token of tenant A on tenant B's host is refused and changes nothing
# on either side; one client's calls never touch another client's account.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;
use Atrium::Auth;

my $base = env_of('ATRIUM_BASE_DOMAIN');
my $a = new_tenant();
my $b = new_tenant();
my $a2 = "x2-$a->{code}.$base";
is(team_api($a, POST => '/team/domains', json => { host => $a2 })->{status}, 201, "A gets a second host $a2");

my $u = onboard($a, name => 'Iara Isolation');
my $v = onboard($a, name => 'Joao Neighbour');
my $ub = onboard($b, email => $u->{email}, name => 'Iara in B');
my $sid = (jwt_parts($u->{access}))[1]{sid};

sub me_on { my ($host, $tok) = @_; client_api($host, $tok, GET => '/me') }

# ---------------------------------------------------------------- the tenant's own hosts

is(me_on($a2, $u->{access})->{json}{id}, $u->{id}, "A's token works on A's second host");
is(login($a2, $u->{email}, $u->{password})->{json}{user}{id}, $u->{id}, 'login on the second host');
is(auth_api($a2, POST => '/auth/refresh', headers => cookie_header($u->{refresh}))->{status}, 200,
    "a refresh cookie from one host of A works on another (the cookie itself is host-only)");

my $c = new_client($a);
my $r = team_api($a, POST => "/team/clients/$c->{id}/invite", host => $a2, json => { delivery => 'link' });
is($r->{status}, 201, 'invite through the second host');
my $pp = env_of('ATRIUM_PUBLIC_PORT') // 443;
my $port = $pp == 443 ? '' : ":$pp";
like($r->{json}{invite_url} // '', qr{^https://\Q$a2$port\E/invite#token=}, 'the link names the host the team used');
is(accept_invite($a, invite_token($r->{json}{invite_url}), strong_password())->{status}, 200, "accepted on A's first host");

my $api_host = env_of('ATRIUM_API_HOST');
SKIP: {
    skip 'ATRIUM_API_HOST not set', 5 unless $api_host;
    my $c2 = new_client($a);
    $r = team_api($a, POST => "/team/clients/$c2->{id}/invite", host => $api_host, json => { delivery => 'link' });
    is($r->{status}, 201, 'invite through the API host');
    like($r->{json}{invite_url} // '', qr{^https://\Q$a->{host}$port\E/invite#token=}, "the link names A's first host");
    is_problem(me_on($api_host, $u->{access}), 404, 'tenant_not_found', '/me on the API host');
    is_problem(login($api_host, $u->{email}, $u->{password}), 404, 'tenant_not_found', 'login on the API host');
    is_problem(auth_api($api_host, POST => '/auth/invite/inspect', json => { token => invite_token($r->{json}{invite_url}) }),
        404, 'tenant_not_found', 'inspect on the API host');
}

my $nohost = 'nobody-' . random_code('h') . ".$base";
is_problem(me_on($nohost, $u->{access}), 404, 'tenant_not_found', '/me on an unknown host');
is_problem(login($nohost, $u->{email}, $u->{password}), 404, 'tenant_not_found', 'login on an unknown host');
is_problem(auth_api($nohost, POST => '/auth/refresh', headers => cookie_header($u->{refresh})), 404, 'tenant_not_found',
    'refresh on an unknown host');

# a removed host stops serving A's clients (tenant cache: ATRIUM_TENANT_CACHE_TTL)
is(team_api($a, DELETE => "/team/domains/$a2")->{status}, 204, 'remove the second host');
# every worker keeps its own cache: after the TTL, no worker may answer
sleep((env_of('ATRIUM_TENANT_CACHE_TTL') // 5) + 1);
my @st = map { me_on($a2, $u->{access})->{status} } 1 .. 8;
is_deeply(\@st, [ (404) x 8 ], 'after the cache TTL the removed host no longer serves /me (8 requests)');
is_problem(me_on($a2, $u->{access}), 404, 'tenant_not_found', 'tenant_not_found there');
is(me_on($a, $u->{access})->{status}, 200, "the token still works on A's remaining host");

# ---------------------------------------------------------------- A's token on B's host

my $bme = me_on($b, $ub->{access})->{json};
my $newpw = strong_password();
my %calls = (
    'GET /me'                  => [ GET    => '/me' ],
    'PATCH /me'                => [ PATCH  => '/me', json => { name => 'Hijacked' } ],
    'POST /me/password'        => [ POST   => '/me/password', json => { current_password => $u->{password}, new_password => $newpw } ],
    'GET /auth/sessions'       => [ GET    => '/auth/sessions' ],
    'DELETE /auth/sessions/id' => [ DELETE => '/auth/sessions/' . (jwt_parts($ub->{access}))[1]{sid} ],
    'DELETE own session on B'  => [ DELETE => "/auth/sessions/$sid" ],
    'POST /auth/logout'        => [ POST   => '/auth/logout' ],
);
for my $name (sort keys %calls) {
    my ($method, $path, @rest) = @{ $calls{$name} };
    is_problem(client_api($b, $u->{access}, $method, $path, @rest), 401, 'unauthorized', "A's token on B's host: $name");
}
is_deeply(me_on($b, $ub->{access})->{json}, $bme, "B's same-email account unchanged");
is(me_on($b, $ub->{access})->{status}, 200, "B's session alive");
is(me_on($a, $u->{access})->{json}{name}, 'Iara Isolation', "A's account unchanged");
is(me_on($a, $u->{access})->{status}, 200, "A's session alive (the logout on B did nothing)");
is(login($a, $u->{email}, $u->{password})->{status}, 200, "A's password unchanged");
is_problem(login($a, $u->{email}, $newpw), 401, 'invalid_credentials', 'the password sent on B was not set');

# ---------------------------------------------------------------- one client, one account

$r = client_api($a, $u->{access}, PATCH => '/me', json => { name => 'Iara I.', phone => '+5511988887777' });
is($r->{status}, 200, "u changes her own account");
is(me_on($a, $v->{access})->{json}{name}, 'Joao Neighbour', 'the neighbour is untouched');
is(me_on($a, $v->{access})->{json}{phone}, undef, "the neighbour's phone too");
$r = client_api($a, $u->{access}, GET => '/auth/sessions');
my %ids = map { $_->{id} => 1 } @{ $r->{json}{data} // [] };
ok(!$ids{ (jwt_parts($v->{access}))[1]{sid} }, "the neighbour's session is not in u's list");
is_problem(client_api($a, $u->{access}, DELETE => '/auth/sessions/' . (jwt_parts($v->{access}))[1]{sid}), 404, 'not_found',
    "u cannot end the neighbour's session");
is(me_on($a, $v->{access})->{status}, 200, 'the neighbour is still signed in');

done_testing();
