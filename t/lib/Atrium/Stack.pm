package Atrium::Stack;
# Process-level helpers for the drills: the worker pool's pids.
use strict;
use warnings;
use Exporter 'import';
use Atrium::Test qw(env_of);

our @EXPORT_OK = qw(worker_pids supervisor_pid);

# multiwatch's pid, written by spawn-fcgi.
sub supervisor_pid {
    my $file = env_of('ATRIUM_STACK_DIR') . '/run/fcgi.pid';
    open(my $fh, '<', $file) or return;
    my $pid = <$fh>;
    close $fh;
    ($pid) = ($pid // '') =~ /(\d+)/;
    return $pid;
}

# The workers: multiwatch's children.
sub worker_pids {
    my $sup = supervisor_pid() or return;
    my @pids;
    opendir(my $d, '/proc') or return;
    for my $p (grep { /^\d+$/ } readdir $d) {
        open(my $fh, '<', "/proc/$p/stat") or next;
        my $stat = <$fh> // '';
        close $fh;
        # pid (comm) state ppid ...
        push @pids, $p if $stat =~ /^\d+ \(.*\) \S+ (\d+) / && $1 == $sup;
    }
    closedir $d;
    return @pids;
}

1;
