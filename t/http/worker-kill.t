#!/usr/bin/perl
# kill -9 of a worker under load: the supervisor replaces it at once and at
# most the request it was serving fails.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Atrium::Test;
use Atrium::Stack qw(worker_pids);

my $t = new_tenant();
my $H = $t->{host};
my @before = worker_pids();
ok(@before >= 2, 'a pool of workers: ' . scalar @before);

# two load generators, each with one request in flight at a time
my $dir = env_of('ATRIUM_STACK_DIR');
my @kids;
for my $n (1 .. 2) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $end = time + 4;
        open(my $out, '>', "$dir/load-$$.txt") or exit 1;
        while (time < $end) {
            my $r = $n == 1 ? api(GET => '/branding', host => $H) : team_api($t, GET => '/team/branding');
            print $out "$r->{status}\n";
        }
        close $out;
        exit 0;
    }
    push @kids, $pid;
}
sleep 1.5;
my $victim = $before[0];
ok(kill('KILL', $victim), "killed worker $victim");
waitpid($_, 0) for @kids;

my @statuses;
for my $pid (@kids) {
    open(my $fh, '<', "$dir/load-$pid.txt") or next;
    push @statuses, map { chomp; $_ } <$fh>;
    close $fh;
    unlink "$dir/load-$pid.txt";
}
ok(@statuses > 50, 'load ran: ' . scalar(@statuses) . ' requests');
my @failed = grep { $_ != 200 } @statuses;
ok(@failed <= 1, 'at most the in-flight request failed (' . scalar(@failed) . " failed: @failed)");

ok(wait_until(5, sub { my @now = worker_pids(); @now == @before && !grep { $_ == $victim } @now }),
    'worker replaced');
my @after = worker_pids();
is(scalar @after, scalar @before, 'pool back to full size');
ok(!(grep { $_ == $victim } @after), 'the killed pid is gone');
is(scalar(grep { api(GET => '/branding', host => $H)->{status} != 200 } 1 .. 20), 0, 'all serving');

done_testing();
