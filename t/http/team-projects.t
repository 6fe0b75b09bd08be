#!/usr/bin/perl
# Projects on the team surface: create, read, patch, delete; date rules;
# filters; project members (clients) and watchers (team members) as PUT /
# DELETE relations with their lists; deleting a project takes its children
# with it; keyset pagination stable under inserts.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;
use Atrium::Checks;

my $BASE = '/api/portal/v1';
my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
my $TIME = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
my $NOBODY = '00000000-0000-4000-8000-000000000000';

my $a = new_tenant();

sub sql_in {
    my ($t, $sql) = @_;
    my $out = psql_admin("BEGIN; SELECT set_config('app.tenant_id', '$t->{tenant_id}', true); $sql; COMMIT;");
    my @lines = split /\n/, $out;
    return $lines[-1] // '';
}

# ---------------------------------------------------------------- create and read

my $r = team_api($a, POST => '/team/projects', json => { name => 'Website' });
is($r->{status}, 201, 'create with a name only');
my $web = $r->{json};
like($web->{id}, $UUID, 'id');
is($r->{headers}{location}, "$BASE/team/projects/$web->{id}", 'Location');
is($web->{status}, 'active', 'status active by default');
is($web->{description}, undef, 'no description');
is($web->{start_date}, undef, 'no start date');
is($web->{due_date}, undef, 'no due date');
is_deeply($web->{progress}, { tasks_total => 0, tasks_done => 0, percent => 0 }, 'progress of no tasks');
like($web->{created_at}, $TIME, 'created_at');
like($web->{updated_at}, $TIME, 'updated_at');
is_deeply(team_api($a, GET => "/team/projects/$web->{id}")->{json}, $web, 'GET returns the same');

$r = team_api($a, POST => '/team/projects', json => {
    name => 'Rebrand', description => "Logo, palette\nand type", status => 'on_hold',
    start_date => '2026-03-01', due_date => '2026-06-30' });
is($r->{status}, 201, 'create with every field');
my $rebrand = $r->{json};
is($rebrand->{description}, "Logo, palette\nand type", 'description');
is($rebrand->{status}, 'on_hold', 'status');
is($rebrand->{start_date}, '2026-03-01', 'start date');
is($rebrand->{due_date}, '2026-06-30', 'due date');

$r = team_api($a, POST => '/team/projects', json => { name => 'Same day', start_date => '2026-05-05', due_date => '2026-05-05' });
is($r->{status}, 201, 'due on the start date is fine');
my $sameday = $r->{json};

