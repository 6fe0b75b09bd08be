#!/usr/bin/perl
# The signed-in client's account: GET/PATCH /me (only name, phone, locale,
# time_zone and notify are the client's to change), POST /me/password (the
# current password is required; other sessions end, this one stays), and the
# headers of authenticated answers (no-store, security headers, no CORS).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use JSON::PP;
use Atrium::Test;
use Atrium::Checks;
use Atrium::Auth;

my $a = new_tenant();
my $T = JSON::PP::true;
my $F = JSON::PP::false;

my $u = onboard($a, name => 'Helena Me', company => 'Acme Ltda');
my $tok = $u->{access};
sub me { client_api($a, $tok, GET => '/me') }
sub patch { my ($body) = @_; client_api($a, $tok, PATCH => '/me', json => $body) }
# ---------------------------------------------------------------- GET /me

my $r = me();
is($r->{status}, 200, 'GET /me');
is_deeply($r->{json}, {
    id => $u->{id}, email => $u->{email}, name => 'Helena Me', company => 'Acme Ltda', phone => undef,
    locale => 'en', time_zone => 'UTC', notify => notify_all($T, $F),
}, 'exactly {id,email,name,company,phone,locale,time_zone,notify}');
my $me = $r->{json};
ok(no_store($r), 'Cache-Control: no-store');
like($r->{headers}{'strict-transport-security'} // '', qr/max-age=\d+/, 'HSTS');
is($r->{headers}{'x-content-type-options'}, 'nosniff', 'nosniff');
ok(defined $r->{headers}{'referrer-policy'}, 'Referrer-Policy');
like($r->{headers}{'x-request-id'} // '', qr/^[A-Za-z0-9._:-]{1,128}$/, 'X-Request-Id');
is_problem(client_api($a, undef, GET => '/me'), 401, 'unauthorized', 'GET /me without a token');

# ---------------------------------------------------------------- PATCH /me

$r = patch({ name => 'Helena M.' });
is($r->{status}, 200, 'patch name');
ok(no_store($r), 'patch answer: no-store');
is_deeply($r->{json}, { %$me, name => 'Helena M.' }, 'the whole resource, only name changed');
$r = patch({ phone => '+5511999998888', locale => 'pt-BR', time_zone => 'America/Sao_Paulo',
    notify => { whatsapp => $T } });
is($r->{status}, 200, 'patch phone, locale, time_zone, notify');
is_deeply($r->{json}, { %$me, name => 'Helena M.', phone => '+5511999998888', locale => 'pt-BR',
    time_zone => 'America/Sao_Paulo', notify => notify_all($T, $T) }, 'all four changed, notify.email kept');
$r = patch({ notify => { email => $F } });
is_deeply(channels($r->{json}{notify}), { email => $F, whatsapp => $T }, 'notify.email alone');
$r = patch({ phone => undef });
is($r->{status}, 200, 'phone null');
is($r->{json}{phone}, undef, 'phone cleared');
$r = patch({});
is($r->{status}, 200, 'empty patch');
my $now = $r->{json};
is_deeply(me()->{json}, $now, 'GET agrees with the last PATCH');
my $team = team_api($a, GET => "/team/clients/$u->{id}")->{json};
is($team->{name}, 'Helena M.', 'the team sees the new name');
is($team->{locale}, 'pt-BR', 'and the locale');

my %refused = (
    'email'            => [ { email => 'new@client.example' }, 'email', 'read_only' ],
    'status'           => [ { status => 'active' }, 'status', 'read_only' ],
    'company'          => [ { company => 'Other' }, 'company', 'read_only' ],
    'id'               => [ { id => '00000000-0000-4000-8000-000000000000' }, 'id', 'read_only' ],
    'unknown field'    => [ { role => 'admin' }, 'role', 'unknown_field' ],
    'password'         => [ { password => 'Another-password-1' }, 'password', qr/^(unknown_field|read_only)$/ ],
    'password_hash'    => [ { password_hash => '$argon2id$x' }, 'password_hash', qr/^(unknown_field|read_only)$/ ],
    'tenant_id'        => [ { tenant_id => '00000000-0000-4000-8000-000000000000' }, 'tenant_id', qr/^(unknown_field|read_only)$/ ],
    'empty name'       => [ { name => '' }, 'name', 'too_short' ],
    'blank name'       => [ { name => "  \t" }, 'name', qr/^(too_short|invalid_string|required)$/ ],
    'name of 201'      => [ { name => 'n' x 201 }, 'name', 'too_long' ],
    'null name'        => [ { name => undef }, 'name', qr/^(type|required)$/ ],
    'phone not E.164'  => [ { phone => '555-1234' }, 'phone', 'invalid_format' ],
    'phone no plus'    => [ { phone => '5511999998888' }, 'phone', 'invalid_format' ],
    'bad locale'       => [ { locale => 'not a locale!' }, 'locale', qr/^(invalid_format|too_long)$/ ],
    'bad time zone'    => [ { time_zone => 'Mars/Olympus_Mons' }, 'time_zone', qr/^(invalid_format|invalid_enum)$/ ],
    'notify string'    => [ { notify => 'yes' }, 'notify', 'type' ],
    'notify.email str' => [ { notify => { email => 'yes' } }, 'notify.email', 'type' ],
    'notify.sms'       => [ { notify => { sms => $T } }, 'notify.sms', 'unknown_field' ],
    'NUL in name'      => [ { name => "a\x{0}b" }, 'name', 'invalid_string' ],
);
for my $case (sort keys %refused) {
    my ($body, $field, $code) = @{ $refused{$case} };
    invalid(patch($body), $field, $code, "PATCH /me $case");
}
$r = patch({ name => 'Sneaky', email => 'new@client.example' });
is($r->{status}, 422, 'a valid field next to a read-only one: 422');
is_deeply(me()->{json}, $now, 'no refused PATCH changed anything');
$r = client_api($a, $tok, PATCH => '/me', body => 'name=x', type => 'text/plain');
is($r->{status}, 415, 'PATCH /me with text/plain: 415');
$r = client_api($a, $tok, PATCH => '/me', body => '{"name":"x",}', type => 'application/json');
is($r->{status}, 400, 'PATCH /me with malformed JSON: 400');
is_problem(client_api($a, undef, PATCH => '/me', json => { name => 'x' }), 401, 'unauthorized', 'PATCH /me without a token');
$r = client_api($a, $tok, PUT => '/me', json => { name => 'x' });
is($r->{status}, 405, 'PUT /me: 405');
like($r->{headers}{allow} // '', qr/PATCH/, 'Allow names PATCH');

# ---------------------------------------------------------------- POST /me/password

my $s2 = login($a, $u->{email}, $u->{password});
my $cookie1 = $u->{refresh};
sub change { my ($cur, $new, $t) = @_; client_api($a, $t // $tok, POST => '/me/password', json => { current_password => $cur, new_password => $new }) }

my $newpw = strong_password();
is_problem(change($u->{password} . 'x', $newpw), 403, 'invalid_credentials', 'wrong current password');
is(client_api($a, $s2->{json}{access_token}, GET => '/me')->{status}, 200, 'a refused change ends no session');
invalid(change($u->{password}, 'Short-pw-14chr'), 'new_password', 'too_short', 'new password too short');
invalid(change($u->{password}, 'x' x 257), 'new_password', 'too_long', 'new password too long');
invalid(change($u->{password}, '1qaz2wsx3edc4rfv'), 'new_password', 'common_password', 'new password common');
invalid(change($u->{password}, ucfirst $u->{email}), 'new_password', 'common_password', 'new password is the email');
invalid(client_api($a, $tok, POST => '/me/password', json => { new_password => $newpw }), 'current_password', 'required', 'no current password');
invalid(client_api($a, $tok, POST => '/me/password', json => { current_password => $u->{password} }), 'new_password', 'required', 'no new password');
is(login($a, $u->{email}, $u->{password})->{status}, 200, 'the old password still works after the refusals');
$s2 = login($a, $u->{email}, $u->{password});

$r = change($u->{password}, $newpw);
is($r->{status}, 204, 'change the password');
is(client_api($a, $tok, GET => '/me')->{status}, 200, 'this session is kept');
is(client_api($a, $s2->{json}{access_token}, GET => '/me')->{status}, 401, 'the other session is revoked');
is(auth_api($a, POST => '/auth/refresh', headers => cookie_header(refresh_of($s2)))->{status}, 401, "the other session's refresh token too");
$r = auth_api($a, POST => '/auth/refresh', headers => cookie_header($cookie1));
is($r->{status}, 200, "this session's refresh token still works");
is_problem(login($a, $u->{email}, $u->{password}), 401, 'invalid_credentials', 'the old password is refused');
is(login($a, $u->{email}, $newpw)->{status}, 200, 'the new password works');
is_problem(change($u->{password}, strong_password()), 403, 'invalid_credentials', 'the old password is no longer the current one');
$r = team_api($a, GET => '/team/audit?action=password.change');
ok((grep { ($_->{target}{id} // '') eq $u->{id} } @{ $r->{json}{data} // [] }), 'audit: password.change');
is_problem(client_api($a, undef, POST => '/me/password', json => { current_password => $newpw, new_password => strong_password() }),
    401, 'unauthorized', 'POST /me/password without a token');

# ---------------------------------------------------------------- no CORS for foreign origins

my $origin = { origin => 'https://evil.example' };
for my $case (
    [ 'GET /me', client_api($a, $tok, GET => '/me', headers => $origin) ],
    [ 'POST /auth/login', auth_api($a, POST => '/auth/login', json => { email => $u->{email}, password => $newpw }, headers => $origin) ],
    [ 'POST /auth/refresh', auth_api($a, POST => '/auth/refresh', headers => { %$origin, cookie => 'atrium_refresh=x' }) ],
    [ 'OPTIONS /auth/login', auth_api($a, OPTIONS => '/auth/login', headers => { %$origin,
        'access-control-request-method' => 'POST', 'access-control-request-headers' => 'content-type' }) ],
    [ 'OPTIONS /me', auth_api($a, OPTIONS => '/me', headers => { %$origin,
        'access-control-request-method' => 'GET', 'access-control-request-headers' => 'authorization' }) ],
) {
    my ($name, $res) = @$case;
    ok(!defined $res->{headers}{'access-control-allow-origin'}, "$name from a foreign Origin: no Access-Control-Allow-Origin");
    ok(!defined $res->{headers}{'access-control-allow-credentials'}, "$name: no Access-Control-Allow-Credentials");
}

done_testing();
