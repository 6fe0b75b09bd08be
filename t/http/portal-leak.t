#!/usr/bin/perl
# Internal never leaks.  One tenant, a project with two member clients (A and
# B) and a second project with a third client (C).  The team hides a canary
# string in every text field it can keep from clients: an internal message
# (and the filename of its uploaded attachment), internal tasks, an internal
# milestone, a hidden deliverable (and its file), a client-visible message
# that is then soft-deleted (and its file), a ready team upload never linked
# to anything; each client also keeps an upload of its own (pending, or ready
# but unlinked) under a canary of its own.  Around that sits ordinary visible
# work: ~35 messages (several pages at ?limit=7), tasks, deliverables with
# files, a decision.
#
# Then every client walks every client endpoint (all pages, filters,
# ?after= with every message id it saw, each download) and every answer --
# body, headers (ETag included), decoded cursors, URL-decoded body -- is
# searched for the canaries and for the ids of everything hidden from that
# client.  Unread counts, progress and the next deliverable must equal what
# the visible rows alone give.  Internal content does not move the ETag of
# the message list; a visible message does.  No outbox row addressed to a
# client carries a canary or a hidden message id -- and a message deleted
# before its digest went out is withdrawn from that pending digest.  Finally
# the checks are shown to bite: the same detectors fire once hidden content
# is made visible.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use Digest::SHA qw(sha256_hex);
use Atrium::Test;
use Atrium::Auth;

my $T = JSON::PP::true;
my $F = JSON::PP::false;

# ------------------------------------------------------------------ canaries
my $tag = lc(substr(sha256_hex(rand() . $$ . time), 0, 12));
my $CANARY = "zqcanary$tag";     # the team's internal content
my $CANARY_B = "zqownb$tag";     # B's own uploads (hidden from A and C)
my $CANARY_C = "zqownc$tag";     # C's own upload (hidden from A and B)
sub cn { "$CANARY-$_[0]" }       # a canary that also says where it came from

# ------------------------------------------------------------------ setup helpers
my $t = new_tenant(name => 'Leak Studio');
my $store = HTTP::Tiny->new(timeout => 10);

