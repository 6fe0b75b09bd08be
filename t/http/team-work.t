#!/usr/bin/perl
# Milestones, tasks and deliverables of a project: create, read, patch,
# delete, validation, milestone references within the project, progress
# computed from tasks, list orders, filters and keyset pagination stable under
# inserts (including forged cursors).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use MIME::Base64 qw(encode_base64);
use Atrium::Test;
use Atrium::Checks;

my $BASE = '/api/portal/v1';
my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
my $TIME = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
my $NOBODY = '00000000-0000-4000-8000-000000000000';
my ($T, $F) = (JSON::PP::true, JSON::PP::false);

my $a = new_tenant();
my $b = new_tenant();

sub b64url { my $x = encode_base64($_[0], ''); $x =~ tr{+/}{-_}; $x =~ s/=+$//; $x }

my $p = team_api($a, POST => '/team/projects', json => { name => 'Work' })->{json}{id};
my $q = team_api($a, POST => '/team/projects', json => { name => 'Other work' })->{json}{id};
my $bp = team_api($b, POST => '/team/projects', json => { name => 'B work' })->{json}{id};
ok($p && $q && $bp, 'projects');

# ================================================================ milestones

my $r = team_api($a, POST => "/team/projects/$p/milestones", json => { title => 'Discovery' });
is($r->{status}, 201, 'milestone create');
my $m1 = $r->{json};
like($m1->{id}, $UUID, 'id');
is($r->{headers}{location}, "$BASE/team/milestones/$m1->{id}", 'Location');
is($m1->{project_id}, $p, 'project_id');
is($m1->{title}, 'Discovery', 'title');
is($m1->{status}, 'pending', 'pending by default');
is($m1->{position}, 0, 'position 0 by default');
ok($m1->{client_visible} && JSON::PP::is_bool($m1->{client_visible}), 'client_visible true by default');
is($m1->{percent}, 0, 'percent 0 without tasks');
is($m1->{description}, undef, 'description null');
is($m1->{due_date}, undef, 'due date null');
like($m1->{created_at}, $TIME, 'created_at');
is_deeply(team_api($a, GET => "/team/milestones/$m1->{id}")->{json}, $m1, 'GET returns the same');

$r = team_api($a, POST => "/team/projects/$p/milestones", json => {
    title => 'Design', description => 'Mockups', due_date => '2026-04-15', status => 'in_progress',
    position => 10, client_visible => $F });
is($r->{status}, 201, 'milestone with every field');
my $m2 = $r->{json};
is($m2->{description}, 'Mockups', 'description');
is($m2->{due_date}, '2026-04-15', 'due date');
is($m2->{status}, 'in_progress', 'status');
is($m2->{position}, 10, 'position');
ok(!$m2->{client_visible}, 'hidden from the client');

invalid(team_api($a, POST => "/team/projects/$p/milestones", json => {}), 'title', 'required', 'milestone without title');
my %mbad = (
    'blank title'       => [{ title => '   ' }, 'title', 'too_short'],
    'long title'        => [{ title => 't' x 201 }, 'title', 'too_long'],
    'long description'  => [{ description => 'd' x 20001 }, 'description', 'too_long'],
    'bad due date'      => [{ due_date => '2026-02-30' }, 'due_date', 'invalid_format'],
    'status'            => [{ status => 'todo' }, 'status', 'invalid_enum'],
    'position 1.5'      => [{ position => 1.5 }, 'position', 'type'],
    'position string'   => [{ position => '1' }, 'position', 'type'],
    'position too big'  => [{ position => 1000000001 }, 'position', 'out_of_range'],
    'position too low'  => [{ position => -1000000001 }, 'position', 'out_of_range'],
    'visible string'    => [{ client_visible => 'yes' }, 'client_visible', 'type'],
    'visible 1'         => [{ client_visible => 1 }, 'client_visible', 'type'],
    'percent'           => [{ percent => 50 }, 'percent', 'read_only'],
    'project_id'        => [{ project_id => $q }, 'project_id', 'read_only'],
    'id'                => [{ id => $NOBODY }, 'id', 'read_only'],
    'created_at'        => [{ created_at => '2020-01-01T00:00:00Z' }, 'created_at', 'read_only'],
    'tenant_id'         => [{ tenant_id => $b->{tenant_id} }, 'tenant_id', 'read_only'],
    'unknown'           => [{ colour => 'red' }, 'colour', 'unknown_field'],
);
for my $case (sort keys %mbad) {
    my ($extra, $field, $code) = @{ $mbad{$case} };
    invalid(team_api($a, POST => "/team/projects/$p/milestones", json => { title => 'X', %$extra }), $field, $code, "milestone: $case");
}
for my $edge (1000000000, -1000000000) {
    $r = team_api($a, POST => "/team/projects/$q/milestones", json => { title => "Edge $edge", position => $edge });
    is($r->{status}, 201, "position $edge accepted");
    is($r->{json}{position}, $edge, 'and stored');
}
is_not_found(team_api($a, POST => "/team/projects/$NOBODY/milestones", json => { title => 'X' }), 'milestone of an unknown project');
is_not_found(team_api($a, GET => "/team/projects/$NOBODY/milestones"), 'milestones of an unknown project');
is(scalar @{ team_api($a, GET => "/team/projects/$p/milestones")->{json}{data} }, 2, 'no refused milestone stored');

$r = team_api($a, PATCH => "/team/milestones/$m2->{id}", json => { title => 'Design v2' });
is($r->{status}, 200, 'patch title');
is($r->{json}{title}, 'Design v2', 'changed');
for my $f (qw(description due_date status position client_visible project_id created_at percent)) {
    is_deeply($r->{json}{$f}, $m2->{$f}, "$f kept");
}
$r = team_api($a, PATCH => "/team/milestones/$m2->{id}", json => { description => undef, due_date => undef, client_visible => $T, position => -3, status => 'done' });
is($r->{json}{description}, undef, 'description cleared');
is($r->{json}{due_date}, undef, 'due date cleared');
ok($r->{json}{client_visible}, 'visible again');
is($r->{json}{position}, -3, 'negative position');
is($r->{json}{status}, 'done', 'done');
for my $f (qw(title status position client_visible)) {
    invalid(team_api($a, PATCH => "/team/milestones/$m2->{id}", json => { $f => undef }), $f, 'type', "milestone: null $f");
}
invalid(team_api($a, PATCH => "/team/milestones/$m2->{id}", json => { percent => 100 }), 'percent', 'read_only', 'patch percent');
invalid(team_api($a, PATCH => "/team/milestones/$m2->{id}", json => { project_id => $q }), 'project_id', 'read_only', 'patch project_id');
is(team_api($a, GET => "/team/milestones/$m2->{id}")->{json}{title}, 'Design v2', 'refused patches changed nothing');
is_not_found(team_api($a, PATCH => "/team/milestones/$NOBODY", json => { title => 'x' }), 'patch unknown milestone');
is_not_found(team_api($a, GET => "/team/milestones/$NOBODY"), 'unknown milestone');
is_not_found(team_api($a, DELETE => "/team/milestones/$NOBODY"), 'delete unknown milestone');

# order: position, then creation
my $ord = team_api($a, POST => '/team/projects', json => { name => 'Ordering' })->{json}{id};
my %mpos;
my @mids;
for my $spec ([A => 5, '2026-05-01', 'pending'], [B => -1, '2026-01-01', 'done'], [C => 5, undef, 'pending'], [D => 0, '2026-03-01', 'in_progress']) {
    my ($t, $pos, $due, $st) = @$spec;
    my $x = team_api($a, POST => "/team/projects/$ord/milestones", json => { title => $t, position => $pos, due_date => $due, status => $st })->{json};
    $mpos{$t} = $x->{id};
}
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/milestones")), [@mpos{qw(B D A C)}], 'milestones by position then creation');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/milestones?status=pending")), [@mpos{qw(A C)}], '?status=pending');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/milestones?due_from=2026-03-01")), [@mpos{qw(D A)}], '?due_from inclusive, undated left out');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/milestones?due_to=2026-03-01")), [@mpos{qw(B D)}], '?due_to inclusive');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/milestones?due_from=2026-02-01&due_to=2026-04-01&status=in_progress")), [$mpos{D}], 'filters combine');
for my $qs ('status=todo', 'due_from=2026-13-01', 'milestone_id=' . $mpos{A}, 'limit=201', 'cursor=***') {
    $r = team_api($a, GET => "/team/projects/$ord/milestones?$qs");
    is($r->{status}, 400, "milestones ?$qs: 400");
    is($r->{json}{code}, 'bad_query', 'bad_query');
}

