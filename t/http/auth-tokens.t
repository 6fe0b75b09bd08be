#!/usr/bin/perl
# Access tokens: the shape of what the server issues, the JWKS that verifies
# it, and every forgery and misuse from SECURITY.md refused with 401 (the
# forgeries that need a valid ES256 signature are signed with the stack's own
# key, and a re-signed copy of a real token is accepted, so a refusal means
# the claim was checked, not that the forging was broken).  Tokens die with
# their session: logout, password change, disabling, session deletion,
# client deletion.  The two surfaces keep their credentials apart.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use JSON::PP;
use Atrium::Test;
use Atrium::Auth;

my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
my $NOBODY = '00000000-0000-4000-8000-000000000000';

my $a = new_tenant();
my $b = new_tenant();
my $u = onboard($a, name => 'Elisa Tokens');
my $other = onboard($a);
my $ub = onboard($b);
my $tok = $u->{access};
my $kid = env_of('ATRIUM_JWT_KID');
my $ttl = access_ttl();

sub me { my ($token, $t) = @_; client_api($t // $a, $token, GET => '/me') }

sub accepted {
    my ($token, $name) = @_;
    my $r = me($token);
    ok($r->{status} == 200 && ($r->{json}{id} // '') eq $u->{id}, "$name: accepted")
        or diag explain { status => $r->{status}, body => $r->{json} // $r->{content} };
}

sub refused {
    my ($token, $name, %o) = @_;
    my $r = $o{res} // me($token, $o{tenant});
    is_problem($r, 401, $o{code} // 'unauthorized', $name);
    like($r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/i, "$name: WWW-Authenticate: Bearer") unless $o{no_www};
}

# ---------------------------------------------------------------- what is issued

my ($H, $C, $S) = jwt_parts($tok);
is_deeply($H, { alg => 'ES256', typ => 'at+jwt', kid => $kid }, 'header is exactly {alg ES256, typ at+jwt, kid}');
is($C->{iss}, jwt_issuer(), 'iss');
is($C->{aud}, 'atrium-portal', 'aud atrium-portal');
is($C->{sub}, $u->{id}, 'sub is the client');
is($C->{tid}, $a->{tenant_id}, 'tid is the tenant');
like($C->{sid}, $UUID, 'sid');
ok(abs($C->{iat} - time) < 120, 'iat is now');
is($C->{exp} - $C->{iat}, $ttl, 'exp = iat + ATRIUM_ACCESS_TTL');
ok(length($C->{jti} // '') >= 16, 'jti');
ok(!grep({ /pass|hash|email/ } keys %$C), 'no personal data or secrets in the claims');

accepted($tok, 'the real token');

# claims of the real token with changes (undef deletes)
sub claims {
    my (%o) = @_;
    my %c = (%$C, %o);
    delete $c{$_} for grep { !defined $c{$_} } keys %c;
    return \%c;
}
my %HDR = (alg => 'ES256', typ => 'at+jwt', kid => $kid);
sub hdr {
    my (%o) = @_;
    my %h = (%HDR, %o);
    delete $h{$_} for grep { !defined $h{$_} } keys %h;
    return \%h;
}

# controls: our own ES256 signing produces tokens the server accepts
my $now = time;
accepted(es256_token(hdr(), claims()), 'control: the real claims re-signed by the test');
accepted(es256_token(hdr(), claims(jti => 'f' x 32)), 'control: another jti');
accepted(es256_token(hdr(), claims(iat => $now - 5, exp => $now - 5 + $ttl)), 'control: lifetime exactly ATRIUM_ACCESS_TTL');
accepted(es256_token(hdr(), claims(iat => $now + 20, exp => $now + 80)), 'control: iat 20 s ahead (within the 60 s skew)');
accepted(es256_token(hdr(), claims(nbf => $now - 10)), 'control: nbf in the past');

# ---------------------------------------------------------------- JWKS

my $r = api(GET => '/.well-known/jwks.json', host => $a->{host});
is($r->{status}, 200, 'JWKS');
like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JWKS is JSON');
my @keys = @{ $r->{json}{keys} // [] };
ok(@keys >= 1, 'at least one key');
my ($jwk) = grep { ($_->{kid} // '') eq $kid } @keys;
ok($jwk, "the signing kid ($kid) is listed");
$jwk //= {};
is($jwk->{kty}, 'EC', 'kty EC');
is($jwk->{crv}, 'P-256', 'crv P-256');
like($jwk->{x} // '', qr/^[A-Za-z0-9_-]{43}$/, 'x');
like($jwk->{y} // '', qr/^[A-Za-z0-9_-]{43}$/, 'y');
ok(!grep({ exists $_->{d} } @keys), 'no private part in any key');
my ($h64, $p64, $s64) = split /\./, $tok;
my $pem = jwk_to_pem($jwk->{x} // '', $jwk->{y} // '');
ok(es256_verify("$h64.$p64", $s64, $pem), 'the issued token verifies with the JWK');
ok(!es256_verify("$h64." . b64u(encode_json(claims(sub => $other->{id}))), $s64, $pem), '(and an edited one does not)');
is_deeply(api(GET => '/.well-known/jwks.json', host => $b->{host})->{json}, $r->{json}, 'the same keys on every tenant host');

# ---------------------------------------------------------------- signature and algorithm attacks

my $pubfile = env_of('ATRIUM_JWT_PUBLIC_KEYS_DIR') . "/$kid.pem";
my $pubpem = do { local (@ARGV, $/) = ($pubfile); <> } // '';
ok(length $pubpem, "read the public key $pubfile");
(my $pubpem_trim = $pubpem) =~ s/\s+\z//;

refused(none_token(hdr(alg => 'none'), claims(), ''), 'alg none, empty signature');
refused(none_token(hdr(alg => 'none'), claims(), $S), 'alg none with the original signature');
refused(jwt_input(hdr(alg => 'none'), claims()), 'alg none, two segments');
refused(none_token(hdr(alg => 'NONE'), claims(), ''), 'alg NONE');
refused(none_token(hdr(alg => 'ES256'), claims(), ''), 'ES256 with an empty signature');
refused(hs256_token(hdr(alg => 'HS256'), claims(), $pubpem), 'HS256 signed with the public key PEM');
refused(hs256_token(hdr(alg => 'HS256'), claims(), $pubpem_trim), 'HS256 signed with the trimmed PEM');
refused(hs256_token(hdr(alg => 'HS256'), claims(), encode_json($jwk)), 'HS256 signed with the JWK JSON');
refused(es256_token(hdr(alg => 'ES384'), claims()), 'alg ES384');
refused(es256_token(hdr(alg => 'RS256'), claims()), 'alg RS256');

# edited payloads with the original signature
refused(jwt_input(hdr(), claims(sub => $other->{id})) . ".$S", 'edited sub, original signature');
refused(jwt_input(hdr(), claims(exp => $C->{exp} + 60)) . ".$S", 'edited exp, original signature');
refused(jwt_input(hdr(), claims(tid => $b->{tenant_id})) . ".$S", 'edited tid, original signature');
refused(jwt_input(hdr(), claims(jti => 'x' . $C->{jti})) . ".$S", 'edited jti, original signature');
{
    my $sig = b64u_decode($S);
    substr($sig, 10, 1) = chr(ord(substr($sig, 10, 1)) ^ 1);
    refused("$h64.$p64." . b64u($sig), 'one bit of the signature flipped');
    refused("$h64.$p64." . b64u(raw_to_der(b64u_decode($S))), 'the signature DER-encoded instead of r||s');
    refused("$h64.$p64." . b64u(b64u_decode($S) . "\x00"), 'a 65-byte signature');
}

# kid
refused(es256_token(hdr(kid => 'nokey'), claims()), 'unknown kid');
refused(es256_token(hdr(kid => '../../x'), claims()), 'kid ../../x');
refused(es256_token(hdr(kid => "../../$kid"), claims()), 'kid ../../<real kid>');
refused(es256_token(hdr(kid => "' OR 1=1"), claims()), q{kid ' OR 1=1});
refused(es256_token(hdr(kid => "$kid' OR '1'='1"), claims()), 'kid with SQL after the real kid');
refused(es256_token(hdr(kid => ''), claims()), 'empty kid');
refused(es256_token(hdr(kid => undef), claims()), 'no kid');
refused(es256_token(hdr(kid => 42), claims()), 'numeric kid');
refused(es256_token(hdr(kid => "$kid.pem"), claims()), 'kid with .pem');
refused(es256_token(hdr(kid => "/dev/null"), claims()), 'kid /dev/null');

# keys named by the token are never fetched or trusted
my $evil = new_ec_key();
my ($ex, $ey) = ec_public_xy($evil);
my $evil_jwk = { kty => 'EC', crv => 'P-256', x => $ex, y => $ey, kid => $kid };
refused(es256_token(hdr(), claims(), $evil), "signed with another key under the real kid");
refused(es256_token(hdr(jwk => $evil_jwk), claims(), $evil), 'embedded jwk header, signed with that key');
refused(es256_token(hdr(jwk => $evil_jwk), claims()), 'embedded jwk header, signed with the real key');
refused(es256_token(hdr(jku => 'https://127.0.0.1:9/jwks.json'), claims()), 'jku header');
refused(es256_token(hdr(x5u => 'https://127.0.0.1:9/cert.pem'), claims()), 'x5u header');
refused(es256_token(hdr(x5c => ['MIIB']), claims()), 'x5c header');
refused(es256_token(hdr(crit => ['exp']), claims()), 'crit header');

# typ
refused(es256_token(hdr(typ => 'JWT'), claims()), 'typ JWT');
refused(es256_token(hdr(typ => undef), claims()), 'no typ');
refused(es256_token(hdr(typ => 'rt+jwt'), claims()), 'typ rt+jwt');

# ---------------------------------------------------------------- claim attacks (validly signed)

$now = time;
refused(es256_token(hdr(), claims(aud => 'atrium-team')), 'wrong aud');
refused(es256_token(hdr(), claims(aud => undef)), 'no aud');
refused(es256_token(hdr(), claims(aud => ['atrium-team'])), 'aud array without atrium-portal');
refused(es256_token(hdr(), claims(iss => 'evil')), 'wrong iss');
refused(es256_token(hdr(), claims(iss => uc jwt_issuer())), 'iss in another case');
refused(es256_token(hdr(), claims(iss => undef)), 'no iss');
refused(es256_token(hdr(), claims(iat => $now - 300, exp => $now - 10)), 'expired', code => 'token_expired');
refused(es256_token(hdr(), claims(nbf => $now + 600)), 'nbf 10 minutes ahead');
refused(es256_token(hdr(), claims(nbf => "$now")), 'nbf as a string');
refused(es256_token(hdr(), claims(iat => $now - 5, exp => $now - 5 + $ttl + 1)), 'lifetime one second beyond ATRIUM_ACCESS_TTL');
refused(es256_token(hdr(), claims(iat => $now - 5, exp => $now + 86400)), 'lifetime of a day');
refused(es256_token(hdr(), claims(iat => $now + 600, exp => $now + 660)), 'iat 10 minutes ahead');
refused(es256_token(hdr(), claims(iat => undef)), 'no iat');
refused(es256_token(hdr(), claims(exp => undef)), 'no exp');
refused(es256_token(hdr(), claims(exp => "$C->{exp}")), 'exp as a string');
refused(es256_token(hdr(), claims(exp => $C->{iat})), 'exp = iat');
refused(es256_token(hdr(), claims(jti => undef)), 'no jti');
refused(es256_token(hdr(), claims(sid => undef)), 'no sid');
refused(es256_token(hdr(), claims(sub => undef)), 'no sub');
refused(es256_token(hdr(), claims(tid => undef)), 'no tid');
refused(es256_token(hdr(), claims(sid => $NOBODY)), 'all claims right but a session that does not exist');
refused(es256_token(hdr(), claims(sid => 'not-a-uuid')), 'sid not a UUID');
refused(es256_token(hdr(), claims(sub => $other->{id})), "another client's sub with my sid");
refused(es256_token(hdr(), claims(sid => jwt_parts_sid($other->{access}))), "my sub with another client's sid");
refused(es256_token(hdr(), claims(tid => $b->{tenant_id})), "tid of B on A's host");
refused(es256_token(hdr(), claims(tid => $b->{tenant_id})), "tid of B on B's host (A's session)", tenant => $b);
refused(es256_token(hdr(), claims(tid => $b->{tenant_id}, sub => $ub->{id}, sid => jwt_parts_sid($ub->{access}))),
    "B's complete claims on A's host");

sub jwt_parts_sid { my ($t) = @_; (jwt_parts($t))[1]{sid} }

# ---------------------------------------------------------------- misuse of real tokens

refused($tok, "A's real token on B's host", tenant => $b);
is(me($ub->{access}, $b)->{status}, 200, "B's token on B's host");
refused($ub->{access}, "B's real token on A's host");
refused($u->{refresh}, 'the refresh token as Bearer');
my $c = new_client($a);
$r = invite($a, $c->{id}, delivery => 'link');
refused(invite_token($r->{json}{invite_url}), 'an invite token as Bearer');
{
    auth_api($a, POST => '/auth/password/forgot', json => { email => $u->{email} });
    my ($row) = @{ outbox_rows($a, 'password_reset', $u->{id}) };
    my $reset = invite_token(($row // {})->{payload}{link});
    $reset //= join('', map { ('a' .. 'z')[rand 26] } 1 .. 43);
    refused($reset, 'a reset token as Bearer');
}
refused('', 'an empty Bearer');
refused('a.b.c', 'a.b.c');
refused("$tok.$S", 'four segments');
refused('x' x 4000, 'a 4000-byte token');
refused(undef, 'no Authorization header');
refused(undef, 'Basic credentials', res => client_api($a, undef, GET => '/me', headers => { authorization => 'Basic ' . b64u("$u->{email}:$u->{password}") }));
refused(undef, 'the token without a scheme', res => client_api($a, undef, GET => '/me', headers => { authorization => $tok }));
refused(undef, 'token in the query string', res => client_api($a, undef, GET => "/me?access_token=$tok"));
refused(undef, 'token in a cookie', res => client_api($a, undef, GET => '/me', headers => { cookie => "access_token=$tok" }));
refused(undef, 'logout with the token in the query string', res => client_api($a, undef, POST => "/auth/logout?access_token=$tok"));
accepted($tok, 'the token still works after those attempts');

# ---------------------------------------------------------------- the two surfaces

$r = client_api($a, $tok, GET => '/team/branding');
is_problem($r, 401, 'unauthorized', 'a portal token on /team/branding');
$r = client_api($a, $tok, GET => "/team/clients/$u->{id}");
is_problem($r, 401, 'unauthorized', 'a portal token on /team/clients/{own id}');
$r = client_api($a, undef, GET => '/me', headers => { 'x-api-key' => $a->{api_key}, 'x-client-code' => $a->{code} });
refused(undef, 'an API key on /me', res => $r, no_www => 0);
$r = client_api($a, $tok, GET => '/me', headers => { 'x-api-key' => $a->{api_key}, 'x-client-code' => $a->{code} });
refused(undef, 'an API key together with a valid token on /me', res => $r);
$r = client_api($a, undef, GET => '/me', headers => { 'x-erix-api-key' => $a->{api_key}, 'x-erix-client-code' => $a->{code} });
refused(undef, 'x-erix-* credentials on /me', res => $r);
$r = client_api($a, undef, GET => '/auth/sessions', headers => { 'x-api-key' => $a->{api_key}, 'x-client-code' => $a->{code} });
refused(undef, 'an API key on /auth/sessions', res => $r);

# ---------------------------------------------------------------- tokens die with their session

# logout
my $l = login($a, $u->{email}, $u->{password});
my ($ltok, $lref) = ($l->{json}{access_token}, refresh_of($l));
accepted($ltok, 'a second session');
is(client_api($a, $ltok, POST => '/auth/logout')->{status}, 204, 'logout');
refused($ltok, 'access token after logout');
refused(es256_token(hdr(), { (jwt_parts($ltok))[1]->%*, jti => 'e' x 32 }), 'a re-signed token of the logged-out session');
is(auth_api($a, POST => '/auth/refresh', headers => cookie_header($lref))->{status}, 401, 'refresh token after logout');

# password change ends the other sessions
my $s2 = login($a, $u->{email}, $u->{password});
my $s3 = login($a, $u->{email}, $u->{password});
my $newpw = strong_password();
$r = client_api($a, $s2->{json}{access_token}, POST => '/me/password',
    json => { current_password => $u->{password}, new_password => $newpw });
is($r->{status}, 204, 'password change');
refused($s3->{json}{access_token}, 'another session after a password change');
refused($tok, 'the first session after a password change');
is(auth_api($a, POST => '/auth/refresh', headers => cookie_header(refresh_of($s3)))->{status}, 401,
    'its refresh token after a password change');
is(me($s2->{json}{access_token})->{status}, 200, 'the session that changed the password lives on');
$u->{password} = $newpw;

# disabling
my $s4 = login($a, $u->{email}, $u->{password});
accepted($s4->{json}{access_token}, 'session before disabling');
is(team_api($a, PATCH => "/team/clients/$u->{id}", json => { status => 'disabled' })->{status}, 200, 'disable the client');
refused($s4->{json}{access_token}, 'access token after the account was disabled');
is(auth_api($a, POST => '/auth/refresh', headers => cookie_header(refresh_of($s4)))->{status}, 401,
    'refresh after the account was disabled');
is(team_api($a, PATCH => "/team/clients/$u->{id}", json => { status => 'active' })->{status}, 200, 'enable again');
refused($s4->{json}{access_token}, 'the old session stays dead after re-enabling');

# DELETE /auth/sessions/{id}
my $s5 = login($a, $u->{email}, $u->{password});
my $s6 = login($a, $u->{email}, $u->{password});
my $sid5 = jwt_parts_sid($s5->{json}{access_token});
is(client_api($a, $s6->{json}{access_token}, DELETE => "/auth/sessions/$sid5")->{status}, 204, 'delete a session from another one');
refused($s5->{json}{access_token}, 'access token of a deleted session');
accepted($s6->{json}{access_token}, 'the deleting session lives on');

# client deleted
my $gone = onboard($a);
accepted_for($gone, 'before deletion');
is(team_api($a, DELETE => "/team/clients/$gone->{id}")->{status}, 204, 'delete the client');
refused($gone->{access}, 'access token of a deleted client');
is(auth_api($a, POST => '/auth/refresh', headers => cookie_header($gone->{refresh}))->{status}, 401, 'refresh of a deleted client');

sub accepted_for { my ($who, $name) = @_; is(me($who->{access})->{status}, 200, "$name: token works") }

done_testing();
