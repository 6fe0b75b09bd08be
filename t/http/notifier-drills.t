#!/usr/bin/perl
# atrium-notifier under stress, as PostgreSQL's TAP tests would do it:
#   - the SMTP catcher stops during a burst: attempts and errors are recorded,
#     and once it is back every row arrives exactly once;
#   - PostgreSQL restarts: the notifier reconnects by itself;
#   - an SMTP server that answers 550 / 451: dead with the reply as
#     last_error / retried, then given up after ATRIUM_NOTIFY_MAX_ATTEMPTS;
#     rows the notifier cannot send (bad address, no link) are dead at once;
#   - two notifiers on 50 rows: each row delivered exactly once;
#   - SIGTERM during a burst (a slow SMTP server): exit 0 after the delivery
#     in flight, nothing half-done, nothing sent twice after the restart.
# Extra notifier instances run with the stack's own environment (atrium.env
# less the credentials it never gets) as user atrium, like scripts/stack's.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Encode qw(decode encode);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Atrium::Test;

my $maildir = env_of('ATRIUM_MAILDIR');
my $stack_dir = env_of('ATRIUM_STACK_DIR');
my $bin = env_of('ATRIUM_BIN_DIR') . '/atrium-notifier';
my $tag = random_code('dr');
my $t = new_tenant(name => 'Notifier Drills');
my $tmp = tempdir('notifier-drill-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $tmp;

# Whatever happens, leave the stack as we found it.
my $guard = Guard->new(sub {
    stack('smtp-start');
    stack('notifier-start');
});

# ---------------------------------------------------------------- helpers

sub tsql {
    my ($sql) = @_;
    my $out = psql_admin(encode('UTF-8',
        "SELECT set_config('app.tenant_id', '$t->{tenant_id}', false); $sql"));
    my @l = split /\n/, decode('UTF-8', $out);
    shift @l;
    return @l;
}

# Queues one invite per address, all in one transaction (one NOTIFY).
sub enqueue {
    my (@addresses) = @_;
    my $sql = "BEGIN; SELECT set_config('app.tenant_id', '$t->{tenant_id}', true);";
    for my $a (@addresses) {
        my $p = encode_json({ link => "https://$t->{host}/invite#token=T$a", name => 'Drill' });
        $sql .= " INSERT INTO outbox (tenant_id, channel, template, recipient_kind, address,"
            . " payload, dedupe_key) VALUES ('$t->{tenant_id}', 'email', 'invite', 'client',"
            . " \$q\$$a\$q\$, \$q\$$p\$q\$::jsonb, \$q\$$a\$q\$);";
    }
    psql_admin("$sql COMMIT;");
}

sub status_of {
    my ($like) = @_;
    my %s;
    for (tsql("SELECT address, status, attempts, coalesce(last_error, ''), payload ? 'link',"
        . " next_attempt_at > now() FROM outbox WHERE address LIKE '$like'")) {
        my ($a, @f) = split /\|/, $_, 6;
        $s{$a} = { status => $f[0], attempts => $f[1], error => $f[2], link => $f[3],
            later => $f[4] };
    }
    return \%s;
}

# Recipient => number of messages in a Maildir.
sub mail_counts {
    my ($dir, $re) = @_;
    my %n;
    for my $f (glob("$dir/new/*"), glob("$dir/cur/*")) {
        open(my $fh, '<', $f) or next;
        while (my $line = <$fh>) {
            last if $line =~ /^\r?$/;
            next unless $line =~ /^X-RcptTo: (\S+?)\r?$/i;
            my $rcpt = $1;
            $n{$rcpt}++ if $rcpt =~ $re;
        }
        close $fh;
    }
    return \%n;
}

sub all_status {
    my ($s, $status, $n) = @_;
    return keys(%$s) == $n && !grep { $_->{status} ne $status } values %$s;
}

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0,
        ReuseAddr => 1) or die "no free port: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

# The notifier's environment as scripts/stack builds it: atrium.env without
# the owner's and the workers' credentials (ATRIUM_NOTIFIER_ENV_EXCLUDE in
# scripts/lib.sh), plus the sanitizer options of a test build.
sub notifier_env {
    my %over = @_;
    my $file = "$stack_dir/atrium.env";
    my $out = `bash -c 'set -a; . "\$1"; env -0' _ "$file"`;
    my %skip = map { $_ => 1 } qw(ATRIUM_DB_ADMIN_DSN PGPASSFILE ATRIUM_DB_DSN
        ATRIUM_S3_ACCESS_KEY_ID ATRIUM_S3_SECRET_ACCESS_KEY ATRIUM_JWT_PRIVATE_KEY_FILE);
    my %env = (PATH => '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    for my $kv (split /\0/, $out) {
        my ($k, $v) = split /=/, $kv, 2;
        $env{$k} = $v if $k =~ /^ATRIUM_/ && !$skip{$k};
    }
    for my $k (qw(ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS)) {
        $env{$k} = $ENV{$k} if defined $ENV{$k};
    }
    return (%env, %over);
}