sub must {
    my ($r, $status, $what) = @_;
    die "$what: expected $status, got $r->{status}: " . ($r->{content} // '') . "\n" unless $r->{status} == $status;
    return $r->{json};
}
sub team { my ($m, $p, %o) = @_; team_api($t, $m, $p, %o) }

# uploads a file for real (presigned PUT, then complete); $tok undef = team.
# pending => 1 stops before the PUT.
sub upload {
    my (%o) = @_;
    my $bytes = $o{bytes} // ("file $o{filename} " . ('.' x 200) . "\n");
    my $type = $o{type} // 'application/pdf';
    my $body = { filename => $o{filename}, content_type => $type, size => length $bytes };
    my $r = defined $o{token}
        ? client_api($t, $o{token}, POST => "/projects/$o{project}/attachments", json => $body)
        : team(POST => "/team/projects/$o{project}/attachments", json => $body);
    my $a = must($r, 201, "create attachment $o{filename}");
    return $a if $o{pending};
    my $put = $store->request(PUT => $a->{upload}{url}, { content => $bytes, headers => { 'content-type' => $type } });
    die "PUT $o{filename}: $put->{status} $put->{content}\n" unless $put->{status} == 200;
    $r = defined $o{token}
        ? client_api($t, $o{token}, POST => "/attachments/$a->{id}/complete")
        : team(POST => "/team/attachments/$a->{id}/complete");
    my $done = must($r, 200, "complete $o{filename}");
    die "not ready: $o{filename}\n" unless $done->{status} eq 'ready';
    return $done;
}

# ------------------------------------------------------------------ people and projects
my $p1 = new_project($t, name => 'Brand refresh');
my $p2 = new_project($t, name => 'Annual report');
my $A = onboard($t, name => 'Alice Member', project_ids => [ $p1->{id} ]);
my $B = onboard($t, name => 'Bruno Member', project_ids => [ $p1->{id} ]);
my $C = onboard($t, name => 'Carla Other', project_ids => [ $p2->{id} ]);
my %client = (A => $A, B => $B, C => $C);
my %project_of = (A => $p1->{id}, B => $p1->{id}, C => $p2->{id});

# a watcher: internal messages notify it (the positive control of the outbox check)
my $W = must(team(POST => '/team/members', json => { name => 'Wendy Watcher', email => "w$tag\@studio.example" }), 201, 'member');
must(team(PUT => "/team/projects/$_/watchers/$W->{id}"), 204, 'watcher') for $p1->{id}, $p2->{id};

# ids hidden from everyone (internal content of either project) and the
# ids each client may not see beyond those
my (%hidden, %hidden_from);    # id => what
my %visible;                   # project => {messages=>[ids oldest first], tasks=>{}, deliverables=>{}, milestones=>{}}
sub hide { my ($id, $what, @who) = @_; if (@who) { $hidden_from{$_}{$id} = $what for @who } else { $hidden{$id} = $what } return $id }

# ------------------------------------------------------------------ milestones, tasks (project 1)
my $ms_design = must(team(POST => "/team/projects/$p1->{id}/milestones", json => { title => 'Design', description => 'Look and feel', position => 1 }), 201, 'milestone');
my $ms_build = must(team(POST => "/team/projects/$p1->{id}/milestones", json => { title => 'Build', position => 2, status => 'in_progress' }), 201, 'milestone');
my $ms_int = must(team(POST => "/team/projects/$p1->{id}/milestones", json => {
    title => 'Margin review ' . cn('milestone-title'), description => 'Budget notes ' . cn('milestone-description'),
    position => 0, client_visible => $F }), 201, 'internal milestone');
hide($ms_int->{id}, 'internal milestone');
$visible{ $p1->{id} }{milestones}{ $_->{id} } = 1 for $ms_design, $ms_build;

my @task_specs = (
    [ 'Moodboard',            $ms_design->{id}, 'done',        1 ],
    [ 'Logo sketches',        $ms_design->{id}, 'done',        2 ],
    [ 'Colour palette',       $ms_design->{id}, 'in_progress', 3 ],
    [ 'Typography',           $ms_design->{id}, 'todo',        4 ],
    [ 'Component library',    $ms_build->{id},  'todo',        5 ],
    [ 'Landing page',         $ms_build->{id},  'in_progress', 6 ],
    [ 'Print collateral',     undef,            'todo',        7 ],
    [ 'Kick-off call',        undef,            'done',        8 ],
    [ 'Supplier shortlist',   $ms_int->{id},    'done',        9 ],    # visible task, internal milestone
    [ 'Photo shoot planning', $ms_int->{id},    'todo',        10 ],
    [ 'Brand guidelines PDF', $ms_build->{id},  'todo',        11 ],
);
for my $s (@task_specs) {
    my ($title, $ms, $status, $pos) = @$s;
    my $tk = must(team(POST => "/team/projects/$p1->{id}/tasks", json => { title => $title, status => $status, position => $pos,
        (defined $ms ? (milestone_id => $ms) : ()) }), 201, "task $title");
    $visible{ $p1->{id} }{tasks}{ $tk->{id} } = $tk;
}
my @int_tasks = map {
    my ($title, $ms, $status, $pos) = @$_;
    my $tk = must(team(POST => "/team/projects/$p1->{id}/tasks", json => { title => $title, status => $status, position => $pos,
        client_visible => $F, (defined $ms ? (milestone_id => $ms) : ()) }), 201, 'internal task');
    hide($tk->{id}, "internal task ($status)");
    $tk;
} ([ 'Pad the estimate ' . cn('task-title-1'), $ms_design->{id}, 'done', 2 ],
   [ 'Chase unpaid invoice ' . cn('task-title-2'), undef, 'todo', 5 ],
   [ 'Renegotiate vendor ' . cn('task-title-3'), $ms_int->{id}, 'done', 9 ],
   [ 'Internal QA ' . cn('task-title-4'), $ms_build->{id}, 'done', 6 ]);

# ------------------------------------------------------------------ deliverables (project 1)
my $f_d1a = upload(project => $p1->{id}, filename => 'Logo final.pdf');
my $f_d1b = upload(project => $p1->{id}, filename => 'Logo variants.png', type => 'image/png');
my $f_d3 = upload(project => $p1->{id}, filename => 'Palette.pdf');
my $f_dint = upload(project => $p1->{id}, filename => 'cost breakdown ' . cn('hidden-deliverable-file') . '.xlsx');
hide($f_dint->{id}, 'file of the hidden deliverable');

my $d1 = must(team(POST => "/team/projects/$p1->{id}/deliverables", json => { title => 'Logo package', description => 'All logo files',
    due_date => '2027-02-01', milestone_id => $ms_design->{id}, attachment_ids => [ $f_d1a->{id}, $f_d1b->{id} ] }), 201, 'deliverable');
my $d2 = must(team(POST => "/team/projects/$p1->{id}/deliverables", json => { title => 'Supplier pack', description => 'Shortlist',
    due_date => '2027-03-01', milestone_id => $ms_int->{id} }), 201, 'deliverable under the internal milestone');
my $d3 = must(team(POST => "/team/projects/$p1->{id}/deliverables", json => { title => 'Colour palette', due_date => '2027-01-10',
    attachment_ids => [ $f_d3->{id} ] }), 201, 'deliverable');
my $d4 = must(team(POST => "/team/projects/$p1->{id}/deliverables", json => { title => 'Website mock-ups', due_date => '2027-04-01',
    milestone_id => $ms_build->{id}, status => 'in_progress' }), 201, 'deliverable');
my $d_int = must(team(POST => "/team/projects/$p1->{id}/deliverables", json => {
    title => 'Cost model ' . cn('deliverable-title'), description => 'Our margins ' . cn('deliverable-description'),
    due_date => '2027-01-02', client_visible => $F, attachment_ids => [ $f_dint->{id} ] }), 201, 'hidden deliverable');
hide($d_int->{id}, 'hidden deliverable');
$visible{ $p1->{id} }{deliverables}{ $_->{id} } = 1 for $d1, $d2, $d3, $d4;
# delivered, so that a sign-off of the hidden one would go through if it leaked
must(team(PATCH => "/team/deliverables/$_", json => { status => 'delivered' }), 200, 'deliver') for $d1->{id}, $d3->{id}, $d_int->{id};
# an internal milestone completed: nothing may tell the client
must(team(PATCH => "/team/milestones/$ms_int->{id}", json => { status => 'done' }), 200, 'internal milestone done');
must(client_api($t, $A->{access}, POST => "/projects/$p1->{id}/deliverables/$d1->{id}/request-changes",
    json => { comment => 'Please make the mark bolder' }), 200, 'A requests changes');
must(client_api($t, $A->{access}, POST => "/projects/$p1->{id}/deliverables/$d3->{id}/approve", json => {}), 200, 'A approves');

# ------------------------------------------------------------------ attachments nobody links / clients keep
my $f_unlinked = upload(project => $p1->{id}, filename => 'draft contract ' . cn('unlinked-team-file') . '.pdf');
hide($f_unlinked->{id}, 'unlinked team upload');
my $f_b_pending = upload(token => $B->{access}, project => $p1->{id}, pending => 1, filename => "B private $CANARY_B pending.pdf");
hide($f_b_pending->{id}, "B's pending upload", qw(A C));
my $f_b_ready = upload(token => $B->{access}, project => $p1->{id}, filename => "B private $CANARY_B ready.pdf");
hide($f_b_ready->{id}, "B's unlinked ready upload", qw(A C));
my $f_c_pending = upload(token => $C->{access}, project => $p2->{id}, pending => 1, filename => "C private $CANARY_C.pdf");
hide($f_c_pending->{id}, "C's pending upload", qw(A B));

# ------------------------------------------------------------------ messages (project 1)
my (%internal_msg, %deleted_msg);    # id => 1
my %msg_author;                      # id => client key or 'team'
sub post_visible {
    my ($who, $project, $body, @files) = @_;
    my $json = { body => $body, (@files ? (attachment_ids => [@files]) : ()) };
    my $r = $who eq 'team'
        ? team(POST => "/team/projects/$project/messages", json => $json)
        : client_api($t, $client{$who}{access}, POST => "/projects/$project/messages", json => $json);
    my $m = must($r, 201, "message by $who");
    push @{ $visible{$project}{messages} }, $m->{id};
    $msg_author{ $m->{id} } = $who;
    return $m;
}
sub post_internal {
    my ($project, $body, @files) = @_;
    my $m = must(team(POST => "/team/projects/$project/messages", json => { body => $body, visibility => 'internal',
        (@files ? (attachment_ids => [@files]) : ()) }), 201, 'internal message');
    die "not internal\n" unless $m->{visibility} eq 'internal';
    hide($m->{id}, 'internal message');
    $internal_msg{ $m->{id} } = 1;
    return $m;
}

my $f_m1 = upload(project => $p1->{id}, filename => 'Agenda.pdf');
post_visible('team', $p1->{id}, 'Welcome to the project portal', $f_m1->{id});
my $f_b1 = upload(token => $B->{access}, project => $p1->{id}, filename => 'Our old logo.png', type => 'image/png');
post_visible('B', $p1->{id}, 'Here is our current logo', $f_b1->{id});
my $f_a1 = upload(token => $A->{access}, project => $p1->{id}, filename => 'Brief.pdf');
post_visible('A', $p1->{id}, 'And the brief', $f_a1->{id});

my ($int1, $del, $int2, $marker_msg);
my $f_int = upload(project => $p1->{id}, filename => 'margin sheet ' . cn('internal-message-file') . '.pdf');
hide($f_int->{id}, 'file of the internal message');
my $f_del = upload(project => $p1->{id}, filename => 'wrong client ' . cn('deleted-message-file') . '.pdf');
hide($f_del->{id}, 'file of the deleted message');
my @authors = qw(team A team B team A);
for my $i (1 .. 30) {
    my $who = $authors[ $i % @authors ];
    my @files;
    push @files, upload(project => $p1->{id}, filename => "Progress $i.pdf")->{id} if $who eq 'team' && $i % 7 == 0;
    my $m = post_visible($who, $p1->{id}, "Update $i from $who", @files);
    $marker_msg = $m if $i == 15;
    $int1 = post_internal($p1->{id}, 'Client is slow to pay ' . cn('internal-message-body'), $f_int->{id}) if $i == 5;
    if ($i == 12) {
        $del = must(team(POST => "/team/projects/$p1->{id}/messages", json => {
            body => 'Oops, meant for another client ' . cn('deleted-message-body'), attachment_ids => [ $f_del->{id} ] }), 201, 'to delete');
        must(team(DELETE => "/team/messages/$del->{id}"), 204, 'soft delete');
        hide($del->{id}, 'soft-deleted message');
        $deleted_msg{ $del->{id} } = 1;
    }
    $int2 = post_internal($p1->{id}, 'Second internal note ' . cn('internal-message-body-2')) if $i == 22;
}
my $int3 = post_internal($p1->{id}, 'Newest is internal ' . cn('internal-message-body-3'));

# ------------------------------------------------------------------ project 2
my $ms2 = must(team(POST => "/team/projects/$p2->{id}/milestones", json => { title => 'Draft', position => 1 }), 201, 'p2 milestone');
$visible{ $p2->{id} }{milestones}{ $ms2->{id} } = 1;
for my $s ([ 'Collect figures', 'done' ], [ 'Write chairman letter', 'todo' ], [ 'Layout', 'in_progress' ]) {
    my $tk = must(team(POST => "/team/projects/$p2->{id}/tasks", json => { title => $s->[0], status => $s->[1], milestone_id => $ms2->{id} }), 201, 'p2 task');
    $visible{ $p2->{id} }{tasks}{ $tk->{id} } = $tk;
}
my $t2_int = must(team(POST => "/team/projects/$p2->{id}/tasks", json => { title => 'Bill extra ' . cn('p2-task-title'),
    status => 'done', client_visible => $F, milestone_id => $ms2->{id} }), 201, 'p2 internal task');
hide($t2_int->{id}, 'internal task of project 2');
my $f_p2 = upload(project => $p2->{id}, filename => 'Report draft.pdf');
my $d21 = must(team(POST => "/team/projects/$p2->{id}/deliverables", json => { title => 'First draft', due_date => '2027-05-01',
    attachment_ids => [ $f_p2->{id} ] }), 201, 'p2 deliverable');
$visible{ $p2->{id} }{deliverables}{ $d21->{id} } = 1;
my $d2_int = must(team(POST => "/team/projects/$p2->{id}/deliverables", json => { title => 'Fee review ' . cn('p2-deliverable-title'),
    due_date => '2027-04-01', client_visible => $F }), 201, 'p2 hidden deliverable');
hide($d2_int->{id}, 'hidden deliverable of project 2');
post_visible('team', $p2->{id}, 'Hello Carla');
post_visible('C', $p2->{id}, 'Hello, figures attached soon');
my $int_p2 = post_internal($p2->{id}, 'Carla might churn ' . cn('p2-internal-message'));
post_visible('team', $p2->{id}, 'Thanks Carla');

# every row and file of one project is out of bounds for the clients of the
# other (needles_of adds the rows of the other project's list when it runs)
hide($_->{id}, 'a file of a project that is not theirs', 'C') for $f_d1a, $f_d1b, $f_d3, $f_m1, $f_b1, $f_a1;
hide($f_p2->{id}, 'a file of a project that is not theirs', 'A', 'B');
hide($p1->{id}, 'a project that is not theirs', 'C');
hide($p2->{id}, 'a project that is not theirs', 'A', 'B');

# A has read up to the 15th update (internal and deleted messages lie on both sides)
is(client_api($t, $A->{access}, POST => "/projects/$p1->{id}/messages/read", json => { last_read_message_id => $marker_msg->{id} })->{status},
    204, 'A sets a read marker');
my %marker = (A => $marker_msg->{id});

# ------------------------------------------------------------------ the leak detector
# needles of a client: [lower-case string, what it is]
sub needles_of {
    my ($who) = @_;
    my @n = ([ lc $CANARY, 'the canary' ]);
    push @n, [ lc $CANARY_B, "B's canary" ] if $who ne 'B';
    push @n, [ lc $CANARY_C, "C's canary" ] if $who ne 'C';
    my $other = $visible{ $project_of{$who} eq $p1->{id} ? $p2->{id} : $p1->{id} };
    my %ids = ((map { $_ => 'a row of a project that is not theirs' } @{ $other->{messages} },
            map { keys %{ $other->{$_} } } qw(tasks deliverables milestones)),
        %hidden, %{ $hidden_from{$who} // {} });
    for my $id (sort keys %ids) {
        push @n, [ lc $id, "$ids{$id} $id" ];
        (my $bare = lc $id) =~ s/-//g;
        push @n, [ $bare, "$ids{$id} $id (without dashes)" ];
    }
    return \@n;
}

sub unescape_uri { my $s = shift; $s =~ s/\+/ /g; $s =~ s/%([0-9A-Fa-f]{2})/chr(hex $1)/ge; $s }
sub b64u_dec { my $s = shift; $s =~ tr{-_}{+/}; $s .= '=' x ((4 - length($s) % 4) % 4); decode_base64($s) }

# everything an answer tells: status line, headers, body, the body URL-decoded
# (twice: presigned URLs nest encodings) and its decoded cursors
sub haystack {
    my ($r) = @_;
    my $h = $r->{headers} // {};
    my $hay = join("\n", "$r->{status} " . ($r->{reason} // ''),
        map { my $k = $_; map { "$k: $_" } (ref $h->{$k} ? @{ $h->{$k} } : $h->{$k}) } sort keys %$h);
    my $body = $r->{content} // '';
    $hay .= "\n$body\n" . unescape_uri($body) . "\n" . unescape_uri(unescape_uri($body));
    $hay .= "\n" . unescape_uri(unescape_uri($_)) for grep { defined } map { header_values($r, $_) } qw(location etag);
    $hay .= "\n" . b64u_dec($1) while $body =~ /"next_cursor":"([^"]+)"/g;
    return lc $hay;
}

sub leaks_in {
    my ($hay, $needles) = @_;
    return map { $_->[1] } grep { index($hay, $_->[0]) >= 0 } @$needles;
}

# keys that only the team surface has
sub team_keys {
    my ($j, $path) = @_;
    my @out;
    if (ref $j eq 'HASH') {
        for my $k (sort keys %$j) {
            push @out, "$path.$k" if $k =~ /^(client_visible|visibility|deleted_at|uploaded_by|message_id|internal)$/;
            push @out, team_keys($j->{$k}, "$path.$k");
        }
    } elsif (ref $j eq 'ARRAY') {
        push @out, team_keys($j->[$_], "$path\[$_]") for 0 .. $#$j;
    }
    return @out;
}

my (%problems, %scanned, %bytes);
sub scan {
    my ($who, $group, $label, $r) = @_;
    $scanned{$who}{$group}++;
    $bytes{$who} += length($r->{content} // '');
    my @hits = leaks_in(haystack($r), needles_of($who));
    push @{ $problems{$who}{$group} }, "$label leaks: " . join('; ', @hits) if @hits;
    my @keys = team_keys($r->{json}, '$');
    push @{ $problems{$who}{$group} }, "$label has team-only fields: @keys" if @keys;
    return $r;
}
sub flag { my ($who, $group, $msg) = @_; push @{ $problems{$who}{$group} }, $msg }

# the client API, every answer scanned
sub capi {
    my ($who, $group, $method, $path, %o) = @_;
    my $r = client_api($t, $client{$who}{access}, $method, $path, %o);
    return scan($who, $group, "$method $path", $r);
}

# all pages of a client list; returns the rows
sub walk_list {
    my ($who, $group, $path, $limit) = @_;
    my (@rows, $cursor);
    my $sep = $path =~ /\?/ ? '&' : '?';
    for my $page (1 .. 100) {
        my @q = ((defined $limit ? "limit=$limit" : ()), (defined $cursor ? "cursor=$cursor" : ()));
        my $url = @q ? $path . $sep . join('&', @q) : $path;
        my $r = capi($who, $group, GET => $url);
        if ($r->{status} != 200 || ref(($r->{json} // {})->{data}) ne 'ARRAY') {
            flag($who, $group, "GET $url: $r->{status}");
            last;
        }
        flag($who, $group, "GET $url: no ETag") unless ($r->{headers}{etag} // '') =~ /^"[0-9a-f]+"$/;
        flag($who, $group, "GET $url: page of " . @{ $r->{json}{data} }) if defined $limit && @{ $r->{json}{data} } > $limit;
        push @rows, @{ $r->{json}{data} };
        $cursor = $r->{json}{next_cursor};
        last unless defined $cursor;
    }
    return \@rows;
}
sub ids { [ map { $_->{id} } @{ $_[0] } ] }
sub progress_of {
    my (@tasks) = @_;
    my $done = grep { $_->{status} eq 'done' } @tasks;
    return { tasks_total => scalar @tasks, tasks_done => $done, percent => @tasks ? int(100 * $done / @tasks) : 0 };
}

# ------------------------------------------------------------------ ETags: internal content does not move them
{
    my $mpath = "/projects/$p1->{id}/messages";
    my %before = map { $_ => client_api($t, $A->{access}, GET => $_)->{headers}{etag} }
        ($mpath, "$mpath?limit=7", "/projects/$p1->{id}", '/projects');
    my $int4 = post_internal($p1->{id}, 'One more internal note ' . cn('etag-internal'));
    for my $path (sort keys %before) {
        (my $name = $path) =~ s/\Q$p1->{id}\E/{id}/;
        like($before{$path} // '', qr/^"[0-9a-f]{32}"$/, "GET $name: an ETag");
        my $r = client_api($t, $A->{access}, GET => $path);
        is($r->{headers}{etag}, $before{$path}, "GET $name: an internal message leaves the ETag alone");
        $r = client_api($t, $A->{access}, GET => $path, headers => { 'if-none-match' => $before{$path} });
        is($r->{status}, 304, "GET $name: If-None-Match with the old ETag -> 304 after the internal message");
    }
    # internal task and hidden deliverable changes leave the project page alone too
    must(team(PATCH => "/team/tasks/$int_tasks[1]{id}", json => { status => 'done' }), 200, 'internal task done');
    must(team(PATCH => "/team/tasks/$int_tasks[1]{id}", json => { status => 'todo' }), 200, 'internal task back');
    is(client_api($t, $A->{access}, GET => "/projects/$p1->{id}", headers => { 'if-none-match' => $before{"/projects/$p1->{id}"} })->{status},
        304, 'GET /projects/{id}: internal task changes -> still 304');
    post_visible('team', $p1->{id}, 'A visible reply moves the ETag');
    my $r = client_api($t, $A->{access}, GET => $mpath, headers => { 'if-none-match' => $before{$mpath} });
    is($r->{status}, 200, 'GET messages: a visible message -> the old ETag no longer matches');
    isnt($r->{headers}{etag}, $before{$mpath}, 'GET messages: a new ETag');
    $r = client_api($t, $A->{access}, GET => '/projects', headers => { 'if-none-match' => $before{'/projects'} });
    is($r->{status}, 200, 'GET /projects: the unread count moved -> 200');
}

# ------------------------------------------------------------------ the crawl
my @GROUPS = qw(me projects project tasks deliverables messages after sessions downloads store direct);
my %seen_files;    # who => {id => 1}

sub crawl {
    my ($who) = @_;
    my $c = $client{$who};
    my $pid = $project_of{$who};
    my $vis = $visible{$pid};
    my $me = capi($who, 'me', GET => '/me');
    is($me->{json}{id}, $c->{id}, "$who: GET /me");
    walk_list($who, 'sessions', '/auth/sessions', 1);
    walk_list($who, 'sessions', '/auth/sessions');

    # -------- tasks
    my $tasks = walk_list($who, 'tasks', "/projects/$pid/tasks", 7);
    is_deeply([ sort @{ ids($tasks) } ], [ sort keys %{ $vis->{tasks} } ], "$who: tasks at ?limit=7 are exactly the visible ones");
    is_deeply(ids(walk_list($who, 'tasks', "/projects/$pid/tasks")), ids($tasks), "$who: tasks, one page, same order");
    for my $st (qw(todo in_progress done)) {
        is_deeply(ids(walk_list($who, 'tasks', "/projects/$pid/tasks?status=$st", 2)), [ map { $_->{id} } grep { $_->{status} eq $st } @$tasks ],
            "$who: tasks ?status=$st");
    }
    for my $ms (sort keys %{ $vis->{milestones} }) {
        is_deeply(ids(walk_list($who, 'tasks', "/projects/$pid/tasks?milestone_id=$ms", 2)),
            [ map { $_->{id} } grep { ($_->{milestone_id} // '') eq $ms } @$tasks ], "$who: tasks ?milestone_id= (visible milestone)");
    }
    is_deeply(walk_list($who, 'tasks', "/projects/$pid/tasks?milestone_id=$ms_int->{id}"), [], "$who: tasks ?milestone_id= internal milestone -> none");
    is_deeply(walk_list($who, 'tasks', "/projects/$pid/tasks?milestone_id=$ms_int->{id}&status=done"), [], "$who: ... with ?status=done -> none");

    # -------- deliverables
    my $dels = walk_list($who, 'deliverables', "/projects/$pid/deliverables", 2);
    is_deeply([ sort @{ ids($dels) } ], [ sort keys %{ $vis->{deliverables} } ], "$who: deliverables at ?limit=2 are exactly the visible ones");
    is_deeply(ids(walk_list($who, 'deliverables', "/projects/$pid/deliverables")), ids($dels), "$who: deliverables, one page, same order");
    my @f_bad;
    for my $st (qw(scheduled in_progress delivered approved changes_requested)) {
        my $got = ids(walk_list($who, 'deliverables', "/projects/$pid/deliverables?status=$st", 1));
        my @want = map { $_->{id} } grep { $_->{status} eq $st } @$dels;
        push @f_bad, "status=$st: @$got" unless "@$got" eq "@want";
    }
    for my $ms (sort keys %{ $vis->{milestones} }) {
        my $got = ids(walk_list($who, 'deliverables', "/projects/$pid/deliverables?milestone_id=$ms", 1));
        my @want = map { $_->{id} } grep { ($_->{milestone_id} // '') eq $ms } @$dels;
        push @f_bad, "milestone_id=$ms: @$got" unless "@$got" eq "@want";
    }
    ok(!@f_bad, "$who: deliverables ?status= and ?milestone_id= (visible milestones) give the matching visible rows") or diag explain \@f_bad;
    is_deeply(walk_list($who, 'deliverables', "/projects/$pid/deliverables?milestone_id=$ms_int->{id}"), [],
        "$who: deliverables ?milestone_id= internal milestone -> none");
    is(client_api($t, $c->{access}, POST => "/projects/$pid/deliverables/$_/approve", json => {})->{status}, 404,
        "$who: approving a hidden deliverable -> 404") for ($pid eq $p1->{id} ? $d_int->{id} : $d2_int->{id});

    # -------- messages
    my $msgs = walk_list($who, 'messages', "/projects/$pid/messages", 7);
    my @expect = reverse @{ $vis->{messages} };
    is_deeply(ids($msgs), \@expect, "$who: messages at ?limit=7: every visible message, newest first, nothing else (" . @expect . ')');
    is_deeply(ids(walk_list($who, 'messages', "/projects/$pid/messages")), \@expect, "$who: messages, default page size");
    my @after_bad;
    for my $i (0 .. $#$msgs) {
        my $id = $msgs->[$i]{id};
        my $got = ids(walk_list($who, 'after', "/projects/$pid/messages?after=$id", 7));
        my @want = @expect[ 0 .. $i - 1 ];
        push @after_bad, "$i: got @$got" unless "@$got" eq "@want";
    }
    ok(!@after_bad, "$who: ?after= each of the " . @$msgs . ' message ids -> exactly the newer visible ones') or diag explain \@after_bad;
    for my $x (sort keys %internal_msg, sort keys %deleted_msg) {
        is_deeply(walk_list($who, 'after', "/projects/$pid/messages?after=$x"), [], "$who: ?after= a hidden message ($hidden{$x}) -> empty");
    }

    # -------- projects list and page: counts from the visible rows
    my %mine = map { $_ => 1 } ($marker{$who} ? ($marker{$who}) : ());
    my $unread = 0;
    for my $m (@$msgs) {    # newest first: count until the marker
        last if $mine{ $m->{id} };
        $unread++ unless ($m->{author}{kind} eq 'client' && ($m->{author}{id} // '') eq $c->{id});
    }
    my @nd = grep { $_->{status} ne 'approved' } @$dels;    # already by due date
    my $projects = walk_list($who, 'projects', '/projects', 1);
    is_deeply(ids(walk_list($who, 'projects', '/projects')), ids($projects), "$who: /projects pages");
    walk_list($who, 'projects', "/projects?status=$_") for qw(active on_hold completed archived);
    is_deeply(ids($projects), [$pid], "$who: /projects lists its project only");
    my $card = $projects->[0] // {};
    my $page = capi($who, 'project', GET => "/projects/$pid")->{json} // {};
    for my $view ([ '/projects', $card ], [ '/projects/{id}', $page ]) {
        my ($name, $p) = @$view;
        is($p->{unread_messages}, $unread, "$who: $name unread_messages = $unread, counted from the visible messages");
        is_deeply($p->{progress}, progress_of(@$tasks), "$who: $name progress from the visible tasks");
        is(($p->{next_deliverable} // {})->{id}, @nd ? $nd[0]{id} : undef, "$who: $name next_deliverable is the first visible one not approved");
    }
    is_deeply([ sort map { $_->{id} } @{ $page->{milestones} // [] } ], [ sort keys %{ $vis->{milestones} } ], "$who: visible milestones only");
    my @mp_bad;
    for my $ms (@{ $page->{milestones} // [] }) {
        my $want = progress_of(grep { ($_->{milestone_id} // '') eq $ms->{id} } @$tasks);
        push @mp_bad, $ms->{title} unless JSON::PP->new->canonical->encode($ms->{progress}) eq JSON::PP->new->canonical->encode($want)
            && $ms->{percent} == $want->{percent};
    }
    ok(!@mp_bad, "$who: milestone progress from their visible tasks") or diag "@mp_bad";
    is_deeply([ map { $_->{id} } @{ $page->{deliverables} // [] } ], ids($dels), "$who: the page's deliverables are the list's");

    # -------- read markers on hidden messages
    for my $x (sort(keys %internal_msg), sort(keys %deleted_msg), ($pid eq $p1->{id} ? $int_p2->{id} : $int1->{id})) {
        my $r = capi($who, 'direct', POST => "/projects/$pid/messages/read", json => { last_read_message_id => $x });
        my $what = $hidden{$x} // 'message of the other project';
        ok($r->{status} == 404 && ($r->{json}{code} // '') eq 'not_found', "$who: read marker on a hidden message ($what) -> 404");
    }
    is(capi($who, 'project', GET => "/projects/$pid")->{json}{unread_messages}, $unread, "$who: unread unchanged by the refused markers");

    # -------- downloads of every file the client saw
    my %files;
    $files{ $_->{id} } = 1 for map { @{ $_->{attachments} } } @$msgs, @$dels, @{ $page->{deliverables} // [] };
    $files{$_} = 1 for map { @{ $_->{attachment_ids} } } @$dels;
    $seen_files{$who} = \%files;
    ok(keys %files >= ($pid eq $p1->{id} ? 8 : 1), "$who: saw " . keys(%files) . ' files');
    for my $id (sort keys %files) {
        my $r = capi($who, 'downloads', GET => "/attachments/$id/download");
        if ($r->{status} != 200) { flag($who, 'downloads', "download $id: $r->{status}"); next }
        my $g = $store->get($r->{json}{url});
        flag($who, 'store', "store GET $id: $g->{status}") unless $g->{status} == 200;
        scan($who, 'store', "store GET of $id", { %$g, content => '' });    # headers: Content-Disposition, ...
    }
    my ($one) = sort keys %files;
    my $r = capi($who, 'downloads', GET => "/attachments/$one/download?redirect=1");
    is($r->{status}, 302, "$who: ?redirect=1 -> 302");

    # -------- hidden files, asked for directly
    my %own = (B => [ $f_b_pending->{id}, $f_b_ready->{id} ], C => [ $f_c_pending->{id} ]);
    my %is_own = map { $_ => 1 } @{ $own{$who} // [] };
    for my $x ($f_int, $f_del, $f_unlinked, $f_dint, $f_b_pending, $f_b_ready, $f_c_pending) {
        next if $is_own{ $x->{id} };
        my $what = $hidden{ $x->{id} } // $hidden_from{$who}{ $x->{id} };
        $r = capi($who, 'direct', GET => "/attachments/$x->{id}/download");
        ok($r->{status} == 404 && ($r->{json}{code} // '') eq 'not_found', "$who: download of $what -> 404")
            or diag "$r->{status} $r->{content}";
        $r = capi($who, 'direct', GET => "/attachments/$x->{id}/download?redirect=1");
        is($r->{status}, 404, "$who: ... ?redirect=1 -> 404");
        $r = capi($who, 'direct', POST => "/attachments/$x->{id}/complete");
        is($r->{status}, 404, "$who: complete of $what -> 404");
    }
    if ($who eq 'B') {
        $r = client_api($t, $B->{access}, GET => "/attachments/$f_b_pending->{id}/download");
        is($r->{json}{code}, 'upload_incomplete', 'B: its own pending upload -> 409 upload_incomplete');
        is(client_api($t, $B->{access}, GET => "/attachments/$f_b_ready->{id}/download")->{status}, 200, 'B: its own unlinked upload -> 200');
    }
    # the other project, asked for directly
    my $other = $pid eq $p1->{id} ? $p2->{id} : $p1->{id};
    for my $path ("/projects/$other", "/projects/$other/tasks", "/projects/$other/deliverables", "/projects/$other/messages") {
        is(capi($who, 'direct', GET => $path)->{status}, 404, "$who: GET another project's $path -> 404");
    }

    for my $g (@GROUPS) {
        my $n = $scanned{$who}{$g} // 0;
        my @p = @{ $problems{$who}{$g} // [] };
        ok($n > 0 && !@p, "$who: $g: $n answers, no canary, no hidden id, no team-only field, all as expected")
            or diag explain [ @p[ 0 .. ($#p < 9 ? $#p : 9) ] ];
    }
}

crawl($_) for qw(A B C);
ok($bytes{$_} > 5_000, "$_: the crawl read $bytes{$_} bytes") for qw(A B C);

# ------------------------------------------------------------------ the outbox
sub client_rows {
    my $json = sql_in($t, "SELECT coalesce(json_agg(json_build_object('id', id, 'recipient_kind', recipient_kind,"
        . " 'recipient_id', recipient_id, 'template', template, 'project_id', project_id, 'payload', payload) ORDER BY seq), '[]')"
        . " FROM outbox WHERE tenant_id = '$t->{tenant_id}' AND recipient_kind = 'client'");
    return decode_json($json);
}
my $rows = client_rows();
my %rows_of;
push @{ $rows_of{ $_->{recipient_id} } }, $_ for @$rows;
for my $who (qw(A B C)) {
    my $digests = outbox_rows($t, 'message_digest', $client{$who}{id});
    ok(@$digests > 0, "$who: has message_digest rows (the check is not vacuous)");
    my @items = map { @{ ($_->{payload} // {})->{messages} // [] } } @$digests;
    my %vis_ids = map { $_ => 1 } @{ $visible{ $project_of{$who} }{messages} };
    my @team_visible = grep { $msg_author{$_} eq 'team' } @{ $visible{ $project_of{$who} }{messages} };
    my %in = map { $_->{message_id} => 1 } @items;
    ok(!(grep { !$in{$_} } @team_visible), "$who: the digests carry every visible team message");
    my @internal_in = grep { $internal_msg{$_} } map { $_->{message_id} // '' } @items;
    ok(!@internal_in, "$who: no internal message in its digests") or diag explain \@internal_in;
    # every row addressed to the client, whatever the template: internal
    # content (the deleted message, posted visible, is judged below)
    my @all = @{ $rows_of{ $client{$who}{id} } // [] };
    my @needles = grep { $_->[1] !~ /deleted message/ } @{ needles_of($who) };
    my (@bad, @del_bad);
    for my $row (@all) {
        my $hay = lc JSON::PP->new->canonical->encode($row->{payload});
        push @del_bad, "$row->{template} $row->{id}"
            if index($hay, lc cn('deleted-message-body')) >= 0 || index($hay, lc $del->{id}) >= 0;
        $hay =~ s/\Q@{[ lc cn('deleted-message-body') ]}\E//g;
        my @hits = leaks_in($hay, \@needles);
        push @bad, "$row->{template} $row->{id}: " . join('; ', @hits) if @hits;
    }
    ok(@all && !@bad, "$who: " . @all . ' outbox rows addressed to it: no canary of internal content, no hidden id') or diag explain \@bad;
    # a message deleted before its digest went out is withdrawn from it
ok(!@del_bad, "$who: the soft-deleted message is not in its pending digests") or diag explain \@del_bad;
}
my $wrows = outbox_rows($t, 'message_digest', $W->{id});
my $whay = lc JSON::PP->new->canonical->encode([ map { $_->{payload} } @$wrows ]);
ok(index($whay, lc $CANARY) >= 0 && index($whay, lc $int1->{id}) >= 0,
    'control: the watcher\'s digest does carry the internal message (so the payload search can see it)');

# ------------------------------------------------------------------ the checks bite
ok(scalar(leaks_in(haystack({ status => 200, headers => {}, content => "{\"x\":\"" . uc(cn('probe')) . "\"}" }), needles_of('A'))),
    'control: the detector finds the canary in a body (any case)');
ok(scalar(leaks_in(haystack({ status => 200, headers => { etag => "\"$CANARY\"" }, content => '' }), needles_of('A'))),
    'control: the detector finds the canary in a header');
{
    (my $bare = $int1->{id}) =~ s/-//g;
    ok(scalar(leaks_in(haystack({ status => 200, headers => {}, content => "{\"next_cursor\":\"" . MIME::Base64::encode_base64url($bare) . "\"}" }),
        needles_of('A'))), 'control: the detector finds a hidden id in a cursor');
}
{
    my @k = team_keys(team(GET => "/team/messages/$int1->{id}")->{json}, '$');
    ok((grep { /visibility/ } @k) && (grep { /deleted_at/ } @k), 'control: the team-only field check sees a team shape');
}
# a canary posted in a visible message, with the unlinked canary file
my $probe = post_visible('team', $p1->{id}, 'Probe ' . cn('probe-visible'), $f_unlinked->{id});
my $r = client_api($t, $A->{access}, GET => "/projects/$p1->{id}/messages?limit=7");
my @hits = leaks_in(haystack($r), needles_of('A'));
ok((grep { /^the canary$/ } @hits) && (grep { /unlinked team upload/ } @hits), 'control: a canary in a visible message and its file are caught')
    or diag explain \@hits;
$r = client_api($t, $A->{access}, GET => "/attachments/$f_unlinked->{id}/download");
is($r->{status}, 200, 'control: once on a visible message the file downloads');
ok(scalar(grep { /^the canary$/ } leaks_in(haystack($r), needles_of('A'))), 'control: the canary in its download URL is caught');
my $ahay = lc JSON::PP->new->canonical->encode([ map { $_->{payload} } @{ outbox_rows($t, 'message_digest', $A->{id}) } ]);
ok(index($ahay, lc cn('probe-visible')) >= 0, 'control: the visible canary reaches the client digest, and the search sees it');
# an internal task made visible shows in the list and in the counts
my $before = client_api($t, $A->{access}, GET => '/projects')->{json}{data}[0];
must(team(PATCH => "/team/tasks/$int_tasks[0]{id}", json => { client_visible => $T }), 200, 'unhide a task');
$r = client_api($t, $A->{access}, GET => "/projects/$p1->{id}/tasks?limit=200");
ok(scalar(grep { /internal task/ } leaks_in(haystack($r), needles_of('A'))), 'control: an unhidden task id is caught');
my $after = client_api($t, $A->{access}, GET => '/projects')->{json}{data}[0];
is($after->{progress}{tasks_total}, $before->{progress}{tasks_total} + 1, 'control: and tasks_total moves with it');
is($after->{unread_messages}, $before->{unread_messages}, 'control: unread unchanged by a task');
my $unread_b = client_api($t, $B->{access}, GET => '/projects')->{json}{data}[0]{unread_messages};
post_internal($p1->{id}, 'Quiet ' . cn('late-internal'));
is(client_api($t, $B->{access}, GET => '/projects')->{json}{data}[0]{unread_messages}, $unread_b, 'control: an internal message does not count');
post_visible('team', $p1->{id}, 'Loud');
is(client_api($t, $B->{access}, GET => '/projects')->{json}{data}[0]{unread_messages}, $unread_b + 1, 'control: a visible one does');

done_testing();
