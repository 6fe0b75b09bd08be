#!/usr/bin/perl
# Fault drill: the test build fails the Nth database call of a request
# (header x-atrium-fault: db=N).  For every N, each main handler must end in
# a clean 500 problem answer with nothing written, or in success; the worker
# lives on, and no sanitizer report is left behind (checked by make test).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;

my $t = new_tenant();
my $probe = api(GET => '/healthz', host => $t->{host}, headers => { 'x-atrium-fault' => 'db=1' });
plan skip_all => 'the workers were built without ATRIUM_FAULTS (release build)'
    if $probe->{status} == 200;
is($probe->{status}, 500, 'a failed statement in /healthz is a 500');

my $project = team_api($t, POST => '/team/projects', json => { name => 'Drill' })->{json}{id};
my $client = team_api($t, POST => '/team/clients', json => { name => 'C', email => 'c@drill.example' })->{json}{id};
my $member = team_api($t, POST => '/team/members', json => { name => 'M', email => 'm@drill.example' })->{json}{id};
my $milestone = team_api($t, POST => "/team/projects/$project/milestones", json => { title => 'M1' })->{json}{id};
my $task = team_api($t, POST => "/team/projects/$project/tasks", json => { title => 'T1' })->{json}{id};
ok($project && $client && $member && $milestone && $task, 'fixtures');

# Everything a failed request could have touched, as one string.
sub snapshot {
    my $tid = $t->{tenant_id};
    return psql_admin("BEGIN; SELECT set_config('app.tenant_id', '$tid', true); SELECT concat_ws(',',"
        . join(',', map { "(SELECT count(*) || ':' || coalesce(max(md5(t::text)), '') FROM $_ t)" }
            qw(projects portal_users team_members milestones tasks deliverables project_members
               project_watchers audit_log idempotency_keys tenant_domains tenant_branding))
        . "); COMMIT;");
}

my @ops = (
    ['create project', sub { team_api($t, POST => '/team/projects', json => { name => 'P', description => 'x' }, @_) }],
    ['patch project', sub { team_api($t, PATCH => "/team/projects/$project", json => { status => 'on_hold' }, @_) }],
    ['create task', sub { team_api($t, POST => "/team/projects/$project/tasks", json => { title => 'T', milestone_id => $milestone }, @_) }],
    ['patch task', sub { team_api($t, PATCH => "/team/tasks/$task", json => { status => 'done' }, @_) }],
    ['create deliverable', sub { team_api($t, POST => "/team/projects/$project/deliverables", json => { title => 'D', due_date => '2027-01-01', status => 'delivered' }, @_) }],
    ['create client', sub { team_api($t, POST => '/team/clients', json => { name => 'N', email => 'n@drill.example' }, @_) }],
    ['grant member', sub { team_api($t, PUT => "/team/projects/$project/members/$client", @_) }],
    ['add watcher', sub { team_api($t, PUT => "/team/projects/$project/watchers/$member", @_) }],
    ['patch branding', sub { team_api($t, PATCH => '/team/branding', json => { display_name => 'Drill Co' }, @_) }],
    ['add host', sub { team_api($t, POST => '/team/domains', json => { host => "d-$t->{code}." . env_of('ATRIUM_BASE_DOMAIN') }, @_) }],
    ['create with Idempotency-Key', sub { my %x = @_; team_api($t, POST => '/team/projects', json => { name => 'Idem' }, headers => { 'idempotency-key' => "drill-$t->{code}", %{ $x{headers} } }) }],
    ['delete milestone', sub { team_api($t, DELETE => "/team/milestones/$milestone", @_) }],
    ['as a team member', sub { my %x = @_; team_api($t, PATCH => "/team/projects/$project", json => { name => 'By M' }, headers => { 'x-team-member' => $member, %{ $x{headers} } }) }],
);

for my $op (@ops) {
    my ($name, $run) = @$op;
    my $succeeded = 0;
    for my $n (1 .. 25) {
        my $before = snapshot();
        my $r = $run->(headers => { 'x-atrium-fault' => "db=$n", 'x-api-key' => $t->{api_key}, 'x-client-code' => $t->{code} });
        if ($r->{status} >= 200 && $r->{status} < 300) {
            $succeeded = $n;
            last;
        }
        is($r->{status}, 500, "$name, call $n fails: 500") or diag $r->{content};
        is($r->{json}{code}, 'internal', "$name, call $n: problem code internal");
        unlike($r->{content} // '', qr/SQL|select|insert|update|XX000|injected/i, "$name, call $n: no detail leaked");
        is(snapshot(), $before, "$name, call $n: nothing written");
    }
    ok($succeeded > 1, "$name: succeeds once the fault lies past its last call ($succeeded)");
}

is(api(GET => '/healthz', host => $t->{host})->{status}, 200, 'workers still serving');
done_testing();