# pagination across inserts, before and after the cursor
my @orig = @{ ids_of(team_api($a, GET => "/team/projects/$ord/milestones")) };
my $i = 0;
my $seen = walk($a, "/team/projects/$ord/milestones", 'id', sub {
    for my $pos (-100, 3, 100) {
        team_api($a, POST => "/team/projects/$ord/milestones", json => { title => 'Late ' . $i++, position => $pos });
    }
});
once_each($seen, \@orig, 'milestone pages');

# ================================================================ tasks

$r = team_api($a, POST => "/team/projects/$p/tasks", json => { title => 'Kickoff call' });
is($r->{status}, 201, 'task create');
my $t1 = $r->{json};
like($t1->{id}, $UUID, 'id');
is($r->{headers}{location}, "$BASE/team/tasks/$t1->{id}", 'Location');
is($t1->{project_id}, $p, 'project_id');
is($t1->{milestone_id}, undef, 'no milestone');
is($t1->{status}, 'todo', 'todo by default');
is($t1->{position}, 0, 'position 0');
ok($t1->{client_visible}, 'visible by default');
is($t1->{due_date}, undef, 'no due date');
is_deeply(team_api($a, GET => "/team/tasks/$t1->{id}")->{json}, $t1, 'GET returns the same');

$r = team_api($a, POST => "/team/projects/$p/tasks", json => {
    title => 'Wireframes', milestone_id => $m1->{id}, status => 'in_progress', due_date => '2026-04-01',
    position => 2, client_visible => $F });
