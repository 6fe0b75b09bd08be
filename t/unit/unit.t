#!/usr/bin/perl
# Runs every C unit test binary (built by `make test-build` into
# build/test/unit/) and reports each as a TAP subtest.
use strict;
use warnings;
use Test::More;
use FindBin;

my $dir = $ENV{ATRIUM_UNIT_DIR} // "$FindBin::Bin/../../build/test/unit";
my @bins = sort grep { -x $_ && !-d $_ } glob("$dir/*");
plan skip_all => "no unit test binaries in $dir (run make test-build)" unless @bins;

for my $bin (@bins) {
    my $name = $bin =~ s{.*/}{}r;
    subtest $name => sub {
        open(my $fh, '-|', $bin) or die "cannot run $bin: $!";
        my ($plan, $seen) = (undef, 0);
        while (my $line = <$fh>) {
            chomp $line;
            if ($line =~ /^(not )?ok \d+ - (.*)$/) {
                $seen++;
                ok(!defined $1, $2);
            } elsif ($line =~ /^1\.\.(\d+)$/) {
                $plan = $1;
            } elsif ($line =~ /^#/) {
                diag($line);
            } else {
                diag("$name: $line");
            }
        }
        close($fh);
        is($? >> 8, 0, "$name exited cleanly (sanitizers quiet)");
        is($seen, $plan, "$name ran its whole plan");
        done_testing();
    };
}
done_testing();
