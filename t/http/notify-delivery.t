#!/usr/bin/perl
# Delivery guarantees of activity notifications (issue 6):
#   - the SMTP catcher stops during a burst of 20 real notifications
#     (deliverable delivered + milestone done to 10 clients): attempts and
#     errors are recorded, nothing arrives; once it is back every one arrives
#     exactly once;
#   - two notifiers (the stack's and a second one started by hand with the
#     first one's environment) on 50 due digests: each delivered once, both
#     take part;
#   - GET /team/outbox: newest first, keyset pages stable under inserts,
#     filters status / channel / template / project_id / recipient_id,
#     never the payload, never another tenant's rows, bad filters 400.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use JSON::PP;
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Atrium::Test;
use Atrium::Auth;
use Atrium::Checks;

my $tag = lc random_code('dlv');
my $maildir = env_of('ATRIUM_MAILDIR');
my $stack_dir = env_of('ATRIUM_STACK_DIR');
my $WINDOW = env_of('ATRIUM_DIGEST_WINDOW_S') // 300;
my $tmp = tempdir('notify-delivery-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $tmp;

# Whatever happens, leave the stack as we found it.
my @extra;
my $guard = Guard->new(sub {
    kill 'TERM', $_ for @extra;
    waitpid($_, 0) for @extra;
    stack('smtp-start');
    stack('notifier-start');
});

my $t = new_tenant(name => "Delivery Studio $tag");
my $u = new_tenant(name => "Bystander $tag");

# ------------------------------------------------------------------ helpers

sub must {
    my ($res, $what) = @_;
    die "$what: $res->{status} $res->{content}" unless $res->{status} =~ /^20[014]$/;
    return $res->{json};
}
sub rows {
    my ($tenant, $where) = @_;
    my $json = sql_in($tenant, "SELECT coalesce(json_agg(json_build_object('id', id, 'channel', channel,"
        . " 'template', template, 'kind', recipient_kind, 'rid', recipient_id, 'address', address,"
        . " 'project_id', project_id, 'status', status, 'attempts', attempts, 'last_error', last_error)"
        . " ORDER BY seq), '[]') FROM outbox WHERE tenant_id = '$tenant->{tenant_id}'" . ($where ? " AND $where" : ''));
    return @{ decode_json($json) };
}
sub poll {
    my ($secs, $cb) = @_;
    my $end = time + $secs;
    while (time <= $end) {
        return 1 if $cb->();
        select(undef, undef, undef, 0.25);
    }
    return 0;
}
# {recipient => count} of the mails whose (QP-unwrapped) text matches
sub mail_counts {
    my ($re) = @_;
    my %n;
    for my $f (glob("$maildir/new/*"), glob("$maildir/cur/*")) {
        open(my $fh, '<:raw', $f) or next;
        local $/;
        my $m = <$fh> // '';
        close $fh;
        next unless $m =~ /\Q$tag\E/;
        my ($rcpt) = $m =~ /^X-RcptTo:\s*<?([^\s<>]+)>?\s*$/mi or next;
        (my $flat = $m) =~ s/=\r?\n//g;
        $n{ lc $rcpt }++ if $flat =~ $re;
    }
    return \%n;
}
sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; my $s = <$fh> // ''; close $fh; return $s }

my $P1 = new_project($t, name => "Burst $tag")->{id};
my @cl = map { onboard($t, name => "Client $_", email => "c$_-$tag\@client.example", project_ids => [$P1]) } 1 .. 10;
my %want_each = map { lc($_->{email}) => 1 } @cl;

# ------------------------------------------------------------------ 1. SMTP down during a burst

{
    ok(stack('smtp-stop'), 'SMTP catcher stopped');
    my $d = must(team_api($t, POST => "/team/projects/$P1/deliverables", json => { title => "Burst file $tag", due_date => '2027-01-15' }), 'deliverable');
    must(team_api($t, PATCH => "/team/deliverables/$d->{id}", json => { status => 'delivered' }), 'delivered');
    my $m = must(team_api($t, POST => "/team/projects/$P1/milestones", json => { title => "Burst step $tag" }), 'milestone');
    must(team_api($t, PATCH => "/team/milestones/$m->{id}", json => { status => 'done' }), 'done');
    my $burst = "project_id = '$P1' AND template IN ('deliverable_delivered', 'milestone_completed')";
    my @r = rows($t, $burst);
    is(scalar @r, 20, '20 notifications queued (10 clients x 2)');
    ok(poll(20, sub { @r = rows($t, $burst); !grep { $_->{attempts} < 1 } @r }),
        'every one was attempted while the catcher was down');
    ok(!(grep { $_->{status} ne 'pending' } @r), 'all still pending')
        or diag explain { map { ("$_->{status}: " . ($_->{last_error} // '')) => 1 } @r };
    ok(!(grep { ($_->{last_error} // '') !~ /connect/i } @r), 'last_error: could not connect')
        or diag explain [ map { $_->{last_error} } @r[0 .. 1] ];
    is_deeply(mail_counts(qr/Burst (file|step) \Q$tag\E/), {}, 'nothing arrived');

    ok(stack('smtp-start'), 'SMTP catcher started');
    poll(45, sub { !grep { $_->{status} eq 'pending' } rows($t, $burst) });
    ok(!(grep { $_->{status} ne 'sent' } rows($t, $burst)), 'every notification sent once the catcher is back')
        or diag explain { map { ("$_->{status}: " . ($_->{last_error} // '')) => 1 } rows($t, $burst) };
    select(undef, undef, undef, 0.3);
    is_deeply(mail_counts(qr/Burst file \Q$tag\E/), \%want_each, 'the deliverable: exactly one mail per client');
    is_deeply(mail_counts(qr/Burst step \Q$tag\E/), \%want_each, 'the milestone: exactly one mail per client');
    ok(!(grep { $_->{attempts} < 2 || defined $_->{last_error} } rows($t, $burst)), 'attempts counted, last_error cleared');
}

# ------------------------------------------------------------------ 2. two notifiers

sub notifier_pid {
    my ($pid) = slurp("$stack_dir/run/notifier.pid") =~ /(\d+)/;
    return $pid && kill(0, $pid) ? $pid : undef;
}
# a second notifier with the environment and binary of the stack's, as the
# same user (setpriv execs in place: the pid is the notifier's)
sub spawn_notifier {
    my ($log) = @_;
    my $pid = notifier_pid() or return;
    my $env = slurp("/proc/$pid/environ");
    my @env = grep { length } split /\0/, $env;
    my $exe = readlink("/proc/$pid/exe") // env_of('ATRIUM_BIN_DIR') . '/atrium-notifier';
    $exe = env_of('ATRIUM_BIN_DIR') . '/atrium-notifier' if $exe =~ / \(deleted\)$/;
    my ($uid) = slurp("/proc/$pid/status") =~ /^Uid:\s+(\d+)/m;
    my $user = getpwuid($uid // 0) // 'atrium';
    open(my $lf, '>>', $log) or die "$log: $!";
    my $kid = fork // die "fork: $!";
    if (!$kid) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>&', $lf);
        open(STDERR, '>&', $lf);
        exec('env', '-i', @env, 'setpriv', "--reuid=$user", "--regid=$user", '--init-groups', '--no-new-privs', '--', $exe)
            or exit 127;
    }
    close $lf;
    push @extra, $kid;
    return $kid;
}
sub stop_notifier {
    my ($pid) = @_;
    kill 'TERM', $pid;
    my $end = time + 30;
    while (time < $end) {
        if (waitpid($pid, WNOHANG) == $pid) {
            @extra = grep { $_ != $pid } @extra;
            return $?;
        }
        select(undef, undef, undef, 0.05);
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return -1;
}

my @pair_ids;
{
    my $log = "$tmp/notifier-2.log";
    my $pid = spawn_notifier($log);
    ok($pid, 'a second notifier started with the first one\'s environment');
    ok(poll(20, sub { slurp($log) =~ /listening on atrium_outbox/ }), 'it listens') or diag slurp($log);
    my @P = map { new_project($t, name => "Pair $_ $tag")->{id} } 1 .. 5;
    for my $p (@P) {
        must(team_api($t, PUT => "/team/projects/$p/members/$_->{id}"), 'member') for @cl;
    }
    my $k = 0;
    must(team_api($t, POST => "/team/projects/$_/messages", json => { body => 'pair message ' . ++$k . " $tag" }), 'post') for @P;
    my $in = join(',', map { "'$_'" } @P);
    my @r = rows($t, "template = 'message_digest' AND project_id IN ($in)");
    is(scalar @r, 50, '50 digests queued (10 clients x 5 projects)');
    @pair_ids = map { $_->{id} } @r;
    # all due at once, both notifiers woken together
    sql_in($t, "UPDATE outbox SET send_after = now() WHERE template = 'message_digest' AND project_id IN ($in);"
        . " SELECT pg_notify('atrium_outbox', '')") if $WINDOW > 20;
    poll(60, sub { !grep { $_->{status} eq 'pending' } rows($t, "template = 'message_digest' AND project_id IN ($in)") });
    ok(!(grep { $_->{status} ne 'sent' } rows($t, "template = 'message_digest' AND project_id IN ($in)")), 'all 50 sent') or diag explain { map { ("$_->{status}: " . ($_->{last_error} // '')) => 1 } rows($t, "project_id IN ($in)") };
    select(undef, undef, undef, 0.3);
    for my $i (1 .. 5) {
        is_deeply(mail_counts(qr/pair message $i \Q$tag\E/), \%want_each, "project $i: exactly one digest mail per client");
    }
    ok(!(grep { $_->{attempts} != 1 } rows($t, "project_id IN ($in)")), 'each with one attempt');
    my %ids = map { $_ => 1 } @pair_ids;
    my $count = sub {
        scalar grep { /"event":"delivery"/ && /"outbox_id":"([^"]+)"/ && $ids{$1} } split /\n/, slurp($_[0]);
    };
    my $mine = $count->($log);
    my $theirs = $count->(env_of('ATRIUM_LOG_DIR') . '/atrium-notifier.log');
    is($mine + $theirs, 50, 'one delivery line per row across both logs');
    ok($mine > 0 && $theirs > 0, "both notifiers took part (the stack's $theirs, the second $mine)");
    is(stop_notifier($pid), 0, 'the second notifier exits 0 on SIGTERM');
}

# ------------------------------------------------------------------ 3. GET /team/outbox

# every item of a filtered list (pages of 200)
sub list_all {
    my ($tenant, $query) = @_;
    my (@items, $cursor);
    my $pages = 0;
    do {
        my $q = join('&', grep { length } $query // '', 'limit=200', defined $cursor ? "cursor=$cursor" : '');
        my $r = team_api($tenant, GET => "/team/outbox?$q");
        die "outbox ?$q: $r->{status} $r->{content}" unless $r->{status} == 200;
        push @items, @{ $r->{json}{data} };
        $cursor = $r->{json}{next_cursor};
    } while (defined $cursor && ++$pages < 50);
    return @items;
}
# ids, newest first, from SQL
sub sql_ids {
    my ($tenant, $where) = @_;
    my @l = split /\n/, psql_admin("BEGIN; SELECT set_config('app.tenant_id', '$tenant->{tenant_id}', true);"
        . " SELECT id FROM outbox WHERE tenant_id = '$tenant->{tenant_id}'" . ($where ? " AND $where" : '')
        . " ORDER BY seq DESC; COMMIT;");
    shift @l;
    return \@l;
}

{
    # some variety: pending rows, a dead row, another tenant's rows
    my $m = must(team_api($t, POST => "/team/projects/$P1/messages", json => { body => "secret payload text $tag" }), 'post');
    my ($dead) = rows($t, "template = 'milestone_completed' AND recipient_id = '$cl[0]{id}'");
    sql_in($t, "UPDATE outbox SET status = 'dead', last_error = 'smtp 550 5.1.1 test $tag' WHERE id = '$dead->{id}'");
    my $PU = new_project($u, name => "Bystander project $tag")->{id};
    my $cu = onboard($u, name => 'Bystander client', email => "bystander-$tag\@client.example", project_ids => [$PU]);
    my $mu = must(team_api($u, POST => "/team/projects/$PU/milestones", json => { title => "Bystander step $tag" }), 'milestone');
    must(team_api($u, PATCH => "/team/milestones/$mu->{id}", json => { status => 'done' }), 'done');

    my $all = sql_ids($t);
    my @items = list_all($t);
    is_deeply([ map { $_->{id} } @items ], $all, 'GET /team/outbox: every row of the tenant, newest first') or diag scalar(@items) . ' vs ' . scalar(@$all);
    ok(@$all >= 80, scalar(@$all) . ' rows');
    my %keys;
    $keys{ join ',', sort keys %$_ }++ for @items;
    is_deeply([ keys %keys ], [ join ',', sort qw(id channel template recipient project_id status attempts last_error created_at send_after sent_at) ],
        'every item has exactly the delivery fields (no payload)');
    ok(!(grep { join(',', sort keys %{ $_->{recipient} // {} }) ne 'address,id,kind' } @items), 'recipient {kind, id, address}');
    my $raw = team_api($t, GET => '/team/outbox?limit=200')->{content} // '';
    unlike($raw, qr{secret payload text|Burst file|pair message|https://}, 'no payload content anywhere in the answer');
    my %by = map { $_->{id} => $_ } @items;
    my $di = $by{ $dead->{id} } // {};
    is_deeply([ @$di{qw(status last_error)}, @{ $di->{recipient} // {} }{qw(kind id address)}, $di->{project_id}, $di->{template}, $di->{channel} ],
        [ 'dead', "smtp 550 5.1.1 test $tag", 'client', $cl[0]{id}, $cl[0]{email}, $P1, 'milestone_completed', 'email' ],
        'a dead row: status, last_error, recipient, project, template, channel');
    my ($pend) = grep { $_->{status} eq 'pending' } @items;
    ok($pend && !defined $pend->{sent_at} && $pend->{attempts} == 0, 'a pending row: no sent_at, no attempt');
    my ($sent) = grep { $_->{status} eq 'sent' } @items;
    like(($sent // {})->{sent_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'a sent row: sent_at RFC 3339 UTC');
    ok(!(grep { ($_->{created_at} // '') !~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/ || ($_->{send_after} // '') !~ /Z$/ } @items),
        'created_at and send_after RFC 3339 UTC');

    # filters
    my $c0 = $cl[0]{id};
    for my $f ([ 'status=sent', "status = 'sent'" ], [ 'status=pending', "status = 'pending'" ], [ 'status=dead', "status = 'dead'" ],
        [ 'channel=email', "channel = 'email'" ], [ 'channel=whatsapp', "channel = 'whatsapp'" ],
        [ 'template=deliverable_delivered', "template = 'deliverable_delivered'" ], [ 'template=message_digest', "template = 'message_digest'" ],
        [ 'template=invite', "template = 'invite'" ], [ "project_id=$P1", "project_id = '$P1'" ], [ "recipient_id=$c0", "recipient_id = '$c0'" ],
        [ "status=sent&template=milestone_completed&project_id=$P1", "status = 'sent' AND template = 'milestone_completed' AND project_id = '$P1'" ],
        [ "recipient_id=$c0&channel=email&status=dead", "recipient_id = '$c0' AND channel = 'email' AND status = 'dead'" ]) {
        my ($q, $where) = @$f;
        my $want = sql_ids($t, $where);
        is_deeply([ map { $_->{id} } list_all($t, $q) ], $want, "?$q: exactly the matching rows, newest first (" . scalar(@$want) . ')');
    }
    ok(@{ sql_ids($t, "status = 'dead'") } >= 1, '(the dead filter has something to find)');

    # keyset pages hold still while rows arrive
    my $before = sql_ids($t);
    my $n = 0;
    my $seen = walk($t, '/team/outbox', 'id', sub {
        my $k = must(team_api($t, POST => "/team/projects/$P1/milestones", json => { title => "During walk " . ++$n . " $tag" }), 'ms');
        must(team_api($t, PATCH => "/team/milestones/$k->{id}", json => { status => 'done' }), 'done');
    });
    ok(@{ sql_ids($t) } > @$before, 'rows arrived during the walk');
    is_deeply($seen, $before, 'pages of 2: every row once, in order, none of the new ones');
    once_each($seen, $before, 'the walk');
    my $pf = walk($t, "/team/outbox?project_id=$P1&template=deliverable_delivered&status=sent", 'id');
    is_deeply($pf, sql_ids($t, "project_id = '$P1' AND template = 'deliverable_delivered' AND status = 'sent'"),
        'a filtered walk in pages of 2');
    is(scalar @$pf, 10, '(of ten rows)');

    # other tenants
    my $uall = sql_ids($u);
    ok(@$uall >= 1, 'the other tenant has rows of its own');
    is_deeply([ map { $_->{id} } list_all($u) ], $uall, "the other tenant's list: its own rows");
    my %mine = map { $_ => 1 } @$all;
    ok(!(grep { $mine{ $_->{id} } } list_all($u)), "none of this tenant's rows in the other's list");
    ok(!(grep { my $id = $_; grep { $_ eq $id } @$uall } map { $_->{id} } list_all($t)), "none of the other's rows in this list");
    is_deeply([ list_all($u, "project_id=$P1") ], [], "the other tenant filtering on this tenant's project: empty");
    is_deeply([ list_all($u, "recipient_id=$c0") ], [], "the other tenant filtering on this tenant's client: empty");
    is_deeply([ list_all($t, "recipient_id=$cu->{id}") ], [], "this tenant filtering on the other's client: empty");
    unlike(team_api($u, GET => '/team/outbox?limit=200')->{content}, qr/\Q$cl[0]{email}\E/, "no address of this tenant in the other's list");

    # bad filters
    for my $q ('status=bogus', 'status=', 'channel=sms', 'template=no_such_template', 'project_id=not-a-uuid',
        'recipient_id=123', 'limit=0', 'limit=201', 'limit=abc', 'cursor=garbage') {
        is_problem(team_api($t, GET => "/team/outbox?$q"), 400, 'bad_query', "?$q");
    }
    my $r = team_api($t, GET => '/team/outbox', headers => { 'x-api-key' => undef });
    is($r->{status}, 401, 'without the API key: 401');
    $r = client_api($t, $cl[0]{access}, GET => '/team/outbox');
    is($r->{status}, 401, 'with a client token instead: 401');
}

done_testing();

package Guard;
sub new { my ($c, $cb) = @_; bless { cb => $cb }, $c }
sub dismiss { $_[0]{cb} = undef }
sub DESTROY { $_[0]{cb}->() if $_[0]{cb} }
