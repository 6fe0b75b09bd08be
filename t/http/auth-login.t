#!/usr/bin/perl
# Client login: case-insensitive email, one indistinguishable answer for an
# unknown email and a wrong password, disabled accounts, the per-tenant,
# per-email lockout with backoff (unknown emails too; 400/422 answers do not
# count; a success resets it), and the same email in two tenants being two
# unrelated accounts.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time sleep);
use List::Util qw(min);
use Atrium::Test;
use Atrium::Auth;

my $a = new_tenant();
my $b = new_tenant();

sub shape {
    my ($r) = @_;
    my %j = %{ $r->{json} // {} };
    delete $j{request_id};
    return { status => $r->{status}, type => $r->{headers}{'content-type'}, body => \%j };
}

sub locked_ok {
    my ($r, $name) = @_;
    is_problem($r, 429, 'account_locked', $name);
    like($r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, "$name: Retry-After in seconds");
    ok(!defined set_cookie_of($r), "$name: no cookie");
    return $r->{headers}{'retry-after'};
}

# ---------------------------------------------------------------- success, email case

my $mixed = 'Dora.Lopes.' . random_code('d') . '@Client.Example';
my $u = onboard($a, email => $mixed, name => 'Dora Lopes');
for my $e ($mixed, lc $mixed, uc $mixed) {
    my $r = login($a, $e, $u->{password});
    is($r->{status}, 200, "login as $e");
    is($r->{json}{user}{id}, $u->{id}, "$e: the same account");
    is($r->{json}{user}{email}, $mixed, "$e: email as stored");
}
my $r = login($a, $mixed, $u->{password});
is($r->{json}{token_type}, 'Bearer', 'session result');
is($r->{json}{expires_in}, access_ttl(), 'expires_in');
like(refresh_of($r) // '', qr/^[A-Za-z0-9_-]{43}$/, 'refresh cookie');
ok(no_store($r), 'login answer: Cache-Control no-store');
is(client_api($a, $r->{json}{access_token}, GET => '/me')->{json}{id}, $u->{id}, '/me with the login token');
ok(defined team_api($a, GET => "/team/clients/$u->{id}")->{json}{last_login_at}, 'last_login_at set');

# ---------------------------------------------------------------- unknown email = wrong password

my $wrong = login($a, $mixed, $u->{password} . 'x');
my $ghost = login($a, 'nobody.' . random_code('g') . '@client.example', $u->{password});
is_problem($wrong, 401, 'invalid_credentials', 'wrong password');
is_problem($ghost, 401, 'invalid_credentials', 'unknown email');
is_deeply(shape($ghost), shape($wrong), 'unknown email and wrong password: the same answer apart from request_id');
ok(!defined set_cookie_of($wrong) && !defined set_cookie_of($ghost), 'no cookie on a failed login');
my $invited = new_client($a);
is_deeply(shape(login($a, $invited->{email}, 'any-password-of-15')), shape($wrong),
    'a client who never accepted an invite: the same answer');

# the same work: an unknown email costs an argon2 verification too
{
    my $t = onboard($a);
    my (@w, @g);
    for (1 .. 2) {
        my $t0 = time;
        login($a, $t->{email}, 'not-the-password-' . $_);
        push @w, time - $t0;
        $t0 = time;
        login($a, 'ghost-' . random_code('t') . '@client.example', 'not-the-password-' . $_);
        push @g, time - $t0;
    }
    my ($mw, $mg) = (min(@w), min(@g));
    ok($mg >= 0.3 * $mw, sprintf('unknown email takes as long as a wrong password (%.0f ms vs %.0f ms)', 1000 * $mg, 1000 * $mw));
}

# ---------------------------------------------------------------- validation does not count

my $m = onboard($a);
login($a, $m->{email}, "wrong-password-$_") for 1 .. 4;
my %bad = (
    'empty password'     => { email => $m->{email}, password => '' },
    '257-char password'  => { email => $m->{email}, password => 'p' x 257 },
    'no password'        => { email => $m->{email} },
    'numeric password'   => { email => $m->{email}, password => 12345678901234567 },
    'unknown field'      => { email => $m->{email}, password => 'wrong-password-x', remember => JSON::PP::true },
);
for my $case (sort keys %bad) {
    $r = auth_api($a, POST => '/auth/login', json => $bad{$case});
    is($r->{status}, 422, "$case: 422");
}
$r = auth_api($a, POST => '/auth/login', body => '{"email":', type => 'application/json');
is($r->{status}, 400, 'malformed JSON: 400');
$r = auth_api($a, POST => '/auth/login', body => 'email=x&password=y', type => 'application/x-www-form-urlencoded');
is($r->{status}, 415, 'a form body: 415');
is(login($a, $m->{email}, $m->{password})->{status}, 200, 'after 4 failures and many 400/422: not locked');
# the success reset the counter: 4 more failures still do not lock
login($a, $m->{email}, "wrong-again-$_") for 1 .. 4;
is(login($a, uc $m->{email}, $m->{password})->{status}, 200, 'a success resets the counter (4 + 4 failures, no lock)');

# ---------------------------------------------------------------- disabled accounts

my $d = onboard($a);
is(team_api($a, PATCH => "/team/clients/$d->{id}", json => { status => 'disabled' })->{status}, 200, 'disable');
is_problem(login($a, $d->{email}, $d->{password}), 403, 'account_disabled', 'disabled, right password');
$r = login($a, $d->{email}, $d->{password} . 'x');
is_problem($r, 401, 'invalid_credentials', 'disabled, wrong password');
is_deeply(shape($r), shape($wrong), 'disabled + wrong password: the ordinary 401');
is(team_api($a, PATCH => "/team/clients/$d->{id}", json => { status => 'active' })->{status}, 200, 'enable again');
is(login($a, $d->{email}, $d->{password})->{status}, 200, 'enabled: login works');

# ---------------------------------------------------------------- same email, two tenants

my $shared = random_email('both');
my $sa = onboard($a, email => $shared);
my $sb = onboard($b, email => $shared);
isnt($sa->{password}, $sb->{password}, 'two passwords');
isnt($sa->{id}, $sb->{id}, 'two accounts');
is(login($a, $shared, $sa->{password})->{json}{user}{id}, $sa->{id}, "A's password on A");
is(login($b, $shared, $sb->{password})->{json}{user}{id}, $sb->{id}, "B's password on B");
is_problem(login($a, $shared, $sb->{password}), 401, 'invalid_credentials', "B's password on A");
is_problem(login($b, $shared, $sa->{password}), 401, 'invalid_credentials', "A's password on B");

# ---------------------------------------------------------------- lockout

# five failures, whatever the case of the email, then every attempt is refused
# (a success first: the cross-tenant checks above counted one failure)
is(login($a, $shared, $sa->{password})->{status}, 200, 'a success clears the earlier failure');
my @cases = ($shared, uc $shared, ucfirst $shared, $shared, uc $shared);
for my $i (0 .. 4) {
    is_problem(login($a, $cases[$i], "wrong-password-no-$i"), 401, 'invalid_credentials', 'failure ' . ($i + 1));
}
my $ra = locked_ok(login($a, $shared, 'wrong-password-no-6'), '6th attempt, wrong password');
locked_ok(login($a, $shared, $sa->{password}), 'locked: even the right password');
locked_ok(login($a, lc $shared, $sa->{password}), 'locked: lower-case email');
my $base = env_of('ATRIUM_LOCKOUT_BASE_S');
ok(!defined $base || $ra <= $base, 'Retry-After within ATRIUM_LOCKOUT_BASE_S (' . ($base // 'unset') . ')');

# the lock is per tenant: the same email on B is free
is(login($b, $shared, $sb->{password})->{status}, 200, "A's lock does not touch B's account");

# unknown emails lock the same way (the lock reveals nothing)
my $nobody = 'ghost.' . random_code('n') . '@client.example';
is_problem(login($a, $nobody, "guess-number-$_"), 401, 'invalid_credentials', "unknown email failure $_") for 1 .. 5;
locked_ok(login($a, $nobody, 'guess-number-6'), 'unknown email: locked after 5 failures');
is_problem(login($b, $nobody, 'guess-number-7'), 401, 'invalid_credentials', 'the unknown email is not locked on B');

# the window is 15 minutes: older failures do not count
my $win = onboard($a);
login($a, $win->{email}, "old-failure-$_") for 1 .. 4;
my $wkey = lc $win->{email};
sql_in($a, "UPDATE login_throttle SET window_started_at = now() - interval '16 minutes'"
    . " WHERE tenant_id = '$a->{tenant_id}' AND email_key = '$wkey'");
is_problem(login($a, $win->{email}, 'new-failure-1'), 401, 'invalid_credentials', 'a failure after the window: a new count starts');
login($a, $win->{email}, "new-failure-$_") for 2 .. 4;
is(login($a, $win->{email}, $win->{password})->{status}, 200, '4 old + 4 new failures: not locked');
login($a, $win->{email}, "again-$_") for 1 .. 5;
locked_ok(login($a, $win->{email}, $win->{password}), '5 failures within the window: locked');

# 400/422 answers while locked do not extend or change anything
$r = auth_api($a, POST => '/auth/login', json => { email => $shared });
is($r->{status}, 422, 'a 422 while locked is still a 422');

# expiry and backoff: waited out in real time when the lock is short
# (ATRIUM_LOCKOUT_BASE_S <= 5), else the lock is ended through the database
my $len = $base // $ra;
sub wait_lock {
    my ($secs, $email) = @_;
    if ($len <= 5) {
        sleep($secs + 1.2);
        return "waited ${secs}s";
    }
    my $key = lc $email;
    sql_in($a, "UPDATE login_throttle SET locked_until = now() - interval '1 second'"
        . " WHERE tenant_id = '$a->{tenant_id}' AND email_key = '$key'");
    return 'lock ended in the database';
}
my $how = wait_lock($ra, $shared);
is_problem(login($a, $shared, 'after-lock-wrong-1'), 401, 'invalid_credentials', "lock over ($how): wrong password is a 401 again");
login($a, $shared, "after-lock-wrong-$_") for 2 .. 4;
is_problem(login($a, $shared, 'after-lock-wrong-5'), 401, 'invalid_credentials', '5th failure after the first lock');
my $ra2 = locked_ok(login($a, $shared, $sa->{password}), 'second lock');
ok($ra2 > $ra && $ra2 <= 2 * $len + 1, "the second lock lasts twice as long ($ra2 s after $ra s)");
$how = wait_lock($ra2, $shared);
is(login($a, $shared, $sa->{password})->{status}, 200, "second lock over ($how): the right password works");
is_problem(login($a, $shared, 'wrong-after-success'), 401, 'invalid_credentials', 'and the success cleared the lock history');
is(login($a, $shared, $sa->{password})->{status}, 200, 'not locked after one failure');

done_testing();
