#!/usr/bin/perl
# Fault drill for the client portal's writes: the test build fails the Nth
# database call of a request (x-atrium-fault: db=N).  For every N each write
# ends in a clean 500 with nothing written (messages, attachments, read
# markers, decisions, outbox rows, audit, idempotency keys), or succeeds.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use HTTP::Tiny;
use Atrium::Test;
use Atrium::Auth;

my $t = new_tenant();
my $probe = api(GET => '/healthz', host => $t->{host}, headers => { 'x-atrium-fault' => 'db=1' });
plan skip_all => 'the workers were built without ATRIUM_FAULTS (release build)'
    if $probe->{status} == 200;

my $p = new_project($t);
my $member = team_api($t, POST => '/team/members', json => { name => 'Watcher', email => 'w@drill.example' })->{json}{id};
is(team_api($t, PUT => "/team/projects/$p->{id}/watchers/$member")->{status}, 204, 'a watcher');
my $u = onboard($t, project_ids => [$p->{id}]);
my $d = team_api($t, POST => "/team/projects/$p->{id}/deliverables", json => { title => 'D', due_date => '2027-02-01', status => 'delivered' })->{json}{id};
my $first = team_api($t, POST => "/team/projects/$p->{id}/messages", json => { body => 'first' })->{json}{id};
my $victim = team_api($t, POST => "/team/projects/$p->{id}/messages", json => { body => 'to delete' })->{json}{id};
ok($d && $first && $victim, 'fixtures');

my $http = HTTP::Tiny->new(timeout => 10);
# a ready-to-complete upload (the object is in the store)
sub uploaded {
    my ($team) = @_;
    my $body = { filename => 'drill.txt', content_type => 'text/plain', size => 5 };
    my $r = $team ? team_api($t, POST => "/team/projects/$p->{id}/attachments", json => $body)
                  : client_api($t, $u->{access}, POST => "/projects/$p->{id}/attachments", json => $body);
    die "attachment: $r->{status}" unless $r->{status} == 201;
    my $put = $http->request(PUT => $r->{json}{upload}{url}, { content => 'drill', headers => { 'content-type' => 'text/plain' } });
    die "upload: $put->{status}" unless $put->{status} == 200;
    return $r->{json}{id};
}
my $to_complete = uploaded(0);
my $ready = uploaded(0);
is(client_api($t, $u->{access}, POST => "/attachments/$ready/complete")->{status}, 200, 'a ready client attachment');
my $team_file = uploaded(1);
is(team_api($t, POST => "/team/attachments/$team_file/complete")->{status}, 200, 'a ready team attachment');

sub snapshot {
    my $tid = $t->{tenant_id};
    return psql_admin("BEGIN; SELECT set_config('app.tenant_id', '$tid', true); SELECT concat_ws(',',"
        . join(',', map { "(SELECT count(*) || ':' || coalesce(max(md5(t::text)), '') FROM $_ t)" }
            qw(messages attachments message_reads deliverables deliverable_decisions deliverable_attachments
               outbox audit_log idempotency_keys portal_sessions))
        . "); COMMIT;");
}

sub client { my ($m, $path, %o) = @_; my %h = %{ delete $o{headers} // {} }; client_api($t, $u->{access}, $m, $path, %o, headers => \%h) }
sub team { my ($m, $path, %o) = @_; team_api($t, $m, $path, %o) }

my @ops = (
    ['client message with a file', sub { client(POST => "/projects/$p->{id}/messages", json => { body => 'hi', attachment_ids => [$ready] }, @_) }],
    ['client message with Idempotency-Key', sub { my %x = @_; client(POST => "/projects/$p->{id}/messages", json => { body => 'idem' }, headers => { 'idempotency-key' => "k-$t->{code}", %{ $x{headers} } }) }],
    ['read marker', sub { client(POST => "/projects/$p->{id}/messages/read", json => { last_read_message_id => $first }, @_) }],
    ['new attachment', sub { client(POST => "/projects/$p->{id}/attachments", json => { filename => 'a.pdf', content_type => 'application/pdf', size => 10 }, @_) }],
    ['complete', sub { client(POST => "/attachments/$to_complete/complete", @_) }],
    ['deliverable files', sub { team(PATCH => "/team/deliverables/$d", json => { attachment_ids => [$team_file] }, @_) }],
    ['approve', sub { client(POST => "/projects/$p->{id}/deliverables/$d/approve", json => { comment => 'ok' }, @_) }],
    ['team internal message', sub { team(POST => "/team/projects/$p->{id}/messages", json => { body => 'note', visibility => 'internal' }, @_) }],
    ['team message', sub { team(POST => "/team/projects/$p->{id}/messages", json => { body => 'reply' }, @_) }],
    ['delete message', sub { team(DELETE => "/team/messages/$victim", @_) }],
);

for my $op (@ops) {
    my ($name, $run) = @$op;
    my $succeeded = 0;
    for my $n (1 .. 30) {
        my $before = snapshot();
        my $r = $run->(headers => { 'x-atrium-fault' => "db=$n" });
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