is($r->{status}, 201, 'task with every field');
my $t2 = $r->{json};
is($t2->{milestone_id}, $m1->{id}, 'milestone of the same project');
is($t2->{status}, 'in_progress', 'status');
is($t2->{due_date}, '2026-04-01', 'due date');
ok(!$t2->{client_visible}, 'hidden');

my $qm = team_api($a, POST => "/team/projects/$q/milestones", json => { title => 'Q milestone' })->{json}{id};
my $bm = team_api($b, POST => "/team/projects/$bp/milestones", json => { title => 'B milestone' })->{json}{id};
invalid(team_api($a, POST => "/team/projects/$p/tasks", json => { title => 'X', milestone_id => $qm }),
    'milestone_id', 'invalid_reference', "task with another project's milestone");
invalid(team_api($a, POST => "/team/projects/$p/tasks", json => { title => 'X', milestone_id => $bm }),
    'milestone_id', 'invalid_reference', "task with another tenant's milestone");
invalid(team_api($a, POST => "/team/projects/$p/tasks", json => { title => 'X', milestone_id => $NOBODY }),
    'milestone_id', 'invalid_reference', 'task with an unknown milestone');
invalid(team_api($a, POST => "/team/projects/$p/tasks", json => { title => 'X', milestone_id => 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz' }),
    'milestone_id', 'invalid_format', 'task with a non-UUID milestone');
invalid(team_api($a, POST => "/team/projects/$p/tasks", json => { title => 'X', milestone_id => 'not-a-uuid' }),
    'milestone_id', 'invalid_format', 'task with a short non-UUID milestone');
invalid(team_api($a, POST => "/team/projects/$p/tasks", json => {}), 'title', 'required', 'task without title');
my %tbad = (
    'blank title'      => [{ title => "\t" }, 'title', 'too_short'],
    'long title'       => [{ title => 'x' x 201 }, 'title', 'too_long'],
    'status'           => [{ status => 'pending' }, 'status', 'invalid_enum'],
    'due date'         => [{ due_date => '2026-00-10' }, 'due_date', 'invalid_format'],
    'position 1.5'     => [{ position => 1.5 }, 'position', 'type'],
    'position big'     => [{ position => 2000000000 }, 'position', 'out_of_range'],
    'visible null'     => [{ client_visible => undef }, 'client_visible', 'type'],
    'description'      => [{ description => 'tasks have none' }, 'description', 'unknown_field'],
    'project_id'       => [{ project_id => $q }, 'project_id', 'read_only'],
    'updated_at'       => [{ updated_at => '2020-01-01T00:00:00Z' }, 'updated_at', 'read_only'],
    'tenant_id'        => [{ tenant_id => $b->{tenant_id} }, 'tenant_id', 'read_only'],
);
for my $case (sort keys %tbad) {
    my ($extra, $field, $code) = @{ $tbad{$case} };
    invalid(team_api($a, POST => "/team/projects/$p/tasks", json => { title => 'X', %$extra }), $field, $code, "task: $case");
}
is_deeply(ids_of(team_api($a, GET => "/team/projects/$p/tasks")), [$t1->{id}, $t2->{id}], 'no refused task stored');

$r = team_api($a, PATCH => "/team/tasks/$t2->{id}", json => { title => 'Wireframes v2' });
is($r->{json}{title}, 'Wireframes v2', 'patch title');
for my $f (qw(milestone_id status due_date position client_visible project_id)) {
    is_deeply($r->{json}{$f}, $t2->{$f}, "$f kept");
}
invalid(team_api($a, PATCH => "/team/tasks/$t2->{id}", json => { milestone_id => $qm }),
    'milestone_id', 'invalid_reference', "patch to another project's milestone");
invalid(team_api($a, PATCH => "/team/tasks/$t2->{id}", json => { milestone_id => $bm }),
    'milestone_id', 'invalid_reference', "patch to another tenant's milestone");
is(team_api($a, GET => "/team/tasks/$t2->{id}")->{json}{milestone_id}, $m1->{id}, 'milestone unchanged after refusals');
$r = team_api($a, PATCH => "/team/tasks/$t2->{id}", json => { milestone_id => undef, due_date => undef });
is($r->{json}{milestone_id}, undef, 'null clears the milestone');
is($r->{json}{due_date}, undef, 'null clears the due date');
$r = team_api($a, PATCH => "/team/tasks/$t2->{id}", json => { milestone_id => $m1->{id} });
is($r->{json}{milestone_id}, $m1->{id}, 'milestone set again');
for my $f (qw(title status position client_visible)) {
    invalid(team_api($a, PATCH => "/team/tasks/$t2->{id}", json => { $f => undef }), $f, 'type', "task: null $f");
}
is_not_found(team_api($a, PATCH => "/team/tasks/$NOBODY", json => { title => 'x' }), 'patch unknown task');
is_not_found(team_api($a, POST => "/team/projects/$NOBODY/tasks", json => { title => 'x' }), 'task under an unknown project');

# progress: done / all tasks, hidden ones included on the team surface
my $prog = team_api($a, POST => '/team/projects', json => { name => 'Progress' })->{json}{id};
my $pm = team_api($a, POST => "/team/projects/$prog/milestones", json => { title => 'PM' })->{json}{id};
my $pm2 = team_api($a, POST => "/team/projects/$prog/milestones", json => { title => 'PM2' })->{json}{id};
my @pt = map {
    team_api($a, POST => "/team/projects/$prog/tasks", json => { title => "P$_", milestone_id => $pm, client_visible => ($_ == 3 ? $F : $T) })->{json}{id}
} 1 .. 3;
my $loose = team_api($a, POST => "/team/projects/$prog/tasks", json => { title => 'Loose' })->{json}{id};
my $progress = sub { team_api($a, GET => "/team/projects/$prog")->{json}{progress} };
my $mpct = sub { team_api($a, GET => "/team/milestones/$_[0]")->{json}{percent} };
is_deeply($progress->(), { tasks_total => 4, tasks_done => 0, percent => 0 }, 'four tasks, none done');
team_api($a, PATCH => "/team/tasks/$pt[0]", json => { status => 'done' });
is_deeply($progress->(), { tasks_total => 4, tasks_done => 1, percent => 25 }, 'one of four');
is($mpct->($pm), 33, 'milestone: 1 of 3 is 33 (floor)');
team_api($a, PATCH => "/team/tasks/$pt[2]", json => { status => 'done' });
is($mpct->($pm), 66, 'milestone: 2 of 3 is 66 (floor; the hidden task counts)');
is_deeply($progress->(), { tasks_total => 4, tasks_done => 2, percent => 50 }, 'two of four');
is($mpct->($pm2), 0, 'milestone without tasks: 0');
team_api($a, PATCH => "/team/tasks/$pt[1]", json => { status => 'in_progress' });
is($mpct->($pm), 66, 'in progress is not done');
team_api($a, PATCH => "/team/tasks/$pt[1]", json => { status => 'done' });
is($mpct->($pm), 100, 'all done: 100');
is(team_api($a, GET => "/team/projects/$prog/milestones")->{json}{data}[0]{percent}, 100, 'percent in the list too');
team_api($a, PATCH => "/team/tasks/$loose", json => { status => 'done' });
is_deeply($progress->(), { tasks_total => 4, tasks_done => 4, percent => 100 }, 'all four done');
is(team_api($a, GET => '/team/projects?q=Progress')->{json}{data}[0]{progress}{percent}, 100, 'progress in the project list');
team_api($a, PATCH => "/team/tasks/$pt[0]", json => { milestone_id => $pm2 });
is($mpct->($pm2), 100, 'moving a done task moves its share');
team_api($a, DELETE => "/team/tasks/$loose");
is_deeply($progress->(), { tasks_total => 3, tasks_done => 3, percent => 100 }, 'a deleted task no longer counts');

# deleting a milestone keeps its tasks and deliverables, without a milestone
my $dl = team_api($a, POST => "/team/projects/$prog/deliverables", json => { title => 'PD', due_date => '2026-05-05', milestone_id => $pm })->{json}{id};
$r = team_api($a, DELETE => "/team/milestones/$pm");
is($r->{status}, 204, 'delete milestone');
is_not_found(team_api($a, GET => "/team/milestones/$pm"), 'milestone gone');
for my $tid (@pt[1, 2]) {
    $r = team_api($a, GET => "/team/tasks/$tid");
    is($r->{status}, 200, 'its task stays');
    is($r->{json}{milestone_id}, undef, 'without a milestone');
}
is(team_api($a, GET => "/team/tasks/$pt[0]")->{json}{milestone_id}, $pm2, 'a task of another milestone is untouched');
$r = team_api($a, GET => "/team/deliverables/$dl");
is($r->{status}, 200, 'its deliverable stays');
is($r->{json}{milestone_id}, undef, 'without a milestone');
is_deeply($progress->(), { tasks_total => 3, tasks_done => 3, percent => 100 }, 'project progress unchanged');

# order and filters
my %tk;
for my $spec ([A => 1, 'todo', '2026-02-01', $mpos{A}], [B => 0, 'done', undef, undef], [C => 1, 'in_progress', '2026-03-01', $mpos{A}],
    [D => -7, 'todo', '2026-01-15', $mpos{B}]) {
    my ($t, $pos, $st, $due, $ms) = @$spec;
    $tk{$t} = team_api($a, POST => "/team/projects/$ord/tasks", json => { title => $t, position => $pos, status => $st, due_date => $due, milestone_id => $ms })->{json}{id};
}
ok(4 == grep({ defined } values %tk), 'ordering tasks created');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/tasks")), [@tk{qw(D B A C)}], 'tasks by position then creation');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/tasks?status=todo")), [@tk{qw(D A)}], '?status=todo');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/tasks?milestone_id=$mpos{A}")), [@tk{qw(A C)}], '?milestone_id');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/tasks?milestone_id=$qm")), [], "?milestone_id of another project: empty");
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/tasks?due_from=2026-02-01&due_to=2026-03-01")), [@tk{qw(A C)}], 'due range');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/tasks?milestone_id=$mpos{A}&status=in_progress")), [$tk{C}], 'filters combine');
for my $qs ('status=pending', 'milestone_id=x', 'due_to=2026-02-29', 'client_visible=true', 'limit=') {
    $r = team_api($a, GET => "/team/projects/$ord/tasks?$qs");
    is($r->{status}, 400, "tasks ?$qs: 400");
    is($r->{json}{code}, 'bad_query', 'bad_query');
}
@orig = @{ ids_of(team_api($a, GET => "/team/projects/$ord/tasks")) };
$seen = walk($a, "/team/projects/$ord/tasks", 'id', sub {
    for my $pos (-1000, 0, 1, 1000) {
        team_api($a, POST => "/team/projects/$ord/tasks", json => { title => 'Late ' . $i++, position => $pos });
    }
});
once_each($seen, \@orig, 'task pages');
my @orig_todo = @{ ids_of(team_api($a, GET => "/team/projects/$ord/tasks?status=todo&limit=200")) };
$seen = walk($a, "/team/projects/$ord/tasks?status=todo", 'id', sub {
    team_api($a, POST => "/team/projects/$ord/tasks", json => { title => 'Late ' . $i++, position => 0 });
});
once_each($seen, \@orig_todo, 'filtered task pages');

