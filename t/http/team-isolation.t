#!/usr/bin/perl
# Tenant isolation on every team endpoint: tenant B's API key, on B's own
# host, naming tenant A's ids gets exactly the 404 a missing id gets, and
# nothing of A changes (checked with A's key afterwards). Filters naming A's
# ids match nothing; A's ids in B's bodies are invalid references. Then the
# database's own wall: as the application role with app.tenant_id = B, A's
# rows are invisible in every table and cannot be written.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use File::Temp qw(tempfile);
use Atrium::Test;
use Atrium::Checks;

my $a = new_tenant();
my $b = new_tenant();

sub ok_status {
    my ($r, $want, $name) = @_;
    is($r->{status}, $want, $name) or diag $r->{content};
    return $r->{json};
}

my @hex = (0 .. 9, 'a' .. 'f');
sub fresh_uuid {
    my $h = join '', map { $hex[rand @hex] } 1 .. 32;
    substr($h, 12, 1) = '4';
    return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4), substr($h, 16, 4), substr($h, 20);
}

# ---------------------------------------------------------------- tenant A's data

my %A;
$A{member} = ok_status(team_api($a, POST => '/team/members', json => { name => 'A member', email => 'member@a.example' }), 201, 'A member')->{id};
$A{member2} = ok_status(team_api($a, POST => '/team/members', json => { name => 'A member 2', email => 'member2@a.example' }), 201, 'A member 2')->{id};
$A{client} = ok_status(team_api($a, POST => '/team/clients', json => { name => 'A client', email => 'client@a.example' }), 201, 'A client')->{id};
$A{client2} = ok_status(team_api($a, POST => '/team/clients', json => { name => 'A client 2', email => 'client2@a.example' }), 201, 'A client 2')->{id};
$A{project} = ok_status(team_api($a, POST => '/team/projects', json => { name => 'A project', start_date => '2026-01-01', due_date => '2026-12-31' }), 201, 'A project')->{id};
$A{milestone} = ok_status(team_api($a, POST => "/team/projects/$A{project}/milestones", json => { title => 'A milestone' }), 201, 'A milestone')->{id};
$A{task} = ok_status(team_api($a, POST => "/team/projects/$A{project}/tasks", json => { title => 'A task', milestone_id => $A{milestone} }), 201, 'A task')->{id};
$A{deliverable} = ok_status(team_api($a, POST => "/team/projects/$A{project}/deliverables",
    json => { title => 'A deliverable', due_date => '2026-06-01', milestone_id => $A{milestone} }), 201, 'A deliverable')->{id};
ok_status(team_api($a, PUT => "/team/projects/$A{project}/members/$A{client}"), 204, 'A membership');
ok_status(team_api($a, PUT => "/team/projects/$A{project}/watchers/$A{member}"), 204, 'A watcher');
ok_status(team_api($a, POST => '/team/projects', json => { name => 'A keyed' }, headers => { 'Idempotency-Key' => 'shared-key-1' }), 201, 'A create with an Idempotency-Key');
# a decision row (the client surface that writes them is not here yet)
psql_admin("BEGIN; SELECT set_config('app.tenant_id', '$a->{tenant_id}', true); "
    . "INSERT INTO deliverable_decisions (tenant_id, deliverable_id, status, by_kind, by_name) "
    . "VALUES ('$a->{tenant_id}', '$A{deliverable}', 'approved', 'client', 'A client'); COMMIT;");