# validation
$r = team_api($a, POST => '/team/projects', json => {});
invalid($r, 'name', 'required', 'project without a name');
my %bad = (
    'empty name'       => [{ name => '' }, 'name', 'too_short'],
    'blank name'       => [{ name => "\n \t" }, 'name', 'too_short'],
    'long name'        => [{ name => 'p' x 201 }, 'name', 'too_long'],
    'name array'       => [{ name => ['x'] }, 'name', 'type'],
    'long description' => [{ name => 'x', description => 'd' x 20001 }, 'description', 'too_long'],
    'status'           => [{ name => 'x', status => 'paused' }, 'status', 'invalid_enum'],
    'status null'      => [{ name => 'x', status => undef }, 'status', 'type'],
    'date format'      => [{ name => 'x', start_date => '2026/03/01' }, 'start_date', 'invalid_format'],
    'date with time'   => [{ name => 'x', due_date => '2026-03-01T00:00:00Z' }, 'due_date', 'invalid_format'],
    'date unpadded'    => [{ name => 'x', start_date => '2026-3-1' }, 'start_date', 'invalid_format'],
    'Feb 30'           => [{ name => 'x', due_date => '2026-02-30' }, 'due_date', 'invalid_format'],
    'Feb 29 2026'      => [{ name => 'x', due_date => '2026-02-29' }, 'due_date', 'invalid_format'],
    'month 13'         => [{ name => 'x', start_date => '2026-13-01' }, 'start_date', 'invalid_format'],
    'Apr 31'           => [{ name => 'x', start_date => '2026-04-31' }, 'start_date', 'invalid_format'],
    'date number'      => [{ name => 'x', start_date => 20260301 }, 'start_date', 'type'],
    'due before start' => [{ name => 'x', start_date => '2026-03-02', due_date => '2026-03-01' }, 'due_date', 'out_of_range'],
    'id'               => [{ name => 'x', id => $NOBODY }, 'id', 'read_only'],
    'progress'         => [{ name => 'x', progress => { percent => 100 } }, 'progress', 'read_only'],
    'created_at'       => [{ name => 'x', created_at => '2020-01-01T00:00:00Z' }, 'created_at', 'read_only'],
    'updated_at'       => [{ name => 'x', updated_at => '2020-01-01T00:00:00Z' }, 'updated_at', 'read_only'],
    'tenant_id'        => [{ name => 'x', tenant_id => $NOBODY }, 'tenant_id', 'read_only'],
    'unknown'          => [{ name => 'x', owner => 'me' }, 'owner', 'unknown_field'],
);
for my $case (sort keys %bad) {
    my ($body, $field, $code) = @{ $bad{$case} };
    invalid(team_api($a, POST => '/team/projects', json => $body), $field, $code, "project: $case");
}
$r = team_api($a, POST => '/team/projects', json => { name => '', status => 'x', owner => 1 });
is(scalar @{ $r->{json}{errors} // [] }, 3, 'every problem is named at once');
$r = team_api($a, POST => '/team/projects', json => { name => 'Leap', due_date => '2028-02-29' });
is($r->{status}, 201, 'Feb 29 of a leap year');
my $leap = $r->{json};
is(scalar @{ team_api($a, GET => '/team/projects')->{json}{data} }, 4, 'no refused project stored');

# ---------------------------------------------------------------- patch

$r = team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { name => 'Rebrand 2026' });
is($r->{status}, 200, 'patch the name');
is($r->{json}{name}, 'Rebrand 2026', 'name changed');
for my $f (qw(description status start_date due_date created_at id)) {
    is($r->{json}{$f}, $rebrand->{$f}, "$f kept");
}
ok(exists $r->{json}{progress}, 'whole resource returned');
$r = team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { description => undef, start_date => undef });
is($r->{json}{description}, undef, 'null clears the description');
is($r->{json}{start_date}, undef, 'null clears the start date');
is($r->{json}{due_date}, '2026-06-30', 'due date kept');
$r = team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { start_date => '2026-03-01', status => 'completed' });
is($r->{json}{start_date}, '2026-03-01', 'start date set again');
is($r->{json}{status}, 'completed', 'status changed');
for my $st (qw(archived active on_hold)) {
    is(team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { status => $st })->{json}{status}, $st, "status $st");
}
invalid(team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { name => undef }), 'name', 'type', 'null name');
invalid(team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { status => undef }), 'status', 'type', 'null status');
invalid(team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { status => 'done' }), 'status', 'invalid_enum', 'patch bad status');
invalid(team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { progress => undef }), 'progress', 'read_only', 'patch progress');
invalid(team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { updated_at => '2020-01-01T00:00:00Z' }), 'updated_at', 'read_only', 'patch updated_at');
# the date order holds whichever of the two a patch sends
invalid(team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { due_date => '2026-02-28' }),
    'due_date', 'out_of_range', 'patch only due_date before the stored start');
invalid(team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { start_date => '2026-07-01' }),
    'due_date', 'out_of_range', 'patch only start_date after the stored due');
invalid(team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { start_date => '2026-08-01', due_date => '2026-07-31' }),
    'due_date', 'out_of_range', 'patch both out of order');
$r = team_api($a, GET => "/team/projects/$rebrand->{id}");
is($r->{json}{start_date}, '2026-03-01', 'refused patches left the start');
is($r->{json}{due_date}, '2026-06-30', 'and the due date');
is($r->{json}{status}, 'on_hold', 'and the status');
$r = team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { start_date => '2026-09-01', due_date => '2026-09-30' });
is($r->{status}, 200, 'both moved together in order');
$r = team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { due_date => undef });
is($r->{status}, 200, 'clearing the due date');
$r = team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { start_date => '2030-01-01' });
is($r->{status}, 200, 'any start without a due date');
$r = team_api($a, PATCH => "/team/projects/$rebrand->{id}", json => { start_date => undef, due_date => '2026-01-01' });
is($r->{status}, 200, 'clearing start while setting an earlier due date');
is_not_found(team_api($a, PATCH => "/team/projects/$NOBODY", json => { name => 'x' }), 'patch unknown project');
is_not_found(team_api($a, PATCH => "/team/projects/$NOBODY", json => { due_date => '2026-01-01' }), 'patch dates of unknown project');
is_not_found(team_api($a, GET => "/team/projects/$NOBODY"), 'get unknown project');
is_not_found(team_api($a, GET => '/team/projects/12345'), 'non-UUID project id');
$r = team_api($a, PATCH => "/team/projects/$rebrand->{id}", body => '{"name":"x",}', type => 'application/json');
is($r->{json}{code}, 'bad_json', 'trailing comma: bad_json');
$r = team_api($a, PATCH => "/team/projects/$rebrand->{id}", body => '{"name":"x","name":"y"}', type => 'application/json');
is($r->{json}{code}, 'bad_json', 'duplicate key: bad_json');
$r = team_api($a, PATCH => "/team/projects/$rebrand->{id}", body => '{"name":"x"}', type => 'text/plain');
is($r->{status}, 415, 'not JSON: 415');
is(team_api($a, GET => "/team/projects/$rebrand->{id}")->{json}{name}, 'Rebrand 2026', 'malformed patches changed nothing');