$r = team_api($a, DELETE => "/team/tasks/$tk{B}");
is($r->{status}, 204, 'delete task');
is_not_found(team_api($a, GET => "/team/tasks/$tk{B}"), 'task gone');
is_not_found(team_api($a, DELETE => "/team/tasks/$tk{B}"), 'delete task again');

# ================================================================ deliverables

$r = team_api($a, POST => "/team/projects/$p/deliverables", json => { title => 'Brand book', due_date => '2026-06-01' });
is($r->{status}, 201, 'deliverable create');
my $d1 = $r->{json};
like($d1->{id}, $UUID, 'id');
is($r->{headers}{location}, "$BASE/team/deliverables/$d1->{id}", 'Location');
is($d1->{project_id}, $p, 'project_id');
is($d1->{status}, 'scheduled', 'scheduled by default');
is($d1->{due_date}, '2026-06-01', 'due date');
is($d1->{delivered_at}, undef, 'not delivered');
is_deeply($d1->{attachment_ids}, [], 'no attachments');
is($d1->{decision}, undef, 'no decision');
ok($d1->{client_visible}, 'visible by default');
is($d1->{milestone_id}, undef, 'no milestone');
is($d1->{description}, undef, 'no description');
is_deeply(team_api($a, GET => "/team/deliverables/$d1->{id}")->{json}, $d1, 'GET returns the same');

