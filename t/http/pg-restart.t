#!/usr/bin/perl
# PostgreSQL stops and starts under the workers: requests get 503 with
# Retry-After while it is down and 200 once it is back, with no worker
# restarted.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;
use Atrium::Stack qw(worker_pids);

my $t = new_tenant();
my $H = $t->{host};

is(api(GET => '/healthz', host => $H)->{status}, 200, 'healthy');
# warm every worker's connection (and tenant cache)
api(GET => '/branding', host => $H) for 1 .. 20;
my @before = worker_pids();
ok(@before >= 1, 'workers running: ' . scalar @before);

ok(stack('pg-stop'), 'PostgreSQL stopped');
my $guard = Guard->new(sub { stack('pg-start') });

for my $path ('/healthz', '/branding', '/team/branding') {
    for (1 .. 3) {
        my $r = $path =~ /team/ ? team_api($t, GET => $path) : api(GET => $path, host => $H);
        is($r->{status}, 503, "$path while down: 503");
        is($r->{json}{code}, 'unavailable', 'unavailable');
        ok(($r->{headers}{'retry-after'} // '') =~ /^\d+$/, 'Retry-After');
    }
}
my $r = team_api($t, PATCH => '/team/branding', json => { display_name => 'during outage' });
is($r->{status}, 503, 'writes refused while down');

ok(stack('pg-start'), 'PostgreSQL started');
$guard->dismiss;
ok(wait_until(15, sub { api(GET => '/healthz', host => $H)->{status} == 200 }), 'healthy again');
my @st = map { api(GET => '/branding', host => $H)->{status} } 1 .. 30;
is(scalar(grep { $_ != 200 } @st), 0, 'every worker reconnected by itself');
is(team_api($t, PATCH => '/team/branding', json => { display_name => 'after outage' })->{status}, 200,
    'writes work again');
is(api(GET => '/branding', host => $H)->{json}{display_name}, 'after outage', 'and are stored');
is_deeply([sort { $a <=> $b } worker_pids()], [sort { $a <=> $b } @before], 'no worker was restarted');

done_testing();

package Guard;
sub new { my ($c, $cb) = @_; bless { cb => $cb }, $c }
sub dismiss { $_[0]{cb} = undef }
sub DESTROY { $_[0]{cb}->() if $_[0]{cb} }
