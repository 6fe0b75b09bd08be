#!/usr/bin/perl
# atrium-notifier delivers the outbox: an invite and a password reset reach
# the SMTP catcher as tenant-branded multipart/alternative mail (sender name,
# Reply-To, subject, both parts with the link, every value HTML-escaped in
# the HTML part), the rows become sent and lose their secret link; the
# roles and the daemons' environments keep to what each may see.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Encode qw(decode encode);
use JSON::PP;
use MIME::QuotedPrint qw(decode_qp);
use Atrium::Test;
use Atrium::Stack qw(worker_pids);

my $maildir = env_of('ATRIUM_MAILDIR');
my $tag = random_code('ntf');

my $display = "Zoë & Søn <Studio> \"Ø\"";
my $t = new_tenant(name => 'Notifier One');
my $r = team_api($t, PATCH => '/team/branding', json => {
    display_name  => $display,
    colors        => { primary => '#aa3300' },
    support_email => "help-$tag\@studio.example",
    logo_url      => "https://cdn.example/$tag/logo.png?a=1&b=2",
});
is($r->{status}, 200, 'branding set') or diag explain $r->{json};

# ---------------------------------------------------------------- helpers

# Runs SQL as the owner with the tenant's context (the owner is subject to
# RLS too); returns the output lines after set_config's.
sub tsql {
    my ($tenant, $sql) = @_;
    my $out = psql_admin(encode('UTF-8',
        "SELECT set_config('app.tenant_id', '$tenant->{tenant_id}', false); $sql"));
    my @l = split /\n/, decode('UTF-8', $out);
    shift @l;
    return @l;
}

sub enqueue {
    my ($tenant, @rows) = @_;
    my $json = JSON::PP->new->canonical;
    my $sql = "BEGIN; SELECT set_config('app.tenant_id', '$tenant->{tenant_id}', true);";
    for my $row (@rows) {
        my $p = $json->encode($row->{payload});
        $sql .= " INSERT INTO outbox (tenant_id, channel, template, recipient_kind, address,"
            . " payload, dedupe_key) VALUES ('$tenant->{tenant_id}', 'email', '$row->{template}',"
            . " 'client', \$q\$$row->{address}\$q\$, \$q\$$p\$q\$::jsonb, \$q\$$row->{address}\$q\$);";
    }
    psql_admin(encode('UTF-8', "$sql COMMIT;"));
}

sub mails_to {
    my ($addr) = @_;
    my @found;
    for my $f (glob("$maildir/new/*"), glob("$maildir/cur/*")) {
        open(my $fh, '<:raw', $f) or next;
        local $/;
        my $m = <$fh>;
        close $fh;
        push @found, $m if $m =~ /^X-RcptTo: \Q$addr\E\r?$/mi;
    }
    return @found;
}