$r = team_api($a, POST => "/team/projects/$p/deliverables", json => {
    title => 'Logo files', description => 'SVG + PNG', due_date => '2026-05-01', milestone_id => $m1->{id},
    status => 'delivered', attachment_ids => [], client_visible => $F });
is($r->{status}, 201, 'deliverable with every field, delivered at once');
my $d2 = $r->{json};
like($d2->{delivered_at} // '', $TIME, 'delivered_at stamped');
is($d2->{milestone_id}, $m1->{id}, 'milestone');
is($d2->{status}, 'delivered', 'delivered');
$r = team_api($a, POST => "/team/projects/$p/deliverables", json => { title => 'WIP', due_date => '2026-05-02', status => 'in_progress' });
is($r->{json}{status}, 'in_progress', 'in_progress on create');
is($r->{json}{delivered_at}, undef, 'not delivered');

invalid(team_api($a, POST => "/team/projects/$p/deliverables", json => { title => 'X' }), 'due_date', 'required', 'deliverable without due date');
invalid(team_api($a, POST => "/team/projects/$p/deliverables", json => { due_date => '2026-01-01' }), 'title', 'required', 'deliverable without title');
my %dbad = (
    'approved'             => [{ status => 'approved' }, 'status', 'invalid_enum'],
    'changes_requested'    => [{ status => 'changes_requested' }, 'status', 'invalid_enum'],
    'status unknown'       => [{ status => 'shipped' }, 'status', 'invalid_enum'],
    'attachment id'        => [{ attachment_ids => [$NOBODY] }, 'attachment_ids[0]', 'invalid_reference'],
    'attachments string'   => [{ attachment_ids => $NOBODY }, 'attachment_ids', 'type'],
    'due date null'        => [{ due_date => undef }, 'due_date', 'type'],
    'due date bad'         => [{ due_date => '2026-11-31' }, 'due_date', 'invalid_format'],
    'delivered_at'         => [{ delivered_at => '2026-01-01T00:00:00Z' }, 'delivered_at', 'read_only'],
    'decision'             => [{ decision => undef }, 'decision', 'read_only'],
    'project_id'           => [{ project_id => $q }, 'project_id', 'read_only'],
    'tenant_id'            => [{ tenant_id => $b->{tenant_id} }, 'tenant_id', 'read_only'],
    'other milestone'      => [{ milestone_id => $qm }, 'milestone_id', 'invalid_reference'],
    'B milestone'          => [{ milestone_id => $bm }, 'milestone_id', 'invalid_reference'],
    'unknown milestone'    => [{ milestone_id => $NOBODY }, 'milestone_id', 'invalid_reference'],
    'long description'     => [{ description => 'x' x 20001 }, 'description', 'too_long'],
    'position'             => [{ position => 1 }, 'position', 'unknown_field'],
);
for my $case (sort keys %dbad) {
    my ($extra, $field, $code) = @{ $dbad{$case} };
    invalid(team_api($a, POST => "/team/projects/$p/deliverables", json => { title => 'X', due_date => '2026-01-01', %$extra }),
        $field, $code, "deliverable: $case");
}
is(scalar @{ team_api($a, GET => "/team/projects/$p/deliverables")->{json}{data} }, 3, 'no refused deliverable stored');

$r = team_api($a, PATCH => "/team/deliverables/$d1->{id}", json => { status => 'in_progress' });
is($r->{json}{status}, 'in_progress', 'patch to in_progress');
is($r->{json}{delivered_at}, undef, 'still not delivered');
$r = team_api($a, PATCH => "/team/deliverables/$d1->{id}", json => { status => 'delivered' });
is($r->{status}, 200, 'deliver');
is($r->{json}{status}, 'delivered', 'delivered');
like($r->{json}{delivered_at} // '', $TIME, 'delivered_at stamped');
is($r->{json}{decision}, undef, 'no decision yet');
is($r->{json}{title}, 'Brand book', 'title kept');
is($r->{json}{due_date}, '2026-06-01', 'due date kept');
for my $st (qw(approved changes_requested)) {
    invalid(team_api($a, PATCH => "/team/deliverables/$d1->{id}", json => { status => $st }), 'status', 'invalid_enum', "team may not set $st");
}
invalid(team_api($a, PATCH => "/team/deliverables/$d1->{id}", json => { attachment_ids => [$NOBODY] }),
    'attachment_ids[0]', 'invalid_reference', 'patch with an attachment id');
invalid(team_api($a, PATCH => "/team/deliverables/$d1->{id}", json => { due_date => undef }), 'due_date', 'type', 'due date may not be cleared');
invalid(team_api($a, PATCH => "/team/deliverables/$d1->{id}", json => { delivered_at => undef }), 'delivered_at', 'read_only', 'patch delivered_at');
invalid(team_api($a, PATCH => "/team/deliverables/$d1->{id}", json => { milestone_id => $qm }), 'milestone_id', 'invalid_reference', "patch another project's milestone");
$r = team_api($a, PATCH => "/team/deliverables/$d1->{id}", json => { attachment_ids => [], description => 'Final', milestone_id => $m1->{id} });
is($r->{status}, 200, 'empty attachment list is fine');
is($r->{json}{description}, 'Final', 'description set');
is($r->{json}{milestone_id}, $m1->{id}, 'milestone set');
is($r->{json}{status}, 'delivered', 'status kept');
$r = team_api($a, PATCH => "/team/deliverables/$d1->{id}", json => { description => undef, milestone_id => undef, client_visible => $F });
is($r->{json}{description}, undef, 'description cleared');
is($r->{json}{milestone_id}, undef, 'milestone cleared');
ok(!$r->{json}{client_visible}, 'hidden');
is_not_found(team_api($a, PATCH => "/team/deliverables/$NOBODY", json => { title => 'x' }), 'patch unknown deliverable');
is_not_found(team_api($a, POST => "/team/projects/$NOBODY/deliverables", json => { title => 'x', due_date => '2026-01-01' }), 'deliverable under unknown project');

# order by due date, then creation; filters
my %dk;
for my $spec ([A => '2026-03-01', 'scheduled', $mpos{A}], [B => '2026-01-01', 'delivered', undef], [C => '2026-03-01', 'in_progress', $mpos{A}], [D => '2025-12-31', 'scheduled', $mpos{B}]) {
    my ($t, $due, $st, $ms) = @$spec;
    $dk{$t} = team_api($a, POST => "/team/projects/$ord/deliverables", json => { title => $t, due_date => $due, status => $st, milestone_id => $ms })->{json}{id};
}
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/deliverables")), [@dk{qw(D B A C)}], 'deliverables by due date then creation');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/deliverables?status=scheduled")), [@dk{qw(D A)}], '?status=scheduled');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/deliverables?status=approved")), [], '?status=approved (a client status) is a valid filter');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/deliverables?milestone_id=$mpos{A}")), [@dk{qw(A C)}], '?milestone_id');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/deliverables?due_from=2026-01-01&due_to=2026-02-28")), [$dk{B}], 'due range');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$ord/deliverables?milestone_id=$bm")), [], "another tenant's milestone: empty");
for my $qs ('status=done', 'milestone_id=123', 'due_from=2026-1-1', 'title=A') {
    $r = team_api($a, GET => "/team/projects/$ord/deliverables?$qs");
    is($r->{status}, 400, "deliverables ?$qs: 400");
    is($r->{json}{code}, 'bad_query', 'bad_query');
}
@orig = @{ ids_of(team_api($a, GET => "/team/projects/$ord/deliverables")) };
$seen = walk($a, "/team/projects/$ord/deliverables", 'id', sub {
    for my $due ('2020-01-01', '2026-02-15', '2026-03-01', '2030-01-01') {
        team_api($a, POST => "/team/projects/$ord/deliverables", json => { title => 'Late ' . $i++, due_date => $due });
    }
});
once_each($seen, \@orig, 'deliverable pages');

