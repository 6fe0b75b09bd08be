#!/usr/bin/perl
# Isolation is the product, on the client portal.  Tenant A has projects P
# and Q; client U is a member of P, V of Q, W of both; tenant B has project R
# and client X.  Every project holds visible and internal milestones, tasks
# and deliverables (some delivered, some decided), client, team, internal and
# deleted messages, and files really uploaded to the store through presigned
# PUTs: on messages, on deliverables, loose, and uploaded but not confirmed.
#
#  - own project: the data, exactly the client-visible rows;
#  - another client's project, another tenant's project, ids guessed from
#    another project (in the path, as a read marker, as a file to download
#    or confirm): 404 not_found with exactly the answer of a missing id;
#    foreign attachments in attachment_ids: 422 invalid_reference; foreign
#    filter values: an empty list; a token of A on B's host: 401;
#  - nothing changes (the team surface and the database compared before and
#    after every refused write), lists walked page by page with limit=1
#    never hold a foreign or internal row whatever the filters;
#  - tenant B's API key on A's messages and attachments: 404 (on B's host,
#    as team-isolation.t does) and 401 on A's host;
#  - the row-level policies, as the application role: with app.portal_user_id
#    set, every table shows only that client's member projects and their
#    client-visible rows; without it, the tenant's rows; never another's;
#  - and, last, the same writes done by the rightful caller succeed, so that
#    every refusal above was the isolation and not a broken endpoint.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempfile);
use Atrium::Test;
use Atrium::Auth;
use Atrium::Checks;

my $FALSE = JSON::PP::false;
my $store = HTTP::Tiny->new(timeout => 10);

# a setup step that must work (the test makes no sense otherwise)
sub must {
    my ($r, $want, $what) = @_;
    die "setup: $what: expected $want, got $r->{status}: " . ($r->{content} // '') . "\n"
        unless $r->{status} == $want;
    return $r->{json};
}

my @hex = (0 .. 9, 'a' .. 'f');
sub fresh_uuid {
    my $h = join '', map { $hex[rand @hex] } 1 .. 32;
    substr($h, 12, 1) = '4';
    substr($h, 16, 1) = '8';
    return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4), substr($h, 16, 4), substr($h, 20);
}

# {name} placeholders of a path or body filled from a map of ids
sub fill {
    my ($x, $ids) = @_;
    return undef unless defined $x;
    return { map { $_ => fill($x->{$_}, $ids) } keys %$x } if ref $x eq 'HASH';
    return [ map { fill($_, $ids) } @$x ] if ref $x eq 'ARRAY';
    return $x if ref $x;
    (my $s = $x) =~ s/\{(\w+)\}/$ids->{$1} \/\/ die "no id for {$1}"/ge;
    return $s;
}

