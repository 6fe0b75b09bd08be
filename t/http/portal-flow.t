#!/usr/bin/perl
# The client portal end to end: a client's projects with progress counted
# from client-visible tasks, the project page, tasks and deliverables in
# client shapes, sign-off, the message thread with read markers and unread
# counts, a real upload through a presigned PUT to the SigV4-checking store,
# confirmation, a download through the presigned GET, and conditional GETs.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use HTTP::Tiny;
use Digest::SHA qw(sha256_hex);
use Atrium::Test;
use Atrium::Auth;

my $t = new_tenant();
my $p = new_project($t, name => 'Website relaunch');
my $u = onboard($t, name => 'Ana Client', project_ids => [$p->{id}]);
my $tok = $u->{access};
sub capi { client_api($t, $tok, @_) }

# ------------------------------------------------------------------ work of the project
my $ms = team_api($t, POST => "/team/projects/$p->{id}/milestones", json => { title => 'Design', position => 1 })->{json};
my $ms_int = team_api($t, POST => "/team/projects/$p->{id}/milestones", json => { title => 'Internal budget review', client_visible => JSON::PP::false })->{json};
my @tasks = map { team_api($t, POST => "/team/projects/$p->{id}/tasks", json => $_)->{json} } (
    { title => 'Wireframes', milestone_id => $ms->{id}, status => 'done' },
    { title => 'Mockups', milestone_id => $ms->{id} },
    { title => 'Secret pricing sheet', client_visible => JSON::PP::false, status => 'done' },
    { title => 'Task under internal milestone', milestone_id => $ms_int->{id} },
);
my $d1 = team_api($t, POST => "/team/projects/$p->{id}/deliverables", json => { title => 'Homepage design', due_date => '2027-01-15', milestone_id => $ms->{id} })->{json};
my $d2 = team_api($t, POST => "/team/projects/$p->{id}/deliverables", json => { title => 'Hidden draft', due_date => '2027-01-10', client_visible => JSON::PP::false })->{json};

my $r = capi(GET => '/projects');
is($r->{status}, 200, 'GET /projects');
is(scalar @{ $r->{json}{data} }, 1, 'one member project');
my $card = $r->{json}{data}[0];
is($card->{id}, $p->{id}, 'the member project');
is_deeply($card->{progress}, { tasks_total => 3, tasks_done => 1, percent => 33 }, 'progress counts client-visible tasks only');
is($card->{next_deliverable}{id}, $d1->{id}, 'next deliverable is the visible one');
is($card->{unread_messages}, 0, 'no unread messages');
ok(!exists $card->{client_visible}, 'no internal flags');

