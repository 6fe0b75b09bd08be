#!/usr/bin/perl
# The audit log of the team surface: one row per mutation (none for reads or
# refused requests), its shape, the request id of the mutation, the actor
# (API key, and the team member named by x-team-member), filters, newest-first
# order and pagination; x-team-member that names no team member of the tenant
# is refused and changes nothing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;

my $NOBODY = '00000000-0000-4000-8000-000000000000';
my $a = new_tenant();
my $b = new_tenant();

my $rid_seq = 0;
sub rid { sprintf 'audit-%s-%03d', $a->{code}, ++$rid_seq }

# a team call with its own X-Request-Id; returns (response, request id)
sub call {
    my ($method, $path, %o) = @_;
    my $rid = rid();
    my $r = team_api($a, $method => $path, %o, headers => { 'X-Request-Id' => $rid, %{ $o{headers} // {} } });
    return ($r, $rid);
}

sub all_audit {
    my ($t, $query) = @_;
    my (@rows, $cursor);
    my $pages = 0;
    do {
        my $r = team_api($t, GET => '/team/audit?limit=200' . ($query ? "&$query" : '') . (defined $cursor ? "&cursor=$cursor" : ''));
        die "audit: $r->{status} $r->{content}" unless $r->{status} == 200;
        push @rows, @{ $r->{json}{data} };
        $cursor = $r->{json}{next_cursor};
    } while (defined $cursor && ++$pages < 50);
    return \@rows;
}
sub rows_for { my ($rid) = @_; [grep { ($_->{request_id} // '') eq $rid } @{ all_audit($a) }] }

my $key_id;
my %expect;    # request id -> [action, target type, target id, detail fields or undef, member id or undef]
sub mutation {
    my ($want_status, $action, $type, $target, $fields, $method, $path, %o) = @_;
    my ($r, $rid) = call($method, $path, %o);
    is($r->{status}, $want_status, "$method $path: $want_status") or diag $r->{content};
    is($r->{headers}{'x-request-id'}, $rid, 'X-Request-Id echoed');
    my $tid = ref $target eq 'CODE' ? $target->($r) : $target;
    $expect{$rid} = [$action, $type, $tid, $fields, $o{member}];
    return $r;
}

# ---------------------------------------------------------------- one row per mutation

my $r = mutation(201, 'team_member.create', 'team_member', sub { $_[0]{json}{id} }, undef,
    POST => '/team/members', json => { name => 'Auditor', email => 'auditor@a.example' });
my $me = $r->{json}{id};
$r = mutation(201, 'team_member.create', 'team_member', sub { $_[0]{json}{id} }, undef,
    POST => '/team/members', json => { name => 'Temp', email => 'temp@a.example' });
my $temp = $r->{json}{id};
mutation(200, 'team_member.update', 'team_member', $temp, [qw(name phone)],
    PATCH => "/team/members/$temp", json => { name => 'Temp 2', phone => '+15551234567' });
$r = mutation(201, 'client.create', 'client', sub { $_[0]{json}{id} }, undef,
    POST => '/team/clients', json => { name => 'Audited client', email => 'ac@a.example' });
my $client = $r->{json}{id};
mutation(200, 'client.update', 'client', $client, [qw(company status)],
    PATCH => "/team/clients/$client", json => { company => 'ACME', status => 'disabled' });
$r = mutation(201, 'project.create', 'project', sub { $_[0]{json}{id} }, undef,
    POST => '/team/projects', json => { name => 'Audited' });
my $proj = $r->{json}{id};
mutation(200, 'project.update', 'project', $proj, [qw(description name status)],
    PATCH => "/team/projects/$proj", json => { name => 'Audited 2', description => 'secret text', status => 'on_hold' });
$r = mutation(201, 'milestone.create', 'milestone', sub { $_[0]{json}{id} }, undef,
    POST => "/team/projects/$proj/milestones", json => { title => 'AM' });
my $ms = $r->{json}{id};
mutation(200, 'milestone.update', 'milestone', $ms, ['status'], PATCH => "/team/milestones/$ms", json => { status => 'done' });
$r = mutation(201, 'task.create', 'task', sub { $_[0]{json}{id} }, undef,
    POST => "/team/projects/$proj/tasks", json => { title => 'AT' }, headers => { 'x-team-member' => $me }, member => $me);
my $task = $r->{json}{id};
mutation(200, 'task.update', 'task', $task, [qw(milestone_id status)],
    PATCH => "/team/tasks/$task", json => { status => 'done', milestone_id => $ms }, headers => { 'x-team-member' => $me }, member => $me);
$r = mutation(201, 'deliverable.create', 'deliverable', sub { $_[0]{json}{id} }, undef,
    POST => "/team/projects/$proj/deliverables", json => { title => 'AD', due_date => '2026-02-02' });
my $del = $r->{json}{id};
mutation(200, 'deliverable.update', 'deliverable', $del, ['status'], PATCH => "/team/deliverables/$del", json => { status => 'delivered' });
mutation(204, 'project_member.add', 'project_member', "$proj/$client", undef, PUT => "/team/projects/$proj/members/$client");
mutation(204, 'project_watcher.add', 'project_watcher', "$proj/$me", undef,
    PUT => "/team/projects/$proj/watchers/$me", headers => { 'x-team-member' => $me }, member => $me);
mutation(204, 'project_member.remove', 'project_member', "$proj/$client", undef, DELETE => "/team/projects/$proj/members/$client");
mutation(204, 'project_watcher.remove', 'project_watcher', "$proj/$me", undef, DELETE => "/team/projects/$proj/watchers/$me");
mutation(204, 'deliverable.delete', 'deliverable', $del, undef, DELETE => "/team/deliverables/$del");
mutation(204, 'task.delete', 'task', $task, undef, DELETE => "/team/tasks/$task");
mutation(204, 'milestone.delete', 'milestone', $ms, undef, DELETE => "/team/milestones/$ms");
mutation(204, 'client.delete', 'client', $client, undef, DELETE => "/team/clients/$client");
mutation(204, 'team_member.delete', 'team_member', $temp, undef, DELETE => "/team/members/$temp");
mutation(204, 'project.delete', 'project', $proj, undef, DELETE => "/team/projects/$proj", headers => { 'x-team-member' => $me }, member => $me);

my $rows = all_audit($a);
$key_id = $rows->[0]{actor}{api_key_id};
like($key_id // '', qr/^[0-9a-f-]{36}$/, 'rows name the API key');
for my $rid (sort keys %expect) {
    my ($action, $type, $tid, $fields, $member) = @{ $expect{$rid} };
    my @mine = grep { ($_->{request_id} // '') eq $rid } @$rows;
    is(scalar @mine, 1, "$action ($rid): exactly one row") or next;
    my $row = $mine[0];
    is($row->{action}, $action, "$rid: action $action");
    is_deeply($row->{target}, { type => $type, id => $tid }, "$rid: target");
    is($row->{actor}{api_key_id}, $key_id, "$rid: actor API key");
    is($row->{actor}{member_id}, $member, "$rid: actor member " . ($member ? 'from x-team-member' : 'null'));
    if ($fields) {
        is_deeply([sort @{ $row->{detail}{fields} // [] }], $fields, "$rid: detail names the patched fields");
    }
}
my ($upd) = grep { ($_->{action} // '') eq 'project.update' } @$rows;
unlike(JSON::PP->new->canonical->encode($upd->{detail}), qr/secret text|Audited 2/, 'detail holds names, not values');
my $row = $rows->[0];
is_deeply([sort keys %$row], [qw(action actor at detail id ip request_id target)], 'row shape');
is_deeply([sort keys %{ $row->{actor} }], [qw(api_key_id client_id member_id)], 'actor shape');
like($row->{at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'at is RFC 3339 UTC');
like($row->{ip} // '', qr/^[0-9a-f:.]+$/, 'ip recorded');
is(scalar @$rows, scalar keys %expect, 'no other row: reads, creates and deletes wrote one row each');

# PUT of an existing relation changes and audits nothing
my $p2 = team_api($a, POST => '/team/projects', json => { name => 'Quiet' })->{json}{id};
my $c2 = team_api($a, POST => '/team/clients', json => { name => 'Quiet client', email => 'quiet@a.example' })->{json}{id};
my ($put1, $rid1) = call(PUT => "/team/projects/$p2/members/$c2");
my ($put2, $rid2) = call(PUT => "/team/projects/$p2/members/$c2");
is($put2->{status}, 204, 'second PUT: 204');
is(scalar @{ rows_for($rid1) }, 1, 'first PUT audited');
is(scalar @{ rows_for($rid2) }, 0, 'second PUT not audited');

# refused and read-only requests write nothing
my $count = scalar @{ all_audit($a) };
my @quiet = (
    [GET => "/team/projects/$p2"], [GET => '/team/projects'], [GET => '/team/audit'],
    [POST => '/team/projects', json => { name => '' }],
    [PATCH => "/team/projects/$p2", json => { due_date => 'soon' }],
    [PATCH => "/team/projects/$NOBODY", json => { name => 'x' }],
    [DELETE => "/team/tasks/$NOBODY"],
    [POST => '/team/clients', json => { name => 'Dup', email => 'QUIET@a.example' }],
    [PUT => "/team/projects/$p2/members/$NOBODY"],
    [DELETE => "/team/projects/$p2/watchers/$me"],
    [POST => "/team/projects/$p2/tasks", json => { title => 'x', milestone_id => $NOBODY }],
);
for my $q (@quiet) {
    my ($method, $path, @rest) = @$q;
    my ($x, $rid) = call($method, $path, @rest);
    is(scalar @{ rows_for($rid) }, 0, "$method $path ($x->{status}): no audit row");
}
is(scalar @{ all_audit($a) }, $count, 'the log did not grow');

# ---------------------------------------------------------------- x-team-member

my $b_member = team_api($b, POST => '/team/members', json => { name => 'B member', email => 'bm@b.example' })->{json}{id};
my $projects_before = scalar @{ team_api($a, GET => '/team/projects?limit=200')->{json}{data} };
my %bad_member = (
    'unknown id'              => $NOBODY,
    "another tenant's member" => $b_member,
    'not a UUID'              => 'alice',
    'SQL'                     => q{' OR 1=1 --},
    'a deleted member'        => $temp,
    'a client id'             => $c2,
);
for my $case (sort keys %bad_member) {
    for my $req ([POST => '/team/projects', json => { name => "By $case" }], [PATCH => "/team/projects/$p2", json => { name => "By $case" }],
        [DELETE => "/team/projects/$p2"], [PUT => "/team/projects/$p2/watchers/$me"]) {
        my ($method, $path, @rest) = @$req;
        my ($x, $rid) = call($method, $path, @rest, headers => { 'x-team-member' => $bad_member{$case} });
        is($x->{status}, 422, "x-team-member $case, $method: 422");
        is($x->{json}{code}, 'validation_failed', 'validation_failed');
        is_deeply([map { [$_->{field}, $_->{code}] } @{ $x->{json}{errors} // [] }], [['x-team-member', 'invalid_reference']],
            'errors[0]: x-team-member invalid_reference');
        is(scalar @{ rows_for($rid) }, 0, 'no audit row');
    }
}
is(scalar @{ team_api($a, GET => '/team/projects?limit=200')->{json}{data} }, $projects_before, 'no project created');
$r = team_api($a, GET => "/team/projects/$p2");
is($r->{json}{name}, 'Quiet', 'the project was not renamed or deleted');
is_deeply([map { $_->{member_id} } @{ team_api($a, GET => "/team/projects/$p2/watchers")->{json}{data} }], [], 'no watcher added');
my ($up) = call(GET => '/team/projects', headers => { 'x-team-member' => uc $me });
is($up->{status}, 200, 'an upper-case spelling of a member id is that member');

# ---------------------------------------------------------------- filters, order, pages

my $mine = all_audit($a, "actor=$me");
ok(@$mine >= 4, 'actor = team member: that member');
ok(!grep({ ($_->{actor}{member_id} // '') ne $me } @$mine), 'only rows of that member');
my $by_key = all_audit($a, "actor=$key_id");
is(scalar @$by_key, scalar @{ all_audit($a) }, 'actor = API key: every row of that key');
my $updates = all_audit($a, 'action=project.update');
ok(@$updates >= 1 && !grep({ $_->{action} ne 'project.update' } @$updates), '?action=project.update');
is_deeply(all_audit($a, 'action=project.explode'), [], 'unknown action: empty');
is_deeply(all_audit($a, "actor=$NOBODY"), [], 'unknown actor: empty');
is_deeply(all_audit($a, "actor=$b_member"), [], "another tenant's member: empty");

my $all = all_audit($a);
my @ids = map { $_->{id} } @$all;
is_deeply(\@ids, [sort { $::b <=> $::a } @ids], 'newest first');
ok(!grep({ $all->[$_]{at} lt $all->[$_ + 1]{at} } 0 .. $#$all - 1), 'times never increase down the list');
my $mid = $all->[int(@$all / 2)];
my $since = all_audit($a, "since=$mid->{at}");
ok((grep { $_->{id} == $mid->{id} } @$since), '?since includes its instant');
ok(!grep({ $_->{at} lt $mid->{at} } @$since), '?since: nothing older');
my $until = all_audit($a, "until=$mid->{at}");
ok(!grep({ $_->{at} ge $mid->{at} } @$until), '?until: strictly older');
is(@$since + @$until, scalar @$all, 'since and until split the log');
is_deeply(all_audit($a, 'since=2999-01-01T00:00:00Z'), [], 'since the future: empty');
is(scalar @{ all_audit($a, 'until=2999-01-01T00:00:00%2B02:00') }, scalar @$all, 'until the future with an offset: all');
is_deeply(all_audit($a, "since=$mid->{at}&until=$mid->{at}"), [], 'an empty window');
my $window = all_audit($a, "action=$mid->{action}&since=$mid->{at}&actor=$key_id");
ok((grep { $_->{id} == $mid->{id} } @$window) && !grep({ $_->{action} ne $mid->{action} } @$window), 'filters combine');
# any RFC 3339 offset is a valid time, not a server error
for my $ts ('2026-01-01T00:00:00%2B05:30', '2026-01-01T00:00:00-15:59', '2026-01-01T00:00:00%2B16:00', '2026-01-01T00:00:00-23:59') {
    my $x = team_api($a, GET => "/team/audit?since=$ts");
    is($x->{status}, 200, "since=$ts: 200") or diag $x->{content};
}
for my $qs ('actor=alice', 'since=yesterday', 'until=2026-01-01', 'since=2026-01-01T25:00:00Z', 'action=', 'limit=0', 'cursor=zz!', 'target=project') {
    my $x = team_api($a, GET => "/team/audit?$qs");
    is($x->{status}, 400, "audit ?$qs: 400");
    is($x->{json}{code}, 'bad_query', 'bad_query');
}

# pages, with new rows arriving between them
my @orig = map { $_->{id} } @{ all_audit($a) };
my (@seen, $cursor);
my $pages = 0;
do {
    my $x = team_api($a, GET => '/team/audit?limit=2' . (defined $cursor ? "&cursor=$cursor" : ''));
    push @seen, map { $_->{id} } @{ $x->{json}{data} };
    $cursor = $x->{json}{next_cursor};
    team_api($a, PATCH => "/team/projects/$p2", json => { name => "Quiet $pages" }) if $pages < 3;
} while (defined $cursor && ++$pages < 200);
my %n;
$n{$_}++ for @seen;
ok(!grep({ !$n{$_} } @orig) && !grep({ $_ > 1 } values %n), 'every original row once across pages, none twice');
is_deeply([grep { my $id = $_; grep { $_ == $id } @orig } @seen], \@orig, 'in order');

# ---------------------------------------------------------------- request id and address

my $bad_rid = 'not valid!';
my $x = team_api($a, POST => '/team/projects', json => { name => 'Own rid' }, headers => { 'X-Request-Id' => $bad_rid });
my $given = $x->{headers}{'x-request-id'};
isnt($given, $bad_rid, 'an invalid X-Request-Id is replaced');
is(scalar @{ rows_for($given) }, 1, 'the row carries the request id the answer carried');
($x, my $rid) = call(POST => '/team/projects', json => { name => 'Spoofed' }, headers => { 'X-Forwarded-For' => '203.0.113.77', 'X-Real-IP' => '203.0.113.78' });
my ($spoof) = @{ rows_for($rid) };
ok($spoof && $spoof->{ip} && $spoof->{ip} !~ /^203\.0\.113\./, 'the address comes from nginx, not from X-Forwarded-For')
    or diag explain $spoof;

done_testing();