# what a caller can compare of two answers (the request id differs)
sub shape {
    my ($r) = @_;
    my %j = %{ $r->{json} // { raw => $r->{content} } };
    delete $j{request_id};
    return { status => $r->{status}, type => ($r->{headers}{'content-type'} // ''), body => \%j };
}

# $send->(METHOD, PATH, json => ..., headers => ...) naming %$ids (and the
# caller's own %$fixed) must answer 404 not_found, exactly what the same
# request answers when %$ids are replaced by ids that exist nowhere.
sub refused {
    my ($send, $method, $tpl, $body, $ids, $fixed, $name, $headers) = @_;
    my %missing = map { $_ => fresh_uuid() } keys %$ids;
    my @h = (headers => $headers // {});
    my %real = (%$fixed, %$ids);
    my %fake = (%$fixed, %missing);
    my $r = $send->($method, fill($tpl, \%real), (defined $body ? (json => fill($body, \%real)) : ()), @h);
    my $ref = $send->($method, fill($tpl, \%fake), (defined $body ? (json => fill($body, \%fake)) : ()), @h);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_not_found($r, $name);
    is_deeply(shape($r), shape($ref), "$name: same answer as a missing id")
        or diag explain { got => shape($r), missing => shape($ref) };
}

sub empty_list {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok($r->{status} == 200 && ref $r->{json} eq 'HASH'
            && ref $r->{json}{data} eq 'ARRAY' && !@{ $r->{json}{data} }
            && exists $r->{json}{next_cursor} && !defined $r->{json}{next_cursor},
        "$name: 200, empty list")
        or diag explain { status => $r->{status}, body => $r->{json} // $r->{content} };
}

# ---------------------------------------------------------------- tenants, projects, clients

my $A = new_tenant();
my $B = new_tenant();
my %P = (name => 'P', t => $A, members => [qw(U W)]);
my %Q = (name => 'Q', t => $A, members => [qw(V W)]);
my %R = (name => 'R', t => $B, members => [qw(X)]);
$P{id} = new_project($A, name => 'P website')->{id};
$Q{id} = new_project($A, name => 'Q rebrand')->{id};
$R{id} = new_project($B, name => 'R campaign')->{id};
must(team_api($A, PATCH => "/team/projects/$Q{id}", json => { status => 'on_hold' }), 200, 'Q on hold');
my %project = (P => \%P, Q => \%Q, R => \%R);

my $U = { %{ onboard($A, name => 'Ursula P', project_ids => [$P{id}]) }, tag => 'U', t => $A };
my $V = { %{ onboard($A, name => 'Victor Q', project_ids => [$Q{id}]) }, tag => 'V', t => $A };
my $W = { %{ onboard($A, name => 'Wanda PQ', project_ids => [$P{id}, $Q{id}]) }, tag => 'W', t => $A };
my $X = { %{ onboard($B, name => 'Xavier R', project_ids => [$R{id}]) }, tag => 'X', t => $B };
# Y was a member of P and uploaded files there before being removed
my $Y = { %{ onboard($A, name => 'Yara ex-P', project_ids => [$P{id}]) }, tag => 'Y', t => $A };
my %client = (U => $U, V => $V, W => $W, X => $X, Y => $Y);
$P{client} = $U;
$Q{client} = $V;
$R{client} = $X;

sub capi { my ($c, @rest) = @_; return client_api($c->{t}, $c->{access}, @rest) }
sub sender { my ($c) = @_; return sub { capi($c, @_) } }

# A file really uploaded to the store through its presigned PUT, then
# confirmed unless $pending (uploaded but not confirmed yet).  $who is a
# client record, or undef for the team.
my $files = 0;
sub upload {
    my ($d, $who, $key, $pending) = @_;
    my ($t, $pid) = ($d->{t}, $d->{id});
    my $fname = ($key =~ /^(ca_msg|ta_msg|ta_deliv|w_msg)$/ ? '' : 'CANARY-') . "$d->{name}-$key";
    my $bytes = "$fname file " . (++$files) . ' ' . ('z' x 300) . "\n";
    my %body = (filename => "$fname.txt", content_type => 'text/plain', size => length $bytes);
    my $r = $who ? capi($who, POST => "/projects/$pid/attachments", json => \%body)
                 : team_api($t, POST => "/team/projects/$pid/attachments", json => \%body);
    my $att = must($r, 201, "create $fname");
    my $put = $store->request(PUT => $att->{upload}{url},
        { content => $bytes, headers => { 'content-type' => 'text/plain' } });
    die "setup: PUT $fname: $put->{status} $put->{content}\n" unless $put->{status} == 200;
    my %a = (id => $att->{id}, key => $key, bytes => $bytes, sha256 => sha256_hex($bytes),
        uploader => $who ? $who->{tag} : 'team', ready => 0, shown => 0);
    unless ($pending) {
        $r = $who ? capi($who, POST => "/attachments/$a{id}/complete")
                  : team_api($t, POST => "/team/attachments/$a{id}/complete");
        my $j = must($r, 200, "complete $fname");
        die "setup: $fname: sha256 $j->{sha256}\n" unless ($j->{sha256} // '') eq $a{sha256};
        $a{ready} = 1;
    }
    return $d->{att}{$key} = \%a;
}

# milestones, tasks, deliverables, files and messages of one project, seen
# by its member client $c
sub populate {
    my ($d) = @_;
    my ($t, $pid, $n, $c) = @$d{qw(t id name client)};
    my $team = sub {
        my ($method, $path, $body, $want) = @_;
        return must(team_api($t, $method => $path, (defined $body ? (json => $body) : ())), $want // 201, "$n: $method $path");
    };
    $d->{ms_v} = $team->(POST => "/team/projects/$pid/milestones", { title => "$n design", position => 1 })->{id};
    $d->{ms_i} = $team->(POST => "/team/projects/$pid/milestones",
        { title => "CANARY $n budget", position => 2, client_visible => $FALSE })->{id};
    $d->{t_done} = $team->(POST => "/team/projects/$pid/tasks",
        { title => "$n wireframes", milestone_id => $d->{ms_v}, status => 'done', position => 1 })->{id};
    $d->{t_todo} = $team->(POST => "/team/projects/$pid/tasks",
        { title => "$n mockups", milestone_id => $d->{ms_v}, position => 2 })->{id};
    $d->{t_under_i} = $team->(POST => "/team/projects/$pid/tasks",
        { title => "$n costing", milestone_id => $d->{ms_i}, position => 3 })->{id};
    $d->{t_int} = $team->(POST => "/team/projects/$pid/tasks",
        { title => "CANARY $n pricing", milestone_id => $d->{ms_v}, status => 'done', position => 4,
          client_visible => $FALSE })->{id};

    upload($d, undef, $_) for qw(ta_deliv ta_msg ta_hidden ta_dec ta_int ta_del ta_free);
    upload($d, undef, 'ta_pending', 1);
    upload($d, $c, $_) for qw(ca_msg ca_free);
    upload($d, $c, 'ca_pending', 1);

    my %a = map { $_ => $d->{att}{$_}{id} } keys %{ $d->{att} };
    $d->{d_sched} = $team->(POST => "/team/projects/$pid/deliverables",
        { title => "$n homepage", due_date => '2027-01-10', milestone_id => $d->{ms_v} })->{id};
    $d->{d_deliv} = $team->(POST => "/team/projects/$pid/deliverables",
        { title => "$n style guide", due_date => '2027-01-11', milestone_id => $d->{ms_v}, status => 'delivered',
          attachment_ids => [$a{ta_deliv}] })->{id};
    $d->{d_deliv2} = $team->(POST => "/team/projects/$pid/deliverables",
        { title => "$n copy deck", due_date => '2027-01-12', status => 'delivered' })->{id};
    $d->{d_under_i} = $team->(POST => "/team/projects/$pid/deliverables",
        { title => "$n estimate", due_date => '2027-01-13', milestone_id => $d->{ms_i} })->{id};
    $d->{d_approved} = $team->(POST => "/team/projects/$pid/deliverables",
        { title => "$n logo", due_date => '2027-01-14', status => 'delivered' })->{id};
    $d->{d_hidden} = $team->(POST => "/team/projects/$pid/deliverables",
        { title => "CANARY $n draft", due_date => '2027-01-01', status => 'delivered', client_visible => $FALSE,
          attachment_ids => [$a{ta_hidden}] })->{id};
    $d->{d_decided} = $team->(POST => "/team/projects/$pid/deliverables",
        { title => "CANARY $n withdrawn", due_date => '2027-01-02', status => 'delivered',
          attachment_ids => [$a{ta_dec}] })->{id};
    for my $k (qw(d_approved d_decided)) {
        must(capi($c, POST => "/projects/$pid/deliverables/$d->{$k}/approve", json => { comment => 'fine' }), 200, "$n: approve $k");
    }
    # decided, then withdrawn from the client: its decision stays in the database
    $team->(PATCH => "/team/deliverables/$d->{d_decided}", { client_visible => $FALSE }, 200);
    $d->{att}{ta_deliv}{shown} = 1;

    $d->{m_client} = must(capi($c, POST => "/projects/$pid/messages", json => { body => "$n hello from the client",
        attachment_ids => [$a{ca_msg}] }), 201, "$n: client message")->{id};
    $d->{m_team} = $team->(POST => "/team/projects/$pid/messages", { body => "$n reply from the team",
        attachment_ids => [$a{ta_msg}] })->{id};
    $d->{m_int} = $team->(POST => "/team/projects/$pid/messages", { body => "CANARY $n internal note",
        visibility => 'internal', attachment_ids => [$a{ta_int}] })->{id};
    $d->{m_del} = $team->(POST => "/team/projects/$pid/messages", { body => "CANARY $n withdrawn message",
        attachment_ids => [$a{ta_del}] })->{id};
    $team->(DELETE => "/team/messages/$d->{m_del}", undef, 204);
    $d->{att}{$_}{shown} = 1 for qw(ca_msg ta_msg);
    must(capi($c, POST => "/projects/$pid/messages/read", json => { last_read_message_id => $d->{m_client} }), 204, "$n: read marker");
}

# W, the member of P and Q: a message with a file, a loose file, a marker
sub join_in {
    my ($d) = @_;
    my $pid = $d->{id};
    upload($d, $W, 'w_msg');
    upload($d, $W, 'w_free');
    $d->{m_w} = must(capi($W, POST => "/projects/$pid/messages", json => { body => "$d->{name} note from W",
        attachment_ids => [$d->{att}{w_msg}{id}] }), 201, "$d->{name}: W's message")->{id};
    $d->{att}{w_msg}{shown} = 1;
    must(capi($W, POST => "/projects/$pid/messages/read", json => { last_read_message_id => $d->{m_client} }), 204,
        "$d->{name}: W's read marker");
}

# P entirely before Q: every message of Q is newer than every message of P
populate(\%P);
join_in(\%P);
upload(\%P, $Y, 'y_free');
upload(\%P, $Y, 'y_pending', 1);
must(team_api($A, DELETE => "/team/projects/$P{id}/members/$Y->{id}"), 204, 'Y leaves P');
populate(\%Q);
join_in(\%Q);
populate(\%R);
pass('setup: three projects, four clients, ' . $files . ' uploaded files');

# what a member sees
my @vis_tasks = qw(t_done t_todo t_under_i);
my @vis_deliverables = qw(d_sched d_deliv d_deliv2 d_under_i d_approved);    # by due date
sub vis_messages { my ($d) = @_; return [ grep { defined $d->{$_} } qw(m_w m_team m_client) ] }    # newest first
sub ids { my ($d, @keys) = @_; return [ map { $d->{$_} // die "no $_" } @keys ] }
my %unread = ('U P' => 2, 'W P' => 1, 'V Q' => 2, 'W Q' => 1, 'X R' => 1);

my @own = ([$U, \%P], [$W, \%P], [$W, \%Q], [$V, \%Q], [$X, \%R]);
sub member { my ($c, $d) = @_; return scalar grep { $_ eq $c->{tag} } @{ $d->{members} } }

# ---------------------------------------------------------------- the world, as the team sees it

sub world {
    my %s;
    for my $d (\%P, \%Q, \%R) {
        for my $what (qw(messages deliverables tasks milestones members)) {
            my $r = team_api($d->{t}, GET => "/team/projects/$d->{id}/$what?limit=200");
            $s{"team $what of $d->{name}"} = [ $r->{status}, $r->{json} ];
        }
    }
    for my $pair ([A => $A], [B => $B]) {
        my ($tn, $t) = @$pair;
        $s{"row counts of $tn"} = sql_in($t, 'SELECT concat_ws(\' \','
            . join(',', map { "'$_:' || (SELECT count(*) FROM $_)" }
                qw(messages attachments deliverable_decisions deliverable_attachments message_reads
                   outbox audit_log idempotency_keys project_members))
            . ')');
        $s{"attachment states of $tn"} = sql_in($t, "SELECT string_agg(id || ':' || status || ':' || coalesce(message_id::text, '-'), ',' ORDER BY id) FROM attachments");
        $s{"read markers of $tn"} = sql_in($t, "SELECT string_agg(project_id || ':' || client_id || ':' || last_seq, ',' ORDER BY project_id, client_id) FROM message_reads");
        $s{"deliverables of $tn"} = sql_in($t, "SELECT string_agg(id || ':' || status || ':' || coalesce(decision_id::text, '-') || ':' || updated_at, ',' ORDER BY id) FROM deliverables");
    }
    for my $c ($U, $V, $W, $X, $Y) {
        my $r = capi($c, GET => '/projects');
        $s{"unread counts of $c->{tag}"} = { map { $_->{id} => $_->{unread_messages} } @{ $r->{json}{data} // [] } };
    }
    return \%s;
}

sub unchanged {
    my ($before, $when) = @_;
    my $now = world();
    for my $k (sort keys %$before) {
        is_deeply($now->{$k}, $before->{$k}, "$when: unchanged: $k");
    }
}

my $before = world();
is_deeply($before->{'unread counts of U'}, { $P{id} => 2 }, 'U: one project, two unread (the team reply and W\'s note)');
is_deeply($before->{'unread counts of W'}, { $P{id} => 1, $Q{id} => 1 }, 'W: two projects, one unread in each');

# ---------------------------------------------------------------- own projects: the data

for my $o (@own) {
    my ($c, $d) = @$o;
    my $who = "$c->{tag} on own $d->{name}";
    my $r = capi($c, GET => "/projects/$d->{id}");
    is($r->{status}, 200, "$who: GET /projects/{id}");
    my $j = $r->{json} // {};
    is($j->{id}, $d->{id}, "$who: the project");
    is_deeply([ map { $_->{id} } @{ $j->{milestones} // [] } ], [ $d->{ms_v} ], "$who: only the visible milestone");
    is($j->{milestones}[0]{percent}, 50, "$who: milestone percent from its visible tasks only");
    is_deeply([ map { $_->{id} } @{ $j->{deliverables} // [] } ], ids($d, @vis_deliverables), "$who: only the visible deliverables, by due date");
    is_deeply($j->{progress}, { tasks_total => 3, tasks_done => 1, percent => 33 }, "$who: progress of visible tasks");
    is($j->{next_deliverable}{id}, $d->{d_sched}, "$who: next deliverable is not a hidden one");
    is($j->{unread_messages}, $unread{"$c->{tag} $d->{name}"}, "$who: unread count");
    my ($dd) = grep { $_->{id} eq $d->{d_deliv} } @{ $j->{deliverables} // [] };
    is_deeply([ map { $_->{id} } @{ $dd->{attachments} // [] } ], [ $d->{att}{ta_deliv}{id} ], "$who: the delivered file is listed");
    unlike($r->{content}, qr/CANARY|client_visible|"visibility"|deleted_at/, "$who: nothing internal in the page");

    # files: what the client may download, what it may not, what it may confirm
    for my $k (sort keys %{ $d->{att} }) {
        my $att = $d->{att}{$k};
        my $mine = $att->{uploader} eq $c->{tag};
        my $dl = "$who: download $k";
        if ($att->{ready} && ($att->{shown} || $mine)) {
            my $g = capi($c, GET => "/attachments/$att->{id}/download");
            is($g->{status}, 200, "$dl: 200");
            my $get = $store->get($g->{json}{url} // 'http://127.0.0.1:1/');
            ok($get->{status} == 200 && $get->{content} eq $att->{bytes}, "$dl: the stored bytes");
        } elsif ($mine) {
            is_problem(capi($c, GET => "/attachments/$att->{id}/download"), 409, 'upload_incomplete', "$dl (own, pending)");
        } else {
            refused(sender($c), GET => '/attachments/{att}/download', undef, { att => $att->{id} }, {}, $dl);
        }
        my $cp = "$who: complete $k";
        if ($mine && $att->{ready}) {
            my $g = capi($c, POST => "/attachments/$att->{id}/complete");
            ok($g->{status} == 200 && ($g->{json}{status} // '') eq 'ready' && ($g->{json}{sha256} // '') eq $att->{sha256},
                "$cp: own ready file, 200 ready");
        } elsif (!$mine) {
            refused(sender($c), POST => '/attachments/{att}/complete', undef, { att => $att->{id} }, {}, "$cp (not the uploader)");
        }
    }
}

# ---------------------------------------------------------------- lists, page by page

sub esc { my ($s) = @_; $s =~ s/([^A-Za-z0-9._~-])/sprintf('%%%02X', ord $1)/ge; return $s }

# every page with limit=1: (items, raw text of all pages, error)
sub client_walk {
    my ($c, $path) = @_;
    my (@items, $raw, $cursor);
    my $pages = 0;
    my $sep = $path =~ /\?/ ? '&' : '?';
    do {
        my $r = capi($c, GET => "$path${sep}limit=1" . (defined $cursor ? '&cursor=' . esc($cursor) : ''));
        return (\@items, $raw, "page $pages: $r->{status} $r->{content}") unless $r->{status} == 200;
        my $data = $r->{json}{data} // [];
        return (\@items, $raw, 'a page of ' . scalar(@$data)) if @$data > 1;
        push @items, @$data;
        $raw .= $r->{content};
        $cursor = $r->{json}{next_cursor};
        $pages++;
    } while (defined $cursor && $pages < 50);
    return (\@items, $raw, defined $cursor ? 'no end' : undef);
}

sub walk_is {
    my ($c, $path, $want, $project_id, $name) = @_;
    my ($items, $raw, $err) = client_walk($c, $path);
    ok(!defined $err, "$name: walked") or diag $err;
    is_deeply([ map { $_->{id} } @$items ], $want, "$name: exactly the expected rows, in order");
    ok(!grep({ ($_->{project_id} // '') ne $project_id } @$items), "$name: every row of the project") if defined $project_id;
    unlike($raw // '', qr/CANARY|client_visible|"visibility"|deleted_at/, "$name: nothing internal");
}

walk_is($U, '/projects', [ $P{id} ], undef, 'U GET /projects');
walk_is($V, '/projects', [ $Q{id} ], undef, 'V GET /projects');
walk_is($W, '/projects', [ $P{id}, $Q{id} ], undef, 'W GET /projects');
walk_is($X, '/projects', [ $R{id} ], undef, 'X GET /projects');
walk_is($Y, '/projects', [], undef, 'Y (removed from P) GET /projects');
walk_is($W, '/projects?status=on_hold', [ $Q{id} ], undef, 'W GET /projects?status=on_hold');
walk_is($W, '/projects?status=active', [ $P{id} ], undef, 'W GET /projects?status=active');
walk_is($U, '/projects?status=on_hold', [], undef, 'U GET /projects?status=on_hold');

for my $o (@own) {
    my ($c, $d) = @$o;
    my $base = "/projects/$d->{id}";
    my $who = "$c->{tag} on $d->{name}";
    my @lists = (
        [tasks => '', 'all', [@vis_tasks]],
        [tasks => '?status=done', 'status=done', [qw(t_done)]],
        [tasks => '?status=todo', 'status=todo', [qw(t_todo t_under_i)]],
        [tasks => '?status=in_progress', 'status=in_progress', []],
        [tasks => "?milestone_id=$d->{ms_v}", 'its visible milestone', [qw(t_done t_todo)]],
        [tasks => "?milestone_id=$d->{ms_i}", 'its internal milestone', []],
        [tasks => "?status=done&milestone_id=$d->{ms_v}", 'status=done and its visible milestone', [qw(t_done)]],
        [deliverables => '', 'all', [@vis_deliverables]],
        [deliverables => '?status=delivered', 'status=delivered', [qw(d_deliv d_deliv2)]],
        [deliverables => '?status=approved', 'status=approved (a withdrawn one is approved too)', [qw(d_approved)]],
        [deliverables => '?status=scheduled', 'status=scheduled', [qw(d_sched d_under_i)]],
        [deliverables => '?status=changes_requested', 'status=changes_requested', []],
        [deliverables => "?milestone_id=$d->{ms_v}", 'its visible milestone', [qw(d_sched d_deliv)]],
        [deliverables => "?milestone_id=$d->{ms_i}", 'its internal milestone', []],
        [messages => '', 'all', vis_messages($d)],
        [messages => "?after=$d->{m_client}", 'after the client message', [ grep { $_ ne 'm_client' } @{ vis_messages($d) } ]],
        [messages => "?after=$d->{m_team}", 'after the team message', [ grep { $_ eq 'm_w' } @{ vis_messages($d) } ]],
        [messages => "?after=$d->{m_int}", 'after the internal message (not in the list)', []],
        [messages => "?after=$d->{m_del}", 'after the deleted message (not in the list)', []],
    );
    for my $l (@lists) {
        my ($what, $query, $label, $keys) = @$l;
        walk_is($c, "$base/$what$query", ids($d, @$keys), $d->{id}, "$who: $what, $label");
    }
    # foreign filter values, page by page too
    for my $f (grep { $_ != $d } \%P, \%Q, \%R) {
        walk_is($c, "$base/tasks?milestone_id=$f->{ms_v}", [], $d->{id}, "$who: tasks filtered by $f->{name}'s milestone");
        walk_is($c, "$base/deliverables?milestone_id=$f->{ms_v}", [], $d->{id}, "$who: deliverables filtered by $f->{name}'s milestone");
        walk_is($c, "$base/messages?after=$f->{m_client}", [], $d->{id}, "$who: messages after $f->{name}'s message");
    }
}
# the message files in the client's list are the visible ones
{
    my $r = capi($U, GET => "/projects/$P{id}/messages");
    my %files = map { $_->{id} => [ map { $_->{id} } @{ $_->{attachments} } ] } @{ $r->{json}{data} // [] };
    is_deeply(\%files, { $P{m_client} => [ $P{att}{ca_msg}{id} ], $P{m_team} => [ $P{att}{ta_msg}{id} ],
        $P{m_w} => [ $P{att}{w_msg}{id} ] }, 'U: each visible message with its own file');
}

# ---------------------------------------------------------------- the matrix: foreign projects

# every project-scoped client endpoint; {proj} and the other ids are the
# victim project's
my @project_routes = (
    [GET  => '/projects/{proj}'],
    [GET  => '/projects/{proj}/tasks'],
    [GET  => '/projects/{proj}/tasks?status=done&milestone_id={ms}'],
    [GET  => '/projects/{proj}/deliverables'],
    [GET  => '/projects/{proj}/deliverables?status=delivered&limit=1'],
    [POST => '/projects/{proj}/deliverables/{deliv}/approve'],
    [POST => '/projects/{proj}/deliverables/{deliv}/approve', { comment => 'looks good' }],
    [POST => '/projects/{proj}/deliverables/{deliv2}/request-changes', { comment => 'redo it' }],
    [GET  => '/projects/{proj}/messages'],
    [GET  => '/projects/{proj}/messages?after={msg}&limit=5'],
    [POST => '/projects/{proj}/messages', { body => 'intruder' }],
    [POST => '/projects/{proj}/messages', { body => 'intruder' }, { 'Idempotency-Key' => 'iso-intruder-1' }],
    [POST => '/projects/{proj}/messages', { attachment_ids => ['{free}'] }],
    [POST => '/projects/{proj}/messages/read', { last_read_message_id => '{msg}' }],
    [POST => '/projects/{proj}/attachments', { filename => 'intruder.txt', content_type => 'text/plain', size => 10 }],
);
sub victim_ids {
    my ($d) = @_;
    return { proj => $d->{id}, ms => $d->{ms_v}, deliv => $d->{d_deliv}, deliv2 => $d->{d_deliv2},
        msg => $d->{m_team}, free => $d->{att}{ca_free}{id} };
}

for my $c ($U, $V, $W, $X, $Y) {
    for my $d (grep { !member($c, $_) } \%P, \%Q, \%R) {
        my $who = "$c->{tag} on " . ($d->{t} == $c->{t} ? "same-tenant" : "other tenant's") . " $d->{name}"
            . ($c == $Y && $d == \%P ? ' (a former member, its own uploads too)' : '');
        for my $rt (@project_routes) {
            my ($method, $tpl, $body, $h) = @$rt;
            refused(sender($c), $method, $tpl, $body, victim_ids($d), {}, "$who: $method $tpl", $h);
        }
        for my $k (sort keys %{ $d->{att} }) {
            my $id = { att => $d->{att}{$k}{id} };
            refused(sender($c), GET => '/attachments/{att}/download', undef, $id, {}, "$who: download $k");
            refused(sender($c), GET => '/attachments/{att}/download?redirect=1', undef, $id, {}, "$who: download?redirect=1 $k");
            refused(sender($c), POST => '/attachments/{att}/complete', undef, $id, {}, "$who: complete $k");
        }
    }
}

# a conditional GET is no oracle: the rightful member's ETag (or *) sent by
# an outsider is still a 404, never a 304
for my $d (\%P, \%Q, \%R) {
    for my $path ("/projects/$d->{id}", "/projects/$d->{id}/tasks", "/projects/$d->{id}/deliverables", "/projects/$d->{id}/messages") {
        my $etag = capi($d->{client}, GET => $path)->{headers}{etag};
        like($etag // '', qr/^"[0-9a-f]{32}"$/, "$d->{client}{tag}: ETag of $d->{name}'s page");
        for my $c (grep { !member($_, $d) } $U, $V, $W, $X) {
            for my $inm ($etag // '"x"', '*') {
                is_not_found(capi($c, GET => $path, headers => { 'if-none-match' => $inm }),
                    "$c->{tag} on $d->{name}: GET " . ($path =~ s/\Q$d->{id}\E/{id}/r) . " with If-None-Match $inm");
            }
        }
    }
}

# ---------------------------------------------------------------- ids guessed from other projects

# the caller's own loose, ready file in a project
sub my_free { my ($c, $d) = @_; return $d->{att}{ $c->{tag} eq 'W' ? 'w_free' : 'ca_free' } }

for my $o (@own) {
    my ($c, $d) = @$o;
    my $own = { own => $d->{id} };
    for my $f (grep { $_ != $d } \%P, \%Q, \%R) {
        my $who = "$c->{tag} in own $d->{name} naming $f->{name}'s";
        refused(sender($c), POST => '/projects/{own}/deliverables/{deliv}/approve', {}, { deliv => $f->{d_deliv} }, $own, "$who delivered deliverable: approve");
        refused(sender($c), POST => '/projects/{own}/deliverables/{deliv}/request-changes', { comment => 'no' }, { deliv => $f->{d_deliv2} }, $own, "$who delivered deliverable: request-changes");
        refused(sender($c), POST => '/projects/{own}/deliverables/{deliv}/approve', {}, { deliv => $f->{d_sched} }, $own, "$who scheduled deliverable: approve (no 409 oracle)");
        refused(sender($c), POST => '/projects/{own}/messages/read', { last_read_message_id => '{msg}' }, { msg => $f->{m_team} }, $own, "$who team message as read marker");
        refused(sender($c), POST => '/projects/{own}/messages/read', { last_read_message_id => '{msg}' }, { msg => $f->{m_client} }, $own, "$who client message as read marker");
        empty_list(capi($c, GET => "/projects/$d->{id}/tasks?milestone_id=$f->{ms_v}"), "$who milestone as tasks filter");
        empty_list(capi($c, GET => "/projects/$d->{id}/deliverables?milestone_id=$f->{ms_v}"), "$who milestone as deliverables filter");
        empty_list(capi($c, GET => "/projects/$d->{id}/messages?after=$f->{m_team}"), "$who message as ?after=");
        # a file of the other project (the caller's own there when it has one)
        my $foreign = member($c, $f) ? my_free($c, $f) : $f->{att}{ca_free};
        my $r = capi($c, POST => "/projects/$d->{id}/messages", json => { body => 'see file', attachment_ids => [ $foreign->{id} ] });
        invalid($r, 'attachment_ids[0]', 'invalid_reference', "$who file in attachment_ids");
        $r = capi($c, POST => "/projects/$d->{id}/messages", json => { attachment_ids => [ my_free($c, $d)->{id}, $foreign->{id} ] });
        invalid($r, 'attachment_ids[1]', 'invalid_reference', "$who file after an own file in attachment_ids");
        $r = capi($c, POST => "/projects/$d->{id}/messages", json => { body => 'see file', attachment_ids => [ $f->{att}{ta_deliv}{id} ] });
        invalid($r, 'attachment_ids[0]', 'invalid_reference', "$who deliverable file in attachment_ids");
    }
    # in the own project, what is not the client's to see or use
    my $who = "$c->{tag} in own $d->{name}";
    refused(sender($c), POST => '/projects/{own}/deliverables/{deliv}/approve', {}, { deliv => $d->{d_hidden} }, $own, "$who: approve a hidden delivered deliverable");
    refused(sender($c), POST => '/projects/{own}/deliverables/{deliv}/request-changes', { comment => 'no' }, { deliv => $d->{d_hidden} }, $own, "$who: request changes on a hidden deliverable");
    refused(sender($c), POST => '/projects/{own}/deliverables/{deliv}/approve', {}, { deliv => $d->{d_decided} }, $own, "$who: approve a withdrawn deliverable");
    refused(sender($c), POST => '/projects/{own}/messages/read', { last_read_message_id => '{msg}' }, { msg => $d->{m_int} }, $own, "$who: internal message as read marker");
    refused(sender($c), POST => '/projects/{own}/messages/read', { last_read_message_id => '{msg}' }, { msg => $d->{m_del} }, $own, "$who: deleted message as read marker");
    for my $k (qw(ta_free ta_pending ca_msg w_free ca_free ta_int y_free)) {
        my $att = $d->{att}{$k} or next;
        next if $att->{uploader} eq $c->{tag} && $k =~ /free/;
        my $r = capi($c, POST => "/projects/$d->{id}/messages", json => { body => 'mine?', attachment_ids => [ $att->{id} ] });
        invalid($r, 'attachment_ids[0]', 'invalid_reference', "$who: $k in attachment_ids");
    }
}

unchanged($before, 'after the refused client requests');

# ---------------------------------------------------------------- a token of A on B's host (and back)

for my $pair ([$U, $B, \%R], [$U, $B, \%P], [$X, $A, \%P], [$X, $A, \%R]) {
    my ($c, $host_t, $d) = @$pair;
    my $who = "$c->{tag}'s token on the other tenant's host naming $d->{name}";
    my $ids = victim_ids($d);
    for my $rt (@project_routes, [GET => '/projects'], [GET => '/attachments/{free}/download'], [POST => '/attachments/{free}/complete']) {
        my ($method, $tpl, $body, $h) = @$rt;
        my $r = client_api($host_t, $c->{access}, $method, fill($tpl, $ids), (defined $body ? (json => fill($body, $ids)) : ()), headers => $h // {});
        is_problem($r, 401, 'unauthorized', "$who: $method $tpl");
    }
}

unchanged($before, 'after the tokens on foreign hosts');

# ---------------------------------------------------------------- the team surface across tenants

# B's key on B's own host naming A's rows: 404 like a missing id; on A's
# host: 401 (the key is B's)
my @team_routes = (
    [GET    => '/team/messages/{msg}', undef, { msg => $P{m_team} }],
    [GET    => '/team/messages/{msg}', undef, { msg => $P{m_int} }],
    [GET    => '/team/messages/{msg}', undef, { msg => $P{m_del} }],
    [GET    => '/team/messages/{msg}', undef, { msg => $Q{m_client} }],
    [DELETE => '/team/messages/{msg}', undef, { msg => $P{m_team} }],
    [DELETE => '/team/messages/{msg}', undef, { msg => $P{m_int} }],
    [DELETE => '/team/messages/{msg}', undef, { msg => $Q{m_client} }],
    [GET    => '/team/projects/{proj}/messages', undef, { proj => $P{id} }],
    [GET    => '/team/projects/{proj}/messages?visibility=internal&include_deleted=true', undef, { proj => $P{id} }],
    [GET    => '/team/projects/{proj}/messages?after={msg}', undef, { proj => $P{id}, msg => $P{m_client} }],
    [POST   => '/team/projects/{proj}/messages', { body => 'intruder' }, { proj => $P{id} }],
    [POST   => '/team/projects/{proj}/messages', { body => 'intruder', visibility => 'internal' }, { proj => $Q{id} }],
    [POST   => '/team/projects/{proj}/attachments', { filename => 'x.txt', content_type => 'text/plain', size => 10 }, { proj => $P{id} }],
    (map { [POST => '/team/attachments/{att}/complete', undef, { att => $P{att}{$_}{id} }] } qw(ta_pending ca_pending ta_free ta_deliv)),
    (map { [GET => '/team/attachments/{att}/download', undef, { att => $P{att}{$_}{id} }] } qw(ta_deliv ta_int ta_del ca_free ca_msg ta_pending)),
    [GET    => '/team/attachments/{att}/download?redirect=1', undef, { att => $Q{att}{ta_msg}{id} }],
);
my $b_team = sub { team_api($B, @_) };
for my $rt (@team_routes) {
    my ($method, $tpl, $body, $ids) = @$rt;
    refused($b_team, $method, $tpl, $body, $ids, {}, "B's key on B's host: $method $tpl");
    my $r = team_api($B, $method => fill($tpl, $ids), (defined $body ? (json => $body) : ()), host => $A->{host});
    is_problem($r, 401, 'unauthorized', "B's key on A's host: $method $tpl");
}
# A's files in B's bodies, and Q's files in P's (same tenant, other project)
my $r = team_api($B, POST => "/team/projects/$R{id}/messages", json => { body => 'x', attachment_ids => [ $P{att}{ta_free}{id} ] });
invalid($r, 'attachment_ids[0]', 'invalid_reference', "B: A's file on a message of R");
$r = team_api($B, PATCH => "/team/deliverables/$R{d_sched}", json => { attachment_ids => [ $R{att}{ta_free}{id}, $P{att}{ta_free}{id} ] });
invalid($r, 'attachment_ids[1]', 'invalid_reference', "B: A's file on a deliverable of R");
$r = team_api($B, POST => "/team/projects/$R{id}/deliverables", json => { title => 'x', due_date => '2027-02-01', attachment_ids => [ $P{att}{ta_free}{id} ] });
invalid($r, 'attachment_ids[0]', 'invalid_reference', "B: A's file on a new deliverable of R");
$r = team_api($A, POST => "/team/projects/$P{id}/messages", json => { body => 'x', attachment_ids => [ $Q{att}{ta_free}{id} ] });
invalid($r, 'attachment_ids[0]', 'invalid_reference', "A: Q's file on a message of P");
$r = team_api($A, PATCH => "/team/deliverables/$P{d_sched}", json => { attachment_ids => [ $Q{att}{ta_free}{id} ] });
invalid($r, 'attachment_ids[0]', 'invalid_reference', "A: Q's file on a deliverable of P");
$r = team_api($A, POST => "/team/projects/$P{id}/messages", json => { body => 'x', attachment_ids => [ $P{att}{ca_free}{id} ] });
invalid($r, 'attachment_ids[0]', 'invalid_reference', "A: a client's upload on a team message");
# B's filters naming A's rows
empty_list(team_api($B, GET => "/team/projects/$R{id}/messages?after=$P{m_client}"), "B: R's messages after A's message");

unchanged($before, 'after the refused team requests');

# ---------------------------------------------------------------- row-level security as the application role

# psql as atrium_app (its DSN names its own passfile) in one transaction
# with the given settings; returns the output
sub app_sql {
    my ($tenant, $user, $sql) = @_;
    my ($fh, $file) = tempfile(UNLINK => 1);
    print $fh "BEGIN;\n";
    print $fh "SELECT set_config('app.tenant_id', '$tenant', true) \\g /dev/null\n" if defined $tenant;
    print $fh "SELECT set_config('app.portal_user_id', '$user', true) \\g /dev/null\n" if defined $user;
    print $fh "$sql\nCOMMIT;\n";
    close $fh;
    local $ENV{PGPASSFILE};
    delete $ENV{PGPASSFILE};
    my $cmd = join ' ', map { quotemeta } ('psql', env_of('ATRIUM_DB_DSN'), '-XAtq', '-v', 'ON_ERROR_STOP=1', '-f', $file);
    my $out = `$cmd 2>&1`;
    unlink $file;
    return $out;
}

my %rls_key = (
    projects                => 'id::text',
    milestones              => 'id::text',
    tasks                   => 'id::text',
    deliverables            => 'id::text',
    deliverable_decisions   => 'deliverable_id::text',
    deliverable_attachments => "deliverable_id || ':' || attachment_id",
    messages                => 'id::text',
    attachments             => 'id::text',
    message_reads           => "project_id || ':' || client_id",
    project_members         => "project_id || ':' || client_id",
);
my @rls_tables = sort keys %rls_key;

# every row of each table, no WHERE: {table => [keys, sorted]}
sub rls_view {
    my ($tenant, $user) = @_;
    my $sql = join "\n", map {
        "SELECT '$_=' || coalesce(string_agg($rls_key{$_}, ',' ORDER BY $rls_key{$_}), '') FROM $_;"
    } @rls_tables;
    my $out = app_sql($tenant, $user, $sql);
    my %v;
    for my $line (split /\n/, $out) {
        my ($k, $l) = $line =~ /^(\w+)=(.*)$/ or next;
        $v{$k} = [ length $l ? split(/,/, $l) : () ];
    }
    return (\%v, $out);
}

# the rows the viewer (a client tag; undef: the team) may see in @projects
sub rls_expect {
    my ($viewer, @projects) = @_;
    my %e = map { $_ => [] } @rls_tables;
    for my $d (@projects) {
        my $all = !defined $viewer;
        push @{ $e{projects} }, $d->{id};
        push @{ $e{milestones} }, $all ? @$d{qw(ms_v ms_i)} : $d->{ms_v};
        push @{ $e{tasks} }, $all ? @$d{qw(t_done t_todo t_under_i t_int)} : @$d{@vis_tasks};
        push @{ $e{deliverables} }, $all ? @$d{ @vis_deliverables, qw(d_hidden d_decided) } : @$d{@vis_deliverables};
        push @{ $e{deliverable_decisions} }, $all ? @$d{qw(d_approved d_decided)} : $d->{d_approved};
        push @{ $e{deliverable_attachments} }, "$d->{d_deliv}:$d->{att}{ta_deliv}{id}",
            $all ? ("$d->{d_hidden}:$d->{att}{ta_hidden}{id}", "$d->{d_decided}:$d->{att}{ta_dec}{id}") : ();
        push @{ $e{messages} }, grep { defined } $all ? @$d{qw(m_client m_team m_int m_del m_w)} : @$d{qw(m_client m_team m_w)};
        push @{ $e{attachments} }, map { $_->{id} }
            grep { $all || ($_->{shown} || $_->{uploader} eq $viewer) } values %{ $d->{att} };
        my @who = $all ? @{ $d->{members} } : grep { $_ eq $viewer } @{ $d->{members} };
        push @{ $e{$_} }, map { "$d->{id}:$client{$_}{id}" } @who for qw(message_reads project_members);
    }
    $e{$_} = [ sort @{ $e{$_} } ] for @rls_tables;
    return \%e;
}

my $at = $A->{tenant_id};
my $bt = $B->{tenant_id};
for my $case (
    ["A as U", $at, $U->{id}, rls_expect('U', \%P)],
    ["A as V", $at, $V->{id}, rls_expect('V', \%Q)],
    ["A as W", $at, $W->{id}, rls_expect('W', \%P, \%Q)],
    ["B as X", $bt, $X->{id}, rls_expect('X', \%R)],
    ["A as the team", $at, undef, rls_expect(undef, \%P, \%Q)],
    ["B as the team", $bt, undef, rls_expect(undef, \%R)],
    ["A as B's client X", $at, $X->{id}, rls_expect('X')],
    ["A as Y, removed from P", $at, $Y->{id}, rls_expect('Y')],
    ["B as A's client U", $bt, $U->{id}, rls_expect('U')],
    ["A as an unknown client", $at, fresh_uuid(), rls_expect('nobody')],
    ["no tenant as U", undef, $U->{id}, rls_expect('U')],
) {
    my ($name, $tenant, $user, $want) = @$case;
    my ($got, $out) = rls_view($tenant, $user);
    is(scalar(keys %$got), scalar(@rls_tables), "RLS $name: every table answered") or diag $out;
    for my $table (@rls_tables) {
        is_deeply($got->{$table}, $want->{$table}, "RLS $name: $table") or diag $out;
    }
}
# control: the views differ where they should (the expectations are not all
# the same sets)
my ($team_view) = rls_view($at, undef);
my ($u_view) = rls_view($at, $U->{id});
ok(@{ $team_view->{messages} } > @{ $u_view->{messages} } && @{ $team_view->{attachments} } > @{ $u_view->{attachments} },
    'RLS: the client view is a strict subset of the team view');
# an empty string is "no client" (the team), not an error
my ($blank) = rls_view($at, '');
is_deeply($blank, $team_view, "RLS: app.portal_user_id = '' is the team view");

# ---------------------------------------------------------------- controls: the rightful callers

# the same kinds of writes as the refused ones, by the rightful caller: the
# refusals above were the isolation, not a broken endpoint
$r = capi($U, POST => "/projects/$P{id}/deliverables/$P{d_deliv}/approve", json => { comment => 'approved by U' });
is($r->{status}, 200, 'control: U approves P\'s delivered deliverable');
is($r->{json}{decision}{by}{id}, $U->{id}, 'control: decided by U');
is_deeply($r->{json}{decision}{attachments}, [ { id => $P{att}{ta_deliv}{id}, sha256 => $P{att}{ta_deliv}{sha256} } ], 'control: the decision names the delivered file');
is(team_api($A, GET => "/team/deliverables/$P{d_deliv}")->{json}{status}, 'approved', 'control: the team sees it approved');
$r = capi($U, POST => "/projects/$P{id}/deliverables/$P{d_deliv2}/request-changes", json => { comment => 'bigger' });
is($r->{status}, 200, 'control: U requests changes');
$r = capi($W, POST => "/projects/$Q{id}/deliverables/$Q{d_deliv}/approve");
is($r->{status}, 200, "control: W approves Q's deliverable through Q's path");
$r = capi($X, POST => "/projects/$R{id}/deliverables/$R{d_deliv2}/request-changes", json => { comment => 'no' });
is($r->{status}, 200, 'control: X requests changes in R');
is(team_api($A, GET => "/team/deliverables/$Q{d_deliv2}")->{json}{status}, 'delivered', "Q's other deliverable is still delivered");

is(capi($U, POST => "/projects/$P{id}/messages/read", json => { last_read_message_id => $P{m_w} })->{status}, 204, 'control: U marks P read');
is(capi($U, GET => '/projects')->{json}{data}[0]{unread_messages}, 0, 'control: nothing unread for U');
is(capi($W, POST => "/projects/$Q{id}/messages/read", json => { last_read_message_id => $Q{m_team} })->{status}, 204, 'control: W marks Q read');
my %wu = map { $_->{id} => $_->{unread_messages} } @{ capi($W, GET => '/projects')->{json}{data} };
is_deeply(\%wu, { $P{id} => 1, $Q{id} => 0 }, "control: W's marker moved in Q only");

$r = capi($U, POST => "/projects/$P{id}/messages", json => { body => 'with my file', attachment_ids => [ $P{att}{ca_free}{id} ] });
is($r->{status}, 201, 'control: U posts in P with its own loose file');
is_deeply([ map { $_->{id} } @{ $r->{json}{attachments} // [] } ], [ $P{att}{ca_free}{id} ], 'control: the file is on the message');
$r = capi($W, POST => "/projects/$Q{id}/messages", json => { attachment_ids => [ $Q{att}{w_free}{id} ] });
is($r->{status}, 201, "control: W posts in Q with the Q file refused in P");
# an Idempotency-Key is the caller's own: W reusing U's key on the same
# route gets its own new row, never U's answer (nor a URL for U's object)
my %nb = (filename => 'n.txt', content_type => 'text/plain', size => 10);
my $ru = capi($U, POST => "/projects/$P{id}/attachments", json => \%nb, headers => { 'Idempotency-Key' => 'iso-shared' });
is($ru->{status}, 201, 'control: U creates an attachment in P (with a key)');
my $rw = capi($W, POST => "/projects/$P{id}/attachments", json => \%nb, headers => { 'Idempotency-Key' => 'iso-shared' });
ok($rw->{status} == 201 && !$rw->{headers}{'idempotent-replayed'} && ($rw->{json}{id} // '') ne ($ru->{json}{id} // 'x'),
    "control: W with U's key and body on the same route: a new attachment, not U's replay")
    or diag explain { u => $ru->{json}, w => $rw->{json}, headers => $rw->{headers} };
$ru = capi($U, POST => "/projects/$P{id}/messages", json => { body => 'keyed' }, headers => { 'Idempotency-Key' => 'iso-shared-m' });
$rw = capi($W, POST => "/projects/$P{id}/messages", json => { body => 'keyed' }, headers => { 'Idempotency-Key' => 'iso-shared-m' });
ok($ru->{status} == 201 && $rw->{status} == 201 && !$rw->{headers}{'idempotent-replayed'}
        && ($rw->{json}{author}{id} // '') eq $W->{id} && $rw->{json}{id} ne $ru->{json}{id},
    "control: W with U's key on U's message route: W's own message");
for my $d (\%P, \%Q, \%R) {
    my $c = $d->{client};
    $r = capi($c, POST => "/attachments/$d->{att}{ca_pending}{id}/complete");
    ok($r->{status} == 200 && ($r->{json}{sha256} // '') eq $d->{att}{ca_pending}{sha256},
        "control: $c->{tag} confirms its pending upload in $d->{name}") or diag $r->{content};
}
$r = team_api($A, POST => "/team/attachments/$P{att}{ta_pending}{id}/complete");
ok($r->{status} == 200 && ($r->{json}{status} // '') eq 'ready', "control: A's team confirms the upload B could not");
$r = team_api($A, GET => "/team/attachments/$P{att}{ta_int}{id}/download");
is($r->{status}, 200, "control: A's team downloads the internal file");
is(team_api($A, DELETE => "/team/messages/$P{m_team}")->{status}, 204, "control: A's team deletes the message B could not");
$r = team_api($B, POST => "/team/projects/$R{id}/messages", json => { body => 'x', attachment_ids => [ $R{att}{ta_free}{id} ] });
is($r->{status}, 201, "control: B's team posts R's own file");

# and the snapshot that found nothing changed above does see these changes
my $after = world();
my $canon = JSON::PP->new->canonical;
for my $k ('team messages of P', 'team messages of Q', 'team messages of R', 'team deliverables of P',
    'team deliverables of Q', 'team deliverables of R', 'row counts of A', 'row counts of B',
    'attachment states of A', 'attachment states of B', 'read markers of A', 'deliverables of A',
    'deliverables of B', 'unread counts of U', 'unread counts of W') {
    isnt($canon->encode([ $after->{$k} ]), $canon->encode([ $before->{$k} ]), "control: the snapshot sees the change in $k");
}

done_testing();
