#!/usr/bin/perl
# nginx's per-IP rate limit on /api/portal/v1/auth/: a quick burst of
# requests gets 429 rate_limited problem answers with Retry-After, and the
# limit lets requests through again once the bucket refills.  Skipped when
# the stack's ATRIUM_AUTH_RATE is above 100 r/s (a burst of 300 could not
# reliably exceed it).  Other auth tests running in parallel from the same
# address can see 429s meanwhile: Atrium::Auth::auth_api retries those.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Atrium::Test;
use Atrium::Auth;

my $rate_s = env_of('ATRIUM_AUTH_RATE') // '5r/s';
my $burst = env_of('ATRIUM_AUTH_BURST') // 20;
my ($n, $unit) = $rate_s =~ /^(\d+)r\/([sm])$/ or BAIL_OUT("cannot read ATRIUM_AUTH_RATE '$rate_s'");
my $per_s = $unit eq 's' ? $n : $n / 60;
plan skip_all => "ATRIUM_AUTH_RATE $rate_s is above 100 r/s" if $per_s > 100;

my $t = new_tenant();
my (%count, $limited, $passed);
my $t0 = time;
for (1 .. 300) {
    my $r = raw_api($t, POST => '/auth/refresh');
    $count{ $r->{status} }++;
    if ($r->{status} == 429) {
        $limited //= $r;
    } else {
        $passed //= $r;
    }
}
my $took = time - $t0;
diag sprintf('300 requests in %.2f s: %s', $took, join(', ', map { "$_ x $count{$_}" } sort keys %count));
ok($count{429}, 'a burst of 300 gets some 429 answers');
is(join(',', grep { $_ != 401 && $_ != 429 } sort keys %count), '', 'nothing but 401 and 429');
my $expect_max = $burst + 1 + $per_s * ($took + 1);
my $through = $count{401} // 0;
ok($through <= $expect_max, "at most burst + rate x time got through ($through <= $expect_max)");
$limited //= {};
is_problem($limited, 429, 'rate_limited', 'the limited answer');
like($limited->{headers}{'retry-after'} // '', qr/^\d+$/, 'Retry-After');
is(($limited->{json} // {})->{status}, 429, 'problem status 429');
like(($limited->{json} // {})->{request_id} // '', qr/^[A-Za-z0-9._:-]{1,128}$/, 'request_id');
is($limited->{headers}{'x-content-type-options'}, 'nosniff', 'security headers on the 429');

# while the auth zone is exhausted, other paths still answer
is(raw_api($t, GET => '/branding')->{status}, 200, 'non-auth paths are not in the auth zone');

# the bucket refills
sleep($burst / $per_s + 1);
ok(wait_until(10, sub { raw_api($t, POST => '/auth/refresh')->{status} == 401 }),
    'after the bucket refills requests pass again');

done_testing();