$r = team_api($a, DELETE => "/team/deliverables/$dk{B}");
is($r->{status}, 204, 'delete deliverable');
is_not_found(team_api($a, GET => "/team/deliverables/$dk{B}"), 'deliverable gone');
is_not_found(team_api($a, DELETE => "/team/deliverables/$dk{B}"), 'delete deliverable again');

# ================================================================ cursors

# a cursor is opaque: anything the server did not hand out is 400 bad_query,
# never a server error, including well-formed-looking forgeries
for my $list ("/team/projects/$ord/milestones", "/team/projects/$ord/tasks") {
    for my $forged ('2147483648.1', '9999999999.1', '-9999999999.1', 'x.1', '1.', '.1', '1.2.x') {
        $r = team_api($a, GET => "$list?cursor=" . b64url($forged));
        (my $kind = $list) =~ s{.*/}{};
        is($r->{status}, 400, "$kind: forged cursor '$forged': 400")
            or diag $r->{content};
        is($r->{json}{code}, 'bad_query', "$kind: forged cursor '$forged': bad_query");
    }
}
for my $forged ('2026-02-30.1', 'tomorrow.1', '2026-01-01', '2026-01-01.x') {
    $r = team_api($a, GET => "/team/projects/$ord/deliverables?cursor=" . b64url($forged));
    is($r->{status}, 400, "deliverables forged cursor '$forged': 400");
}
for my $garbage ('!!!', '%FF', 'a', b64url("1\0")) {
    $r = team_api($a, GET => "/team/projects/$ord/tasks?cursor=$garbage");
    is($r->{status}, 400, "garbage cursor '$garbage': 400");
}
$r = team_api($a, GET => "/team/projects/$ord/tasks?limit=1");
my $cur = $r->{json}{next_cursor};
ok(defined $cur, 'a cursor');
$r = team_api($a, GET => "/team/projects/$q/tasks?cursor=$cur");
is($r->{status}, 200, "another project's cursor is merely a position");

done_testing();