# Headers (unfolded, encoded-words decoded) and the decoded parts.
sub parse_mail {
    my ($raw) = @_;
    my %m = (raw => $raw);
    my ($head, $body) = split /\r?\n\r?\n/, $raw, 2;
    $head =~ s/\r?\n[ \t]+/ /g;
    for my $line (split /\r?\n/, $head) {
        my ($k, $v) = $line =~ /^([^:]+):\s*(.*)$/ or next;
        $m{h}{ lc $k } = $v;
        $m{d}{ lc $k } = decode('MIME-Header', $v);
    }
    my ($b) = ($m{h}{'content-type'} // '') =~ /boundary="([^"]+)"/;
    return \%m unless defined $b;
    for my $part (split /\r?\n--\Q$b\E(?:--)?\r?\n/, "\r\n$body") {
        my ($ph, $pb) = split /\r?\n\r?\n/, $part, 2;
        next unless defined $pb && $ph =~ m{Content-Type:\s*(\S+?);}i;
        my $type = lc $1;
        my $text = $ph =~ /quoted-printable/i ? decode_qp($pb) : $pb;
        $m{parts}{$type} = decode('UTF-8', $text);
        $m{cte}{$type} = $ph =~ /Content-Transfer-Encoding:\s*(\S+)/i ? lc $1 : '';
    }
    return \%m;
}

# ---------------------------------------------------------------- invite

my $name = '<b>Bob & "Co"</b>';
my $token = "tok$tag" . ('x' x 30);
my $link = 'https://' . $t->{host} . ':' . env_of('ATRIUM_PUBLIC_PORT') . "/invite#token=$token";
my $inv_addr = "inv-$tag\@client.example";
enqueue($t, {
    template => 'invite',
    address  => $inv_addr,
    payload  => { link => $link, name => $name, expires_at => '2026-12-11T14:05:00Z' },
});

my @mails;
ok(wait_until(15, sub { @mails = mails_to($inv_addr) }), 'invite delivered to the catcher');
is(scalar @mails, 1, 'exactly once');
my $m = parse_mail($mails[0] // '');

is($m->{d}{from}, encode_display($display) . ' <' . env_of('ATRIUM_MAIL_FROM') . '>',
    'From: the tenant display name (decoded) and the configured sender');
unlike($m->{h}{from} // '', qr/[^\x20-\x7e]/, 'From header is pure ASCII (RFC 2047)');
is($m->{h}{to}, "<$inv_addr>", 'To');
is($m->{h}{'reply-to'}, "<help-$tag\@studio.example>", 'Reply-To: the support address');
like($m->{d}{subject} // '', qr/invitation/i, 'invite subject');
like($m->{d}{subject} // '', qr/\Q$display\E/, 'subject names the tenant');
like($m->{h}{date} // '', qr/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$/, 'RFC 5322 Date');
like($m->{h}{'message-id'} // '', qr/^<[0-9a-f]{32}\@[a-z0-9.-]+>$/, 'Message-ID');
is($m->{h}{'mime-version'}, '1.0', 'MIME-Version');
like($m->{h}{'content-type'} // '', qr{^multipart/alternative;}, 'multipart/alternative');
ok($m->{parts}{'text/plain'} && $m->{parts}{'text/html'}, 'text and HTML parts');
is($m->{cte}{'text/plain'}, 'quoted-printable', 'quoted-printable body');
my ($txt, $html) = ($m->{parts}{'text/plain'} // '', $m->{parts}{'text/html'} // '');
like($txt, qr/\Q$link\E/, 'link in the text part');
like($html, qr/href="\Q$link\E"/, 'link in the HTML part');
like($txt, qr/Hello \Q$name\E,/, 'the text part has the name as written');
like($html, qr/Hello &lt;b&gt;Bob &amp; &quot;Co&quot;&lt;\/b&gt;,/, 'the HTML part escapes the name');
unlike($html, qr/<b>Bob/, 'no raw markup from the name in the HTML');
like($html, qr/Zoë &amp; Søn &lt;Studio&gt; &quot;Ø&quot;/, 'display name escaped in the HTML');
like($html, qr/background:#aa3300/, 'tenant primary colour');
like($html, qr{<img src="https://cdn\.example/\Q$tag\E/logo\.png\?a=1&amp;b=2"}, 'tenant logo');
like($txt, qr/11 December 2026, 14:05 UTC/, 'expiry human-readable in UTC');
like($txt, qr/help-\Q$tag\E\@studio\.example/, 'support address in the text');
# (the catcher stores the message with LF line ends; CRLF on the wire is
# checked by t/unit/template.c)
my @long = grep { length($_) > 78 } split /\r?\n/, $m->{raw};
is(scalar @long, 0, 'no line longer than 78 bytes') or diag $long[0];

my ($row) = tsql($t, "SELECT status, attempts, sent_at IS NOT NULL, payload ? 'link',"
    . " payload ->> 'name', coalesce(last_error, '') FROM outbox WHERE address = '$inv_addr'");
is($row, "sent|1|t|f|$name|", 'row sent once, sent_at set, link removed, name kept');

# ---------------------------------------------------------------- reset

my $rs_addr = "reset-$tag\@client.example";
enqueue($t, {
    template => 'password_reset',
    address  => $rs_addr,
    payload  => { link => "https://$t->{host}/reset#token=r$token", name => 'Ann',
        expires_at => '2026-12-04T18:00:00+01:00' },
});
ok(wait_until(15, sub { @mails = mails_to($rs_addr) }), 'password reset delivered');
$m = parse_mail($mails[0] // '');
like($m->{d}{subject} // '', qr/password/i, 'reset subject');
like($m->{parts}{'text/plain'} // '', qr{/reset#token=r\Q$token\E}, 'reset link in the text');
like($m->{parts}{'text/plain'} // '', qr/4 December 2026, 17:00 UTC/, 'offset converted to UTC');
($row) = tsql($t, "SELECT status, payload ? 'link' FROM outbox WHERE address = '$rs_addr'");
is($row, 'sent|f', 'reset row sent, link removed');

# ---------------------------------------------------------------- other channels

# WhatsApp rows are not this notifier's (yet): left exactly as they are.
my $wa = "+1555$$";
psql_admin("BEGIN; SELECT set_config('app.tenant_id', '$t->{tenant_id}', true);"
    . " INSERT INTO outbox (tenant_id, channel, template, recipient_kind, address, payload,"
    . " dedupe_key) VALUES ('$t->{tenant_id}', 'whatsapp', 'invite', 'client', '$wa',"
    . " '{\"link\": \"https://x.example/invite#token=w\"}', 'wa-$tag'); COMMIT;");
my $after_wa = "afterwa-$tag\@client.example";
enqueue($t, { template => 'invite', address => $after_wa,
    payload => { link => "https://$t->{host}/invite#token=after" } });
ok(wait_until(15, sub { mails_to($after_wa) }), 'an email queued after it is delivered');
($row) = tsql($t, "SELECT status, attempts, payload ? 'link' FROM outbox WHERE address = '$wa'");
is($row, 'pending|0|t', 'the WhatsApp row is untouched');

# ---------------------------------------------------------------- the real thing

# An invite written by the worker (POST /team/clients/{id}/invite) arrives
# with a link whose token the portal accepts.
SKIP: {
    my $email = "real-$tag\@client.example";
    my $c = team_api($t, POST => '/team/clients', json => { name => 'Real Client', email => $email });
    is($c->{status}, 201, 'client created') or skip 'no client', 6;
    my $inv = team_api($t, POST => "/team/clients/$c->{json}{id}/invite", json => {});
    skip 'no invite endpoint', 5 if $inv->{status} == 404 || $inv->{status} == 405;
    ok($inv->{status} == 200 || $inv->{status} == 201, 'invite requested') or diag explain $inv->{json};
    ok(wait_until(15, sub { @mails = mails_to($email) }), "the worker's invite was delivered");
    $m = parse_mail($mails[0] // '');
    my ($got) = ($m->{parts}{'text/plain'} // '') =~ m{(https://\S+/invite#token=(\S+))};
    ok($got, 'with a link') or diag $m->{parts}{'text/plain'};
    my ($tok) = ($got // '') =~ /#token=(\S+)/;
    my $ins = api(POST => '/auth/invite/inspect', host => $t->{host}, json => { token => $tok // 'x' });
    is($ins->{status}, 200, 'the portal accepts the emailed token') or diag explain $ins->{json};
    ($row) = tsql($t, "SELECT status, payload ? 'link' FROM outbox WHERE address = '$email'");
    is($row, 'sent|f', "the worker's row: sent, link removed");
}

# ---------------------------------------------------------------- the log

my $log = env_of('ATRIUM_LOG_DIR') . '/atrium-notifier.log';
open(my $lf, '<', $log) or die "$log: $!";
my @lines = grep { /"event":"delivery"/ } <$lf>;
close $lf;
my ($inv_id) = tsql($t, "SELECT id FROM outbox WHERE address = '$inv_addr'");
my @mine = grep { /\Q$inv_id\E/ } @lines;
is(scalar @mine, 1, 'one log line for the delivery');
my $entry = eval { decode_json($mine[0] // '{}') } // {};
is_deeply([@{$entry}{qw(outbox_id tenant template result attempt smtp_code)}],
    [$inv_id, $t->{code}, 'invite', 'sent', 1, 250], 'log: id, tenant, template, result, code');
ok(!(grep { /\Q$token\E/ } @lines), 'the log never holds the link token');

# ---------------------------------------------------------------- roles

my $u = new_tenant(name => 'Notifier Two');
enqueue($u, { template => 'no_such_template', address => "other-$tag\@client.example",
    payload => {} });
ok(wait_until(15, sub {
    (tsql($u, "SELECT status FROM outbox WHERE address = 'other-$tag\@client.example'"))[0] eq 'dead'
}), 'an unknown template is a permanent failure');
($row) = tsql($u, "SELECT last_error FROM outbox WHERE address = 'other-$tag\@client.example'");
like($row, qr/unknown template/, 'and says so');

# psql as another role (its DSN names its passfile); stdout and stderr.
sub psql_as {
    my ($dsn, $sql) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if (!$pid) {
        open(STDERR, '>&', \*STDOUT);
        exec('psql', $dsn, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', $sql) or exit 127;
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($out, $? >> 8);
}
my $app = env_of('ATRIUM_DB_DSN');
my ($out, $rc) = psql_as($app, "SELECT set_config('app.tenant_id', '$u->{tenant_id}', false);"
    . " SELECT count(*) FROM outbox WHERE tenant_id = '$t->{tenant_id}';"
    . " SELECT count(*) FROM outbox;");
is($rc, 0, 'app role queries the outbox');
is((split /\n/, $out)[1], '0', "app role in tenant B sees none of tenant A's rows");
is((split /\n/, $out)[2], '1', 'and exactly its own');
($out) = psql_as($app, "SELECT count(*) FROM outbox");
is($out, "0\n", 'app role without a tenant sees no outbox row');

my $ndsn = env_of('ATRIUM_NOTIFIER_DSN');
ok($ndsn && $ndsn =~ /user=atrium_notifier/, 'ATRIUM_NOTIFIER_DSN in atrium.env');
($out, $rc) = psql_as($ndsn, "SELECT count(DISTINCT tenant_id) FROM outbox"
    . " WHERE tenant_id IN ('$t->{tenant_id}', '$u->{tenant_id}')");
is($out, "2\n", "the notifier role reads every tenant's outbox");
for my $table (qw(api_keys projects portal_sessions invites password_resets audit_log)) {
    ($out, $rc) = psql_as($ndsn, "SELECT count(*) FROM $table");
    isnt($rc, 0, "notifier role cannot read $table");
    like($out, qr/permission denied/, "($table: permission denied)");
}
($out, $rc) = psql_as($ndsn, "DELETE FROM outbox WHERE tenant_id = '$u->{tenant_id}'");
like($out, qr/permission denied/, 'notifier role cannot delete outbox rows');
($out, $rc) = psql_as($ndsn, "UPDATE tenant_branding SET display_name = 'x'");
like($out, qr/permission denied/, 'nor change branding');
($out) = psql_as($ndsn, "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb"
    . " FROM pg_roles WHERE rolname = current_user");
is($out, "f|f|f|f\n", 'notifier role: no superuser, no BYPASSRLS');
($out) = psql_admin("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
    . " WHERE r.rolname = 'atrium_notifier'");
is($out, '0', 'notifier role owns nothing');

# ---------------------------------------------------------------- processes

sub environ_keys {
    my ($pid) = @_;
    open(my $fh, '<', "/proc/$pid/environ") or return;
    local $/;
    my $e = <$fh> // '';
    return map { (split /=/, $_, 2)[0] } split /\0/, $e;
}
sub proc_uid {
    my ($pid) = @_;
    open(my $fh, '<', "/proc/$pid/status") or return -1;
    my ($uid) = map { /^Uid:\s+(\d+)/ ? $1 : () } <$fh>;
    return $uid;
}
my $dir = env_of('ATRIUM_STACK_DIR');
open(my $pf, '<', "$dir/run/notifier.pid") or die "notifier.pid: $!";
my ($npid) = (<$pf> // '') =~ /(\d+)/;
close $pf;
ok($npid && kill(0, $npid), 'notifier running (pid file)');
my %nenv = map { $_ => 1 } environ_keys($npid);
ok($nenv{ATRIUM_NOTIFIER_DSN}, 'the notifier has its DSN');
ok(!$nenv{$_}, "the notifier has no $_")
    for qw(ATRIUM_DB_ADMIN_DSN PGPASSFILE ATRIUM_DB_DSN ATRIUM_S3_SECRET_ACCESS_KEY);
is(proc_uid($npid), scalar getpwnam('atrium'), 'the notifier runs as atrium');
my @workers = worker_pids();
ok(@workers, 'workers running');
ok(!(grep { my %e = map { $_ => 1 } environ_keys($_); $e{ATRIUM_NOTIFIER_DSN} } @workers),
    'no worker has ATRIUM_NOTIFIER_DSN');
like(`ATRIUM_STACK_DIR=$dir ${\ repo_root()}/scripts/stack status`, qr/^notifier\s+running/m,
    'scripts/stack status shows the notifier');

done_testing();

# The display name as a decoded From shows it: a quoted-string when it was
# sent as one, the bare text when it came as encoded-words.
sub encode_display {
    my ($n) = @_;
    return $n if $n =~ /[^\x00-\x7f]/;
    (my $q = $n) =~ s/(["\\])/\\$1/g;
    return qq("$q");
}