# ---------------------------------------------------------------- filters

$r = team_api($a, GET => '/team/projects');
is_deeply(ids_of($r), [$web->{id}, $rebrand->{id}, $sameday->{id}, $leap->{id}], 'projects in creation order');
is_deeply(ids_of(team_api($a, GET => '/team/projects?status=on_hold')), [$rebrand->{id}], '?status=on_hold');
is_deeply(ids_of(team_api($a, GET => '/team/projects?status=archived')), [], '?status=archived');
is_deeply(ids_of(team_api($a, GET => '/team/projects?q=REBR')), [$rebrand->{id}], '?q case-insensitive');
is_deeply(ids_of(team_api($a, GET => '/team/projects?q=A')), [$rebrand->{id}, $sameday->{id}, $leap->{id}], '?q matches in creation order');
is_deeply(ids_of(team_api($a, GET => '/team/projects?q=day')), [$sameday->{id}], '?q substring');
is_deeply(ids_of(team_api($a, GET => '/team/projects?due_from=2026-01-01&due_to=2026-12-31')), [$rebrand->{id}, $sameday->{id}], 'due_from and due_to');
is_deeply(ids_of(team_api($a, GET => '/team/projects?due_from=2026-05-05')), [$sameday->{id}, $leap->{id}], 'due_from is inclusive');
is_deeply(ids_of(team_api($a, GET => '/team/projects?due_to=2026-05-05')), [$rebrand->{id}, $sameday->{id}], 'due_to is inclusive');
is_deeply(ids_of(team_api($a, GET => '/team/projects?due_from=2027-01-01&status=active')), [$leap->{id}], 'filters combine');
for my $q ('status=paused', 'due_from=2026-02-30', 'due_to=tomorrow', 'client_id=nope', 'sort=name', 'limit=0', 'cursor=AAAA') {
    $r = team_api($a, GET => "/team/projects?$q");
    is($r->{status}, 400, "?$q: 400");
    is($r->{json}{code}, 'bad_query', 'bad_query');
}
$r = team_api($a, GET => "/team/projects/$web->{id}?limit=1");
is($r->{status}, 400, 'a query on a single resource: 400');

# ---------------------------------------------------------------- members and watchers

my @clients = map {
    team_api($a, POST => '/team/clients', json => { name => "Client $_", email => "c$_\@proj.example" })->{json}
} 1 .. 3;
my @team = map {
    team_api($a, POST => '/team/members', json => { name => "Member $_", email => "m$_\@proj.example" })->{json}
} 1 .. 3;

$r = team_api($a, GET => "/team/projects/$web->{id}/members");
is($r->{status}, 200, 'members of a new project');
is_deeply($r->{json}, { data => [], next_cursor => undef }, 'empty list');