# Starts an extra notifier as user atrium; returns (pid, log file) once it
# listens.  setpriv execs in place, so the pid is the notifier's.
my $instances = 0;
sub spawn_notifier {
    my %over = @_;
    my %env = notifier_env(%over);
    my $log = "$tmp/notifier-" . ++$instances . '.log';
    open(my $lf, '>>', $log) or die "$log: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>&', $lf);
        open(STDERR, '>&', $lf);
        exec('env', '-i', map({ "$_=$env{$_}" } sort keys %env), 'setpriv', '--reuid=atrium',
            '--regid=atrium', '--init-groups', '--no-new-privs', '--', $bin) or exit 127;
    }
    close $lf;
    my $up = wait_until(20, sub { slurp($log) =~ /"msg":"listening on atrium_outbox"/ });
    ok($up, "extra notifier $instances listening (pid $pid)") or diag slurp($log);
    return ($pid, $log);
}

# SIGTERM and the exit status.
sub stop_notifier {
    my ($pid) = @_;
    kill 'TERM', $pid;
    my $end = time + 60;
    while (time < $end) {
        return $? if waitpid($pid, WNOHANG) == $pid;
        select(undef, undef, undef, 0.05);
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return -1;
}

sub slurp {
    my ($f) = @_;
    open(my $fh, '<', $f) or return '';
    local $/;
    my $s = <$fh> // '';
    close $fh;
    return $s;
}

# A scriptable SMTP server (aiosmtpd with our handler, Debian's python3):
# for recipients with our tag, "reject-" gets 550, "later-" 451, the rest
# is stored in DIR (Maildir) after DELAY seconds; anything else gets 451 so
# that other tests' mail is only postponed, never swallowed.
my $smtp_py = <<'PY';
import asyncio, signal, sys
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
port, tag, maildir, delay = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
class Handler(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if tag not in address:
            return "451 4.7.1 not for this test, try later"
        if address.startswith("reject-"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if address.startswith("later-"):
            return "451 4.3.0 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        if delay:
            await asyncio.sleep(delay)
        return await super().handle_DATA(server, session, envelope)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
controller = Controller(Handler(maildir), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
controller.stop()
PY

my @servers;
sub start_smtp_server {
    my ($dir, $delay) = @_;
    my $port = free_port();
    my $pid = open(my $out, '-|', '/usr/bin/python3', '-c', $smtp_py, $port, $tag, $dir, $delay)
        // die "python3: $!";
    my $line = <$out> // '';
    like($line, qr/^ready/, "scripted SMTP server on port $port");
    push @servers, [$pid, $out];
    return "smtp://127.0.0.1:$port";
}

END {
    for (@servers) {
        kill 'TERM', $_->[0];
        close $_->[1];
    }
}

# ---------------------------------------------------------------- 1. catcher down

{
    my @addr = map { "down$_-$tag\@client.example" } 1 .. 10;
    ok(stack('smtp-stop'), 'SMTP catcher stopped');
    enqueue(@addr);
    my $s;
    ok(wait_until(20, sub {
        $s = status_of("down%-$tag\@client.example");
        keys(%$s) == 10 && !grep { $_->{attempts} < 1 } values %$s;
    }), 'every row of the burst was attempted while the catcher was down');
    ok(all_status($s, 'pending', 10), 'all still pending');
    ok(!(grep { $_->{error} !~ /connect/i } values %$s), 'last_error: could not connect')
        or diag explain [map { $_->{error} } values %$s];
    ok(!(grep { $_->{later} ne 't' } values %$s), 'each retry scheduled in the future');
    ok(!(grep { $_->{link} ne 't' } values %$s), 'the link stays while the row is pending');
    is_deeply(mail_counts($maildir, qr/^down\d+-\Q$tag\E/), {}, 'nothing arrived');

    ok(stack('smtp-start'), 'SMTP catcher started');
    ok(wait_until(45, sub { all_status(status_of("down%-$tag\@client.example"), 'sent', 10) }),
        'every row sent once the catcher is back');
    my $n = mail_counts($maildir, qr/^down\d+-\Q$tag\E/);
    is_deeply($n, { map { $_ => 1 } @addr }, 'each one arrived exactly once');
    $s = status_of("down%-$tag\@client.example");
    ok(!(grep { $_->{attempts} < 2 || $_->{error} ne '' || $_->{link} ne 'f' } values %$s),
        'attempts counted, last_error cleared, link removed');
}

# ---------------------------------------------------------------- 2. PostgreSQL restart

{
    my $pidfile = "$stack_dir/run/notifier.pid";
    my ($before) = slurp($pidfile) =~ /(\d+)/;
    ok(stack('pg-stop'), 'PostgreSQL stopped');
    select(undef, undef, undef, 1.5);
    ok(stack('pg-start'), 'PostgreSQL started');
    my $addr = "pg-$tag\@client.example";
    enqueue($addr);
    ok(wait_until(30, sub { mail_counts($maildir, qr/^\Q$addr\E$/)->{$addr} }),
        'a row queued after the restart is delivered');
    my ($after) = slurp($pidfile) =~ /(\d+)/;
    ok($before && $after && $before == $after && kill(0, $after),
        'by the same notifier process (it reconnected by itself)');
}

# ---------------------------------------------------------------- 3. 5xx, 4xx, bad rows

{
    my $accepted = "$tmp/accepted";
    my $url = start_smtp_server($accepted, 0);
    ok(stack('notifier-stop'), "the stack's notifier stopped");
    my ($pid, $log) = spawn_notifier(ATRIUM_SMTP_URL => $url, ATRIUM_NOTIFY_MAX_ATTEMPTS => 2);

    # rows the notifier cannot send at all
    my $sql = "BEGIN; SELECT set_config('app.tenant_id', '$t->{tenant_id}', true);";
    my %bad = (
        "bad address-$tag\@client.example" => encode_json({ link => 'https://x.example/i#t' }),
        "nolink-$tag\@client.example"      => encode_json({ name => 'No Link' }),
        "jslink-$tag\@client.example"      => encode_json({ link => 'javascript:alert(1)' }),
        "scalar-$tag\@client.example"      => '"just a string"',
    );
    for my $a (sort keys %bad) {
        $sql .= " INSERT INTO outbox (tenant_id, channel, template, recipient_kind, address,"
            . " payload, dedupe_key) VALUES ('$t->{tenant_id}', 'email', 'invite', 'client',"
            . " \$q\$$a\$q\$, \$q\$$bad{$a}\$q\$::jsonb, \$q\$$a\$q\$);";
    }
    psql_admin("$sql COMMIT;");
    enqueue("reject-$tag\@client.example", "later-$tag\@client.example", "ok-$tag\@client.example");

    my $s;
    ok(wait_until(30, sub {
        $s = status_of("%-$tag\@client.example");
        ($s->{"reject-$tag\@client.example"}{status} // '') eq 'dead'
            && ($s->{"ok-$tag\@client.example"}{status} // '') eq 'sent'
            && ($s->{"later-$tag\@client.example"}{status} // '') eq 'dead'
            && 4 == grep { ($s->{$_}{status} // '') eq 'dead' } keys %bad;
    }), 'the scripted server\'s rows are final') or diag explain $s;

    my $rej = $s->{"reject-$tag\@client.example"};
    is($rej->{attempts}, 1, '550: dead at the first attempt (permanent)');
    like($rej->{error}, qr/^smtp 550 5\.1\.1 .*mailbox unavailable/, "550: the server's reply is last_error");
    is($rej->{link}, 'f', '550: the link is removed from a dead row');
    my $later = $s->{"later-$tag\@client.example"};
    is($later->{attempts}, 2, '451: retried until ATRIUM_NOTIFY_MAX_ATTEMPTS (2)');
    like($later->{error}, qr/^gave up after 2 attempts: smtp 451 4\.3\.0/, '451: then dead, saying why');
    is($s->{"ok-$tag\@client.example"}{attempts}, 1, 'the accepted row was sent at once');
    is_deeply(mail_counts($accepted, qr/\Q$tag\E/), { "ok-$tag\@client.example" => 1 },
        'only the accepted row reached the server\'s mailbox');
    like($s->{"bad address-$tag\@client.example"}{error}, qr/recipient address not supported/,
        'an address we will not write: dead');
    like($s->{"nolink-$tag\@client.example"}{error}, qr/'link' has no value/,
        'an invite without a link: dead');
    like($s->{"jslink-$tag\@client.example"}{error}, qr/'link' has no value/,
        'a link that is not http(s): dead');
    like($s->{"scalar-$tag\@client.example"}{error}, qr/'link' has no value/,
        'a payload that is not an object: dead (and recorded)');
    ok(!(grep { $s->{$_}{attempts} != 1 } keys %bad), 'each after one attempt');

    my $logtext = slurp($log);
    my @lines = grep { /"event":"delivery"/ } split /\n/, $logtext;
    ok((grep { /"result":"dead"/ && /"smtp_code":550/ } @lines), 'log: the 550 as dead');
    ok((grep { /"result":"retry"/ && /"smtp_code":451/ } @lines), 'log: the 451 as retry');
    ok(!(grep { /token=/ } @lines), 'log: no link');
    is(stop_notifier($pid), 0, 'SIGTERM: the extra notifier exits 0 (sanitizers quiet)');
    like(slurp($log), qr/"msg":"stopped"\}\n\z/, 'and says so last');
    ok(stack('notifier-start'), "the stack's notifier started again");
}

# ---------------------------------------------------------------- 4. two notifiers

{
    my @addr = map { "pair$_-$tag\@client.example" } 1 .. 50;
    my ($pid, $log) = spawn_notifier();
    enqueue(@addr);
    ok(wait_until(60, sub { all_status(status_of("pair%-$tag\@client.example"), 'sent', 50) }),
        'two notifiers sent all 50 rows');
    my $n = mail_counts($maildir, qr/^pair\d+-\Q$tag\E/);
    is(scalar(keys %$n), 50, 'all 50 arrived');
    is_deeply([grep { $n->{$_} != 1 } sort keys %$n], [], 'each exactly once');
    my $s = status_of("pair%-$tag\@client.example");
    ok(!(grep { $_->{attempts} != 1 } values %$s), 'each with one attempt');
    my %ids = map { $_ => 1 } tsql("SELECT id FROM outbox WHERE address LIKE 'pair%-$tag\@%'");
    my $count = sub {
        scalar grep { /"event":"delivery"/ && /"outbox_id":"([^"]+)"/ && $ids{$1} }
            split /\n/, slurp($_[0]);
    };
    my $mine = $count->($log);
    my $theirs = $count->(env_of('ATRIUM_LOG_DIR') . '/atrium-notifier.log');
    is($mine + $theirs, 50, 'one delivery line per row across both logs');
    diag("the stack's notifier sent $theirs, the extra one $mine");
    ok($mine > 0 && $theirs > 0, 'both notifiers took part');
    is(stop_notifier($pid), 0, 'the extra notifier exits 0');
}

# ---------------------------------------------------------------- 5. SIGTERM mid-burst

{
    my $slow = "$tmp/slow";
    my $url = start_smtp_server($slow, 0.15);
    ok(stack('notifier-stop'), "the stack's notifier stopped");
    my ($pid, $log) = spawn_notifier(ATRIUM_SMTP_URL => $url);
    my @addr = map { "term$_-$tag\@client.example" } 1 .. 30;
    enqueue(@addr);
    my $s;
    ok(wait_until(20, sub {
        $s = status_of("term%-$tag\@client.example");
        (grep { $_->{status} eq 'sent' } values %$s) >= 3;
    }), 'the burst is being sent');
    is(stop_notifier($pid), 0, 'SIGTERM mid-burst: exit 0');
    like(slurp($log), qr/"msg":"stopped"\}\n\z/, 'after saying it stopped');
    $s = status_of("term%-$tag\@client.example");
    my @sent = grep { $s->{$_}{status} eq 'sent' } keys %$s;
    my @rest = grep { $s->{$_}{status} ne 'sent' } keys %$s;
    ok(@rest > 0, scalar(@sent) . ' sent before the stop, ' . scalar(@rest) . ' left');
    ok(!(grep { $s->{$_}{status} ne 'pending' || $s->{$_}{attempts} != 0 } @rest),
        'the others untouched: pending, no attempt (the one in flight was finished)');
    is_deeply(mail_counts($slow, qr/^term\d+-\Q$tag\E/), { map { $_ => 1 } @sent },
        'exactly the rows marked sent reached the server, once each');

    my ($pid2, $log2) = spawn_notifier(ATRIUM_SMTP_URL => $url);
    ok(wait_until(60, sub { all_status(status_of("term%-$tag\@client.example"), 'sent', 30) }),
        'after a restart the rest is sent');
    is_deeply(mail_counts($slow, qr/^term\d+-\Q$tag\E/), { map { $_ => 1 } @addr },
        'every row arrived exactly once: nothing was sent twice');
    is(stop_notifier($pid2), 0, 'the second run exits 0 too');
    ok(stack('notifier-start'), "the stack's notifier started again");
}

$guard->dismiss;
done_testing();

package Guard;
sub new { my ($c, $cb) = @_; bless { cb => $cb }, $c }
sub dismiss { $_[0]{cb} = undef }
sub DESTROY { $_[0]{cb}->() if $_[0]{cb} }
