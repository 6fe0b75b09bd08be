#!/usr/bin/perl
# A project's message thread on both surfaces: what a post may carry
# (bodies counted in code points and stored byte for byte, \u0000, fields a
# client may not write), keyset pages newest first that hold still while
# messages arrive, ?after= catching up, Idempotency-Key (replays, conflicts,
# ten concurrent posts with one key), read markers and unread counts, the
# team's visibility, authorship and soft delete, and the message_digest
# outbox rows a post writes and folds (concurrent posts included).
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use JSON::PP;
use HTTP::Tiny;
use POSIX ();
use Encode qw(encode_utf8);
use Atrium::Test;
use Atrium::Auth;
use Atrium::Checks;

binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);

my $BASE = '/api/portal/v1';
my $NOBODY = '00000000-0000-4000-8000-000000000000';

my $t = new_tenant(name => 'Thread Agency');
my $display = team_api($t, GET => '/team/branding')->{json}{display_name};
is($display, 'Thread Agency', 'the tenant display name');

# ------------------------------------------------------------------ helpers
sub cpost {
    my ($u, $project, $json, %o) = @_;
    return client_api($t, $u->{access}, POST => "/projects/$project/messages", json => $json, %o);
}
sub tpost {
    my ($project, $json, %o) = @_;
    return team_api($t, POST => "/team/projects/$project/messages", json => $json, %o);
}
# posts or dies; returns the message
sub cmsg { my $r = cpost(@_); die "client post: $r->{status} $r->{content}" unless $r->{status} == 201; return $r->{json} }
sub tmsg { my $r = tpost(@_); die "team post: $r->{status} $r->{content}" unless $r->{status} == 201; return $r->{json} }
sub clist {
    my ($u, $project, $q) = @_;
    return client_api($t, $u->{access}, GET => "/projects/$project/messages" . ($q // ''));
}
sub rows_of { my ($project) = @_; return sql_in($t, "SELECT count(*) FROM messages WHERE project_id = '$project'") }
sub rows_with_body {
    my ($body) = @_;
    return sql_in($t, "SELECT count(*) FROM messages WHERE body = '$body'");
}
sub body_of { my ($r) = @_; return { status => $r->{status}, body => $r->{json} // $r->{content} } }
sub key { return { 'Idempotency-Key' => $_[0] } }

# unread_messages of a project, from the list and from the project page
sub unread {
    my ($u, $project) = @_;
    my $l = client_api($t, $u->{access}, GET => '/projects?limit=200');
    my ($card) = grep { $_->{id} eq $project } @{ $l->{json}{data} // [] };
    my $one = client_api($t, $u->{access}, GET => "/projects/$project")->{json}{unread_messages};
    my $n = $card ? $card->{unread_messages} : -1;
    return $n == ($one // -2) ? $n : "list $n, page " . ($one // 'none');
}
sub mark {
    my ($u, $project, $id) = @_;
    return client_api($t, $u->{access}, POST => "/projects/$project/messages/read", json => { last_read_message_id => $id });
}

# ------------------------------------------------------------------ validation
my $pv = new_project($t, name => 'Validation');
my $ua = onboard($t, name => 'Alice Thread', project_ids => [ $pv->{id} ]);
my $ub = onboard($t, name => 'Bob Thread', project_ids => [ $pv->{id} ]);
my $PV = $pv->{id};
my $n0 = rows_of($PV);

my $r = cpost($ua, $PV, {});
invalid($r, 'body', 'required', 'empty object');
is($r->{json}{errors}[0]{field}, 'body', 'errors[0] names body');
invalid(cpost($ua, $PV, { attachment_ids => [] }), 'body', 'required', 'no body and no attachment');
for my $blank ('   ', "\t\n ", "\x{3000}\x{a0} ") {
    invalid(cpost($ua, $PV, { body => $blank }), 'body', qr/./, 'blank body ' . join('', map { sprintf 'U+%04X ', ord } split //, $blank));
}
invalid(cpost($ua, $PV, { body => '' }), 'body', 'too_short', 'empty body');
invalid(cpost($ua, $PV, { body => undef }), 'body', 'type', 'body null');
invalid(cpost($ua, $PV, { body => 42 }), 'body', 'type', 'body a number');
invalid(cpost($ua, $PV, { body => "a\x{0}b" }), 'body', 'invalid_string', '\u0000 in the body');
invalid(client_api($t, $ua->{access}, POST => "/projects/$PV/messages", body => '{"body":"x\ud800y"}', type => 'application/json'),
    'body', 'invalid_string', 'an unpaired surrogate');
my $just = ('😀' x 5000) . ('ü' x 3000) . ('z' x 1999) . "\x{1F1EB}";
is(length $just, 10_000, '10,000 code points (5,001 outside the BMP)');
invalid(cpost($ua, $PV, { body => $just . 'x' }), 'body', 'too_long', '10,001 code points');
invalid(cpost($ua, $PV, { body => '😀' x 10_001 }), 'body', 'too_long', '10,001 emoji');
invalid(cpost($ua, $PV, { body => 'x', colour => 'red' }), 'colour', 'unknown_field', 'unknown field');
for my $f ([ visibility => 'client' ], [ visibility => 'internal' ], [ id => $NOBODY ], [ author => { kind => 'team' } ],
    [ deleted_at => undef ], [ created_at => '2020-01-01T00:00:00Z' ]) {
    invalid(cpost($ua, $PV, { body => 'x', $f->[0] => $f->[1] }), $f->[0], qr/^(read_only|unknown_field)$/, "client writes $f->[0]");
}
invalid(cpost($ua, $PV, { body => 'x', attachment_ids => 'abc' }), 'attachment_ids', 'type', 'attachment_ids a string');
invalid(cpost($ua, $PV, { body => 'x', attachment_ids => {} }), 'attachment_ids', 'type', 'attachment_ids an object');
invalid(cpost($ua, $PV, { body => 'x', attachment_ids => [1] }), 'attachment_ids[0]', 'type', 'attachment_ids of numbers');
invalid(cpost($ua, $PV, { body => 'x', attachment_ids => ['nope'] }), 'attachment_ids[0]', 'invalid_format', 'attachment_ids not UUIDs');
invalid(cpost($ua, $PV, { body => 'x', attachment_ids => [ ($NOBODY) x 21 ] }), 'attachment_ids', 'too_long', '21 attachment_ids');
for my $case ([ 'unparsable', '{"body":' ], [ 'trailing garbage', '{"body":"x"} x' ], [ 'an array', '["x"]' ],
    [ 'a duplicate key', '{"body":"a","body":"b"}' ], [ 'empty', '' ], [ 'not UTF-8', qq({"body":"\xff\xfe"}) ]) {
    is_problem(client_api($t, $ua->{access}, POST => "/projects/$PV/messages", body => $case->[1], type => 'application/json'),
        400, 'bad_json', "bad JSON: $case->[0]");
}
is_problem(client_api($t, $ua->{access}, POST => "/projects/$PV/messages", body => '{"body":"x"}', type => 'text/plain'),
    415, 'unsupported_media_type', 'a body that is not application/json');
invalid(tpost($PV, { body => 'x', visibility => 'public' }), 'visibility', 'invalid_enum', 'team: visibility public');
invalid(tpost($PV, { body => '  ' }), 'body', qr/./, 'team: blank body');
invalid(tpost($PV, {}), 'body', 'required', 'team: empty object');
is(rows_of($PV), $n0, 'no message from any refused post');

# accepted exactly as sent
for my $case ([ '10,000 code points', $just ], [ '10,000 emoji', '😀' x 10_000 ],
    [ 'spaces and combining marks kept', "  Cafe\x{301} \x{1F469}\x{200D}\x{1F4BB}\r\n\t " ], [ 'markup kept as text', '<b>&amp;</b> "q" \\ \'' ]) {
    my ($name, $body) = @$case;
    $r = cpost($ua, $PV, { body => $body });
    is($r->{status}, 201, "$name: 201") or diag explain body_of($r);
    ok(($r->{json}{body} // '') eq $body, "$name: the answer has the body as sent");
    my ($seen) = grep { $_->{id} eq ($r->{json}{id} // '') } @{ clist($ub, $PV, '?limit=10')->{json}{data} // [] };
    ok($seen && encode_utf8($seen->{body}) eq encode_utf8($body), "$name: byte-exact for the other client");
    my $tm = team_api($t, GET => "/team/messages/$r->{json}{id}");
    ok(($tm->{json}{body} // '') eq $body, "$name: byte-exact for the team");
}
is(rows_of($PV), $n0 + 4, 'four messages');
$r = cpost($ua, $PV, { body => 'shape' });
is_deeply([ sort keys %{ $r->{json} } ], [ sort qw(id project_id author body attachments created_at) ], 'client message fields');
ok(!exists $r->{headers}{location}, 'no Location on the client surface');
is_deeply($r->{json}{author}, { kind => 'client', id => $ua->{id}, name => 'Alice Thread' }, 'author: the client');
is_deeply($r->{json}{attachments}, [], 'no attachments');
like($r->{json}{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'created_at RFC 3339 UTC');

# ------------------------------------------------------------------ pages
my $pp = new_project($t, name => 'Pages');
my $PP = $pp->{id};
my $uo = onboard($t, name => 'Olga Pages', project_ids => [ $PP ]);
my (@orig, @internal, @deleted);
for my $i (1 .. 120) {
    my $m = $i % 2 ? cmsg($uo, $PP, { body => "page message $i" }) : tmsg($PP, { body => "page message $i" });
    push @orig, $m->{id};
    push @internal, tmsg($PP, { body => "internal $i", visibility => 'internal' })->{id} if $i % 20 == 0;
    if ($i % 30 == 15) {
        my $gone = tmsg($PP, { body => "deleted $i" })->{id};
        die 'delete' unless team_api($t, DELETE => "/team/messages/$gone")->{status} == 204;
        push @deleted, $gone;
    }
}
my (@walk, @sizes, @new, $cursor, $pages);
do {
    $r = clist($uo, $PP, '?limit=50' . (defined $cursor ? "&cursor=$cursor" : ''));
    die "page: $r->{status} $r->{content}" unless $r->{status} == 200;
    push @sizes, scalar @{ $r->{json}{data} };
    push @walk, map { $_->{id} } @{ $r->{json}{data} };
    $cursor = $r->{json}{next_cursor};
    # messages arrive during the walk
    push @new, cmsg($uo, $PP, { body => "arrived during the walk $_" })->{id} for 1 .. (++$pages == 1 ? 2 : 0);
    push @new, tmsg($PP, { body => 'arrived later' })->{id} if $pages == 2;
} while (defined $cursor && $pages < 10);
is_deeply(\@sizes, [ 50, 50, 20 ], 'pages of 50, 50, 20');
is(scalar @walk, 120, '120 messages walked');
is_deeply(\@walk, [ reverse @orig ], 'newest first, each once, no gaps, none of the new ones');
once_each(\@walk, \@orig, 'the walk');
$r = clist($uo, $PP, "?after=$orig[-1]");
is_deeply(ids_of($r), [ reverse @new ], '?after= the newest seen: exactly the new ones, newest first');
$r = clist($uo, $PP, "?after=$orig[-3]");
is_deeply(ids_of($r), [ reverse(@new), $orig[-1], $orig[-2] ], '?after= an older one');
my (@caught, $c2);
my $guard = 0;
do {
    $r = clist($uo, $PP, "?after=$orig[99]&limit=7" . (defined $c2 ? "&cursor=$c2" : ''));
    push @caught, @{ ids_of($r) };
    $c2 = $r->{json}{next_cursor};
} while (defined $c2 && ++$guard < 20);
is_deeply(\@caught, [ reverse(@new), reverse(@orig[100 .. 119]) ], '?after= with small pages: exactly the newer ones');
is_deeply(ids_of(clist($uo, $PP, "?after=$internal[0]")), [], '?after= an internal message: empty');
is_deeply(ids_of(clist($uo, $PP, "?after=$NOBODY")), [], '?after= an unknown id: empty');
is_deeply(ids_of(clist($uo, $PP, "?after=$deleted[0]")), [], '?after= a deleted message: empty');
is_deeply(ids_of(clist($ua, $PV, "?after=$orig[0]")), [], '?after= a message of another project: empty');
$r = clist($uo, $PP, '?limit=200');
is(scalar @{ $r->{json}{data} }, 123, '?limit=200: every visible message on one page');
is($r->{json}{next_cursor}, undef, 'no next page');
ok(!grep({ my $id = $_; grep { $_ eq $id } @internal, @deleted } @{ ids_of($r) }), 'no internal or deleted message');
for my $q ('?limit=0', '?limit=201', '?limit=-1', '?limit=abc', '?limit=', '?cursor=garbage', '?cursor=12abc', '?after=not-a-uuid') {
    is_problem(clist($uo, $PP, $q), 400, 'bad_query', "client list $q");
}
my $team_walk = walk($t, "/team/projects/$PP/messages");
is(scalar @$team_walk, 120 + 3 + @internal + @deleted, 'the team walk has every message, internal and deleted too');
is_problem(team_api($t, GET => "/team/projects/$PP/messages?limit=201"), 400, 'bad_query', 'team list ?limit=201');

# ------------------------------------------------------------------ Idempotency-Key
my $pi = new_project($t, name => 'Keys');
my $PI = $pi->{id};
my $uk = onboard($t, name => 'Kim Keys', project_ids => [ $PI ]);
my $ul = onboard($t, name => 'Lee Keys', project_ids => [ $PI ]);
{
    my $k = 'msg-' . random_code('k');
    my $body = 'keyed ' . random_code('b');
    my $first = cpost($uk, $PI, { body => $body }, headers => key($k));
    is($first->{status}, 201, 'client: keyed post');
    ok(!$first->{headers}{'idempotent-replayed'}, 'not a replay');
    my $again = cpost($uk, $PI, { body => $body }, headers => key($k));
    is($again->{status}, 201, 'client: repeat 201');
    is($again->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed: true');
    is($again->{content}, $first->{content}, 'the same answer, byte for byte');
    is(rows_with_body($body), 1, 'one row');
    is_problem(cpost($uk, $PI, { body => "$body!" }, headers => key($k)), 409, 'idempotency_conflict', 'client: same key, other body');
    is_problem(cpost($uk, $PI, { body => $body, attachment_ids => [] }, headers => key($k)), 409, 'idempotency_conflict', 'client: same key, an extra field');
    is(rows_with_body($body), 1, 'still one row');
    is(rows_with_body("$body!"), 0, 'the conflicting body was not posted');
    my $other = cpost($ul, $PI, { body => $body }, headers => key($k));
    is($other->{status}, 201, 'another client with the same key');
    ok(!$other->{headers}{'idempotent-replayed'}, 'is not a replay of the first client');
    isnt($other->{json}{id}, $first->{json}{id}, 'its own message');

    $k = 'team-msg-' . random_code('k');
    $body = 'team keyed ' . random_code('b');
    $first = tpost($PI, { body => $body, visibility => 'internal' }, headers => key($k));
    is($first->{status}, 201, 'team: keyed post');
    like($first->{headers}{location} // '', qr{^\Q$BASE\E/team/messages/\Q$first->{json}{id}\E$}, 'team: Location');
    $again = tpost($PI, { body => $body, visibility => 'internal' }, headers => key($k));
    is($again->{status}, 201, 'team: repeat 201');
    is($again->{headers}{'idempotent-replayed'}, 'true', 'team: Idempotent-Replayed: true');
    is($again->{headers}{location}, $first->{headers}{location}, 'team: the same Location');
    is($again->{content}, $first->{content}, 'team: the same answer');
    is(rows_with_body($body), 1, 'team: one row');
    is_problem(tpost($PI, { body => $body, visibility => 'client' }, headers => key($k)), 409, 'idempotency_conflict', 'team: same key, other visibility');
    is(rows_with_body($body), 1, 'team: still one row');
}
# ten at once with one key
for my $case ([ 'client', sub { [ $t->{host}, 'POST', "/projects/$PI/messages", { body => $_[0] }, { %{ bearer($uk->{access}) }, %{ key($_[1]) } } ] } ],
    [ 'team', sub { [ $t->{host}, 'POST', "/team/projects/$PI/messages", { body => $_[0] },
        { 'x-api-key' => $t->{api_key}, 'x-client-code' => $t->{code}, %{ key($_[1]) } } ] } ]) {
    my ($who, $req) = @$case;
    for my $round (1 .. 2) {
        my $body = "burst $who $round " . random_code('b');
        my $k = "burst-$who-$round-" . random_code('k');
        my @res = warm_race(map { $req->($body, $k) } 1 .. 10);
        my @created = grep { $_->[0] == 201 } @res;
        my @busy = grep { $_->[0] == 409 && ($_->[1]{code} // '') eq 'idempotency_in_progress' } @res;
        note "$who round $round: " . join(' ', map { $_->[0] } @res);
        is(@created + @busy, 10, "$who burst $round: every answer is 201 or 409 idempotency_in_progress")
            or diag explain [ map { [ $_->[0], $_->[1] ] } @res ];
        ok(@created >= 1, "$who burst $round: at least one 201");
        my %ids = map { ($_->[1]{id} // '') => 1 } @created;
        is(scalar keys %ids, 1, "$who burst $round: every 201 names the same message");
        ok(1 >= grep({ ($_->[2]{'idempotent-replayed'} // '') ne 'true' } @created), "$who burst $round: at most one first answer, the others replays");
        is(rows_with_body($body), 1, "$who burst $round: exactly one message");
        my $later = $who eq 'client' ? cpost($uk, $PI, { body => $body }, headers => key($k)) : tpost($PI, { body => $body }, headers => key($k));
        is($later->{headers}{'idempotent-replayed'}, 'true', "$who burst $round: a later repeat replays");
        is($later->{json}{id}, (keys %ids)[0], "$who burst $round: the same message");
    }
}

# ------------------------------------------------------------------ read markers and unread counts
my $pr = new_project($t, name => 'Reading');
my $PR = $pr->{id};
my $ra = onboard($t, name => 'Ana Reader', project_ids => [ $PR, $PP ]);
my $rb = onboard($t, name => 'Ben Reader', project_ids => [ $PR ]);
is(unread($ra, $PR), 0, 'nothing unread at first');
my $t1 = tmsg($PR, { body => 'team one' });
my $t2 = tmsg($PR, { body => 'team two' });
my $i1 = tmsg($PR, { body => 'internal one', visibility => 'internal' });
is(unread($ra, $PR), 2, 'two team messages unread (not the internal one)');
my $a1 = cmsg($ra, $PR, { body => 'from Ana' });
is(unread($ra, $PR), 2, 'a client\'s own message does not count for them');
is(unread($rb, $PR), 3, 'it counts for the other client');
is(mark($ra, $PR, $t2->{id})->{status}, 204, 'Ana reads up to team two');
is(unread($ra, $PR), 0, 'Ana: nothing unread (her own message is after the marker)');
is(unread($rb, $PR), 3, 'Ben\'s count is his own');
is(mark($rb, $PR, $a1->{id})->{status}, 204, 'Ben reads up to Ana\'s message');
is(unread($rb, $PR), 0, 'Ben: nothing unread');
my $t3 = tmsg($PR, { body => 'team three' });
is(unread($ra, $PR), 1, 'a new team message: Ana 1');
is(unread($rb, $PR), 1, 'Ben 1');
is(mark($ra, $PR, $t1->{id})->{status}, 204, 'Ana marks an older message');
is(unread($ra, $PR), 1, 'the marker did not move back');
is(mark($ra, $PR, $t3->{id})->{status}, 204, 'Ana reads team three');
is(mark($ra, $PR, $t1->{id})->{status}, 204, 'and marks an older one again');
my $t4 = tmsg($PR, { body => 'team four' });
is(unread($ra, $PR), 1, 'only the message after team three is unread');
my $b1 = cmsg($rb, $PR, { body => 'from Ben' });
is(unread($ra, $PR), 2, 'Ben\'s message counts for Ana');
is(unread($rb, $PR), 2, 'not for Ben (team three and four)');
is(team_api($t, DELETE => "/team/messages/$t4->{id}")->{status}, 204, 'team four deleted');
is(unread($ra, $PR), 1, 'a deleted message no longer counts (Ana)');
is(unread($rb, $PR), 1, 'nor for Ben');
is_not_found(mark($ra, $PR, $i1->{id}), 'an internal message as marker');
is_not_found(mark($ra, $PR, $t4->{id}), 'a deleted message as marker');
is_not_found(mark($ra, $PR, $orig[0]), 'a message of another project as marker');
is_not_found(mark($ra, $PR, $NOBODY), 'an unknown message as marker');
is_not_found(mark($rb, $PP, $orig[0]), 'a project the client is not a member of');
is_not_found(clist($rb, $PP), 'the messages of a project the client is not a member of');
is_not_found(cpost($rb, $PP, { body => 'let me in' }), 'posting into it');
is_not_found(client_api($t, $rb->{access}, POST => "/projects/$NOBODY/messages", json => { body => 'x' }), 'posting into an unknown project');
invalid(mark($ra, $PR, 'nope'), 'last_read_message_id', 'invalid_format', 'a marker that is not a UUID');
invalid(client_api($t, $ra->{access}, POST => "/projects/$PR/messages/read", json => {}), 'last_read_message_id', 'required', 'no marker');
is(unread($ra, $PR), 1, 'refused markers changed nothing');
is(mark($ra, $PR, $b1->{id})->{status}, 204, 'Ana reads everything');
is(unread($ra, $PR), 0, 'Ana: 0');
is(unread($ra, $PP), 123, 'the other project counts on its own (no marker there)');

# ------------------------------------------------------------------ the team surface
my $pt = new_project($t, name => 'Team side');
my $PT = $pt->{id};
my $uv = onboard($t, name => 'Vera Viewer', project_ids => [ $PT ]);
my $mira = team_api($t, POST => '/team/members', json => { name => 'Mira Team', email => 'mira@thread.example' })->{json};
$r = tpost($PT, { body => 'signed by Mira' }, headers => { 'x-team-member' => $mira->{id} });
is($r->{status}, 201, 'team post with x-team-member');
my $signed = $r->{json};
is_deeply($signed->{author}, { kind => 'team', id => $mira->{id}, name => 'Mira Team' }, 'author: the member');
is($signed->{visibility}, 'client', 'visibility client by default');
is($signed->{deleted_at}, undef, 'deleted_at null');
is($r->{headers}{location}, "$BASE/team/messages/$signed->{id}", 'Location of the new message');
my $via = team_api($t, GET => "/team/messages/$signed->{id}");
is($via->{status}, 200, 'GET the Location');
is_deeply($via->{json}, $signed, 'the same message');
$r = tpost($PT, { body => 'unsigned' });
is($r->{status}, 201, 'team post without x-team-member');
is_deeply($r->{json}{author}, { kind => 'team', id => undef, name => $display }, 'author: the tenant display name, id null');
my $unsigned = $r->{json};
invalid(tpost($PT, { body => 'x' }, headers => { 'x-team-member' => $NOBODY }), 'x-team-member', 'invalid_reference', 'an unknown x-team-member');
invalid(tpost($PT, { body => 'x' }, headers => { 'x-team-member' => 'mira' }), 'x-team-member', 'invalid_reference', 'a malformed x-team-member');
is(team_api($t, PATCH => "/team/members/$mira->{id}", json => { name => 'Mira Renamed' })->{status}, 200, 'the member is renamed');
is(team_api($t, GET => "/team/messages/$signed->{id}")->{json}{author}{name}, 'Mira Team', 'a message keeps the name it was signed with');
my $int = tmsg($PT, { body => 'CANARY internal note', visibility => 'internal' }, headers => { 'x-team-member' => $mira->{id} });
is($int->{visibility}, 'internal', 'an internal message');
my $cl = clist($uv, $PT);
is_deeply(ids_of($cl), [ $unsigned->{id}, $signed->{id} ], 'the client sees the client-visible ones, newest first');
unlike($cl->{content}, qr/CANARY/, 'never the internal one');
ok(!grep({ exists $_->{visibility} || exists $_->{deleted_at} } @{ $cl->{json}{data} }), 'client shape: no visibility, no deleted_at');
is_deeply(ids_of(team_api($t, GET => "/team/projects/$PT/messages?visibility=internal")), [ $int->{id} ], '?visibility=internal');
is_deeply(ids_of(team_api($t, GET => "/team/projects/$PT/messages?visibility=client")), [ $unsigned->{id}, $signed->{id} ], '?visibility=client');
is_deeply(ids_of(team_api($t, GET => "/team/projects/$PT/messages")), [ $int->{id}, $unsigned->{id}, $signed->{id} ], 'no filter: all three');
is_problem(team_api($t, GET => "/team/projects/$PT/messages?visibility=public"), 400, 'bad_query', '?visibility=public');
is_problem(team_api($t, GET => "/team/projects/$PT/messages?include_deleted=maybe"), 400, 'bad_query', '?include_deleted=maybe');

my $etag = $cl->{headers}{etag};
ok($etag, 'the client list has an ETag');
is(client_api($t, $uv->{access}, GET => "/projects/$PT/messages", headers => { 'if-none-match' => $etag })->{status}, 304, 'unchanged: 304');
$r = team_api($t, DELETE => "/team/messages/$signed->{id}");
is($r->{status}, 204, 'soft delete: 204');
is($r->{content} // '', '', 'no body');
my $gone = team_api($t, GET => "/team/messages/$signed->{id}");
is($gone->{status}, 200, 'the team still reads it');
like($gone->{json}{deleted_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'with deleted_at');
is($gone->{json}{body}, 'signed by Mira', 'and its body');
is_deeply(ids_of(clist($uv, $PT)), [ $unsigned->{id} ], 'gone from the client list');
isnt(client_api($t, $uv->{access}, GET => "/projects/$PT/messages", headers => { 'if-none-match' => $etag })->{status}, 304, 'the ETag changed');
my ($listed) = grep { $_->{id} eq $signed->{id} } @{ team_api($t, GET => "/team/projects/$PT/messages")->{json}{data} };
is($listed->{deleted_at}, $gone->{json}{deleted_at}, 'the team list keeps it by default, with deleted_at');
is_deeply(ids_of(team_api($t, GET => "/team/projects/$PT/messages?include_deleted=false")), [ $int->{id}, $unsigned->{id} ], '?include_deleted=false hides it');
is_deeply(ids_of(team_api($t, GET => "/team/projects/$PT/messages?include_deleted=true")), [ $int->{id}, $unsigned->{id}, $signed->{id} ], '?include_deleted=true shows it');
sleep 1;
is(team_api($t, DELETE => "/team/messages/$signed->{id}")->{status}, 204, 'DELETE again: 204');
is(team_api($t, GET => "/team/messages/$signed->{id}")->{json}{deleted_at}, $gone->{json}{deleted_at}, 'the first deletion time stays');
is_not_found(team_api($t, DELETE => "/team/messages/$NOBODY"), 'DELETE of an unknown message');
is_not_found(team_api($t, GET => "/team/messages/$NOBODY"), 'GET of an unknown message');
my $other = new_tenant();
is_not_found(team_api($other, DELETE => "/team/messages/$unsigned->{id}"), 'another tenant cannot delete it');
is_not_found(team_api($other, GET => "/team/messages/$unsigned->{id}"), 'nor read it');
is_not_found(team_api($other, POST => "/team/projects/$PT/messages", json => { body => 'x' }), 'nor post into the project');
is(team_api($t, GET => "/team/messages/$unsigned->{id}")->{json}{deleted_at}, undef, 'still not deleted');

# ------------------------------------------------------------------ outbox rows
SKIP: {
skip 'ATRIUM_DIGEST_WINDOW_S is too short for digests to fold during the test', 45
    unless (env_of('ATRIUM_DIGEST_WINDOW_S') // 300) >= 60;
my $po = new_project($t, name => 'Notified');
my $PO = $po->{id};
my %m;
for my $spec ([ w1 => 1, 1 ], [ w2 => 0, 1 ], [ w3 => 1, 1 ], [ w4 => 1, 0 ]) {
    my ($tag, $email, $watch) = @$spec;
    my $res = team_api($t, POST => '/team/members', json => { name => "Watcher $tag", email => "$tag-" . lc(random_code('m')) . '@agency.example',
        notify => { email => $email ? JSON::PP::true : JSON::PP::false } });
    die "member: $res->{content}" unless $res->{status} == 201;
    $m{$tag} = $res->{json};
    if ($watch) {
        my $w = team_api($t, PUT => "/team/projects/$PO/watchers/$m{$tag}{id}");
        die "watcher: $w->{status} $w->{content}" unless $w->{status} == 204;
    }
}
my $ca = onboard($t, name => 'Cleo Active', project_ids => [ $PO ]);
my $cb = onboard($t, name => 'Dan Active', project_ids => [ $PO ]);
my $ci = new_client($t, name => 'Ivy Invited');
die 'member' unless team_api($t, PUT => "/team/projects/$PO/members/$ci->{id}")->{status} == 204;
my $cd = onboard($t, name => 'Dora Disabled', project_ids => [ $PO ]);
is(team_api($t, PATCH => "/team/clients/$cd->{id}", json => { status => 'disabled' })->{status}, 200, 'a member client disabled');
my $cq = onboard($t, name => 'Quinn Quiet', project_ids => [ $PO ]);
is(client_api($t, $cq->{access}, PATCH => '/me', json => { notify => { email => JSON::PP::false } })->{status}, 200, 'a member client turns email off');

# {recipient id => [rows]} of the project's message digests
sub digests {
    my $json = sql_in($t, "SELECT coalesce(json_agg(json_build_object('id', id, 'recipient_id', recipient_id,"
        . " 'recipient_kind', recipient_kind, 'address', address, 'channel', channel, 'status', status,"
        . " 'payload', payload) ORDER BY seq), '[]') FROM outbox WHERE template = 'message_digest' AND project_id = '$PO'");
    my %by;
    push @{ $by{ $_->{recipient_id} } }, $_ for @{ decode_json($json) };
    return \%by;
}
sub items { my ($row) = @_; return [ map { $_->{message_id} } @{ ($row // {})->{payload}{messages} // [] } ] }

is_deeply(digests(), {}, 'no digest rows yet');
my $cm1 = cmsg($ca, $PO, { body => 'First question' });
my $d = digests();
is_deeply([ sort keys %$d ], [ sort $m{w1}{id}, $m{w3}{id} ], 'client message: a row per watcher with email on (not the one with email off, not a non-watcher)');
is(scalar @{ $d->{ $m{w1}{id} } }, 1, 'one row for the first watcher');
my $row = $d->{ $m{w1}{id} }[0];
is($row->{recipient_kind}, 'team', 'recipient kind team');
is($row->{address}, $m{w1}{email}, 'to the member\'s address');
is($row->{channel}, 'email', 'by email');
is($row->{status}, 'pending', 'pending');
is_deeply(items($row), [ $cm1->{id} ], 'payload.messages names the message');
is($row->{payload}{messages}[0]{author_name}, 'Cleo Active', 'with its author');
my $cm2 = cmsg($ca, $PO, { body => 'Second question' });
my $d2 = digests();
is_deeply([ sort keys %$d2 ], [ sort $m{w1}{id}, $m{w3}{id} ], 'a second message: the same recipients');
is(scalar @{ $d2->{ $m{w1}{id} } }, 1, 'no new row for the first watcher');
is(scalar @{ $d2->{ $m{w3}{id} } }, 1, 'nor for the other');
is($d2->{ $m{w1}{id} }[0]{id}, $row->{id}, 'folded into the same row');
is_deeply(items($d2->{ $m{w1}{id} }[0]), [ $cm1->{id}, $cm2->{id} ], 'payload.messages has both, in order');
is_deeply(items($d2->{ $m{w3}{id} }[0]), [ $cm1->{id}, $cm2->{id} ], 'for both watchers');

my $tv = tmsg($PO, { body => 'An answer for you' }, headers => { 'x-team-member' => $m{w1}{id} });
my $d3 = digests();
is_deeply([ sort keys %$d3 ], [ sort $m{w1}{id}, $m{w3}{id}, $ca->{id}, $cb->{id} ],
    'client-visible team message: rows for the active member clients with email on (not invited, disabled, or email off)');
is_deeply(items($d3->{ $ca->{id} }[0]), [ $tv->{id} ], 'payload.messages for a client');
is($d3->{ $ca->{id} }[0]{recipient_kind}, 'client', 'recipient kind client');
is($d3->{ $ca->{id} }[0]{address}, $ca->{email}, 'to the client\'s address');
is_deeply(items($d3->{ $m{w1}{id} }[0]), [ $cm1->{id}, $cm2->{id} ], 'not for the authoring member');
is(scalar @{ $d3->{ $m{w1}{id} } }, 1, 'and no new row for them');

my $im = tmsg($PO, { body => 'Between us', visibility => 'internal' }, headers => { 'x-team-member' => $m{w3}{id} });
my $d4 = digests();
is_deeply([ sort keys %$d4 ], [ sort keys %$d3 ], 'internal message: no new recipient');
is_deeply(items($d4->{ $ca->{id} }[0]), [ $tv->{id} ], 'no client learns of it (first client)');
is_deeply(items($d4->{ $cb->{id} }[0]), [ $tv->{id} ], 'no client learns of it (second client)');
is_deeply(items($d4->{ $m{w1}{id} }[0]), [ $cm1->{id}, $cm2->{id}, $im->{id} ], 'the other watcher gets it folded in');
is_deeply(items($d4->{ $m{w3}{id} }[0]), [ $cm1->{id}, $cm2->{id} ], 'not the authoring member');
my $n_rows = sql_in($t, "SELECT count(*) FROM outbox WHERE template = 'message_digest' AND project_id = '$PO'");
is($n_rows, 4, 'four digest rows in all');
unlike(sql_in($t, "SELECT coalesce(string_agg(payload::text, ' '), '') FROM outbox WHERE recipient_kind = 'client' AND project_id = '$PO'"),
    qr/Between us/, 'the internal text is in no client row');

# the digest line of a long message: an excerpt of 500 code points
my $long = cmsg($ca, $PO, { body => '😀' x 600 });
my ($item) = grep { $_->{message_id} eq $long->{id} } @{ digests()->{ $m{w1}{id} }[0]{payload}{messages} // [] };
is(length($item->{excerpt} // ''), 500, 'the digest excerpt is 500 code points');
ok($item->{excerpt} eq '😀' x 500, 'cut at a character boundary');
ok($item->{truncated}, 'and marked truncated');

# concurrent posts fold too: each message reaches a watcher's digests once
my $racer = onboard($t, name => 'Rita Racer');
for my $round (1 .. 6) {
    my $rp = new_project($t, name => "Digest race $round")->{id};
    die 'watcher' unless team_api($t, PUT => "/team/projects/$rp/watchers/$m{w1}{id}")->{status} == 204;
    die 'member' unless team_api($t, PUT => "/team/projects/$rp/members/$racer->{id}")->{status} == 204;
    my @res = warm_race(map { [ $t->{host}, 'POST', "/projects/$rp/messages", { body => "race $round.$_" }, bearer($racer->{access}) ] } 1 .. 5);
    my @ids = sort map { $_->[1]{id} // () } grep { $_->[0] == 201 } @res;
    is(scalar @ids, 5, "digest race $round: five messages posted");
    my $rows = decode_json(sql_in($t, "SELECT coalesce(json_agg(payload ORDER BY seq), '[]') FROM outbox"
        . " WHERE template = 'message_digest' AND project_id = '$rp' AND recipient_id = '$m{w1}{id}'"));
    my @got = sort map { $_->{message_id} } map { @{ $_->{messages} // [] } } @$rows;
    note "digest race $round: " . scalar(@$rows) . ' row(s) with ' . join(',', map { scalar @{ $_->{messages} // [] } } @$rows) . ' item(s)';
    is_deeply(\@got, \@ids, "digest race $round: each message in the watcher's digests exactly once")
        or diag scalar(@$rows) . ' rows: ' . join(' | ', map { join(',', map { $_->{message_id} } @{ $_->{messages} }) } @$rows);
}
}

done_testing();