$r = team_api($a, PUT => "/team/projects/$web->{id}/members/$clients[0]{id}");
is($r->{status}, 204, 'add a client');
is($r->{content} // '', '', 'no body');
is(team_api($a, PUT => "/team/projects/$web->{id}/members/$clients[0]{id}")->{status}, 204, 'PUT twice is fine');
is(team_api($a, PUT => "/team/projects/$web->{id}/members/$clients[2]{id}")->{status}, 204, 'add another');
$r = team_api($a, GET => "/team/projects/$web->{id}/members");
is_deeply(ids_of($r, 'client_id'), [$clients[0]{id}, $clients[2]{id}], 'members in the order added, once each');
my $item = $r->{json}{data}[0];
is_deeply([sort keys %$item], [qw(added_at client_id email name)], 'member item shape');
is($item->{name}, 'Client 1', 'name');
is($item->{email}, 'c1@proj.example', 'email');
like($item->{added_at}, $TIME, 'added_at');
is_deeply(ids_of(team_api($a, GET => "/team/projects?client_id=$clients[0]{id}")), [$web->{id}], 'projects ?client_id');
is_deeply(ids_of(team_api($a, GET => "/team/projects?client_id=$clients[1]{id}")), [], 'projects ?client_id of a non-member');

is_not_found(team_api($a, PUT => "/team/projects/$web->{id}/members/$NOBODY"), 'unknown client');
is_not_found(team_api($a, PUT => "/team/projects/$NOBODY/members/$clients[0]{id}"), 'unknown project');
is_not_found(team_api($a, PUT => "/team/projects/$web->{id}/members/$team[0]{id}"), 'a team member is not a client');
is_not_found(team_api($a, PUT => "/team/projects/$web->{id}/members/x"), 'non-UUID client');
is_not_found(team_api($a, GET => "/team/projects/$NOBODY/members"), 'members of an unknown project');

$r = team_api($a, DELETE => "/team/projects/$web->{id}/members/$clients[0]{id}");
is($r->{status}, 204, 'remove a member');
is_not_found(team_api($a, DELETE => "/team/projects/$web->{id}/members/$clients[0]{id}"), 'remove again');
is_not_found(team_api($a, DELETE => "/team/projects/$web->{id}/members/$clients[1]{id}"), 'remove a non-member');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$web->{id}/members"), 'client_id'), [$clients[2]{id}], 'one member left');
is(team_api($a, GET => "/team/clients/$clients[0]{id}")->{status}, 200, 'the removed client still exists');

$r = team_api($a, PUT => "/team/projects/$web->{id}/watchers/$team[1]{id}");
is($r->{status}, 204, 'add a watcher');
is(team_api($a, PUT => "/team/projects/$web->{id}/watchers/$team[1]{id}")->{status}, 204, 'twice is fine');
is(team_api($a, PUT => "/team/projects/$web->{id}/watchers/$team[0]{id}")->{status}, 204, 'another watcher');
$r = team_api($a, GET => "/team/projects/$web->{id}/watchers");
is($r->{status}, 200, 'watcher list');
is_deeply(ids_of($r, 'member_id'), [$team[1]{id}, $team[0]{id}], 'watchers in the order added');
$item = $r->{json}{data}[0];
is_deeply([sort keys %$item], [qw(added_at email member_id name)], 'watcher item shape');
is($item->{name}, 'Member 2', 'name');
is($item->{email}, 'm2@proj.example', 'email');
is_not_found(team_api($a, PUT => "/team/projects/$web->{id}/watchers/$clients[0]{id}"), 'a client is not a team member');
is_not_found(team_api($a, PUT => "/team/projects/$web->{id}/watchers/$NOBODY"), 'unknown watcher');
is_not_found(team_api($a, GET => "/team/projects/$NOBODY/watchers"), 'watchers of an unknown project');
is(team_api($a, DELETE => "/team/projects/$web->{id}/watchers/$team[1]{id}")->{status}, 204, 'remove a watcher');
is_not_found(team_api($a, DELETE => "/team/projects/$web->{id}/watchers/$team[1]{id}"), 'remove the watcher again');
is_deeply(ids_of(team_api($a, GET => "/team/projects/$web->{id}/watchers"), 'member_id'), [$team[0]{id}], 'one watcher left');
$r = team_api($a, PUT => "/team/projects/$web->{id}/watchers/$team[2]{id}", json => {});
is($r->{status}, 400, 'PUT of a relation takes no body');
is(scalar @{ team_api($a, GET => "/team/projects/$web->{id}/watchers")->{json}{data} }, 1, 'and added nothing');
$r = team_api($a, GET => "/team/projects/$web->{id}/watchers?status=x");
is($r->{json}{code}, 'bad_query', 'relation lists take no filters');

# relation lists page, stable under inserts
for my $c (@clients) { team_api($a, PUT => "/team/projects/$sameday->{id}/members/$c->{id}") }
my @more = map {
    team_api($a, POST => '/team/clients', json => { name => "More $_", email => "more$_\@proj.example" })->{json}{id}
} 1 .. 4;
team_api($a, PUT => "/team/projects/$sameday->{id}/members/$_") for @more[0, 1];
my @orig = @{ ids_of(team_api($a, GET => "/team/projects/$sameday->{id}/members"), 'client_id') };
is(scalar @orig, 5, 'five members');
my @pending = @more[2, 3];
my $seen = walk($a, "/team/projects/$sameday->{id}/members", 'client_id', sub {
    my $c = shift @pending;
    team_api($a, PUT => "/team/projects/$sameday->{id}/members/$c") if $c;
});
once_each($seen, \@orig, 'member pages');
for my $m (@team) { team_api($a, PUT => "/team/projects/$sameday->{id}/watchers/$m->{id}") }
my @orig_w = @{ ids_of(team_api($a, GET => "/team/projects/$sameday->{id}/watchers"), 'member_id') };
my $late = 0;
$seen = walk($a, "/team/projects/$sameday->{id}/watchers", 'member_id', sub {
    my $m = team_api($a, POST => '/team/members', json => { name => 'Late', email => 'late' . $late++ . '@proj.example' })->{json}{id};
    team_api($a, PUT => "/team/projects/$sameday->{id}/watchers/$m");
});
once_each($seen, \@orig_w, 'watcher pages');

# projects page, stable under inserts
my @orig_p = @{ ids_of(team_api($a, GET => '/team/projects?limit=200')) };
$seen = walk($a, '/team/projects', 'id', sub {
    team_api($a, POST => '/team/projects', json => { name => "Inserted $_[0]" });
});
once_each($seen, \@orig_p, 'project pages');
my @filtered = @{ ids_of(team_api($a, GET => '/team/projects?status=active&limit=200')) };
$seen = walk($a, '/team/projects?status=active', 'id', sub {
    team_api($a, POST => '/team/projects', json => { name => "Inserted active $_[0]" });
});
once_each($seen, \@filtered, 'filtered project pages');

# ---------------------------------------------------------------- delete with children

my $doomed = team_api($a, POST => '/team/projects', json => { name => 'Doomed' })->{json}{id};
my $ms = team_api($a, POST => "/team/projects/$doomed/milestones", json => { title => 'M' })->{json}{id};
my $task = team_api($a, POST => "/team/projects/$doomed/tasks", json => { title => 'T', milestone_id => $ms })->{json}{id};
my $task2 = team_api($a, POST => "/team/projects/$doomed/tasks", json => { title => 'T2' })->{json}{id};
my $del = team_api($a, POST => "/team/projects/$doomed/deliverables", json => { title => 'D', due_date => '2026-10-10' })->{json}{id};
ok($ms && $task && $task2 && $del, 'children created');
team_api($a, PUT => "/team/projects/$doomed/members/$clients[1]{id}");
team_api($a, PUT => "/team/projects/$doomed/watchers/$team[2]{id}");

$r = team_api($a, DELETE => "/team/projects/$doomed");
is($r->{status}, 204, 'delete the project');
is($r->{content} // '', '', 'no body');
is_not_found(team_api($a, GET => "/team/projects/$doomed"), 'project gone');
is_not_found(team_api($a, GET => "/team/milestones/$ms"), 'its milestone gone');
is_not_found(team_api($a, GET => "/team/tasks/$task"), 'its task gone');
is_not_found(team_api($a, GET => "/team/tasks/$task2"), 'its other task gone');
is_not_found(team_api($a, GET => "/team/deliverables/$del"), 'its deliverable gone');
is_not_found(team_api($a, GET => "/team/projects/$doomed/members"), 'its member list gone');
is_not_found(team_api($a, GET => "/team/projects/$doomed/tasks"), 'its task list gone');
is_not_found(team_api($a, PATCH => "/team/tasks/$task", json => { title => 'x' }), 'a deleted task cannot be patched');
ok(!grep({ $_ eq $doomed } @{ ids_of(team_api($a, GET => "/team/projects?client_id=$clients[1]{id}")) }),
    'the client is no longer a member of it');
is_deeply(ids_of(team_api($a, GET => "/team/members?project_id=$doomed")), [], 'no watcher of it');
is(team_api($a, GET => "/team/clients/$clients[1]{id}")->{status}, 200, 'the client stays');
is(team_api($a, GET => "/team/members/$team[2]{id}")->{status}, 200, 'the team member stays');
is(sql_in($a, "SELECT (SELECT count(*) FROM milestones WHERE project_id = '$doomed') + (SELECT count(*) FROM tasks WHERE project_id = '$doomed')"
    . " + (SELECT count(*) FROM deliverables WHERE project_id = '$doomed') + (SELECT count(*) FROM project_members WHERE project_id = '$doomed')"
    . " + (SELECT count(*) FROM project_watchers WHERE project_id = '$doomed')"), '0', 'no child row left in the database');
is_not_found(team_api($a, DELETE => "/team/projects/$doomed"), 'delete again');
is_not_found(team_api($a, POST => "/team/projects/$doomed/tasks", json => { title => 'late' }), 'no task under a deleted project');

$r = team_api($a, POST => "/team/projects/$web->{id}");
is($r->{status}, 405, 'POST on a project: 405');
like($r->{headers}{allow} // '', qr/PATCH/, 'Allow names PATCH');
is($r->{json}{code}, 'method_not_allowed', 'method_not_allowed');

done_testing();
