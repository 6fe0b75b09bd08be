#!/usr/bin/perl
# The portal web app in headless Chromium: runs t/browser/portal.mjs
# (playwright-core) with node, which prints the TAP that prove reads.  The
# stack is found like every other test finds it (ATRIUM_STACK_DIR, else
# var/); screenshots land in $ATRIUM_STACK_DIR/screenshots/.
use strict;
use warnings;
use FindBin;
use File::Spec;

$| = 1;
my $script = "$FindBin::Bin/portal.mjs";
my ($node) = grep { -x } map { File::Spec->catfile($_, 'node') } File::Spec->path;
unless ($node) {
    print "Bail out! node is not on PATH (scripts/deps installs it)\n";
    exit 255;
}
chdir "$FindBin::Bin/../.." or die "chdir: $!";
exec $node, $script or do {
    print "Bail out! cannot run $node $script: $!\n";
    exit 255;
};
