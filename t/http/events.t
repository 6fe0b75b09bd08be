#!/usr/bin/perl
# Real-time events (issue 8): nchan subscriptions authorized by the worker.
#
# Audiences: client A of project P, client B of project Q (same tenant), the
# team (API key; tenant-wide and for P alone) and a client of another tenant
# each receive exactly their events, in the surface's shapes (client shapes
# have no visibility / client_visible / deleted_at), internal activity only on
# team streams.  Subscriptions refused with a problem answer: no or forged
# tokens (edited claims, signed by a wrong key, expired, alg none, another
# tenant's), other projects, another tenant's API key.  ?access_token= works
# and nginx's access log never holds a token.  The team's one-time token
# (single use, bound to its project and tenant).  Last-Event-ID catches up
# exactly the missed events, in order (one project; all projects: nchan's
# replay across channels of one second is checked in publish order).  Logout,
# a revoked session, a disabled client and a removed member end their
# streams.  WebSocket (and a client's frames publish nothing); nchan's
# locations are not reachable from outside; ?access_token= is a credential
# on the event stream only.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use JSON::PP;
use HTTP::Tiny;
use Time::HiRes qw(time);
use Time::Local qw(timegm);
use Atrium::Test;
use Atrium::Auth;
use Atrium::SSE;
use Atrium::Checks;

# where the nginx access log stood when this test began
our $ACCESS_LOG_START = -s (env_of('ATRIUM_STACK_DIR') . '/nginx/access.log') // 0;
my $RFC3339 = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
my $true = JSON::PP::true;
my $false = JSON::PP::false;

# ------------------------------------------------------------------ the cast
my $t = new_tenant();
my $t2 = new_tenant();
my $P = new_project($t, name => 'Project P');
my $Q = new_project($t, name => 'Project Q');
my $P2 = new_project($t2, name => 'Other tenant project');
my $A = onboard($t, name => 'Ana of P', project_ids => [ $P->{id} ]);
my $B = onboard($t, name => 'Ben of Q', project_ids => [ $Q->{id} ]);
my $C = onboard($t2, name => 'Cid elsewhere', project_ids => [ $P2->{id} ]);

sub team_headers { my ($tn) = @_; return { 'x-api-key' => $tn->{api_key}, 'x-client-code' => $tn->{code} } }

sub client_sub {
    my ($tn, $tok, $query, %o) = @_;
    return Atrium::SSE->subscribe(host => $tn->{host}, path => "/events$query",
        headers => { defined $tok ? (authorization => "Bearer $tok") : () }, %o);
}

sub team_sub {
    my ($tn, $query, %o) = @_;
    return Atrium::SSE->subscribe(host => $tn->{host}, path => "/team/events$query", headers => team_headers($tn), %o);
}

