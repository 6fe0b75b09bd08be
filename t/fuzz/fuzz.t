#!/usr/bin/perl
# Replays each libFuzzer driver's committed corpus (t/fuzz/corpus/NAME): every
# input that once found a problem, or that covers a parser path, must run
# clean under AddressSanitizer and UBSan.  `make fuzz` does the fuzzing.
use strict;
use warnings;
use Test::More;
use FindBin;

my $root = "$FindBin::Bin/../..";
my @names = qw(json request cursor s3sign);
for my $name (@names) {
    my $bin = "$root/build/fuzz/fuzz-$name";
    SKIP: {
        skip "$bin not built (make test-build)", 1 unless -x $bin;
        my $out = `$bin -runs=0 $root/t/fuzz/corpus/$name 2>&1`;
        is($? >> 8, 0, "$name: corpus replays clean") or diag $out;
    }
}
done_testing();