$r = capi(GET => "/projects/$p->{id}");
is($r->{status}, 200, 'GET /projects/{id}');
is_deeply([map { $_->{id} } @{ $r->{json}{milestones} }], [$ms->{id}], 'only the visible milestone');
is($r->{json}{milestones}[0]{percent}, 50, 'milestone percent from its visible tasks');
is_deeply([map { $_->{id} } @{ $r->{json}{deliverables} }], [$d1->{id}], 'only the visible deliverable');
my $etag = $r->{headers}{etag};
like($etag // '', qr/^"[0-9a-f]{32}"$/, 'an ETag');
$r = capi(GET => "/projects/$p->{id}", headers => { 'if-none-match' => $etag });
is($r->{status}, 304, 'If-None-Match with the ETag -> 304');
is($r->{content} // '', '', '304 has no body');
$r = capi(GET => "/projects/$p->{id}", headers => { 'if-none-match' => 'W/' . $etag . ', "x"' });
is($r->{status}, 304, 'weak comparison in a list');

$r = capi(GET => "/projects/$p->{id}/tasks");
is($r->{status}, 200, 'tasks');
my %seen = map { $_->{title} => $_ } @{ $r->{json}{data} };
is_deeply([sort keys %seen], ['Mockups', 'Task under internal milestone', 'Wireframes'], 'client-visible tasks');
is($seen{'Task under internal milestone'}{milestone_id}, undef, 'an internal milestone is not named');
is(scalar @{ capi(GET => "/projects/$p->{id}/tasks?milestone_id=$ms_int->{id}")->{json}{data} }, 0,
    'filtering by an internal milestone matches nothing');
is(scalar @{ capi(GET => "/projects/$p->{id}/tasks?status=done")->{json}{data} }, 1, 'status filter');

# ------------------------------------------------------------------ sign-off
$r = capi(POST => "/projects/$p->{id}/deliverables/$d1->{id}/approve", json => {});
is($r->{status}, 409, 'approve a scheduled deliverable -> 409');
is($r->{json}{code}, 'invalid_state', 'invalid_state');
is(team_api($t, PATCH => "/team/deliverables/$d1->{id}", json => { status => 'delivered' })->{status}, 200, 'team delivers');
$r = capi(POST => "/projects/$p->{id}/deliverables/$d1->{id}/request-changes", json => {});
is($r->{status}, 422, 'request-changes needs a comment');
$r = capi(POST => "/projects/$p->{id}/deliverables/$d1->{id}/request-changes", json => { comment => 'Bigger logo, please' });
is($r->{status}, 200, 'request changes');
is($r->{json}{status}, 'changes_requested', 'status changes_requested');
is($r->{json}{decision}{comment}, 'Bigger logo, please', 'the comment');
is($r->{json}{decision}{by}{id}, $u->{id}, 'who decided');
$r = team_api($t, GET => "/team/deliverables/$d1->{id}");
is($r->{json}{decision}{status}, 'changes_requested', 'the team sees the decision');
is(capi(POST => "/projects/$p->{id}/deliverables/$d2->{id}/approve")->{status}, 404, 'a hidden deliverable is 404');

# ------------------------------------------------------------------ messages
my $m1 = capi(POST => "/projects/$p->{id}/messages", json => { body => 'Hello team' });
is($m1->{status}, 201, 'client posts') or diag $m1->{content};
is($m1->{json}{author}{kind}, 'client', 'author kind');
ok(!exists $m1->{json}{visibility}, 'no visibility on the client surface');
my $tm = team_api($t, POST => "/team/projects/$p->{id}/messages", json => { body => 'Hi Ana' });
is($tm->{status}, 201, 'team replies');
is($tm->{json}{visibility}, 'client', 'visibility client by default');
my $ti = team_api($t, POST => "/team/projects/$p->{id}/messages", json => { body => 'CANARY internal', visibility => 'internal' });
is($ti->{status}, 201, 'team posts an internal note');
$r = capi(GET => "/projects/$p->{id}/messages");
is_deeply([map { $_->{id} } @{ $r->{json}{data} }], [$tm->{json}{id}, $m1->{json}{id}], 'client list: newest first, no internal');
unlike($r->{content}, qr/CANARY/, 'the internal note never shows');
is(capi(GET => '/projects')->{json}{data}[0]{unread_messages}, 1, 'one unread (the team reply)');
is(capi(POST => "/projects/$p->{id}/messages/read", json => { last_read_message_id => $ti->{json}{id} })->{status}, 404,
    'an internal message cannot be a read marker');
is(capi(POST => "/projects/$p->{id}/messages/read", json => { last_read_message_id => $tm->{json}{id} })->{status}, 204, 'mark read');
is(capi(GET => '/projects')->{json}{data}[0]{unread_messages}, 0, 'nothing unread');
$r = capi(GET => "/projects/$p->{id}/messages?after=$m1->{json}{id}");
is_deeply([map { $_->{id} } @{ $r->{json}{data} }], [$tm->{json}{id}], '?after= catches up');

# ------------------------------------------------------------------ attachments
my $bytes = "%PDF-1.4 test file " . ('x' x 1000) . "\n";
$r = capi(POST => "/projects/$p->{id}/attachments", json => { filename => "Brief résumé \"v2\".pdf", content_type => 'application/pdf', size => length $bytes });
is($r->{status}, 201, 'attachment created') or diag $r->{content};
my $att = $r->{json};
is($att->{status}, 'pending', 'pending');
like($att->{upload}{url}, qr/X-Amz-Signature=/, 'a presigned URL');
is(capi(POST => "/attachments/$att->{id}/complete")->{json}{code}, 'upload_incomplete', 'complete before upload -> 409');
my $http = HTTP::Tiny->new(timeout => 10);
my $put = $http->request(PUT => $att->{upload}{url}, { content => $bytes, headers => { 'content-type' => 'application/pdf' } });
is($put->{status}, 200, 'PUT to the store') or diag $put->{content};
$r = capi(POST => "/attachments/$att->{id}/complete");
is($r->{status}, 200, 'complete') or diag $r->{content};
is($r->{json}{status}, 'ready', 'ready');
is($r->{json}{sha256}, sha256_hex($bytes), 'sha256 of the stored bytes');
$r = capi(GET => "/attachments/$att->{id}/download");
is($r->{status}, 200, 'download URL');
my $get = $http->get($r->{json}{url});
note("content-disposition: " . ($get->{headers}{"content-disposition"} // ""));
is($get->{status}, 200, 'GET from the store');
is($get->{content}, $bytes, 'same bytes');
like($get->{headers}{'content-disposition'} // '', qr/^attachment; filename="Brief r_sum_ _v2_.pdf"; filename\*=UTF-8''Brief%20r%C3%A9sum%C3%A9%20%22v2%22.pdf$/, 'downloads as an attachment under its name');
# the upload URL lives on for its 15 minutes, but it writes only the upload
# copy: the confirmed file cannot change under its sha256
(my $other = $bytes) =~ tr/x/y/;
is($http->request(PUT => $att->{upload}{url}, { content => $other, headers => { 'content-type' => 'application/pdf' } })->{status},
    200, 'the store takes a second PUT with the same URL');
is($http->get(capi(GET => "/attachments/$att->{id}/download")->{json}{url})->{content}, $bytes,
    'downloads still return the confirmed bytes');
is(capi(POST => "/attachments/$att->{id}/complete")->{json}{sha256}, sha256_hex($bytes), 'and its sha256 stands');
$r = capi(GET => "/attachments/$att->{id}/download?redirect=1");
is($r->{status}, 302, 'redirect=1 -> 302');
like($r->{headers}{location} // '', qr/X-Amz-Signature=/, 'Location is the presigned URL');

$r = capi(POST => "/projects/$p->{id}/messages", json => { attachment_ids => [$att->{id}] });
is($r->{status}, 201, 'a message with only an attachment');
is($r->{json}{attachments}[0]{id}, $att->{id}, 'the attachment is on the message');
is(capi(POST => "/projects/$p->{id}/messages", json => { attachment_ids => [$att->{id}] })->{status}, 422, 'an attachment joins one message only');
is(team_api($t, GET => "/team/messages/$r->{json}{id}")->{json}{attachments}[0]{sha256}, sha256_hex($bytes), 'the team sees it');

# client actions are audited with the client as the actor
$r = team_api($t, GET => '/team/audit?action=deliverable.request_changes');
is(scalar @{ $r->{json}{data} }, 1, 'the decision is audited');
is($r->{json}{data}[0]{actor}{client_id}, $u->{id}, 'the client is the actor');
is($r->{json}{data}[0]{target}{id}, $d1->{id}, 'the deliverable is the target');

done_testing();
