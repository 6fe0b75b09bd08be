#!/usr/bin/perl
# Sessions: refresh-token rotation (same session, new cookie), the grace
# window for a racing tab (409, nothing revoked), reuse of an old refresh
# token (the whole session dies), logout, and the session list with
# revocation of single sessions.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use Atrium::Test;
use Atrium::Auth;

my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
my $TIME = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
my $NOBODY = '00000000-0000-4000-8000-000000000000';
my $GRACE = env_of('ATRIUM_REFRESH_GRACE_S') // 60;

my $a = new_tenant();
my $b = new_tenant();

sub refresh { my ($t, $cookie, %o) = @_; auth_api($t, POST => '/auth/refresh', headers => cookie_header($cookie), %o) }
sub sid_of { (jwt_parts($_[0]))[1]{sid} }
sub me_status { my ($t, $tok) = @_; client_api($t, $tok, GET => '/me')->{status} }
sub sessions { my ($t, $tok, $q) = @_; client_api($t, $tok, GET => '/auth/sessions' . ($q // '')) }
sub cleared {
    my ($r, $name) = @_;
    my $c = set_cookie_of($r);
    my $at = cookie_attrs($c);
    ok(defined $c && refresh_of($r) eq '' && ($at->{'max-age'} // '') eq '0' && ($at->{path} // '') eq '/api/portal/v1/auth',
        "$name: cookie cleared (empty, Max-Age=0, same Path)") or diag $c // 'no Set-Cookie';
}

# ---------------------------------------------------------------- refresh rotates

my $u = onboard($a, name => 'Fabio Sessions');
my ($acc0, $ref0) = ($u->{access}, $u->{refresh});
my $sid = sid_of($acc0);

my $r = refresh($a, $ref0);
is($r->{status}, 200, 'refresh');
is($r->{json}{token_type}, 'Bearer', 'a session result');
is($r->{json}{expires_in}, access_ttl(), 'expires_in');
is_deeply($r->{json}{user}, { id => $u->{id}, email => $u->{email}, name => 'Fabio Sessions' }, 'user');
ok(no_store($r), 'refresh answer: Cache-Control no-store');
my $ref1 = refresh_of($r);
like($ref1 // '', qr/^[A-Za-z0-9_-]{43}$/, 'a new refresh cookie');
isnt($ref1, $ref0, 'rotated');
my $at = cookie_attrs(set_cookie_of($r));
ok($at->{httponly} && $at->{secure} && lc($at->{samesite} // '') eq 'strict' && $at->{path} eq '/api/portal/v1/auth',
    'the new cookie: HttpOnly; Secure; SameSite=Strict; Path=/api/portal/v1/auth');
my $acc1 = $r->{json}{access_token};
isnt($acc1, $acc0, 'a new access token');
is(sid_of($acc1), $sid, 'same session id');
is(me_status($a, $acc1), 200, 'the new access token works');
$r = sessions($a, $acc1);
is(scalar @{ $r->{json}{data} // [] }, 1, 'still one session');
is($r->{json}{data}[0]{id}, $sid, 'the same one');

# a racing tab presents the just-rotated token: 409, nothing revoked
$r = refresh($a, $ref0);
is_problem($r, 409, 'refresh_conflict', 'old cookie within the grace window');
ok(!defined set_cookie_of($r) || refresh_of($r) eq '', 'no new refresh token for the loser');
is(me_status($a, $acc1), 200, 'the newest access token still works');
is(me_status($a, $acc0), 200, 'so does the older one (same session)');
$r = refresh($a, $ref1);
is($r->{status}, 200, 'the newest refresh token still refreshes');
my ($acc2, $ref2) = ($r->{json}{access_token}, refresh_of($r));
is(sid_of($acc2), $sid, 'still the same session');

# other cookies around it are fine; a body is optional but must be an object
$r = auth_api($a, POST => '/auth/refresh', headers => { cookie => "theme=dark; atrium_refresh=$ref2; lang=pt" });
is($r->{status}, 200, 'refresh cookie among other cookies');
($acc2, $ref2) = ($r->{json}{access_token}, refresh_of($r));
$r = refresh($a, $ref2, json => {});
is($r->{status}, 200, 'refresh with an empty JSON object body');
($acc2, $ref2) = ($r->{json}{access_token}, refresh_of($r));
$r = refresh($a, $ref2, body => '[]', type => 'application/json');
is($r->{status}, 400, 'refresh with a JSON array body: 400');
is(refresh($a, $ref2)->{status}, 200, 'a refused body did not burn the token');

# two tabs refresh with the same cookie at once: one wins, the other is told
my $t2 = onboard($a);
my @res = forked_requests(map { [ $a->{host}, 'POST', '/auth/refresh', undef, cookie_header($t2->{refresh}) ] } 1 .. 2);
is_deeply([ sort map { $_->[0] } @res ], [ 200, 409 ], 'two concurrent refreshes: one 200, one 409') or diag explain \@res;
my ($won) = grep { $_->[0] == 200 } @res;
my ($lost) = grep { $_->[0] == 409 } @res;
is(($lost->[1] // {})->{code}, 'refresh_conflict', 'the loser gets refresh_conflict');
my ($newc) = map { /^atrium_refresh=([^;]*)/ ? $1 : () } @{ $won->[2] // [] };
is(me_status($a, ($won->[1] // {})->{access_token}), 200, "the winner's access token works");
is(refresh($a, $newc)->{status}, 200, "the winner's refresh cookie works");

# ---------------------------------------------------------------- reuse of an old token ends the session

my $v = onboard($a);
my $vr0 = $v->{refresh};
$r = refresh($a, $vr0);
my ($vacc1, $vr1) = ($r->{json}{access_token}, refresh_of($r));
$r = refresh($a, $vr1);
my ($vacc2, $vr2) = ($r->{json}{access_token}, refresh_of($r));
is(me_status($a, $vacc2), 200, 'two rotations, newest token works');
my $older = $GRACE + 60;
my $hash = sha256_hex($vr0);
is(sql_in($a, "UPDATE session_refresh_tokens SET rotated_at = now() - interval '$older seconds'"
        . " WHERE tenant_id = '$a->{tenant_id}' AND token_sha256 = decode('$hash', 'hex') RETURNING 1"), 1,
    "the first token's rotation moved ${older}s into the past");
$r = refresh($a, $vr0);
is_problem($r, 401, 'unauthorized', 'reuse of a token rotated long ago');
cleared($r, 'reuse');
is(me_status($a, $vacc2), 401, "the session's newest access token stops working");
is(me_status($a, $v->{access}), 401, 'and its first one');
is(refresh($a, $vr2)->{status}, 401, "the session's newest refresh token is revoked too");
is(refresh($a, $vr1)->{status}, 401, 'and the middle one');
my $vl = login($a, $v->{email}, $v->{password});
is($vl->{status}, 200, 'the account itself is fine: login works');
$r = team_api($a, GET => '/team/audit?action=session.revoke');
ok((grep { ($_->{target}{id} // '') eq sid_of($v->{access}) } @{ $r->{json}{data} // [] }), 'audit: session.revoke of the session');

# an expired session: its tokens die with it
my $x = onboard($a);
my $x2 = login($a, $x->{email}, $x->{password});
my $xsid = sid_of($x->{access});
sql_in($a, "UPDATE portal_sessions SET expires_at = now() - interval '1 second'"
    . " WHERE tenant_id = '$a->{tenant_id}' AND id = '$xsid'");
is(me_status($a, $x->{access}), 401, 'an expired session: access token refused');
is(refresh($a, $x->{refresh})->{status}, 401, 'an expired session: refresh refused');
ok(!(grep { $_->{id} eq $xsid } @{ sessions($a, $x2->{json}{access_token})->{json}{data} // [] }), 'an expired session is not listed');
is(me_status($a, $x2->{json}{access_token}), 200, "the client's other session is fine");

# ---------------------------------------------------------------- refused cookies

is_problem(auth_api($a, POST => '/auth/refresh'), 401, 'unauthorized', 'refresh without a cookie');
my $rand43 = join('', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9, '-', '_')[rand 64] } 1 .. 43);
for my $case (['garbage', 'garbage'], ['empty', ''], ['random 43 characters', $rand43],
    ['SQL', q{' OR '1'='1}], ['the access token', $acc1], ['a long value', 'x' x 3000]) {
    is_problem(refresh($a, $case->[1]), 401, 'unauthorized', "refresh with $case->[0]");
}
$r = auth_api($a, POST => '/auth/refresh', headers => { cookie => "refresh=$ref1" });
is_problem($r, 401, 'unauthorized', 'a cookie of another name');
$r = auth_api($a, POST => '/auth/refresh', headers => { authorization => "Bearer $acc1" });
is_problem($r, 401, 'unauthorized', 'an access token instead of the cookie');
my $ub = onboard($b);
is_problem(refresh($a, $ub->{refresh}), 401, 'unauthorized', "B's refresh cookie on A's host");
is(refresh($b, $ub->{refresh})->{status}, 200, "which did not revoke it on B");

# ---------------------------------------------------------------- logout

my $l = login($a, $u->{email}, $u->{password});
my ($lacc, $lref) = ($l->{json}{access_token}, refresh_of($l));
$r = client_api($a, $lacc, POST => '/auth/logout');
is($r->{status}, 204, 'logout: 204');
is($r->{content} // '', '', 'no body');
cleared($r, 'logout');
is(me_status($a, $lacc), 401, 'the access token stops working');
is(refresh($a, $lref)->{status}, 401, 'the refresh token stops working');
is(client_api($a, $lacc, POST => '/auth/logout')->{status}, 401, 'logout again with the dead token: 401');
is_problem(auth_api($a, POST => '/auth/logout'), 401, 'unauthorized', 'logout without a token');
is(me_status($a, $acc1), 200, "logout ended only that session");
$l = login($a, $u->{email}, $u->{password});
$r = client_api($a, $l->{json}{access_token}, POST => '/auth/logout', json => {});
is($r->{status}, 204, 'logout with an empty JSON body');

# ---------------------------------------------------------------- the session list

my $w = onboard($a);
my $w2 = login($a, $w->{email}, $w->{password}, headers => { 'user-agent' => 'Agent/Two (test)', 'x-forwarded-for' => '203.0.113.9' });
my $w3 = login($a, $w->{email}, $w->{password}, headers => { 'user-agent' => 'Agent/Three' });
my $w4 = login($a, $w->{email}, $w->{password});
is(client_api($a, $w4->{json}{access_token}, POST => '/auth/logout')->{status}, 204, 'one of them logged out');
my %sid = (one => sid_of($w->{access}), two => sid_of($w2->{json}{access_token}),
    three => sid_of($w3->{json}{access_token}), four => sid_of($w4->{json}{access_token}));

$r = sessions($a, $w->{access});
is($r->{status}, 200, 'GET /auth/sessions');
ok(no_store($r), 'Cache-Control no-store');
ok(exists $r->{json}{next_cursor} && !defined $r->{json}{next_cursor}, 'next_cursor null');
my %by = map { $_->{id} => $_ } @{ $r->{json}{data} // [] };
is_deeply([ sort keys %by ], [ sort @sid{qw(one two three)} ], 'the live sessions of this client, none of another, not the logged-out one');
for my $s (values %by) {
    is_deeply([ sort keys %$s ], [qw(created_at current id ip last_used_at user_agent)], "session $s->{id}: fields");
    like($s->{created_at}, $TIME, 'created_at');
    like($s->{last_used_at}, $TIME, 'last_used_at');
}
is($by{ $sid{one} }{current}, JSON::PP::true, 'current: true for the asking session');
ok(!$by{ $sid{two} }{current} && !$by{ $sid{three} }{current}, 'current: false for the others');
is($by{ $sid{two} }{user_agent}, 'Agent/Two (test)', 'user_agent as sent at login');
is($by{ $sid{three} }{user_agent}, 'Agent/Three', 'user_agent of the third');
is($by{ $sid{two} }{ip}, '127.0.0.1', 'ip from the connection, not X-Forwarded-For');
$r = sessions($a, $w3->{json}{access_token});
is((grep { $_->{current} } @{ $r->{json}{data} })[0]{id}, $sid{three}, 'current follows the token');

# pages
my (@seen, $cursor);
for (1 .. 5) {
    $r = sessions($a, $w->{access}, '?limit=1' . (defined $cursor ? "&cursor=$cursor" : ''));
    last unless $r->{status} == 200;
    push @seen, map { $_->{id} } @{ $r->{json}{data} };
    $cursor = $r->{json}{next_cursor};
    last unless defined $cursor;
}
is_deeply([ sort @seen ], [ sort @sid{qw(one two three)} ], 'limit=1 pages through every session once');
is(sessions($a, $w->{access}, '?limit=0')->{status}, 400, 'limit=0: 400');
is(sessions($a, $w->{access}, '?cursor=garbage')->{status}, 400, 'garbage cursor: 400');

# DELETE /auth/sessions/{id}
$r = client_api($a, $w->{access}, DELETE => "/auth/sessions/$sid{two}");
is($r->{status}, 204, 'delete another session of mine');
is(me_status($a, $w2->{json}{access_token}), 401, 'its token stops working');
is(refresh($a, refresh_of($w2))->{status}, 401, 'its refresh token too');
ok(!(grep { $_->{id} eq $sid{two} } @{ sessions($a, $w->{access})->{json}{data} }), 'gone from the list');
is_problem(client_api($a, $w->{access}, DELETE => "/auth/sessions/$sid{two}"), 404, 'not_found', 'delete it again');
is_problem(client_api($a, $w->{access}, DELETE => "/auth/sessions/$sid{four}"), 404, 'not_found', 'delete a logged-out session');
is_problem(client_api($a, $w->{access}, DELETE => "/auth/sessions/$sid"), 404, 'not_found', "another client's session");
is(me_status($a, $acc1), 200, "the other client's session still works");
is_problem(client_api($a, $w->{access}, DELETE => '/auth/sessions/' . sid_of($ub->{access})), 404, 'not_found', "a session of B");
is(me_status($b, $ub->{access}), 200, "B's session still works");
is_problem(client_api($a, $w->{access}, DELETE => "/auth/sessions/$NOBODY"), 404, 'not_found', 'an unknown session id');
is_problem(client_api($a, $w->{access}, DELETE => '/auth/sessions/not-a-uuid'), 404, 'not_found', 'a non-UUID id');
is_problem(client_api($a, undef, DELETE => "/auth/sessions/$sid{three}"), 401, 'unauthorized', 'delete without a token');
is(me_status($a, $w3->{json}{access_token}), 200, 'session three untouched');
is(client_api($a, $w3->{json}{access_token}, DELETE => "/auth/sessions/$sid{three}")->{status}, 204, 'delete my own current session');
is(me_status($a, $w3->{json}{access_token}), 401, 'which ends it');
is(me_status($a, $w->{access}), 200, 'the first session lives on');

done_testing();
