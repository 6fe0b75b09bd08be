#!/usr/bin/perl
# Password reset: "forgot" answers 202 whatever the address and queues one
# reset email a minute for an active account; the reset token is single use,
# expires, is superseded by a newer one, belongs to its tenant, survives a
# refused password, and a reset ends every session of the account.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;
use Atrium::Auth;
use Digest::SHA qw(sha256_hex);

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;
my $a = new_tenant();
my $b = new_tenant();

sub forgot { my ($t, $email) = @_; auth_api($t, POST => '/auth/password/forgot', json => { email => $email }) }
sub do_reset { my ($t, $tok, $pw) = @_; auth_api($t, POST => '/auth/password/reset', json => { token => $tok, password => $pw }) }
sub resets_of { my ($t, $user) = @_; outbox_rows($t, 'password_reset', $user->{id}) }
sub tenant_resets {
    my ($t) = @_;
    sql_in($t, "SELECT count(*) FROM outbox WHERE tenant_id = '$t->{tenant_id}' AND template = 'password_reset'");
}
sub link_re {
    my ($t) = @_;
    my $pp = env_of('ATRIUM_PUBLIC_PORT') // 443;
    my $port = $pp == 443 ? '' : ":$pp";
    return qr{^https://\Q$t->{host}$port\E/reset#token=($TOKEN)$};
}

# The link of the newest reset email of a user: from the outbox row, or
# from the catcher when the notifier already sent it (and stripped the link).
my (%used_mail, %seen_token);
sub reset_link {
    my ($t, $user) = @_;
    my $rows = resets_of($t, $user);
    my $row = $rows->[-1] // return undef;
    my $link = $row->{payload}{link};
    while (!defined $link) {
        # a message to this address with a link of this tenant and a token not seen yet
        my $msg = mail_for($user->{email}, 10, skip => \%used_mail, match => qr{https://\Q$t->{host}\E\S*/reset#token=})
            // return undef;
        my ($l) = (mail_text($msg) // '') =~ m{(https://\S+/reset#token=[A-Za-z0-9_-]+)};
        $link = $l if defined $l && !$seen_token{ invite_token($l) // '' };
    }
    $seen_token{ invite_token($link) // '' } = 1;
    return $link;
}

# a reset made older than the one-a-minute window
sub age_resets {
    my ($t, $user) = @_;
    sql_in($t, "UPDATE password_resets SET created_at = now() - interval '2 minutes'"
        . " WHERE tenant_id = '$t->{tenant_id}' AND user_id = '$user->{id}'");
}

# ---------------------------------------------------------------- forgot

my $u = onboard($a, name => 'Gina Reset');
my $s2 = login($a, $u->{email}, $u->{password});
my $before = tenant_resets($a);

my $r = forgot($a, uc $u->{email});
is($r->{status}, 202, 'forgot: 202');
is($r->{content} // '', '', 'no body');
my $rows = resets_of($a, $u);
is(scalar @$rows, 1, 'one outbox row (email matched case-insensitively)');
my $row = $rows->[0] // {};
is($row->{address}, $u->{email}, 'addressed to the account email');
is($row->{channel}, 'email', 'channel email');
is($row->{recipient_kind}, 'client', 'recipient kind client');
like($row->{dedupe_key} // '', qr/^reset:/, 'dedupe key reset:<id>');
my $link = reset_link($a, $u);
like($link // '', link_re($a), 'payload.link is https://host[:port]/reset#token=<43>');
my $tok = invite_token($link);

my $rttl = env_of('ATRIUM_RESET_TTL') // 3600;
is(sql_in($a, "SELECT extract(epoch FROM expires_at - created_at)::integer FROM password_resets"
        . " WHERE tenant_id = '$a->{tenant_id}' AND token_sha256 = decode('" . sha256_hex($tok // '') . "', 'hex')"),
    $rttl, "the reset is stored as the SHA-256 of the token and lives ATRIUM_RESET_TTL ($rttl s)");

$r = forgot($a, $u->{email});
is($r->{status}, 202, 'forgot again within a minute: 202');
is(scalar @{ resets_of($a, $u) }, 1, 'but no second email');

my $resp_unknown = forgot($a, 'nobody.' . random_code('n') . '@client.example');
is($resp_unknown->{status}, 202, 'unknown email: 202');
is($resp_unknown->{content} // '', '', 'unknown email: the same empty answer');
my $invited = new_client($a);
is(forgot($a, $invited->{email})->{status}, 202, 'a client who never accepted: 202');
my $dis = onboard($a);
team_api($a, PATCH => "/team/clients/$dis->{id}", json => { status => 'disabled' });
is(forgot($a, $dis->{email})->{status}, 202, 'a disabled client: 202');
is(tenant_resets($a), $before + 1, 'only the active account got an outbox row');
is(forgot($b, $u->{email})->{status}, 202, "A's email on B: 202");
is(tenant_resets($b), 0, 'no row in B');

$r = auth_api($a, POST => '/auth/password/forgot', json => {});
is($r->{status}, 422, 'forgot without an email: 422');
$r = auth_api($a, POST => '/auth/password/forgot', json => { email => $u->{email}, password => 'x' });
is($r->{status}, 422, 'forgot with an unknown field: 422');

# ---------------------------------------------------------------- reset

my $rand43 = join('', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9)[rand 62] } 1 .. 43);
is_problem(do_reset($a, $rand43, strong_password()), 404, 'token_invalid', 'reset with a random token');
is_problem(do_reset($a, 'x', strong_password()), 404, 'token_invalid', 'reset with a one-character token');
is_problem(do_reset($a, "$tok=", strong_password()), 404, 'token_invalid', 'reset with the token plus a character');
is_problem(do_reset($b, $tok, strong_password()), 404, 'token_invalid', "A's token on B's host");

for my $case (['too short', 'Short-pw-14chr', 'too_short'], ['too long', 'L' x 257, 'too_long'],
    ['common', 'passwordpassword', 'common_password'], ['the email', uc $u->{email}, 'common_password']) {
    $r = do_reset($a, $tok, $case->[1]);
    ok($r->{status} == 422 && grep({ $_->{field} eq 'password' && $_->{code} eq $case->[2] } @{ $r->{json}{errors} // [] }),
        "reset with a password $case->[0]: 422 password/$case->[2]") or diag explain $r->{json};
}
is(login($a, $u->{email}, $u->{password})->{status}, 200, 'refused resets changed nothing: the old password works');

my $newpw = strong_password();
$r = do_reset($a, $tok, $newpw);
is($r->{status}, 204, 'reset: 204');
is_problem(login($a, $u->{email}, $u->{password}), 401, 'invalid_credentials', 'the old password stops working');
is(login($a, $u->{email}, $newpw)->{status}, 200, 'the new one works');
is(client_api($a, $u->{access}, GET => '/me')->{status}, 401, 'the first session was revoked');
is(client_api($a, $s2->{json}{access_token}, GET => '/me')->{status}, 401, 'the second session was revoked');
is(auth_api($a, POST => '/auth/refresh', headers => cookie_header(refresh_of($s2)))->{status}, 401, 'its refresh token too');
is_problem(do_reset($a, $tok, strong_password()), 404, 'token_invalid', 'the token is single use');
is(login($a, $u->{email}, $newpw)->{status}, 200, 'the second attempt changed nothing');
$r = team_api($a, GET => '/team/audit?action=password.reset');
ok((grep { ($_->{target}{id} // '') eq $u->{id} } @{ $r->{json}{data} // [] }), 'audit: password.reset');

# ---------------------------------------------------------------- expiry, superseding, disabling, tenants

my $e = onboard($a);
forgot($a, $e->{email});
my $etok = invite_token(reset_link($a, $e));
ok(defined $etok, 'a token for the expiry test');
sql_in($a, "UPDATE password_resets SET expires_at = now() - interval '1 second'"
    . " WHERE tenant_id = '$a->{tenant_id}' AND user_id = '$e->{id}'");
is_problem(do_reset($a, $etok, strong_password()), 404, 'token_invalid', 'an expired token');
is(login($a, $e->{email}, $e->{password})->{status}, 200, 'nothing changed');

my $s = onboard($a);
forgot($a, $s->{email});
my $stok1 = invite_token(reset_link($a, $s));
age_resets($a, $s);
forgot($a, $s->{email});
is(scalar @{ resets_of($a, $s) }, 2, 'after a minute a second email is sent');
my $stok2 = invite_token(reset_link($a, $s));
isnt($stok2, $stok1, 'with a new token');
is_problem(do_reset($a, $stok1, strong_password()), 404, 'token_invalid', 'the earlier token is superseded');
is(do_reset($a, $stok2, strong_password())->{status}, 204, 'the newer one works');

my $d = onboard($a);
forgot($a, $d->{email});
my $dtok = invite_token(reset_link($a, $d));
team_api($a, PATCH => "/team/clients/$d->{id}", json => { status => 'disabled' });
is_problem(do_reset($a, $dtok, strong_password()), 404, 'token_invalid', 'the token of an account disabled since');

my $ub = onboard($b, email => $u->{email});
forgot($b, $ub->{email});
my $blink = reset_link($b, $ub);
my $btok = invite_token($blink);
like($blink // '', link_re($b), "B's link names B's host");
is_problem(do_reset($a, $btok, strong_password()), 404, 'token_invalid', "B's token on A's host");
is(login($a, $u->{email}, $newpw)->{status}, 200, "A's account untouched");
my $bpw = strong_password();
is(do_reset($b, $btok, $bpw)->{status}, 204, "B's token on B");
is(login($b, $ub->{email}, $bpw)->{status}, 200, "B's new password on B");
is_problem(login($a, $u->{email}, $bpw), 401, 'invalid_credentials', "B's new password is not A's");

done_testing();
