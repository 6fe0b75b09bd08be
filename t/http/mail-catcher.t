#!/usr/bin/perl
# The local SMTP catcher: mail sent over SMTP lands in the Maildir that tests
# read, and the web view lists it with every value escaped.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use HTTP::Tiny;
use File::Temp qw(tempfile);
use Atrium::Test;

my $smtp = env_of('ATRIUM_SMTP_URL');
my $maildir = env_of('ATRIUM_MAILDIR');
ok($smtp && -d "$maildir", "catcher at $smtp, Maildir $maildir");

my $tag = random_code('mail');
my $to = "$tag\@client.example";
my ($fh, $file) = tempfile();
print $fh "From: Atrium <noreply\@atrium.example>\r\nTo: $to\r\n"
    . "Subject: <script>alert(1)</script> $tag\r\n\r\nHello $tag\r\n";
close $fh;
my $rc = system('curl', '-sS', '--max-time', '10', $smtp, '--mail-from', 'noreply@atrium.example',
    '--mail-rcpt', $to, '--upload-file', $file);
is($rc, 0, 'curl delivered over SMTP');
unlink $file;

my $found;
ok(wait_until(5, sub {
    for my $f (glob("$maildir/new/*")) {
        open(my $m, '<', $f) or next;
        local $/;
        my $text = <$m>;
        close $m;
        return $found = $text if $text =~ /\Q$tag\E/;
    }
    return 0;
}), 'message in the Maildir');
like($found // '', qr/X-RcptTo: \Q$to\E/i, 'envelope recipient recorded');
like($found // '', qr/Hello \Q$tag\E/, 'body intact');

my $view = HTTP::Tiny->new(timeout => 5)->get('http://127.0.0.1:' . env_of('ATRIUM_MAILVIEW_PORT') . '/');
is($view->{status}, 200, 'web view answers');
like($view->{content}, qr/\Q$tag\E/, 'web view lists the message');
unlike($view->{content}, qr/<script>alert/, 'subject escaped in the web view');

done_testing();
