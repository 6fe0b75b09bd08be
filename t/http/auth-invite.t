#!/usr/bin/perl
# Client invites: the team's invite (link or email, project grants, one live
# invite per client), inspecting and accepting it (single use, a refused
# password leaves it usable, two racing accepts give one session), invites
# bound to their tenant, the outbox row of an emailed invite and, when the
# notifier delivers it, the whole flow from the email.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::Local qw(timegm);
use Atrium::Test;
use Atrium::Auth;
use Digest::SHA qw(sha256_hex);

my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
my $TIME = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
my $NOBODY = '00000000-0000-4000-8000-000000000000';
my $TOKEN = qr/[A-Za-z0-9_-]{43}/;

my $a = new_tenant(name => 'Alpha Agency');
my $b = new_tenant(name => 'Beta Studio');

sub epoch_of {
    my ($s) = @_;
    my @f = ($s // '') =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$/ or return undef;
    return timegm($f[5], $f[4], $f[3], $f[2], $f[1] - 1, $f[0]);
}

sub link_re {
    my ($t, $page) = @_;
    my $pp = env_of('ATRIUM_PUBLIC_PORT') // 443;
    my $port = $pp == 443 ? '' : ":$pp";
    return qr{^https://\Q$t->{host}$port\E/$page#token=($TOKEN)$};
}

sub inspect { my ($t, $tok) = @_; auth_api($t, POST => '/auth/invite/inspect', json => { token => $tok }) }

sub member_ids {
    my ($t, $project_id) = @_;
    my $r = team_api($t, GET => "/team/projects/$project_id/members");
    die "members: $r->{status}" unless $r->{status} == 200;
    return [ sort map { $_->{client_id} } @{ $r->{json}{data} } ];
}

# ---------------------------------------------------------------- emailed invite (first: mail takes time)

my $mailc = new_client($a, email => random_email('mail'), name => 'Beatriz Souza');
my $r = invite($a, $mailc->{id});
is($r->{status}, 201, 'invite with the default delivery (email)');
like($r->{json}{invite_id}, $UUID, 'invite_id');
like($r->{json}{expires_at}, $TIME, 'expires_at');
ok(!exists $r->{json}{invite_url}, 'no invite_url for an emailed invite');
my $ttl = env_of('ATRIUM_INVITE_TTL') // 604800;
ok(abs(epoch_of($r->{json}{expires_at}) - (time + $ttl)) < 120, "expires ATRIUM_INVITE_TTL ($ttl s) from now");
my $mail_invite = $r->{json};

my $rows = outbox_rows($a, 'invite', $mailc->{id});
is(scalar @$rows, 1, 'one outbox row for the emailed invite');
my $row = $rows->[0] // {};
is($row->{address}, $mailc->{email}, 'outbox address is the client email');
is($row->{channel}, 'email', 'outbox channel email');
is($row->{recipient_kind}, 'client', 'outbox recipient kind client');
is($row->{dedupe_key}, "invite:$mail_invite->{invite_id}", 'outbox dedupe key names the invite');
my $outbox_link = $row->{payload}{link};
if (($row->{status} // '') eq 'pending' || defined $outbox_link) {
    like($outbox_link // '', link_re($a, 'invite'), 'outbox payload.link is the invite link');
} else {
    pass("outbox row already $row->{status} (the notifier strips the link once sent)");
}

# ---------------------------------------------------------------- link invite

my $c1 = new_client($a, email => 'Bruna.Reis+' . random_code('x') . '@Example.org', name => 'Bruna Reis');
$r = invite($a, $c1->{id}, delivery => 'link');
is($r->{status}, 201, 'link invite');
like($r->{json}{invite_id}, $UUID, 'link invite: invite_id');
like($r->{json}{expires_at}, $TIME, 'link invite: expires_at');
like($r->{json}{invite_url} // '', link_re($a, 'invite'), 'invite_url is https://host[:port]/invite#token=<43>');
ok(no_store($r), 'an answer carrying an invite token is Cache-Control: no-store');
unlike($r->{json}{invite_url} // '', qr/\?/, 'the token is not in a query string');
my $tok1 = invite_token($r->{json}{invite_url});
is_deeply(outbox_rows($a, 'invite', $c1->{id}), [], 'a link invite writes no outbox row');

# only the SHA-256 of the token is stored
is(sql_in($a, "SELECT encode(token_sha256, 'hex') FROM invites WHERE tenant_id = '$a->{tenant_id}'"
        . " AND id = '$r->{json}{invite_id}'"), sha256_hex($tok1), 'the invite stores the SHA-256 of the token');
is(sql_in($a, "SELECT count(*) FROM invites WHERE tenant_id = '$a->{tenant_id}'"
        . " AND position(convert_to('$tok1', 'UTF8') in token_sha256) > 0"), 0, 'and not the token itself');

# a new invite invalidates the earlier one
$r = invite($a, $c1->{id}, delivery => 'link');
is($r->{status}, 201, 'second invite');
my $tok2 = invite_token($r->{json}{invite_url});
isnt($tok2, $tok1, 'a new token');
my $inv2 = $r->{json};
is_problem(inspect($a, $tok1), 404, 'invite_invalid', 'the earlier (revoked) invite');

# inspect
$r = inspect($a, $tok2);
is($r->{status}, 200, 'inspect');
my ($domain) = $c1->{email} =~ /(\@.*)$/;
is($r->{json}{email_hint}, 'B***' . $domain, 'email_hint is first character, ***, @domain');
is($r->{json}{name}, 'Bruna Reis', 'name');
is($r->{json}{tenant_display_name}, api(GET => '/branding', host => $a->{host})->{json}{display_name},
    'tenant_display_name is the branding display name');
is($r->{json}{expires_at}, $inv2->{expires_at}, 'expires_at of the invite');
is_deeply([ sort keys %{ $r->{json} } ], [qw(email_hint expires_at name tenant_display_name)], 'nothing else');
is(inspect($a, $tok2)->{status}, 200, 'inspect does not consume');

# bad tokens
my %bad = (
    'random 43 characters' => join('', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9, '-', '_')[rand 64] } 1 .. 43),
    'one character'        => 'x',
    '44 characters'        => $tok2 . 'A',
    '42 characters'        => substr($tok2, 0, 42),
    'dots'                 => ('.' x 43),
    'SQL'                  => q{' OR 1=1 --},
    'the invite id'        => $inv2->{invite_id},
    'upper-cased token'    => uc $tok2,
);
for my $case (sort keys %bad) {
    next if $bad{$case} eq $tok2;
    is_problem(inspect($a, $bad{$case}), 404, 'invite_invalid', "inspect: $case");
}
$r = auth_api($a, POST => '/auth/invite/inspect', json => {});
is($r->{status}, 422, 'inspect without a token: 422');

# unknown, foreign, malformed client ids; an active client
my $bc = new_client($b);
is_problem(invite($a, $NOBODY), 404, 'not_found', 'invite of an unknown client');
is_problem(invite($a, $bc->{id}), 404, 'not_found', "invite of B's client on A");
is_problem(invite($a, 'not-a-uuid'), 404, 'not_found', 'invite of a non-UUID id');
$r = invite($a, $c1->{id}, delivery => 'sms');
ok($r->{status} == 422 && grep({ $_->{field} eq 'delivery' && $_->{code} eq 'invalid_enum' } @{ $r->{json}{errors} // [] }),
    'delivery sms: 422 invalid_enum');
is(inspect($a, $tok2)->{status}, 200, 'refused invites leave the live one alone');

# ---------------------------------------------------------------- accept

my $pw1 = strong_password();
$r = accept_invite($a, $tok2, $pw1, name => 'Bruna R.');
is($r->{status}, 200, 'accept');
my $s = $r->{json};
like($s->{access_token} // '', qr/^[\w-]+\.[\w-]+\.[\w-]+$/, 'access_token is a JWS');
is($s->{token_type}, 'Bearer', 'token_type Bearer');
is($s->{expires_in}, access_ttl(), 'expires_in is ATRIUM_ACCESS_TTL');
is_deeply($s->{user}, { id => $c1->{id}, email => $c1->{email}, name => 'Bruna R.' }, 'user {id,email,name}, name from the accept');
is_deeply([ sort keys %$s ], [qw(access_token expires_in token_type user)], 'session result fields');
ok(no_store($r), 'session answer: Cache-Control no-store');
my $cookie = set_cookie_of($r);
ok(defined $cookie, 'Set-Cookie atrium_refresh');
like(refresh_of($r) // '', qr/^$TOKEN$/, 'refresh token: 43 characters base64url');
my $attrs = cookie_attrs($cookie);
is($attrs->{path}, '/api/portal/v1/auth', 'cookie Path=/api/portal/v1/auth');
ok($attrs->{httponly}, 'cookie HttpOnly');
ok($attrs->{secure}, 'cookie Secure');
is(lc($attrs->{samesite} // ''), 'strict', 'cookie SameSite=Strict');
ok(!defined $attrs->{domain}, 'cookie has no Domain (host-only)');
ok(!defined $attrs->{'max-age'} || $attrs->{'max-age'} > 0, 'cookie not expired');

$r = client_api($a, $s->{access_token}, GET => '/me');
is($r->{status}, 200, '/me with the new token');
is($r->{json}{email}, $c1->{email}, '/me is the invited client');
is($r->{json}{name}, 'Bruna R.', 'name set by the accept');
$r = team_api($a, GET => "/team/clients/$c1->{id}");
is($r->{json}{status}, 'active', 'the client is active');
ok(defined $r->{json}{last_login_at}, 'last_login_at set by the accept');

is_problem(accept_invite($a, $tok2, strong_password()), 404, 'invite_invalid', 'second accept of the same token');
is_problem(inspect($a, $tok2), 404, 'invite_invalid', 'inspect of a used invite');
is_problem(invite($a, $c1->{id}, delivery => 'link'), 409, 'invalid_state', 'invite of an active client');
is(login($a, $c1->{email}, $pw1)->{status}, 200, 'the accepted password logs in');

# audit
for my $action (qw(client.invite invite.accept session.create)) {
    $r = team_api($a, GET => "/team/audit?action=$action");
    ok((grep { ($_->{target}{id} // '') eq $c1->{id} } @{ $r->{json}{data} // [] }), "audit: $action of the client")
        or diag explain $r->{json};
}

# ---------------------------------------------------------------- refused passwords leave the invite usable

my $c2 = new_client($a, email => random_email('pw'), name => 'Carla Dias');
$r = invite($a, $c2->{id}, delivery => 'link');
my $tokp = invite_token($r->{json}{invite_url});
my %refused = (
    '14 characters'                => [ 'Zq8-vT3x!Lm0pW',        'too_short' ],
    '14 code points, 28 bytes'     => [ "\x{e9}" x 14,           'too_short' ],
    '257 characters'               => [ 'k' x 257,               'too_long' ],
    'common: passwordpassword'     => [ 'passwordpassword',      'common_password' ],
    'common: 1qaz2wsx3edc4rfv'     => [ '1qaz2wsx3edc4rfv',      'common_password' ],
    'common, other case'           => [ 'PassWordPassWORD',      'common_password' ],
    'the account email'            => [ $c2->{email},            'common_password' ],
    'the account email upper-case' => [ uc $c2->{email},         'common_password' ],
);
for my $case (sort keys %refused) {
    my ($pw, $code) = @{ $refused{$case} };
    $r = accept_invite($a, $tokp, $pw);
    ok($r->{status} == 422 && ($r->{json}{code} // '') eq 'validation_failed'
            && grep({ $_->{field} eq 'password' && $_->{code} eq $code } @{ $r->{json}{errors} // [] }),
        "accept with $case: 422 password/$code")
        or diag explain { status => $r->{status}, body => $r->{json} };
    ok(!defined set_cookie_of($r), "$case: no cookie");
}
$r = accept_invite($a, $tokp, strong_password(), name => "  \t");
is($r->{status}, 422, 'accept with a blank name: 422');
$r = auth_api($a, POST => '/auth/invite/accept', json => { token => $tokp });
is($r->{status}, 422, 'accept without a password: 422');
$r = auth_api($a, POST => '/auth/invite/accept', json => { token => $tokp, password => strong_password(), role => 'admin' });
is($r->{status}, 422, 'accept with an unknown field: 422');
is(team_api($a, GET => "/team/clients/$c2->{id}")->{json}{status}, 'invited', 'still invited after the refusals');
is(inspect($a, $tokp)->{status}, 200, 'the invite survived every refused accept');
my $pw15 = 'Zq8-vT3x!Lm0pW2';
$r = accept_invite($a, $tokp, $pw15);
is($r->{status}, 200, 'then a 15-character password is accepted');
is($r->{json}{user}{name}, 'Carla Dias', 'name kept when the accept sends none');

# 256 code points (512 bytes) is the upper bound
my $c3 = new_client($a);
$r = invite($a, $c3->{id}, delivery => 'link');
my $pw256 = join('', map { chr(0xe0 + $_ % 26) } 1 .. 256);
$r = accept_invite($a, invite_token($r->{json}{invite_url}), $pw256);
is($r->{status}, 200, 'a 256-code-point password is accepted');
is(login($a, $c3->{email}, $pw256)->{status}, 200, 'and logs in');

# ---------------------------------------------------------------- expiry

my $c4 = new_client($a);
$r = invite($a, $c4->{id}, delivery => 'link');
my $tokx = invite_token($r->{json}{invite_url});
is(inspect($a, $tokx)->{status}, 200, 'fresh invite inspects');
sql_in($a, "UPDATE invites SET expires_at = now() - interval '1 second' WHERE tenant_id = '$a->{tenant_id}'"
    . " AND id = '$r->{json}{invite_id}'");
is_problem(inspect($a, $tokx), 404, 'invite_invalid', 'inspect of an expired invite');
is_problem(accept_invite($a, $tokx, strong_password()), 404, 'invite_invalid', 'accept of an expired invite');
$r = invite($a, $c4->{id}, delivery => 'link');
is($r->{status}, 201, 'an expired invite can be replaced');
is(inspect($a, invite_token($r->{json}{invite_url}))->{status}, 200, 'the replacement works');

# a disabled client's invite is dead
my $c5 = new_client($a);
$r = invite($a, $c5->{id}, delivery => 'link');
my $tokd = invite_token($r->{json}{invite_url});
is(team_api($a, PATCH => "/team/clients/$c5->{id}", json => { status => 'disabled' })->{status}, 200, 'disable an invited client');
is_problem(accept_invite($a, $tokd, strong_password()), 404, 'invite_invalid', 'accept of a disabled client');

# ---------------------------------------------------------------- project grants

my $p1 = new_project($a);
my $p2 = new_project($a);
my $p3 = new_project($a);
my $pb = new_project($b);
my $c6 = new_client($a);
$r = invite($a, $c6->{id}, delivery => 'link', project_ids => [ $p1->{id}, $p2->{id} ]);
is($r->{status}, 201, 'invite with project_ids');
my $tok6 = invite_token($r->{json}{invite_url});
ok((grep { $_ eq $c6->{id} } @{ member_ids($a, $p1->{id}) }), 'member of the first project');
ok((grep { $_ eq $c6->{id} } @{ member_ids($a, $p2->{id}) }), 'member of the second project');
ok(!(grep { $_ eq $c6->{id} } @{ member_ids($a, $p3->{id}) }), 'not of a project not named');

$r = invite($a, $c6->{id}, delivery => 'link', project_ids => [ $p3->{id}, $pb->{id} ]);
ok($r->{status} == 422 && grep({ $_->{field} eq 'project_ids[1]' && $_->{code} eq 'invalid_reference' } @{ $r->{json}{errors} // [] }),
    "a project of B in project_ids: 422 project_ids[1] invalid_reference")
    or diag explain $r->{json};
ok(!(grep { $_ eq $c6->{id} } @{ member_ids($a, $p3->{id}) }), 'nothing granted: not a member of the valid project either');
ok(!(grep { $_ eq $c6->{id} } @{ member_ids($b, $pb->{id}) }), "nothing granted in B");
is(inspect($a, $tok6)->{status}, 200, 'the refused invite did not revoke the live one');
$r = invite($a, $c6->{id}, delivery => 'link', project_ids => [$NOBODY]);
ok($r->{status} == 422 && grep({ $_->{field} =~ /^project_ids/ && $_->{code} eq 'invalid_reference' } @{ $r->{json}{errors} // [] }),
    'an unknown project id: 422 invalid_reference');
$r = invite($a, $c6->{id}, delivery => 'link', project_ids => ['nope']);
is($r->{status}, 422, 'a non-UUID project id: 422');

is_problem(invite($a, $c1->{id}, delivery => 'link', project_ids => [ $p3->{id} ]), 409, 'invalid_state',
    'invite of an active client with project_ids');
ok(!(grep { $_ eq $c1->{id} } @{ member_ids($a, $p3->{id}) }), 'the refused invite granted nothing');

# no body at all: the default delivery
my $c8 = new_client($a);
$r = team_api($a, POST => "/team/clients/$c8->{id}/invite");
is($r->{status}, 201, 'invite without a body');
ok(!exists $r->{json}{invite_url}, 'emailed by default');
is(scalar @{ outbox_rows($a, 'invite', $c8->{id}) }, 1, 'one outbox row');

# Idempotency-Key (API.md: every POST that creates, all team creates): a
# retried invite must replay, not revoke the link just sent
my $c9 = new_client($a);
my $key = { 'idempotency-key' => 'invite-' . random_code('k') };
my $r1 = team_api($a, POST => "/team/clients/$c9->{id}/invite", json => { delivery => 'email' }, headers => $key);
is($r1->{status}, 201, 'invite with an Idempotency-Key');
my $r2 = team_api($a, POST => "/team/clients/$c9->{id}/invite", json => { delivery => 'email' }, headers => $key);
is($r2->{status}, 201, 'the same request again: 201');
is($r2->{json}{invite_id}, $r1->{json}{invite_id}, 'the repeat replays the same invite');
is($r2->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed: true');
is(scalar @{ outbox_rows($a, 'invite', $c9->{id}) }, 1, 'one email, not two');
$r = team_api($a, POST => "/team/clients/$c9->{id}/invite", json => { delivery => 'link' }, headers => $key);
is_problem($r, 409, 'idempotency_conflict', 'the same key with another body');
$r = team_api($a, POST => "/team/clients/$c9->{id}/invite", json => { delivery => 'link' },
    headers => { 'idempotency-key' => 'k' x 129 });
is_problem($r, 400, 'bad_header', 'an Idempotency-Key of 129 characters');

# ---------------------------------------------------------------- invites belong to their tenant

my $cb = new_client($b, email => $c6->{email});
$r = invite($b, $cb->{id}, delivery => 'link');
my $like_host = link_re($b, 'invite');
like($r->{json}{invite_url}, $like_host, "B's link names B's host");
my $tokb = invite_token($r->{json}{invite_url});
is_problem(inspect($a, $tokb), 404, 'invite_invalid', "B's invite inspected on A's host");
is_problem(accept_invite($a, $tokb, strong_password()), 404, 'invite_invalid', "B's invite accepted on A's host");
is_problem(inspect($b, $tok6), 404, 'invite_invalid', "A's invite inspected on B's host");
is_problem(accept_invite($b, $tok6, strong_password()), 404, 'invite_invalid', "A's invite accepted on B's host");
is(inspect($b, $tokb)->{status}, 200, "B's invite still good on B");
is(team_api($a, GET => "/team/clients/$c6->{id}")->{json}{status}, 'invited', "A's client untouched");

# ---------------------------------------------------------------- two accepts at once

my $c7 = new_client($a);
$r = invite($a, $c7->{id}, delivery => 'link');
my $tokr = invite_token($r->{json}{invite_url});
my @res = forked_requests(map { [ $a->{host}, 'POST', '/auth/invite/accept', { token => $tokr, password => strong_password() } ] } 1 .. 2);
my @st = sort map { $_->[0] } @res;
is_deeply(\@st, [ 200, 404 ], 'two concurrent accepts: one 200, one 404') or diag explain \@res;
my ($lost) = grep { $_->[0] == 404 } @res;
is(($lost->[1] // {})->{code}, 'invite_invalid', 'the loser gets invite_invalid');
is(sql_in($a, "SELECT count(*) FROM portal_sessions WHERE tenant_id = '$a->{tenant_id}' AND user_id = '$c7->{id}'"),
    1, 'exactly one session was created');

# ---------------------------------------------------------------- the emailed invite, end to end

SKIP: {
    my $msg = mail_for($mailc->{email}, 10);
    skip 'no invite email reached the catcher within 10 s (notifier not running)', 8 unless defined $msg;
    my $text = mail_text($msg) // '';
    my ($link) = $text =~ m{(https://\S+/invite#token=[A-Za-z0-9_-]+)};
    like($link // '', link_re($a, 'invite'), 'the email carries the invite link');
    is($link, $outbox_link, 'the same link as the outbox row') if defined $outbox_link;
    ok(1, 'link checked against the outbox') unless defined $outbox_link;
    my $tok = invite_token($link);
    $r = inspect($a, $tok);
    is($r->{status}, 200, 'inspect from the email');
    like($r->{json}{email_hint} // '', qr/^\Q${\ substr($mailc->{email}, 0, 1)}\E\*\*\*\@client\.example$/, 'email_hint');
    $r = accept_invite($a, $tok, strong_password());
    is($r->{status}, 200, 'accept from the email');
    my $me = client_api($a, $r->{json}{access_token}, GET => '/me');
    is($me->{status}, 200, '/me after the emailed invite');
    is($me->{json}{email}, $mailc->{email}, 'it is the mailed client');
    is($me->{json}{name}, 'Beatriz Souza', 'name from the team');
}

done_testing();