my $audit_a = team_api($a, GET => '/team/audit?limit=1')->{json}{data}[0];
$A{api_key} = $audit_a->{actor}{api_key_id};
like($A{api_key} // '', qr/^[0-9a-f-]{36}$/, "A's API key id from its audit");

# ---------------------------------------------------------------- tenant B's data

my %B;
$B{member} = ok_status(team_api($b, POST => '/team/members', json => { name => 'B member', email => 'member@b.example' }), 201, 'B member')->{id};
$B{client} = ok_status(team_api($b, POST => '/team/clients', json => { name => 'B client', email => 'client@b.example' }), 201, 'B client')->{id};
$B{project} = ok_status(team_api($b, POST => '/team/projects', json => { name => 'B project' }), 201, 'B project')->{id};
$B{milestone} = ok_status(team_api($b, POST => "/team/projects/$B{project}/milestones", json => { title => 'B milestone' }), 201, 'B milestone')->{id};
$B{task} = ok_status(team_api($b, POST => "/team/projects/$B{project}/tasks", json => { title => 'B task' }), 201, 'B task')->{id};
$B{deliverable} = ok_status(team_api($b, POST => "/team/projects/$B{project}/deliverables", json => { title => 'B deliverable', due_date => '2026-06-01' }), 201, 'B deliverable')->{id};

# ---------------------------------------------------------------- A as A sees it

my %a_ids_pre = map { $_ => 1 } values %A;
my @a_views = (
    "/team/members/$A{member}", "/team/members/$A{member2}", "/team/clients/$A{client}", "/team/clients/$A{client2}",
    "/team/projects/$A{project}", "/team/milestones/$A{milestone}", "/team/tasks/$A{task}", "/team/deliverables/$A{deliverable}",
    '/team/members', '/team/clients', '/team/projects',
    "/team/projects/$A{project}/members", "/team/projects/$A{project}/watchers",
    "/team/projects/$A{project}/milestones", "/team/projects/$A{project}/tasks", "/team/projects/$A{project}/deliverables",
    "/team/members?project_id=$A{project}", "/team/clients?project_id=$A{project}", "/team/projects?client_id=$A{client}",
    '/team/audit?limit=200',
);
sub snapshot {
    my %s;
    for my $path (@a_views) {
        my $r = team_api($a, GET => $path);
        $s{$path} = [$r->{status}, $r->{json}];
    }
    return \%s;
}
my $before = snapshot();
is(scalar(grep { $_->[0] != 200 } values %$before), 0, 'A reads all of its data');

# ---------------------------------------------------------------- B on A's ids

# Each attack names A's ids as {kind}; the same request with fresh unknown
# ids is the reference a "missing id" answer.
my @attacks = (
    (map {
        my ($coll, $kind, $patch) = @$_;
        ([GET => "/team/$coll/{$kind}"], [PATCH => "/team/$coll/{$kind}", $patch], [DELETE => "/team/$coll/{$kind}"])
    } ([members => 'member', { name => 'pwned' }], [clients => 'client', { name => 'pwned' }],
       [projects => 'project', { name => 'pwned' }], [milestones => 'milestone', { title => 'pwned' }],
       [tasks => 'task', { title => 'pwned' }], [deliverables => 'deliverable', { title => 'pwned' }])),
    # patches that take the handlers' special paths
    [PATCH => '/team/clients/{client}', { status => 'active' }],
    [PATCH => '/team/clients/{client}', { status => 'disabled' }],
    [PATCH => '/team/clients/{client}', { email => 'client@b.example' }],
    [PATCH => '/team/members/{member}', { email => 'member@b.example', notify => { email => JSON::PP::false } }],
    [PATCH => '/team/projects/{project}', { due_date => '2000-01-01' }],
    [PATCH => '/team/projects/{project}', { start_date => '2027-01-01', status => 'archived' }],
    [PATCH => '/team/tasks/{task}', { milestone_id => undef, status => 'done' }],
    [PATCH => '/team/deliverables/{deliverable}', { status => 'delivered', milestone_id => undef }],
    [PATCH => '/team/milestones/{milestone}', { status => 'done', position => 9 }],
    # child lists and creates under A's project
    (map { [GET => "/team/projects/{project}/$_"] } qw(members watchers milestones tasks deliverables)),
    [GET => '/team/projects/{project}/tasks?status=todo&limit=5'],
    [GET => '/team/projects/{project}/deliverables?status=scheduled'],
    [GET => '/team/projects/{project}/milestones?status=pending'],
    [POST => '/team/projects/{project}/milestones', { title => 'intruder' }],
    [POST => '/team/projects/{project}/tasks', { title => 'intruder' }],
    [POST => '/team/projects/{project}/tasks', { title => 'intruder', milestone_id => '{milestone}' }],
    [POST => '/team/projects/{project}/deliverables', { title => 'intruder', due_date => '2026-01-01' }],
    [POST => '/team/projects/{project}/milestones', { title => 'intruder' }, { 'Idempotency-Key' => 'b-attack-1' }],
    # relations: A's both ends, B's project with A's person, A's project with B's person
    [PUT => '/team/projects/{project}/members/{client}'],
    [DELETE => '/team/projects/{project}/members/{client}'],
    [PUT => '/team/projects/{project}/members/{client2}'],
    [PUT => '/team/projects/{project}/watchers/{member}'],
    [DELETE => '/team/projects/{project}/watchers/{member}'],
    [PUT => '/team/projects/{project}/watchers/{member2}'],
    [PUT => "/team/projects/$B{project}/members/{client}"],
    [DELETE => "/team/projects/$B{project}/members/{client}"],
    [PUT => "/team/projects/$B{project}/watchers/{member}"],
    [DELETE => "/team/projects/$B{project}/watchers/{member}"],
    [PUT => "/team/projects/{project}/members/$B{client}"],
    [DELETE => "/team/projects/{project}/members/$B{client}"],
    [PUT => "/team/projects/{project}/watchers/$B{member}"],
    [DELETE => "/team/projects/{project}/watchers/$B{member}"],
);

sub fill {
    my ($x, $ids) = @_;
    return undef unless defined $x;
    if (ref $x eq 'HASH') { return { map { $_ => fill($x->{$_}, $ids) } keys %$x } }
    return $x if ref $x;
    (my $s = $x) =~ s/\{(\w+)\}/$ids->{$1} \/\/ die "no id $1"/ge;
    return $s;
}
sub shape {
    my ($r) = @_;
    my %j = %{ $r->{json} // { raw => $r->{content} } };
    delete $j{request_id};
    return { status => $r->{status}, type => ($r->{headers}{'content-type'} // ''), body => \%j };
}

for my $atk (@attacks) {
    my ($method, $tpl, $body, $headers) = @$atk;
    my %missing = map { $_ => fresh_uuid() } keys %A;
    my %opt = (headers => $headers // {});
    my $name = "B: $method $tpl";
    my $r = team_api($b, $method => fill($tpl, \%A), %opt, (defined $body ? (json => fill($body, \%A)) : ()));
    my $ref = team_api($b, $method => fill($tpl, \%missing), %opt,
        (defined $body ? (json => fill($body, \%missing)) : ()));
    is($r->{status}, 404, "$name: 404") or diag $r->{content};
    is($r->{json}{code}, 'not_found', "$name: not_found");
    is_deeply(shape($r), shape($ref), "$name: same answer as a missing id");
}

# the same on the deployment's API host, where the code chooses the tenant
SKIP: {
    my $api_host = env_of('ATRIUM_API_HOST');
    skip 'ATRIUM_API_HOST not set', 14 unless $api_host;
    for my $path ("/team/projects/$A{project}", "/team/clients/$A{client}", "/team/tasks/$A{task}",
        "/team/projects/$A{project}/tasks", "/team/milestones/$A{milestone}") {
        my $r = team_api($b, GET => $path, host => $api_host);
        is($r->{status}, 404, "B on the API host: GET $path: 404");
    }
    my $r = team_api($b, PATCH => "/team/projects/$A{project}", host => $api_host, json => { name => 'pwned' });
    is($r->{status}, 404, 'B on the API host: PATCH A project: 404');
    $r = team_api($b, DELETE => "/team/deliverables/$A{deliverable}", host => $api_host);
    is($r->{status}, 404, 'B on the API host: DELETE A deliverable: 404');
    $r = team_api($b, PUT => "/team/projects/$B{project}/members/$A{client}", host => $api_host);
    is($r->{status}, 404, "B on the API host: A's client into B's project: 404");
    $r = team_api($b, GET => "/team/members?project_id=$A{project}", host => $api_host);
    is_deeply($r->{json}{data}, [], "B on the API host: filter on A's project: empty");
    $r = team_api($b, GET => '/team/projects', host => $api_host);
    ok(!grep({ $a_ids_pre{$_->{id}} } @{ $r->{json}{data} }), "B on the API host lists only B's projects");
    $r = team_api($a, GET => "/team/projects/$A{project}", host => $api_host);
    is($r->{status}, 200, 'A on the API host reads its project (control)');
    $r = team_api($a, GET => "/team/projects/$B{project}", host => $api_host);
    is($r->{status}, 404, "A on the API host: B's project: 404");
    $r = team_api($b, POST => "/team/projects/$A{project}/tasks", host => $api_host, json => { title => 'intruder' });
    is($r->{status}, 404, "B on the API host: task under A's project: 404");
    $r = team_api($b, GET => "/team/projects/$A{project}", host => $api_host, headers => { 'x-client-code' => $a->{code} });
    is($r->{status}, 401, "B's key with A's code on the API host: 401");
}

# filters naming A's ids in B's lists match nothing
for my $path ("/team/members?project_id=$A{project}", "/team/clients?project_id=$A{project}",
    "/team/projects?client_id=$A{client}", "/team/projects/$B{project}/tasks?milestone_id=$A{milestone}",
    "/team/projects/$B{project}/deliverables?milestone_id=$A{milestone}", "/team/audit?actor=$A{api_key}",
    "/team/audit?actor=$A{member}") {
    my $r = team_api($b, GET => $path);
    is($r->{status}, 200, "B $path: 200");
    is_deeply($r->{json}, { data => [], next_cursor => undef }, "B $path: empty");
}
# and B's unfiltered lists hold only B's rows
my %a_ids = map { $_ => 1 } values %A;
for my $path ('/team/members', '/team/clients', '/team/projects', "/team/projects/$B{project}/tasks",
    "/team/projects/$B{project}/milestones", "/team/projects/$B{project}/deliverables") {
    my $r = team_api($b, GET => "$path?limit=200");
    my @ids = @{ ids_of($r) };
    ok(@ids && !grep({ $a_ids{$_} } @ids), "B $path: only B's rows");
}
my $ba = team_api($b, GET => '/team/audit?limit=200')->{json}{data};
ok(!grep({ $a_ids{ (split m{/}, $_->{target}{id} // '')[0] // '' } || ($_->{actor}{api_key_id} // '') eq $A{api_key} } @$ba),
    "B's audit names none of A's rows or keys");
ok(!grep({ ($_->{target}{id} // '') =~ /\Q$A{project}\E|\Q$A{client}\E|\Q$A{member}\E/ } @$ba), "not even in relation targets");

# A's ids in B's bodies and headers
my $r = team_api($b, POST => "/team/projects/$B{project}/tasks", json => { title => 'x', milestone_id => $A{milestone} });
is($r->{status}, 422, "B task with A's milestone: 422");
is_deeply($r->{json}{errors}[0] && [@{ $r->{json}{errors}[0] }{qw(field code)}], ['milestone_id', 'invalid_reference'], 'invalid_reference on milestone_id');
$r = team_api($b, PATCH => "/team/tasks/$B{task}", json => { milestone_id => $A{milestone} });
is($r->{status}, 422, "B task patched to A's milestone: 422");
is($r->{json}{errors}[0]{code}, 'invalid_reference', 'invalid_reference');
$r = team_api($b, POST => "/team/projects/$B{project}/deliverables", json => { title => 'x', due_date => '2026-01-01', milestone_id => $A{milestone} });
is($r->{status}, 422, "B deliverable with A's milestone: 422");
is($r->{json}{errors}[0]{field}, 'milestone_id', 'on milestone_id');
$r = team_api($b, PATCH => "/team/deliverables/$B{deliverable}", json => { milestone_id => $A{milestone} });
is($r->{status}, 422, "B deliverable patched to A's milestone: 422");
$r = team_api($b, POST => '/team/projects', json => { name => 'x' }, headers => { 'x-team-member' => $A{member} });
is($r->{status}, 422, "x-team-member naming A's member: 422");
is($r->{json}{errors}[0]{field}, 'x-team-member', 'on x-team-member');
is($r->{json}{errors}[0]{code}, 'invalid_reference', 'invalid_reference');
$r = team_api($b, POST => '/team/projects', json => { name => 'x', tenant_id => $a->{tenant_id} });
is($r->{status}, 422, 'tenant_id in a body: 422');
is(team_api($b, GET => "/team/tasks/$B{task}")->{json}{milestone_id}, undef, "B's task unchanged");
is(scalar @{ ids_of(team_api($b, GET => '/team/projects')) }, 1, 'B created no project through refused requests');

# the same Idempotency-Key in B is B's own: a new row, not A's answer
$r = team_api($b, POST => '/team/projects', json => { name => 'A keyed' }, headers => { 'Idempotency-Key' => 'shared-key-1' });
is($r->{status}, 201, "B reusing A's Idempotency-Key creates");
ok(!$r->{headers}{'idempotent-replayed'}, 'not a replay');
ok(!$a_ids{ $r->{json}{id} } && !grep({ $_ eq $r->{json}{id} } @{ ids_of(team_api($a, GET => '/team/projects')) }), "a B project, not A's");
is(scalar @{ ids_of(team_api($b, GET => '/team/projects')) }, 2, 'B has its new project');

# nothing of A changed
my $after = snapshot();
for my $path (@a_views) {
    is_deeply($after->{$path}, $before->{$path}, "A unchanged: $path");
}

# ---------------------------------------------------------------- RLS under the application

# psql as the application role (its DSN names its own passfile), in one
# transaction with app.tenant_id = B; returns (rows, stderr+stdout text)
sub app_sql {
    my ($tenant, $sql) = @_;
    my ($fh, $file) = tempfile(UNLINK => 1);
    my $ctx = defined $tenant ? "SELECT set_config('app.tenant_id', '$tenant', true) \\g /dev/null\n" : '';
    print $fh "BEGIN;\n$ctx$sql\nCOMMIT;\n";
    close $fh;
    local $ENV{PGPASSFILE};
    delete $ENV{PGPASSFILE};
    my $cmd = join ' ', map { quotemeta } ('psql', env_of('ATRIUM_DB_DSN'), '-XAtq', '-v', 'ON_ERROR_STOP=1', '-f', $file);
    my $out = `$cmd 2>&1`;
    $out =~ s/\s+\z//;
    return $out;
}

my $at = $a->{tenant_id};
my %visible = (
    team_members          => "id = '$A{member}'",
    portal_users          => "id = '$A{client}'",
    projects              => "id = '$A{project}'",
    project_members       => "project_id = '$A{project}' AND client_id = '$A{client}'",
    project_watchers      => "project_id = '$A{project}' AND member_id = '$A{member}'",
    milestones            => "id = '$A{milestone}'",
    tasks                 => "id = '$A{task}'",
    deliverables          => "id = '$A{deliverable}'",
    deliverable_decisions => "deliverable_id = '$A{deliverable}'",
    idempotency_keys      => "key = 'shared-key-1' AND credential = '$A{api_key}'",
);
for my $table (sort keys %visible) {
    my $where = $visible{$table};
    my $sql = "SELECT count(*) FROM $table WHERE $where;\nSELECT count(*) FROM $table WHERE tenant_id = '$at';";
    like(app_sql($at, "SELECT count(*) FROM $table WHERE $where;"), qr/^1$/, "$table: A's row is there for A (control)");
    is(app_sql($b->{tenant_id}, $sql), "0\n0", "$table: with app.tenant_id = B, A's rows are invisible");
    is(app_sql(undef, "SELECT count(*) FROM $table;"), '0', "$table: without a tenant, nothing is visible");
}
like(app_sql($b->{tenant_id}, 'SELECT count(*) FROM projects;'), qr/^2$/, "B without a filter sees B's two projects only");
like(app_sql($b->{tenant_id}, "SELECT count(*) FROM tasks t JOIN projects p ON p.id = t.project_id;"), qr/^1$/, 'a join finds only B rows');

my %inserts = (
    team_members          => "INSERT INTO team_members (tenant_id, name, email) VALUES ('$at', 'Mole', 'mole\@a.example')",
    portal_users          => "INSERT INTO portal_users (tenant_id, email, name) VALUES ('$at', 'mole\@a.example', 'Mole')",
    projects              => "INSERT INTO projects (tenant_id, name) VALUES ('$at', 'Mole')",
    project_members       => "INSERT INTO project_members (tenant_id, project_id, client_id) VALUES ('$at', '$A{project}', '$A{client2}')",
    project_watchers      => "INSERT INTO project_watchers (tenant_id, project_id, member_id) VALUES ('$at', '$A{project}', '$A{member2}')",
    milestones            => "INSERT INTO milestones (tenant_id, project_id, title) VALUES ('$at', '$A{project}', 'Mole')",
    tasks                 => "INSERT INTO tasks (tenant_id, project_id, title) VALUES ('$at', '$A{project}', 'Mole')",
    deliverables          => "INSERT INTO deliverables (tenant_id, project_id, title, due_date) VALUES ('$at', '$A{project}', 'Mole', '2026-01-01')",
    deliverable_decisions => "INSERT INTO deliverable_decisions (tenant_id, deliverable_id, status, by_kind, by_name) VALUES ('$at', '$A{deliverable}', 'approved', 'team', 'Mole')",
    idempotency_keys      => "INSERT INTO idempotency_keys (tenant_id, credential, path, key, request_sha256, status, body) VALUES ('$at', '', '/x', 'mole', '\\x00', 201, '{}')",
);
for my $table (sort keys %inserts) {
    my $out = app_sql($b->{tenant_id}, "$inserts{$table};");
    like($out, qr/violates row-level security policy/, "$table: inserting a row of A as B is refused by the policy");
}
my %writes = (
    'update A project'   => "WITH x AS (UPDATE projects SET name = 'Mole' WHERE id = '$A{project}' RETURNING 1) SELECT count(*) FROM x;",
    'update A client'    => "WITH x AS (UPDATE portal_users SET status = 'active' WHERE id = '$A{client}' RETURNING 1) SELECT count(*) FROM x;",
    'delete A tasks'     => "WITH x AS (DELETE FROM tasks WHERE tenant_id = '$at' RETURNING 1) SELECT count(*) FROM x;",
    'delete A members'   => "WITH x AS (DELETE FROM project_members WHERE project_id = '$A{project}' RETURNING 1) SELECT count(*) FROM x;",
    'delete A idem keys' => "WITH x AS (DELETE FROM idempotency_keys WHERE tenant_id = '$at' RETURNING 1) SELECT count(*) FROM x;",
);
for my $name (sort keys %writes) {
    is(app_sql($b->{tenant_id}, $writes{$name}), '0', "$name as B touches nothing");
}
like(app_sql($b->{tenant_id}, "UPDATE projects SET tenant_id = '$at' WHERE id = '$B{project}';"),
    qr/violates row-level security policy/, 'moving a B row into A is refused');

my $final = snapshot();
for my $path (@a_views) {
    is_deeply($final->{$path}, $before->{$path}, "A still unchanged after the SQL attempts: $path");
}
like(app_sql($at, "SELECT count(*) FROM project_members WHERE project_id = '$A{project}';"), qr/^1$/, "A's membership survived B's delete");

done_testing();
