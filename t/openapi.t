#!/usr/bin/perl
# docs/openapi.yaml and the router's table describe the same endpoints: a
# route missing from either side fails.
use strict;
use warnings;
use FindBin;
use Test::More;

my $root = "$FindBin::Bin/..";
open(my $fh, '<', "$root/fcgi-app/routes.c") or die "routes.c: $!";
my $src = do { local $/; <$fh> };
close $fh;
my %router;
while ($src =~ /\{"(GET|POST|PUT|PATCH|DELETE)",\s*"([^"]+)"/g) {
    $router{ lc($1) . ' ' . $2 } = 1;
}
ok(keys(%router) >= 5, 'routes found in routes.c: ' . scalar keys %router);

open($fh, '<', "$root/docs/openapi.yaml") or die "openapi.yaml: $!";
my (%doc, $in_paths, $path);
while (my $line = <$fh>) {
    if ($line =~ /^paths:/) { $in_paths = 1; next }
    if ($in_paths && $line =~ /^\S/) { $in_paths = 0 }
    next unless $in_paths;
    if ($line =~ m{^  (/\S*):\s*$}) { $path = $1; next }
    if (defined $path && $line =~ /^    (get|post|put|patch|delete):/) { $doc{"$1 $path"} = 1 }
}
close $fh;

for my $r (sort keys %router) {
    ok($doc{$r}, "documented: $r");
}
for my $d (sort keys %doc) {
    ok($router{$d}, "routed: $d");
}
done_testing();