# [event name, resource id] of each event
sub names_ids { [ map { [ $_->{event}, ($_->{json}{data} // {})->{id} // ($_->{json}{data} // {})->{client_id} ] } @{ $_[0] } ] }

sub is_refused {
    my ($s, $status, $code, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok(!$s->is_stream && $s->status == $status
            && ($s->header('content-type') // '') =~ m{^application/problem\+json}
            && (($s->json // {})->{code} // "") eq $code && (($s->json // {})->{status} // 0) == $status,
        "$name: $status $code problem, not a stream")
        or diag explain { status => $s->status, type => $s->header('content-type'), body => $s->content };
}

sub post_msg {
    my ($tn, $p, $body, %o) = @_;
    my $r = team_api($tn, POST => "/team/projects/$p/messages", json => { body => $body, %o });
    die "message: $r->{status} $r->{content}" unless $r->{status} == 201;
    return $r->{json};
}

# ------------------------------------------------------------------ subscribers
my $sa = client_sub($t, undef, "?project_id=$P->{id}&access_token=$A->{access}");    # the token in the query
ok($sa->is_stream, 'client A subscribes to P with ?access_token=') or diag explain [ $sa->status, $sa->content ];
is($sa->header('cache-control'), 'no-store', 'the stream is not cached');
ok($sa->wait_until(5, sub { grep { $_ eq ': hi' } @{ $_[0]->comments } }), 'first line ": hi"');
my $sb = client_sub($t, $B->{access}, '');    # Authorization header, every member project
ok($sb->is_stream, 'client B subscribes (header, all member projects)');
my $st = team_sub($t, '');
ok($st->is_stream, 'team subscribes with the API key (whole tenant)');
my $stp = team_sub($t, "?project_id=$P->{id}");
ok($stp->is_stream, 'team subscribes to P alone');
my $sc = client_sub($t2, $C->{access}, '');
ok($sc->is_stream, 'client of the other tenant subscribes');
my $st2 = team_sub($t2, '');
ok($st2->is_stream, 'team of the other tenant subscribes');
my @all = ($sa, $sb, $st, $stp, $sc, $st2);

# ------------------------------------------------------------------ activity
my (%want, %at);    # subscriber -> [[event, id], ...]
sub expect { my ($ev, $id, @subs) = @_; push @{ $want{$_} }, [ $ev, $id ] for @subs }

# P: a client-visible and an internal message, a client's message
my $m1 = post_msg($t, $P->{id}, 'Hello Ana, the plan is ready');
expect('message.created', $m1->{id}, $st, $stp, $sa);
my $m2 = post_msg($t, $P->{id}, 'CANARY internal note: margin is thin', visibility => 'internal');
expect('message.created', $m2->{id}, $st, $stp);
my $r = client_api($t, $A->{access}, POST => "/projects/$P->{id}/messages", json => { body => 'Thanks, looks good' });
is($r->{status}, 201, 'client A posts') or diag $r->{content};
my $m3 = $r->{json};
expect('message.created', $m3->{id}, $st, $stp, $sa);

# milestones and tasks, visible and hidden
my $ms1 = team_api($t, POST => "/team/projects/$P->{id}/milestones", json => { title => 'Design' })->{json};
expect('milestone.updated', $ms1->{id}, $st, $stp, $sa);
my $ms2 = team_api($t, POST => "/team/projects/$P->{id}/milestones", json => { title => 'CANARY budget', client_visible => $false })->{json};
expect('milestone.updated', $ms2->{id}, $st, $stp);
my $t1 = team_api($t, POST => "/team/projects/$P->{id}/tasks", json => { title => 'Wireframes' })->{json};
expect('task.updated', $t1->{id}, $st, $stp, $sa);
my $t2k = team_api($t, POST => "/team/projects/$P->{id}/tasks", json => { title => 'CANARY pricing', client_visible => $false })->{json};
expect('task.updated', $t2k->{id}, $st, $stp);
is(team_api($t, PATCH => "/team/tasks/$t1->{id}", json => { status => 'done' })->{status}, 200, 'visible task done');
expect('task.updated', $t1->{id}, $st, $stp, $sa);
is(team_api($t, PATCH => "/team/tasks/$t2k->{id}", json => { status => 'in_progress' })->{status}, 200, 'hidden task updated');
expect('task.updated', $t2k->{id}, $st, $stp);

# a deliverable delivered and approved by the client
my $d1 = team_api($t, POST => "/team/projects/$P->{id}/deliverables",
    json => { title => 'Homepage design', due_date => '2027-01-15', milestone_id => $ms1->{id} })->{json};
expect('deliverable.updated', $d1->{id}, $st, $stp, $sa);
is(team_api($t, PATCH => "/team/deliverables/$d1->{id}", json => { status => 'delivered' })->{status}, 200, 'team delivers');
expect('deliverable.updated', $d1->{id}, $st, $stp, $sa);
$r = client_api($t, $A->{access}, POST => "/projects/$P->{id}/deliverables/$d1->{id}/approve", json => { comment => 'Lovely' });
is($r->{status}, 200, 'client A approves') or diag $r->{content};
expect('deliverable.updated', $d1->{id}, $st, $stp, $sa);
my $d2 = team_api($t, POST => "/team/projects/$P->{id}/deliverables",
    json => { title => 'CANARY draft', due_date => '2027-01-10', client_visible => $false })->{json};
expect('deliverable.updated', $d2->{id}, $st, $stp);

# the project itself
is(team_api($t, PATCH => "/team/projects/$P->{id}", json => { description => 'Relaunch of the site' })->{status}, 200, 'project patched');
expect('project.updated', $P->{id}, $st, $stp, $sa);

# a file uploaded by the client: the team hears of it, clients do not
my $bytes = "%PDF-1.4 events test\n" . ('x' x 200);
$r = client_api($t, $A->{access}, POST => "/projects/$P->{id}/attachments",
    json => { filename => 'brief.pdf', content_type => 'application/pdf', size => length $bytes });
is($r->{status}, 201, 'client A starts an upload') or diag $r->{content};
my $att = $r->{json};
my $put = HTTP::Tiny->new(timeout => 10)->request(PUT => $att->{upload}{url},
    { content => $bytes, headers => { %{ $att->{upload}{headers} // {} }, 'content-type' => 'application/pdf' } });
is($put->{status}, 200, 'PUT to the store') or diag $put->{content};
$r = client_api($t, $A->{access}, POST => "/attachments/$att->{id}/complete");
is($r->{status}, 200, 'upload confirmed') or diag $r->{content};
expect('attachment.ready', $att->{id}, $st, $stp);

# deletions
is(team_api($t, DELETE => "/team/messages/$m1->{id}")->{status}, 204, 'delete the visible message');
expect('message.deleted', $m1->{id}, $st, $stp, $sa);
is(team_api($t, DELETE => "/team/messages/$m2->{id}")->{status}, 204, 'delete the internal message');
expect('message.deleted', $m2->{id}, $st, $stp);

# Q: B's project
my $q1 = post_msg($t, $Q->{id}, 'Hello Ben');
expect('message.created', $q1->{id}, $st, $sb);
my $q2 = post_msg($t, $Q->{id}, 'CANARY about Ben', visibility => 'internal');
expect('message.created', $q2->{id}, $st);

# the other tenant
my $o1 = post_msg($t2, $P2->{id}, 'Hello Cid');
expect('message.created', $o1->{id}, $sc, $st2);

# everything expected arrives; a moment more shows nothing else follows
Atrium::SSE::wait_all(15, sub { !grep { @{ $_->{events} } < @{ $want{$_} // [] } } @all }, @all);
Atrium::SSE::pump_all(1, @all);
my %label = ($sa => 'client A (P)', $sb => 'client B (Q)', $st => 'team (tenant)', $stp => 'team (P)',
    $sc => 'other tenant client', $st2 => 'other tenant team');
for my $s (@all) {
    is_deeply(names_ids($s->events), $want{$s} // [], "$label{$s}: exactly its events, in order")
        or diag explain { got => names_ids($s->events), want => $want{$s} };
    ok(!$s->ended, "$label{$s}: stream still open");
}

# envelopes
for my $s (@all) {
    my @bad = grep {
        my $j = $_->{json};
        !(ref $j eq 'HASH' && join(',', sort keys %$j) eq 'at,data,project_id,type' && $j->{type} eq $_->{event}
            && ($j->{at} // '') =~ $RFC3339 && ($j->{data}{project_id} // $j->{project_id}) eq $j->{project_id}
            && defined $_->{id} && length $_->{id})
    } @{ $s->events };
    ok(!@bad, "$label{$s}: every event has id, event name and {type, project_id, at, data}")
        or diag explain \@bad;
}
is_deeply([ map { $_->{json}{project_id} } @{ $sa->events } ], [ ($P->{id}) x @{ $sa->events } ], 'A: only P');
unlike($sa->{body}, qr/CANARY/, 'A never sees internal activity');
unlike($sb->{body}, qr/\Q$P->{id}\E/, 'nothing of P on B\'s stream');
unlike($sc->{body} . $st2->{body}, qr/\Q$P->{id}\E|\Q$Q->{id}\E|\Q$t->{tenant_id}\E/, 'nothing of the first tenant on the other\'s streams');
unlike($stp->{body}, qr/\Q$Q->{id}\E/, 'the team stream of P carries nothing of Q');

# ------------------------------------------------------------------ shapes
sub last_data {
    my ($s, $ev, $id) = @_;
    my ($e) = grep { $_->{event} eq $ev && ($_->{json}{data}{id} // '') eq $id } reverse @{ $s->events };
    return $e ? $e->{json}{data} : undef;
}
my @client_only = qw(visibility client_visible deleted_at);
my @leak = grep { my $d = $_->{json}{data}; ref $d eq 'HASH' && grep { exists $d->{$_} } @client_only } @{ $sa->events };
ok(!@leak, 'client shapes carry no visibility, client_visible or deleted_at') or diag explain \@leak;

# client shapes are the client surface's
my $cm = client_api($t, $A->{access}, GET => "/projects/$P->{id}/messages")->{json}{data};
my ($cm3) = grep { $_->{id} eq $m3->{id} } @$cm;
is_deeply(last_data($sa, 'message.created', $m3->{id}), $cm3, 'client message.created = the client list item');
my ($ct1) = grep { $_->{id} eq $t1->{id} } @{ client_api($t, $A->{access}, GET => "/projects/$P->{id}/tasks")->{json}{data} };
is_deeply(last_data($sa, 'task.updated', $t1->{id}), $ct1, 'client task.updated = the client task');
my ($cd1) = grep { $_->{id} eq $d1->{id} } @{ client_api($t, $A->{access}, GET => "/projects/$P->{id}/deliverables")->{json}{data} };
is_deeply(last_data($sa, 'deliverable.updated', $d1->{id}), $cd1, 'client deliverable.updated = the client deliverable (with the decision)');
is(last_data($sa, 'deliverable.updated', $d1->{id})->{status}, 'approved', 'the approval reaches the client');
my $page = client_api($t, $A->{access}, GET => "/projects/$P->{id}")->{json};
my ($cms1) = grep { $_->{id} eq $ms1->{id} } @{ $page->{milestones} // [] };
is_deeply(last_data($sa, 'milestone.updated', $ms1->{id}), $cms1, 'client milestone.updated = the client milestone');
my ($card) = grep { $_->{id} eq $P->{id} } @{ client_api($t, $A->{access}, GET => '/projects')->{json}{data} };
delete $card->{unread_messages};
is_deeply(last_data($sa, 'project.updated', $P->{id}), $card, 'client project.updated = the project card without unread_messages');
is_deeply(last_data($sa, 'message.deleted', $m1->{id}), { id => $m1->{id}, project_id => $P->{id} },
    'client message.deleted is {id, project_id} only');

# team shapes are the team surface's
is_deeply(last_data($st, 'message.created', $m2->{id}), $m2, 'team message.created = the team message (internal)');
is(last_data($st, 'message.created', $m2->{id})->{visibility}, 'internal', 'the team sees the visibility');
my $tm1 = team_api($t, GET => "/team/messages/$m1->{id}")->{json};
is_deeply(last_data($st, 'message.deleted', $m1->{id}), $tm1, 'team message.deleted = the team message');
like(last_data($st, 'message.deleted', $m1->{id})->{deleted_at} // '', $RFC3339, 'with deleted_at');
is_deeply(last_data($st, 'task.updated', $t2k->{id}), team_api($t, GET => "/team/tasks/$t2k->{id}")->{json}, 'team task.updated = the team task');
is_deeply(last_data($st, 'deliverable.updated', $d1->{id}), team_api($t, GET => "/team/deliverables/$d1->{id}")->{json},
    'team deliverable.updated = the team deliverable');
is_deeply(last_data($st, 'milestone.updated', $ms2->{id}), team_api($t, GET => "/team/milestones/$ms2->{id}")->{json},
    'team milestone.updated = the team milestone');
is_deeply(last_data($st, 'project.updated', $P->{id}), team_api($t, GET => "/team/projects/$P->{id}")->{json},
    'team project.updated = the team project');
is_deeply(last_data($st, 'attachment.ready', $att->{id}), $r->{json}, 'team attachment.ready = the confirmed attachment');
is_deeply(last_data($st, 'message.created', $m3->{id}), team_api($t, GET => "/team/messages/$m3->{id}")->{json},
    'a client\'s message reaches the team in the team shape');

# ------------------------------------------------------------------ refused subscriptions
my ($hdr, $claims, $sig) = jwt_parts($A->{access});
my ($h64, $c64, $s64) = split /\./, $A->{access};

is_refused(client_sub($t, undef, ''), 401, 'unauthorized', 'no token');
is_refused(client_sub($t, 'not-a-jwt', ''), 401, 'unauthorized', 'garbage token');
my $edited = jwt_input($hdr, { %$claims, sub => $B->{id} }) . ".$s64";
is_refused(client_sub($t, $edited, ''), 401, 'unauthorized', 'edited payload (sub of B), original signature');
my $edited2 = jwt_input($hdr, { %$claims, exp => $claims->{exp} + 86400 }) . ".$s64";
is_refused(client_sub($t, undef, "?access_token=$edited2"), 401, 'unauthorized', 'edited payload (exp) in ?access_token=');
my $wrong_key = new_ec_key();
is_refused(client_sub($t, es256_token($hdr, $claims, $wrong_key), ''), 401, 'unauthorized', 'signed by a wrong key');
my $now = time;
is_refused(client_sub($t, es256_token($hdr, { %$claims, iat => int($now) - 7200, exp => int($now) - 3600 }, $wrong_key), ''),
    401, 'unauthorized', 'expired, signed by a wrong key');
my $keyfile = env_of('ATRIUM_JWT_PRIVATE_KEY_FILE');
SKIP: {
    skip 'the stack\'s signing key is not readable', 3 unless $keyfile && -r $keyfile;
    # control: the real claims re-signed by the test subscribe, so the
    # refusals below are about the claims, not about our signing
    my $control = client_sub($t, es256_token($hdr, $claims, $keyfile), "?project_id=$P->{id}");
    ok($control->is_stream, 'control: A\'s claims re-signed with the stack\'s key subscribe') or diag $control->content;
    $control->close;
    my $ttl = access_ttl();
    my $expired = es256_token($hdr, { %$claims, iat => int($now) - $ttl - 60, exp => int($now) - 60 }, $keyfile);
    is_refused(client_sub($t, $expired, ''), 401, 'token_expired', 'expired (signed with the stack\'s key)');
    my $moved = es256_token($hdr, { %$claims, tid => $t2->{tenant_id} }, $keyfile);
    is_refused(client_sub($t, $moved, ''), 401, 'unauthorized', 'validly signed, tid of the other tenant');
}
is_refused(client_sub($t, none_token({ alg => 'none', typ => $hdr->{typ} }, $claims), ''), 401, 'unauthorized', 'alg none');
is_refused(client_sub($t, $C->{access}, ''), 401, 'unauthorized', 'another tenant\'s token on this host');
is_refused(client_sub($t, undef, "?access_token=$C->{access}&project_id=$P->{id}"), 401, 'unauthorized',
    'another tenant\'s token in ?access_token=');
is_refused(client_sub($t, $A->{access}, "?project_id=$Q->{id}"), 404, 'not_found', 'A on Q (not a member)');
is_refused(client_sub($t, $A->{access}, "?project_id=$P2->{id}"), 404, 'not_found', 'A on the other tenant\'s project');
is_refused(client_sub($t, $A->{access}, '?project_id=00000000-0000-4000-8000-000000000000'), 404, 'not_found', 'unknown project');
is_refused(client_sub($t, $A->{access}, "?project_id=$P->{id}", headers => { %{ team_headers($t) }, authorization => "Bearer $A->{access}" }),
    401, 'unauthorized', 'a client token with an API key');
is_refused(Atrium::SSE->subscribe(host => $t->{host}, path => '/team/events', headers => team_headers($t2)),
    401, 'unauthorized', 'another tenant\'s API key on this host');
is_refused(Atrium::SSE->subscribe(host => $t->{host}, path => '/team/events', headers => bearer($A->{access})),
    401, 'unauthorized', 'a client token on the team stream');
is_refused(team_sub($t, "?project_id=$P2->{id}"), 404, 'not_found', 'team on another tenant\'s project');
my $wsbad = Atrium::SSE->websocket(host => $t->{host}, path => "/events?project_id=$P->{id}&access_token=$edited");
is_refused($wsbad, 401, 'unauthorized', 'WebSocket with a forged token');

# ------------------------------------------------------------------ team one-time tokens
sub mint { my ($tn, %b) = @_; return team_api($tn, POST => '/team/events/token', json => {%b}) }
$r = mint($t, project_id => $P->{id});
is($r->{status}, 201, 'a one-time token for P') or diag $r->{content};
like($r->{json}{token} // '', qr/^[A-Za-z0-9_-]{32,}$/, 'an opaque token');
like($r->{json}{expires_at} // '', $RFC3339, 'expires_at');
my @exp = ($r->{json}{expires_at} // '') =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z$/;
my $lifetime = @exp ? timegm($exp[5], $exp[4], $exp[3], $exp[2], $exp[1] - 1, $exp[0]) - time : 0;
ok($lifetime > 50 && $lifetime <= 61, 'the token lives 60 seconds') or diag "lifetime $lifetime s";
ok(no_store($r), 'no-store');
my $ot = $r->{json}{token};
my $sot = Atrium::SSE->subscribe(host => $t->{host}, path => "/team/events?token=$ot");
ok($sot->is_stream, 'the token opens the team stream of P without the API key') or diag $sot->content;
is_refused(Atrium::SSE->subscribe(host => $t->{host}, path => "/team/events?token=$ot"), 401, 'unauthorized', 'second use of the token');
my $ot_q = mint($t, project_id => $P->{id})->{json}{token};
is_refused(Atrium::SSE->subscribe(host => $t->{host}, path => "/team/events?token=$ot_q&project_id=$Q->{id}"),
    404, 'not_found', 'a token for P used for Q');
my $ot_other = mint($t, project_id => $P->{id})->{json}{token};
is_refused(Atrium::SSE->subscribe(host => $t2->{host}, path => "/team/events?token=$ot_other"), 401, 'unauthorized',
    'the token on another tenant\'s host');
is_refused(Atrium::SSE->subscribe(host => $t->{host}, path => '/team/events?token=' . ('A' x 43)), 401, 'unauthorized', 'an unknown token');
invalid(mint($t, project_id => $P2->{id}), 'project_id', 'invalid_reference', 'a token for another tenant\'s project');
my $ot_all = mint($t)->{json}{token};
my $sot_all = Atrium::SSE->subscribe(host => $t->{host}, path => "/team/events?token=$ot_all");
ok($sot_all->is_stream, 'a tenant-wide token opens the tenant stream');
my $pm = post_msg($t, $P->{id}, 'CANARY for the consoles', visibility => 'internal');
my $qm = post_msg($t, $Q->{id}, 'Q for the consoles');
Atrium::SSE::wait_all(5, sub { @{ $sot->{events} } >= 1 && @{ $sot_all->{events} } >= 2 }, $sot, $sot_all);
Atrium::SSE::pump_all(0.5, $sot, $sot_all);
is_deeply(names_ids($sot->events), [ [ 'message.created', $pm->{id} ] ], 'the P token: P\'s events (internal too), not Q\'s');
is_deeply(names_ids($sot_all->events), [ [ 'message.created', $pm->{id} ], [ 'message.created', $qm->{id} ] ],
    'the tenant-wide token: every project');
$_->close for $sot, $sot_all;

# ------------------------------------------------------------------ Last-Event-ID: one project
Atrium::SSE::pump_all(0.3, $sa);
my $last = $sa->last_id;
ok(defined $last, 'A has a last event id');
$sa->close;
my @missed = (post_msg($t, $P->{id}, 'missed 1'), post_msg($t, $P->{id}, 'CANARY missed internal', visibility => 'internal'));
push @missed, team_api($t, POST => "/team/projects/$P->{id}/tasks", json => { title => 'missed task' })->{json};
team_api($t, POST => "/team/projects/$P->{id}/tasks", json => { title => 'CANARY hidden', client_visible => $false });
push @missed, post_msg($t, $P->{id}, 'missed 2');
my @want_missed = ([ 'message.created', $missed[0]{id} ], [ 'task.updated', $missed[2]{id} ], [ 'message.created', $missed[3]{id} ]);
my $sa2 = client_sub($t, undef, "?project_id=$P->{id}&access_token=$A->{access}", last_event_id => $last);
ok($sa2->is_stream, 'A reconnects with Last-Event-ID');
$sa2->wait_events(3, 5);
$sa2->wait_until(0.7, sub { 0 });
is_deeply(names_ids($sa2->events), \@want_missed, 'the missed client-visible events, in order, nothing before them');
my $live = post_msg($t, $P->{id}, 'live again');
$sa2->wait_events(4, 5);
is_deeply(names_ids($sa2->events)->[3], [ 'message.created', $live->{id} ], 'then live events');
my $fresh = client_sub($t, $A->{access}, "?project_id=$P->{id}");
$fresh->wait_until(0.7, sub { 0 });
is_deeply($fresh->events, [], 'a subscription without Last-Event-ID replays nothing');
$fresh->close;

# ------------------------------------------------------------------ Last-Event-ID: all projects
my $E = onboard($t, name => 'Eve of P and Q', project_ids => [ $P->{id}, $Q->{id} ]);
my $se = client_sub($t, $E->{access}, '');
ok($se->is_stream, 'E subscribes to all member projects');
my $e1 = post_msg($t, $P->{id}, 'for Eve 1');
my $e1q = post_msg($t, $Q->{id}, 'for Eve 1q');
$se->wait_events(2, 5);
is_deeply(names_ids($se->events), [ [ 'message.created', $e1->{id} ], [ 'message.created', $e1q->{id} ] ], 'E gets both projects');
my $elast = $se->last_id;
$se->close;
# (the four land in one second: nchan's ids are whole seconds plus a
# per-channel counter, so events of one second are where order can go wrong)
select(undef, undef, undef, 1.02 - (time - int time));
my @emissed = map { post_msg($t, $_->[0], $_->[1]) }
    ([ $Q->{id}, 'Eve missed Q1' ], [ $Q->{id}, 'Eve missed Q2' ], [ $P->{id}, 'Eve missed P1' ], [ $P->{id}, 'Eve missed P2' ]);
my $se2 = client_sub($t, $E->{access}, '', last_event_id => $elast);
ok($se2->is_stream, 'E reconnects with Last-Event-ID');
$se2->wait_events(4, 5);
$se2->wait_until(0.7, sub { 0 });
my $got = names_ids($se2->events);
note("resume from $elast: " . join(" ", map { "$_->{id}=$_->{json}{data}{body}" } @{ $se2->events }));
is_deeply([ sort map { $_->[1] } @$got ], [ sort map { $_->{id} } @emissed ], 'all projects: exactly the missed events')
    or diag explain { got => $got, want => [ map { $_->{id} } @emissed ] };
for my $proj ($P->{id}, $Q->{id}) {
    is_deeply([ map { $_->{json}{data}{id} } grep { $_->{json}{project_id} eq $proj } @{ $se2->events } ],
        [ map { $_->{id} } grep { $_->{project_id} eq $proj } @emissed ],
        'all projects: each project\'s missed events in order (' . ($proj eq $P->{id} ? 'P' : 'Q') . ')');
}
is_deeply([ map { $_->[1] } @$got ], [ map { $_->{id} } @emissed ], 'all projects: in the order they happened')
    or diag explain { got_bodies => [ map { $_->{json}{data}{body} } @{ $se2->events } ] };
$se2->close;

# ------------------------------------------------------------------ logout and revoked sessions
$r = login($t, $A->{email}, $A->{password});
is($r->{status}, 200, 'A signs in again (a second session)');
my $a2 = $r->{json}{access_token};
my $sl = client_sub($t, $a2, "?project_id=$P->{id}");
ok($sl->is_stream, 'the second session subscribes');
is(client_api($t, $a2, POST => '/auth/logout')->{status}, 204, 'logout');
ok($sl->wait_end(5), 'logout ends that session\'s stream');
note('end of stream: ' . join(' | ', @{ $sl->comments }));
my $after = post_msg($t, $P->{id}, 'after logout');
ok($sa2->wait_until(5, sub { grep { ($_->{json}{data}{id} // '') eq $after->{id} } @{ $_[0]{events} } }),
    'the first session\'s stream goes on');
ok(!grep({ ($_->{json}{data}{id} // '') eq $after->{id} } @{ $sl->events }), 'nothing after logout on the ended stream');
is_refused(client_sub($t, $a2, "?project_id=$P->{id}"), 401, 'unauthorized', 'the logged-out token cannot subscribe again');

$r = login($t, $A->{email}, $A->{password});
my $a3 = $r->{json}{access_token};
my $sid3 = (jwt_parts($a3))[1]{sid};
my $sr = client_sub($t, undef, "?access_token=$a3");
ok($sr->is_stream, 'a third session subscribes');
is(client_api($t, $A->{access}, DELETE => "/auth/sessions/$sid3")->{status}, 204, 'A revokes the third session from the first');
ok($sr->wait_end(5), 'revoking a session ends its stream');

# ------------------------------------------------------------------ removing a member
my $D = onboard($t, name => 'Dan of Q', project_ids => [ $Q->{id} ]);
my $n_team = @{ $st->{events} };
is(team_api($t, PUT => "/team/projects/$P->{id}/members/$D->{id}")->{status}, 204, 'D becomes a member of P');
my $sd1 = client_sub($t, $D->{access}, "?project_id=$P->{id}");
ok($sd1->is_stream, 'D subscribes to P');
my $sd2 = client_sub($t, $D->{access}, '');
ok($sd2->is_stream, 'D subscribes to all member projects');
my $dm = post_msg($t, $P->{id}, 'welcome Dan');
Atrium::SSE::wait_all(5, sub { @{ $sd1->{events} } >= 1 && @{ $sd2->{events} } >= 1 }, $sd1, $sd2);
is_deeply(names_ids($sd1->events), [ [ 'message.created', $dm->{id} ] ], 'D hears P');
is(team_api($t, DELETE => "/team/projects/$P->{id}/members/$D->{id}")->{status}, 204, 'D is removed from P');
ok($sd1->wait_end(5), 'removing the member ends D\'s stream of P');
my $gone = post_msg($t, $P->{id}, 'after Dan left');
my $qd = post_msg($t, $Q->{id}, 'still for Dan in Q');
Atrium::SSE::pump_all(1, $sd1, $sd2);
ok(!grep({ ($_->{json}{data}{id} // '') eq $gone->{id} } @{ $sd1->events }, @{ $sd2->events }),
    'nothing of P reaches D after the removal');
note('D all-projects stream ' . ($sd2->ended ? 'ended' : 'open'));
is_refused(client_sub($t, $D->{access}, "?project_id=$P->{id}"), 404, 'not_found', 'a new subscription of D to P');
my $sd3 = client_sub($t, $D->{access}, '');
ok($sd3->is_stream, 'D can still subscribe to its other projects');
my $qd2 = post_msg($t, $Q->{id}, 'Q again for Dan');
my $pd2 = post_msg($t, $P->{id}, 'P again, not for Dan');
$sd3->wait_events(1, 5);
$sd3->wait_until(0.5, sub { 0 });
is_deeply(names_ids($sd3->events), [ [ 'message.created', $qd2->{id} ] ], 'the new stream has Q, not P');
Atrium::SSE::wait_all(5, sub { grep { ($_->{json}{data}{id} // '') eq $qd2->{id} } @{ $st->{events} } }, $st);
my @mem = grep { $_->{event} =~ /^member\./ } @{ $st->{events} }[ $n_team .. $#{ $st->{events} } ];
is_deeply([ map { [ $_->{event}, $_->{json}{data} ] } @mem ],
    [ [ 'member.added', { project_id => $P->{id}, client_id => $D->{id} } ],
      [ 'member.removed', { project_id => $P->{id}, client_id => $D->{id} } ] ],
    'the team hears member.added and member.removed');
Atrium::SSE::pump_all(0.3, $sa2);
ok(!grep({ $_->{event} =~ /^member\./ } @{ $sa2->events }), 'clients do not');

# ------------------------------------------------------------------ WebSocket
my $ws = Atrium::SSE->websocket(host => $t->{host}, path => "/events?project_id=$P->{id}&access_token=$A->{access}");
is($ws->status, 101, 'WebSocket handshake on the same URL');
ok($ws->accept_ok, 'Sec-WebSocket-Accept matches the key');
my $wm = post_msg($t, $P->{id}, 'over the socket');
post_msg($t, $P->{id}, 'CANARY not over the socket', visibility => 'internal');
my $frame = $ws->read_frame(5);
is($frame && $frame->{opcode}, 1, 'a text frame');
my $wj = $frame ? eval { decode_json($frame->{payload}) } : undef;
is($wj && $wj->{type}, 'message.created', 'the event envelope');
is($wj && $wj->{data}{id}, $wm->{id}, 'the message, in the client shape')
    and ok(!exists $wj->{data}{visibility}, 'no visibility over the socket either');
my $wt = Atrium::SSE->websocket(host => $t->{host}, path => "/team/events?project_id=$P->{id}", headers => team_headers($t));
is($wt->status, 101, 'a team WebSocket with the API key');
my $wi = post_msg($t, $P->{id}, 'CANARY internal over the team socket', visibility => 'internal');
my $tf = $wt->read_frame(5);
is($tf && eval { decode_json($tf->{payload})->{data}{id} }, $wi->{id}, 'the team socket carries internal activity');
# a client's frames publish nothing
ok($ws->send_text('{"type":"message.created","project_id":"' . $P->{id} . '","data":{"id":"CANARY-forged"}}'), 'the client sends a frame');
my $probe = post_msg($t, $P->{id}, 'after the client frame');
my @seen;
while (my $f = $wt->read_frame(3)) {
    push @seen, $f->{payload};
    last if index($f->{payload}, $probe->{id}) >= 0;
}
ok(@seen && !grep({ /CANARY-forged/ } @seen) && index($seen[-1], $probe->{id}) >= 0,
    'a frame sent by a client reaches no one') or diag explain \@seen;
$_->close for $ws, $wt;

# nchan's locations are not reachable from outside
my $direct = Atrium::SSE->subscribe(host => $t->{host}, base => '', path => "/internal/events/tt-$t->{tenant_id}");
ok(!$direct->is_stream && $direct->status == 404, 'the internal subscriber location answers 404 to a direct request')
    or diag explain [ $direct->status, $direct->content ];
$r = api(POST => "/pub/tt-$t->{tenant_id}", host => $t->{host}, base => '', body => '{"CANARY":"published from outside"}',
    type => 'application/json');
ok($r->{status} !~ /^20[012]$/ && ($r->{content} // '') !~ /queued messages/, 'no publisher on the HTTPS server')
    or diag explain [ $r->{status}, $r->{content} ];
$st->wait_until(0.5, sub { 0 });
ok(!grep({ $_->{data} =~ /published from outside/ } @{ $st->events }), 'nothing reached the team stream');
# the query token is for the event stream alone
$r = api(GET => "/me?access_token=$A->{access}", host => $t->{host});
ok($r->{status} == 401 || $r->{status} == 400, '?access_token= is not a credential elsewhere (GET /me)')
    or diag explain [ $r->{status}, $r->{content} ];

# ------------------------------------------------------------------ disabling a client
is(team_api($t, PATCH => "/team/clients/$B->{id}", json => { status => 'disabled' })->{status}, 200, 'the team disables B');
ok($sb->wait_end(5), 'disabling a client ends its streams');
is_refused(client_sub($t, $B->{access}, ''), 401, 'unauthorized', 'a disabled client cannot subscribe');

# ------------------------------------------------------------------ the logs
my $dir = env_of('ATRIUM_STACK_DIR') . '/nginx';
# only what this test wrote (a long-lived stack's log can be gigabytes)
my $text = do {
    local $/;
    open(my $fh, '<', "$dir/access.log") or die "$dir/access.log: $!";
    seek($fh, $ACCESS_LOG_START, 0);
    <$fh> // '';
};
my $errors = do { local $/; my $fh; open($fh, '<', "$dir/error.log") ? <$fh> // '' : '' };
like($text, qr/"host":"\Q$t->{host}\E"[^\n]*"uri":"\/internal\/events\//, 'the access log records the subscriptions');
my @secrets = ($A->{access}, $edited2, $C->{access}, $a3, $ot, $ot_other, $ot_all, (split /\./, $A->{access})[2]);
my @found = grep { index($text, $_) >= 0 } @secrets;
ok(!@found, 'no token (client or one-time) in the access log') or diag explain \@found;
unlike($text, qr/access_token=|[?&]token=/, 'no token parameter in the access log');
ok(!grep({ index($errors, $_) >= 0 } @secrets) && $errors !~ /access_token=/, 'nor in nginx\'s error log');

$_->close for @all, $sa2, $sd1, $sd2, $sd3, $sl, $sr;
done_testing();
