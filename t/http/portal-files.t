#!/usr/bin/perl
# Attachments end to end against the local SigV4-checking S3 emulator: real
# uploads through presigned PUTs by a client and by the team, confirmation
# (HEAD + read back, sha256), downloads through presigned GETs (same bytes,
# attachment under the original name, the declared type); what the store
# refuses (tampered, re-targeted, re-typed, wrong length, back-dated URLs);
# the tenant's limits (size, blocked types, quota, also under concurrent
# creates) and file-name rules;
# server-chosen object keys; Idempotency-Key on creates; attachments on
# messages (who may attach what, once, a race for one file) and on
# deliverables (order, sign-off by content hash); ?redirect; and a
# confirmation while the store is down.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use Encode qw(encode_utf8 decode_utf8);
use Time::Local qw(timegm);
use POSIX qw(strftime);
use Atrium::Test;
use Atrium::Auth;
use Atrium::Checks;

binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);

my $BASE = '/api/portal/v1';
my $NOBODY = '00000000-0000-4000-8000-000000000000';
my $BUCKET = env_of('ATRIUM_S3_BUCKET');
my $store = HTTP::Tiny->new(timeout => 30, agent => 'atrium-tests-store');

# ------------------------------------------------------------------ helpers

# An actor: the team of a tenant, or a signed-in client of it.
sub team_of { my ($tt) = @_; return { t => $tt, team => 1 } }
sub client_of { my ($tt, $u) = @_; return { t => $tt, access => $u->{access}, id => $u->{id}, name => $u->{name} } }

# The same path on either surface: the team's lives under /team.
sub call {
    my ($who, $method, $path, %o) = @_;
    return $who->{team}
        ? team_api($who->{t}, $method, "/team$path", %o)
        : client_api($who->{t}, $who->{access}, $method, $path, %o);
}

sub new_att {
    my ($who, $project, $body, %o) = @_;
    return call($who, POST => "/projects/$project/attachments", json => $body, %o);
}
sub complete { my ($who, $id) = @_; return call($who, POST => "/attachments/$id/complete") }
sub download { my ($who, $id, $q) = @_; return call($who, GET => "/attachments/$id/download" . ($q // '')) }

sub put_object {
    my ($url, $bytes, $type) = @_;
    return $store->request(PUT => $url, { content => $bytes, headers => { 'content-type' => $type } });
}

# create + PUT + complete; returns the ready attachment (dies otherwise)
sub upload {
    my ($who, $project, $name, $type, $bytes) = @_;
    my $r = new_att($who, $project, { filename => $name, content_type => $type, size => length $bytes });
    die "create $name: $r->{status} $r->{content}" unless $r->{status} == 201;
    my $put = put_object($r->{json}{upload}{url}, $bytes, $type);
    die "PUT $name: $put->{status} $put->{content}" unless $put->{status} == 200;
    my $c = complete($who, $r->{json}{id});
    die "complete $name: $c->{status} $c->{content}" unless $c->{status} == 200;
    return $c->{json};
}

# a pending attachment (created, nothing uploaded)
sub pending {
    my ($who, $project, $name) = @_;
    my $r = new_att($who, $project, { filename => $name // 'pending.txt', content_type => 'text/plain', size => 10 });
    die "create pending: $r->{status} $r->{content}" unless $r->{status} == 201;
    return $r->{json};
}

# GET the presigned download URL from the store
sub fetch {
    my ($who, $id) = @_;
    my $r = download($who, $id);
    return { status => $r->{status}, api => $r } unless $r->{status} == 200;
    return $store->get($r->{json}{url});
}

sub body_of { my ($r) = @_; return { status => $r->{status}, body => $r->{json} // $r->{content} } }

sub query_param {
    my ($url, $name) = @_;
    return $url =~ /[?&]\Q$name\E=([^&]*)/ ? $1 : undef;
}

sub pct_decode { my ($s) = @_; $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge; return $s }

sub msg_count {
    my ($tt, $project) = @_;
    my $r = team_api($tt, GET => "/team/projects/$project/messages?limit=200");
    die "messages: $r->{status}" unless $r->{status} == 200;
    return scalar @{ $r->{json}{data} };
}

# ------------------------------------------------------------------ the actors

my $t = new_tenant(name => 'Files Agency');
my $p = new_project($t, name => 'Files');
my $p2 = new_project($t, name => 'Other files');
my $ua = onboard($t, name => 'Alice Files', project_ids => [ $p->{id}, $p2->{id} ]);
my $ub = onboard($t, name => 'Bob Files', project_ids => [ $p->{id} ]);
my $uc = onboard($t, name => 'Carol Elsewhere', project_ids => [ $p2->{id} ]);
my ($A, $B, $C, $T) = (client_of($t, $ua), client_of($t, $ub), client_of($t, $uc), team_of($t));
my $P = $p->{id};

# ------------------------------------------------------------------ round trips

# every byte value, several times over, and an odd length
my $bin = join('', map { chr } 0 .. 255) x 5 . "\x00\xff\r\n";
my $bin_name = "Relatório \"final\" – 日本 v2.bin";
my $r = new_att($A, $P, { filename => $bin_name, content_type => 'image/png', size => length $bin });
is($r->{status}, 201, 'client: attachment created') or diag explain body_of($r);
my $att = $r->{json};
is($att->{status}, 'pending', 'pending');
is($att->{sha256}, undef, 'no sha256 yet');
is($att->{message_id}, undef, 'on no message');
is($att->{uploaded_by}, 'client', 'uploaded_by client');
is($att->{filename}, $bin_name, 'the file name as sent');
is($att->{size}, length $bin, 'the declared size');
is($att->{upload}{method}, 'PUT', 'upload by PUT');
is_deeply($att->{upload}{headers}, { 'Content-Type' => 'image/png', 'Content-Length' => '' . length $bin },
    'the headers the PUT must carry');
like($att->{upload}{url}, qr/X-Amz-Expires=900(&|$)/, 'the upload URL lives 15 minutes');

# the upload key: incoming/tenants/{tenant}/projects/{project}/{attachment},
# no file name (the confirmed file is copied to the key without incoming/)
my ($path) = $att->{upload}{url} =~ m{^https?://[^/]+(/[^?]*)\?};
is($path, "/$BUCKET/incoming/tenants/$t->{tenant_id}/projects/$P/$att->{id}", 'object key is server-chosen');
my $canary = 'CANARY-secret-name';
my $cr = new_att($A, $P, { filename => "$canary.pdf", content_type => 'application/pdf', size => 5 });
is($cr->{status}, 201, 'a named file');
unlike($cr->{json}{upload}{url}, qr/CANARY/i, 'the upload URL never carries the file name');
my ($cpath) = $cr->{json}{upload}{url} =~ m{^https?://[^/]+(/[^?]*)\?};
is($cpath, "/$BUCKET/incoming/tenants/$t->{tenant_id}/projects/$P/$cr->{json}{id}", 'its key is the id');

$r = complete($A, $att->{id});
is_problem($r, 409, 'upload_incomplete', 'complete before the upload');
$r = download($A, $att->{id});
is_problem($r, 409, 'upload_incomplete', 'download before the upload (uploader)');
is_not_found(download($B, $att->{id}), 'download of a pending file by another client');

my $put = put_object($att->{upload}{url}, $bin, 'image/png');
is($put->{status}, 200, 'PUT to the store') or diag $put->{content};
# the same URL cannot replace the object with another type, nor another length
$put = put_object($att->{upload}{url}, $bin, 'text/html');
is($put->{status}, 403, 'the upload URL cannot re-type the object');
$put = put_object($att->{upload}{url}, substr($bin, 1) . '<', 'text/html');
is($put->{status}, 403, 'nor re-type it with the same length');
is_not_found(complete($B, $att->{id}), 'complete by another client of the project');
is_not_found(complete($C, $att->{id}), 'complete by a client of another project');
$r = complete($A, $att->{id});
is($r->{status}, 200, 'complete') or diag explain body_of($r);
is($r->{json}{status}, 'ready', 'ready');
is($r->{json}{sha256}, sha256_hex($bin), 'sha256 of the bytes');
is($r->{json}{upload}, undef, 'no upload on a ready attachment');
my $again = complete($A, $att->{id});
is($again->{status}, 200, 'complete again: 200');
is($again->{json}{sha256}, sha256_hex($bin), 'the same sha256');
is($again->{json}{status}, 'ready', 'still ready');

$r = download($A, $att->{id});
is($r->{status}, 200, 'download URL');
like($r->{json}{expires_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'expires_at');
like($r->{json}{url} // '', qr/X-Amz-Expires=300(&|$)/, 'the download URL lives 5 minutes');
my $dl_url = $r->{json}{url};
my $get = $store->get($dl_url);
is($get->{status}, 200, 'GET from the store');
ok($get->{content} eq $bin, 'the same bytes, all 256 values') or diag 'got ' . length($get->{content}) . ' bytes';
is(sha256_hex($get->{content}), sha256_hex($bin), 'sha256 of the download');
is($get->{headers}{'content-type'}, 'image/png', 'Content-Type is the declared type');
my $cd = $get->{headers}{'content-disposition'} // '';
note "Content-Disposition: $cd";
like($cd, qr/^attachment;/, 'Content-Disposition: attachment');
my ($fallback) = $cd =~ /;\s*filename="([^"\\]*)"/;
ok(defined $fallback && $fallback =~ /^[\x20-\x7e]+$/ && $fallback =~ /Relat/ && $fallback =~ /final/ && $fallback =~ /v2\.bin$/,
    'an ASCII fallback filename without quotes') or diag $cd;
my ($star) = $cd =~ /;\s*filename\*=UTF-8''([A-Za-z0-9!#\$&+\-.^_`|~%]+)\s*$/;
ok(defined $star, "filename*=UTF-8''...") or diag $cd;
is(decode_utf8(pct_decode($star // '')), $bin_name, 'filename* is the original name (UTF-8, quotes, spaces)');

# tampering with the download URL
for my $case (
    [ 'signature flipped', sub { $_[0] =~ s/(X-Amz-Signature=[0-9a-f]{63})([0-9a-f])/$1 . ($2 eq '0' ? '1' : '0')/er } ],
    [ 'inline disposition', sub { $_[0] =~ s/response-content-disposition=[^&]*/response-content-disposition=inline/r } ],
    [ 'type changed to text/html', sub { $_[0] =~ s/response-content-type=[^&]*/response-content-type=text%2Fhtml/r } ],
    [ 'another key', sub { $_[0] =~ s{/\Q$att->{id}\E\?}{/$cr->{json}{id}?}r } ],
    ) {
    my ($name, $edit) = @{$case};
    my $bad = $edit->($dl_url);
    isnt($bad, $dl_url, "download URL, $name: edited");
    my $g = $store->get($bad);
    is($g->{status}, 403, "download URL, $name: 403");
}

# the team: a ~3 MiB file
my $big = '';
{
    my $h = 'atrium';
    $big .= ($h = Digest::SHA::sha256($h . length $big)) while length($big) < 3 * 1024 * 1024;
    $big .= "tail";
}
my $tbig = upload($T, $P, 'Assets bundle 2026.tar', 'application/x-tar', $big);
is($tbig->{status}, 'ready', 'team: ~3 MiB file ready');
is($tbig->{uploaded_by}, 'team', 'uploaded_by team');
is($tbig->{sha256}, sha256_hex($big), 'team: sha256 of the big file');
$get = fetch($T, $tbig->{id});
is($get->{status}, 200, 'team: download');
ok(($get->{content} // '') eq $big, 'team: the same ' . length($big) . ' bytes');
is($get->{headers}{'content-type'}, 'application/x-tar', 'team: declared Content-Type');
like($get->{headers}{'content-disposition'} // '', qr/^attachment; filename="Assets bundle 2026\.tar"; filename\*=UTF-8''Assets%20bundle%202026\.tar$/,
    'team: attachment under its name');
is_not_found(download($A, $tbig->{id}), 'a team file on nothing is not the client\'s');
is_not_found(complete($A, $tbig->{id}), 'a client cannot complete a team upload');

# ------------------------------------------------------------------ what the store refuses
my $doc = "%PDF-1.7\n" . ('refusals ' x 300) . "\n%%EOF\n";
my $x1 = new_att($A, $P, { filename => 'refused.pdf', content_type => 'application/pdf', size => length $doc })->{json};
my $x2 = new_att($A, $P, { filename => 'target.pdf', content_type => 'application/pdf', size => length $doc })->{json};
my $u1 = $x1->{upload}{url};
my $date = query_param($u1, 'X-Amz-Date');
like($date // '', qr/^\d{8}T\d{6}Z$/, 'X-Amz-Date in the upload URL');
my ($Y, $M, $D, $h, $mi, $s) = ($date // '19700101T000000Z') =~ /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/;
my $yesterday = strftime('%Y%m%dT%H%M%SZ', gmtime(timegm($s, $mi, $h, $D, $M - 1, $Y) - 86400));
my @refusals = (
    [ 'tampered signature', ($u1 =~ s/(X-Amz-Signature=[0-9a-f]{63})([0-9a-f])/$1 . ($2 eq '0' ? '1' : '0')/er), $doc, 'application/pdf' ],
    [ 're-targeted to another attachment', ($u1 =~ s{/\Q$x1->{id}\E\?}{/$x2->{id}?}r), $doc, 'application/pdf' ],
    [ 're-targeted to a chosen key', ($u1 =~ s{/\Q$x1->{id}\E\?}{/evil.html?}r), $doc, 'application/pdf' ],
    [ 'another Content-Type than signed', $u1, $doc, 'text/html' ],
    [ 'a shorter body than declared', $u1, substr($doc, 0, -1), 'application/pdf' ],
    [ 'a longer body than declared', $u1, $doc . 'x', 'application/pdf' ],
    [ 'X-Amz-Date moved back a day', ($u1 =~ s/X-Amz-Date=\d{8}T\d{6}Z/X-Amz-Date=$yesterday/r), $doc, 'application/pdf' ],
);
for my $case (@refusals) {
    my ($name, $url, $bytes, $type) = @$case;
    ok($url ne $u1 || $bytes ne $doc || $type ne 'application/pdf', "$name: the request differs from the signed one");
    my $res = put_object($url, $bytes, $type);
    is($res->{status}, 403, "store refuses $name: 403") or diag "$res->{status} $res->{content}";
}
is_problem(complete($A, $x1->{id}), 409, 'upload_incomplete', 'nothing was stored under the signed key');
is_problem(complete($A, $x2->{id}), 409, 'upload_incomplete', 'nothing was stored under the re-targeted key');
is(team_api($t, GET => "/team/attachments/$x1->{id}/download")->{status}, 409, 'the attachment is still pending');
# the untouched URL works: the refusals were about the edits
$put = put_object($u1, $doc, 'application/pdf');
is($put->{status}, 200, 'the URL as signed is accepted');
$r = complete($A, $x1->{id});
is($r->{status}, 200, 'and then complete');
is($r->{json}{sha256}, sha256_hex($doc), 'with the sha256 of what was signed for');

# ------------------------------------------------------------------ redirect
$r = download($A, $x1->{id}, '?redirect=1');
is($r->{status}, 302, '?redirect=1: 302');
like($r->{headers}{location} // '', qr/X-Amz-Signature=[0-9a-f]{64}/, 'Location is a presigned URL');
$get = $store->get($r->{headers}{location} // 'http://127.0.0.1:1/');
is($get->{status}, 200, 'the Location downloads');
ok(($get->{content} // '') eq $doc, 'the same bytes');
$r = download($A, $x1->{id}, '?redirect=0');
is($r->{status}, 200, '?redirect=0: 200');
ok(!$r->{headers}{location}, 'no Location');
is_problem(download($A, $x1->{id}, '?redirect=2'), 400, 'bad_query', '?redirect=2');
is_problem(download($A, $x1->{id}, '?redirect=yes'), 400, 'bad_query', '?redirect=yes');
is_problem(download($A, $x1->{id}, '?redirect=1&redirect=1'), 400, 'bad_query', 'repeated ?redirect');
is_not_found(download($A, $NOBODY), 'download of an unknown id');
is_not_found(download($A, 'not-a-uuid'), 'download of a non-UUID id');

# another tenant sees nothing
my $o = new_tenant();
my $op = new_project($o);
my $ou = onboard($o, project_ids => [ $op->{id} ]);
is_not_found(client_api($o, $ou->{access}, GET => "/attachments/$x1->{id}/download"), 'another tenant\'s client: download');
is_not_found(client_api($o, $ou->{access}, POST => "/attachments/$x1->{id}/complete"), 'another tenant\'s client: complete');
is_not_found(team_api($o, GET => "/team/attachments/$x1->{id}/download"), 'another tenant\'s team: download');
is_not_found(team_api($o, POST => "/team/attachments/$x1->{id}/complete"), 'another tenant\'s team: complete');
is_not_found(new_att($C, $P, { filename => 'x.txt', content_type => 'text/plain', size => 1 }), 'upload into a project that is not the client\'s');
is_not_found(new_att(team_of($o), $P, { filename => 'x.txt', content_type => 'text/plain', size => 1 }), 'upload into another tenant\'s project');

# ------------------------------------------------------------------ Idempotency-Key on creates
{
    my $key = 'att-' . random_code('k');
    my $body = { filename => 'keyed upload.csv', content_type => 'text/csv', size => 12 };
    my $first = new_att($A, $P, $body, headers => { 'Idempotency-Key' => $key });
    is($first->{status}, 201, 'keyed create');
    ok(!$first->{headers}{'idempotent-replayed'}, 'not a replay');
    select(undef, undef, undef, 1.1);    # a new signature carries a new X-Amz-Date
    my $rep = new_att($A, $P, $body, headers => { 'Idempotency-Key' => $key });
    is($rep->{status}, 201, 'repeat: 201');
    is($rep->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed: true');
    is($rep->{json}{id}, $first->{json}{id}, 'the same attachment');
    is($rep->{json}{status}, 'pending', 'still pending');
    ok($rep->{json}{upload} && $rep->{json}{upload}{url}, 'the replay carries an upload URL');
    isnt($rep->{json}{upload}{url}, $first->{json}{upload}{url}, 'freshly signed');
    ok((query_param($rep->{json}{upload}{url}, 'X-Amz-Date') // '') gt (query_param($first->{json}{upload}{url}, 'X-Amz-Date') // ''),
        'signed later than the first');
    is(sql_in($t, "SELECT count(*) FROM attachments WHERE filename = 'keyed upload.csv'"), 1, 'one row');
    my $conf = new_att($A, $P, { %$body, size => 13 }, headers => { 'Idempotency-Key' => $key });
    is_problem($conf, 409, 'idempotency_conflict', 'same key, other body');
    $put = put_object($rep->{json}{upload}{url}, "a,b\n1,2\n3,4\n", 'text/csv');
    is($put->{status}, 200, 'the replayed URL uploads');
    is(complete($A, $first->{json}{id})->{status}, 200, 'complete');
    $rep = new_att($A, $P, $body, headers => { 'Idempotency-Key' => $key });
    is($rep->{status}, 201, 'replay after completion: 201');
    is($rep->{headers}{'idempotent-replayed'}, 'true', 'a replay');
    is($rep->{json}{status}, 'ready', 'shows status ready');
    ok(exists $rep->{json}{upload} && !defined $rep->{json}{upload}, 'upload: null');
    is($rep->{json}{sha256}, sha256_hex("a,b\n1,2\n3,4\n"), 'and the sha256');
    is(sql_in($t, "SELECT count(*) FROM attachments WHERE filename = 'keyed upload.csv'"), 1, 'still one row');
    # the team, too
    my $tk = 'team-att-' . random_code('k');
    my $tb = { filename => 'team keyed.txt', content_type => 'text/plain', size => 4 };
    my $t1 = new_att($T, $P, $tb, headers => { 'Idempotency-Key' => $tk });
    my $t2 = new_att($T, $P, $tb, headers => { 'Idempotency-Key' => $tk });
    is($t1->{status}, 201, 'team keyed create');
    is($t2->{headers}{'idempotent-replayed'}, 'true', 'team replay');
    is($t2->{json}{id}, $t1->{json}{id}, 'team: the same attachment');
    is(put_object($t2->{json}{upload}{url}, 'team', 'text/plain')->{status}, 200, 'team: the replayed URL uploads');
    is_problem(new_att($T, $P, { %$tb, filename => 'other.txt' }, headers => { 'Idempotency-Key' => $tk }), 409,
        'idempotency_conflict', 'team: same key, other body');
}

# ------------------------------------------------------------------ attachments on messages
my $a_ready = upload($A, $P, 'alice-notes.txt', 'text/plain', "Alice's notes\n");
my $a_ready2 = upload($A, $P, 'alice-more.txt', 'text/plain', "More notes\n");
my $b_ready = upload($B, $P, 'bob-notes.txt', 'text/plain', "Bob's notes\n");
my $t_ready = upload($T, $P, 'team-notes.txt', 'text/plain', "Team notes\n");
my $a_other = upload($A, $p2->{id}, 'alice-elsewhere.txt', 'text/plain', "Elsewhere\n");
my $a_pending = pending($A, $P, 'alice-pending.txt');
my $before = msg_count($t, $P);
for my $case (
    [ 'a pending attachment', [ $a_pending->{id} ] ],
    [ 'another client\'s ready attachment', [ $b_ready->{id} ] ],
    [ 'a team attachment', [ $t_ready->{id} ] ],
    [ 'an attachment of another project', [ $a_other->{id} ] ],
    [ 'an unknown id', [ $NOBODY ] ],
    [ 'one good, one bad', [ $a_ready->{id}, $b_ready->{id} ], 'attachment_ids[1]' ],
    [ 'the same id twice', [ $a_ready->{id}, $a_ready->{id} ], 'attachment_ids[1]' ],
    ) {
    my ($name, $ids, $field) = @$case;
    $r = client_api($t, $ua->{access}, POST => "/projects/$P/messages", json => { body => "with $name", attachment_ids => $ids });
    invalid($r, $field // 'attachment_ids[0]', 'invalid_reference', "client message with $name");
}
invalid(team_api($t, POST => "/team/projects/$P/messages", json => { body => 'x', attachment_ids => [ $a_ready->{id} ] }),
    'attachment_ids[0]', 'invalid_reference', 'team message with a client attachment');
invalid(team_api($t, POST => "/team/projects/$P/messages", json => { body => 'x', attachment_ids => [ pending($T, $P)->{id} ] }),
    'attachment_ids[0]', 'invalid_reference', 'team message with a pending team attachment');
is(msg_count($t, $P), $before, 'no message from a refused post');
is_not_found(download($B, $a_ready->{id}), 'before it is on a message, another client cannot download it');

$r = client_api($t, $ua->{access}, POST => "/projects/$P/messages", json => { body => 'Two files', attachment_ids => [ $a_ready2->{id}, $a_ready->{id} ] });
is($r->{status}, 201, 'a message with two ready attachments') or diag explain body_of($r);
my $m1 = $r->{json};
is_deeply([ sort map { $_->{id} } @{ $m1->{attachments} } ], [ sort $a_ready->{id}, $a_ready2->{id} ], 'both on it');
my %sha_of = map { $_->{id} => $_->{sha256} } @{ $m1->{attachments} };
is($sha_of{ $a_ready->{id} }, sha256_hex("Alice's notes\n"), 'with their sha256');
is_deeply([ sort keys %{ $m1->{attachments}[0] } ], [ sort qw(id filename content_type size sha256) ], 'attachment brief fields');
$r = client_api($t, $ub->{access}, GET => "/projects/$P/messages");
my ($seen) = grep { $_->{id} eq $m1->{id} } @{ $r->{json}{data} // [] };
my ($more) = grep { $_->{id} eq $a_ready2->{id} } @{ $seen->{attachments} // [] };
is($more->{sha256}, sha256_hex("More notes\n"), 'the other client sees the files with sha256');
$get = fetch($B, $a_ready->{id});
is($get->{status}, 200, 'a file of a visible message downloads for another member');
is($get->{content}, "Alice's notes\n", 'its bytes');
is_not_found(download($C, $a_ready->{id}), 'not for a client of another project');
is_deeply({ map { $_->{id} => $_->{sha256} } @{ team_api($t, GET => "/team/messages/$m1->{id}")->{json}{attachments} // [] } },
    { $a_ready->{id} => sha256_hex("Alice's notes\n"), $a_ready2->{id} => sha256_hex("More notes\n") }, 'the team sees the sha256');
invalid(client_api($t, $ua->{access}, POST => "/projects/$P/messages", json => { attachment_ids => [ $a_ready->{id} ] }),
    'attachment_ids[0]', 'invalid_reference', 'an attachment already on a message');
is(msg_count($t, $P), $before + 1, 'one message');

# team files: on a client-visible message the client may download them, on an internal one never
my $t_vis = upload($T, $P, 'team-visible.txt', 'text/plain', "for the client\n");
my $t_int = upload($T, $P, 'team-internal.txt', 'text/plain', "CANARY internal file\n");
$r = team_api($t, POST => "/team/projects/$P/messages", json => { body => 'Files for you', attachment_ids => [ $t_vis->{id}, $t_ready->{id} ] });
is($r->{status}, 201, 'team message with two team files');
my $tm = $r->{json};
$r = team_api($t, POST => "/team/projects/$P/messages", json => { body => 'internal', visibility => 'internal', attachment_ids => [ $t_int->{id} ] });
is($r->{status}, 201, 'internal message with a team file');
$get = fetch($A, $t_vis->{id});
is($get->{status}, 200, 'client downloads a file of a client-visible team message');
is($get->{content}, "for the client\n", 'its bytes');
is_not_found(download($A, $t_int->{id}), 'a file of an internal message is not the client\'s');
is(team_api($t, DELETE => "/team/messages/$tm->{id}")->{status}, 204, 'team deletes its message');
is_not_found(download($A, $t_vis->{id}), 'a file of a deleted message is no longer the client\'s');

# the race: two messages claim one attachment
for my $round (1 .. 3) {
    my $f = upload($A, $P, "race-$round.txt", 'text/plain', "race $round\n");
    my $n0 = msg_count($t, $P);
    my @res = warm_race(map { [ $t->{host}, 'POST', "/projects/$P/messages", { body => "claim $round.$_", attachment_ids => [ $f->{id} ] }, bearer($ua->{access}) ] } 1 .. 2);
    my @won = grep { $_->[0] == 201 } @res;
    my @lost = grep { $_->[0] == 422 && ($_->[1]{errors}[0]{field} // '') eq 'attachment_ids[0]' && ($_->[1]{errors}[0]{code} // '') eq 'invalid_reference' } @res;
    is(scalar @won, 1, "race $round: exactly one 201") or diag explain [ map { [ $_->[0], $_->[1] ] } @res ];
    is(scalar @lost, 1, "race $round: the other 422 invalid_reference");
    is(msg_count($t, $P), $n0 + 1, "race $round: one message");
    is(sql_in($t, "SELECT message_id FROM attachments WHERE id = '$f->{id}'"), $won[0] ? $won[0][1]{id} : 'none', "race $round: the file is on the winner");
}

# ------------------------------------------------------------------ deliverables
my $d = team_api($t, POST => "/team/projects/$P/deliverables", json => { title => 'Brand book', due_date => '2027-03-01' })->{json};
my $d_hidden = team_api($t, POST => "/team/projects/$P/deliverables", json => { title => 'Internal draft', due_date => '2027-03-02', client_visible => JSON::PP::false })->{json};
my $book1 = "Brand book, part one\n" . ('½' x 100);
my $book2 = "Brand book, part two\n" . join('', map { chr } 0 .. 255);
my $f1 = upload($T, $P, 'Brand book 1.pdf', 'application/pdf', encode_utf8($book1));
my $f2 = upload($T, $P, 'Brand book 2.bin', 'application/octet-stream', $book2);
my $f_hidden = upload($T, $P, 'Draft.pdf', 'application/pdf', 'draft');
$r = team_api($t, PATCH => "/team/deliverables/$d->{id}", json => { attachment_ids => [ $f2->{id}, $f1->{id} ] });
is($r->{status}, 200, 'PATCH attachment_ids') or diag explain body_of($r);
is_deeply($r->{json}{attachment_ids}, [ $f2->{id}, $f1->{id} ], 'attachment_ids in the order sent');
invalid(team_api($t, PATCH => "/team/deliverables/$d->{id}", json => { attachment_ids => [ $f1->{id}, $a_ready2->{id} ] }),
    'attachment_ids[1]', 'invalid_reference', 'a client attachment on a deliverable');
invalid(team_api($t, PATCH => "/team/deliverables/$d->{id}", json => { attachment_ids => [ pending($T, $P)->{id} ] }),
    'attachment_ids[0]', 'invalid_reference', 'a pending attachment on a deliverable');
invalid(team_api($t, PATCH => "/team/deliverables/$d->{id}", json => { attachment_ids => [ upload($T, $p2->{id}, 'p2.txt', 'text/plain', 'p2')->{id} ] }),
    'attachment_ids[0]', 'invalid_reference', 'an attachment of another project on a deliverable');
is_deeply(team_api($t, GET => "/team/deliverables/$d->{id}")->{json}{attachment_ids}, [ $f2->{id}, $f1->{id} ], 'unchanged after refusals');
is(team_api($t, PATCH => "/team/deliverables/$d_hidden->{id}", json => { attachment_ids => [ $f_hidden->{id} ] })->{status}, 200, 'files on a hidden deliverable');
is_not_found(download($A, $f_hidden->{id}), 'a file of a hidden deliverable is not the client\'s');
$r = team_api($t, POST => "/team/projects/$P/deliverables", json => { title => 'Created with files', due_date => '2027-03-03', attachment_ids => [ $f1->{id}, $f2->{id} ] });
is($r->{status}, 201, 'a deliverable created with attachment_ids') or diag explain body_of($r);
is_deeply($r->{json}{attachment_ids}, [ $f1->{id}, $f2->{id} ], 'its attachment_ids in order');
is_deeply(team_api($t, GET => "/team/deliverables/$r->{json}{id}")->{json}{attachment_ids}, [ $f1->{id}, $f2->{id} ], 'read back');
invalid(team_api($t, POST => "/team/projects/$P/deliverables", json => { title => 'Bad files', due_date => '2027-03-03', attachment_ids => [ $a_ready2->{id} ] }),
    'attachment_ids[0]', 'invalid_reference', 'a deliverable created with a client attachment');
$r = team_api($t, PATCH => "/team/deliverables/$d->{id}", json => { status => 'delivered' });
is($r->{status}, 200, 'delivered');
is_deeply($r->{json}{attachment_ids}, [ $f2->{id}, $f1->{id} ], 'delivering keeps the files');
$r = client_api($t, $ua->{access}, GET => "/projects/$P/deliverables");
my ($cd_) = grep { $_->{id} eq $d->{id} } @{ $r->{json}{data} // [] };
ok($cd_, 'the client sees the deliverable');
ok(!grep({ $_->{id} eq $d_hidden->{id} } @{ $r->{json}{data} // [] }), 'not the hidden one');
is_deeply($cd_->{attachment_ids}, [ $f2->{id}, $f1->{id} ], 'client: attachment_ids in order');
is_deeply([ map { [ $_->{id}, $_->{filename}, $_->{content_type}, $_->{size}, $_->{sha256} ] } @{ $cd_->{attachments} // [] } ],
    [ [ $f2->{id}, 'Brand book 2.bin', 'application/octet-stream', length $book2, sha256_hex($book2) ],
      [ $f1->{id}, 'Brand book 1.pdf', 'application/pdf', length encode_utf8($book1), sha256_hex(encode_utf8($book1)) ] ],
    'client: attachments with name, type, size and sha256');
for my $who ([ 'client', $A ], [ 'another member', $B ]) {
    $get = fetch($who->[1], $f2->{id});
    is($get->{status}, 200, "$who->[0] downloads a deliverable file");
    ok(($get->{content} // '') eq $book2, "$who->[0]: the same bytes");
}
is_not_found(download($C, $f2->{id}), 'a client of another project cannot');
$r = client_api($t, $ua->{access}, POST => "/projects/$P/deliverables/$d->{id}/approve", json => { comment => 'Looks great' });
is($r->{status}, 200, 'approve') or diag explain body_of($r);
is($r->{json}{status}, 'approved', 'approved');
my $want = [ { id => $f2->{id}, sha256 => sha256_hex($book2) }, { id => $f1->{id}, sha256 => sha256_hex(encode_utf8($book1)) } ];
is_deeply($r->{json}{decision}{attachments}, $want, 'decision.attachments: [{id, sha256}] of the files');
is($r->{json}{decision}{by}{id}, $ua->{id}, 'decided by the client');
my $team_d = team_api($t, GET => "/team/deliverables/$d->{id}")->{json};
is_deeply($team_d->{decision}{attachments}, $want, 'the team sees the same decision.attachments');
is($team_d->{decision}{status}, 'approved', 'the team sees approved');
is($team_d->{decision}{comment}, 'Looks great', 'and the comment');

# ------------------------------------------------------------------ limits
my $l = new_tenant();
my $lp = new_project($l);
my $lu = onboard($l, project_ids => [ $lp->{id} ]);
my ($LC, $LT) = (client_of($l, $lu), team_of($l));
my $LP = $lp->{id};
sub lbody { return { filename => 'f.bin', content_type => 'application/octet-stream', size => 100, @_ } }

invalid(new_att($LC, $LP, lbody(size => 0)), 'size', 'out_of_range', 'size 0');
invalid(new_att($LC, $LP, lbody(size => -5)), 'size', 'out_of_range', 'negative size');
invalid(new_att($LC, $LP, lbody(size => '100')), 'size', 'type', 'size as a string');
invalid(new_att($LC, $LP, lbody(size => 1.5)), 'size', 'type', 'fractional size');
for my $f (qw(filename content_type size)) {
    my %b = %{ lbody() };
    delete $b{$f};
    invalid(new_att($LC, $LP, \%b), $f, 'required', "missing $f");
}
invalid(new_att($LC, $LP, lbody(status => 'ready')), 'status', qr/^(unknown_field|read_only)$/, 'status is not writable');
invalid(new_att($LC, $LP, lbody(object_key => 'x/y')), 'object_key', qr/^(unknown_field|read_only)$/, 'the object key is not the caller\'s');
invalid(new_att($LC, $LP, lbody(color => 'blue')), 'color', 'unknown_field', 'unknown field');
is_problem(client_api($l, $lu->{access}, POST => "/projects/$LP/attachments", body => '{"filename":', type => 'application/json'), 400, 'bad_json', 'bad JSON');
for my $case ([ 'newline', "a\nb.txt" ], [ 'tab', "a\tb.txt" ], [ 'carriage return', "a\rb.txt" ], [ 'escape', "\e[31mred.txt" ],
    [ 'DEL', "a\x7fb.txt" ], [ 'NUL', "a\x{0}b.txt" ], [ 'C1 NEL (U+0085)', "a\x{85}b.txt" ], [ 'C1 CSI (U+009B)', "a\x{9b}31mb.txt" ]) {
    invalid(new_att($LC, $LP, lbody(filename => $case->[1])), 'filename', qr/^(invalid_format|invalid_string)$/, "filename with $case->[0]");
}
invalid(new_att($LC, $LP, lbody(filename => '')), 'filename', 'too_short', 'empty filename');
invalid(new_att($LC, $LP, lbody(filename => ('é' x 252) . '.pdf')), 'filename', 'too_long', 'filename of 256 characters');
$r = new_att($LC, $LP, lbody(filename => ('é' x 251) . '.pdf'));
is($r->{status}, 201, 'filename of 255 characters (510+ bytes)') or diag explain body_of($r);
is($r->{json}{filename}, ('é' x 251) . '.pdf', 'stored as sent');
for my $ct ('Text/HTML', 'text/html; charset=utf-8', 'texthtml', 'text/', '/html', 'text/html ') {
    invalid(new_att($LC, $LP, lbody(content_type => $ct)), 'content_type', 'invalid_format', "content_type '$ct'");
}
for my $ct (qw(text/html application/xhtml+xml image/svg+xml application/javascript text/javascript application/x-msdownload application/x-sh)) {
    is_problem(new_att($LC, $LP, lbody(content_type => $ct)), 415, 'unsupported_media_type', "default-blocked $ct (client)");
}
is_problem(new_att($LT, $LP, lbody(content_type => 'image/svg+xml')), 415, 'unsupported_media_type', 'default-blocked type (team)');

# max_upload_bytes
$r = team_api($l, PATCH => '/team/branding', json => { limits => { max_upload_bytes => 1000 } });
is($r->{status}, 200, 'max_upload_bytes 1000');
is($r->{json}{limits}{max_upload_bytes}, 1000, 'read back');
is(new_att($LC, $LP, lbody(size => 1000))->{status}, 201, 'size = the limit: 201');
is_problem(new_att($LC, $LP, lbody(size => 1001)), 413, 'payload_too_large', 'size above the limit (client)');
is_problem(new_att($LT, $LP, lbody(size => 1001)), 413, 'payload_too_large', 'size above the limit (team)');
is(team_api($l, PATCH => '/team/branding', json => { limits => { max_upload_bytes => 50 * 1024 * 1024 } })->{status}, 200, 'limit back to 50 MiB');
is(new_att($LC, $LP, lbody(size => 1001))->{status}, 201, 'then 1001 bytes are fine');

# the tenant's own blocked list
$r = team_api($l, PATCH => '/team/branding', json => { limits => { blocked_content_types => [ 'application/zip', 'text/html' ] } });
is($r->{status}, 200, 'blocked_content_types set');
is_deeply([ sort @{ $r->{json}{limits}{blocked_content_types} // [] } ], [ 'application/zip', 'text/html' ], 'read back');
is_problem(new_att($LC, $LP, lbody(content_type => 'application/zip')), 415, 'unsupported_media_type', 'tenant-blocked application/zip (client)');
is_problem(new_att($LT, $LP, lbody(content_type => 'application/zip')), 415, 'unsupported_media_type', 'tenant-blocked application/zip (team)');
is_problem(new_att($LC, $LP, lbody(content_type => 'text/html')), 415, 'unsupported_media_type', 'text/html still blocked');
is(new_att($LC, $LP, lbody(content_type => 'application/pdf'))->{status}, 201, 'an unlisted type passes');

# quota (a fresh tenant: nothing stored yet)
my $q = new_tenant();
my $qp = new_project($q);
my $qu = onboard($q, project_ids => [ $qp->{id} ]);
my $QC = client_of($q, $qu);
is(team_api($q, GET => '/team/branding')->{json}{limits}{quota_bytes}, undef, 'no quota by default');
$r = team_api($q, PATCH => '/team/branding', json => { limits => { quota_bytes => 5000 } });
is($r->{json}{limits}{quota_bytes}, 5000, 'quota 5000');
is(new_att($QC, $qp->{id}, lbody(size => 3000))->{status}, 201, '3000 of 5000');
is_problem(new_att($QC, $qp->{id}, lbody(size => 2001)), 413, 'payload_too_large', '2001 more would exceed the quota');
is_problem(new_att(team_of($q), $qp->{id}, lbody(size => 2001)), 413, 'payload_too_large', 'for the team too');
is(new_att($QC, $qp->{id}, lbody(size => 2000))->{status}, 201, 'exactly up to the quota');
is_problem(new_att($QC, $qp->{id}, lbody(size => 1)), 413, 'payload_too_large', 'the quota is full');
is(team_api($q, PATCH => '/team/branding', json => { limits => { quota_bytes => 6000 } })->{status}, 200, 'quota raised to 6000');
is(new_att($QC, $qp->{id}, lbody(size => 1000))->{status}, 201, 'then the upload fits');
is_problem(new_att($QC, $qp->{id}, lbody(size => 1)), 413, 'payload_too_large', 'full again');
is(team_api($q, PATCH => '/team/branding', json => { limits => { quota_bytes => undef } })->{status}, 200, 'quota null');
is(new_att($QC, $qp->{id}, lbody(size => 100_000))->{status}, 201, 'no quota: any size under the limit');

# concurrent creates never reserve more than the quota together: each round
# leaves room for one 3000-byte file and sends eight at once (a race: a
# server that checks the sum and inserts without serialising the two lets
# several through in some rounds, not in every one)
{
    my $used = 3000 + 2000 + 1000 + 100_000;
    for my $round (1 .. 8) {
        my $quota = $used + 5000;
        die 'quota' unless team_api($q, PATCH => '/team/branding', json => { limits => { quota_bytes => $quota } })->{status} == 200;
        my @res = warm_race(map { [ $q->{host}, 'POST', "/projects/$qp->{id}/attachments",
            { filename => "race-$round-$_.bin", content_type => 'application/octet-stream', size => 3000 }, bearer($qu->{access}) ] } 1 .. 8);
        my $granted = grep { $_->[0] == 201 } @res;
        my $refused = grep { $_->[0] == 413 && ($_->[1]{code} // '') eq 'payload_too_large' } @res;
        note "quota round $round: " . join(' ', map { $_->[0] } @res);
        is($granted + $refused, 8, "quota race $round: every answer is 201 or 413");
        ok($granted == 1, "quota race $round: exactly one of eight concurrent 3000-byte files fits in 5000 bytes of room")
            or diag "granted $granted: the tenant now holds " . ($used + 3000 * $granted) . " bytes against a quota of $quota";
        $used += 3000 * $granted;
    }
}

# ------------------------------------------------------------------ the store is down
# scripts/stack has no s3-stop: the emulator is stopped by its pid (from the
# stack's pid file) and started again exactly as the stack started it (same
# program, arguments, directory and environment, read from /proc, with its
# pid written back to the pid file, so that `scripts/stack down` stops it).
SKIP: {
    my $dir = env_of('ATRIUM_STACK_DIR');
    my $pidfile = "$dir/run/s3.pid";
    my $slurp = sub { my ($f) = @_; open(my $fh, '<:raw', $f) or return ''; local $/; return <$fh> // '' };
    my ($pid) = $slurp->($pidfile) =~ /^(\d+)/;
    my @argv = $pid ? split(/\0/, $slurp->("/proc/$pid/cmdline")) : ();
    my %env = $pid ? map { split /=/, $_, 2 } grep { /=/ } split(/\0/, $slurp->("/proc/$pid/environ")) : ();
    my ($exe, $cwd) = $pid ? (readlink("/proc/$pid/exe"), readlink("/proc/$pid/cwd")) : ();
    skip 'cannot find the stack\'s S3 emulator process (or not root)', 11
        unless $> == 0 && grep({ m{scripts/s3-server\.js$} } @argv) && $exe && $cwd;
    my $bytes = "uploaded before the outage\n" x 10;
    my $w = new_att($A, $P, { filename => 'outage.txt', content_type => 'text/plain', size => length $bytes })->{json};
    is(put_object($w->{upload}{url}, $bytes, 'text/plain')->{status}, 200, 'uploaded while the store is up');
    my $answers = sub { $store->get(env_of('ATRIUM_S3_ENDPOINT') . '/')->{status} != 599 };
    my $restarted = 0;
    my $restart = sub {
        return 1 if $restarted++;
        my $kid = fork // return 0;
        if ($kid == 0) {
            chdir $cwd;
            POSIX::setsid();
            open(STDIN, '<', '/dev/null');
            open(STDOUT, '>>', "$dir/log/s3.log");
            open(STDERR, '>&', \*STDOUT);
            %ENV = %env;
            { no warnings 'exec'; exec { $exe } @argv; }
            POSIX::_exit(127);
        }
        open(my $fh, '>', "$pidfile.tmp") or return 0;
        print $fh "$kid\n";
        close $fh;
        rename("$pidfile.tmp", $pidfile) or return 0;
        return wait_until(20, $answers);
    };
    my $guard = bless [$restart], 'Restart';    # started again even if this block dies
    ok(kill('TERM', $pid), 'S3 emulator stopped');
    ok(wait_until(10, sub { !kill(0, $pid) && !$answers->() }), 'it is gone');
    $r = complete($A, $w->{id});
    is_problem($r, 503, 'unavailable', 'complete while the store is down');
    ok(($r->{headers}{'retry-after'} // '') =~ /^\d+$/, 'with Retry-After');
    is(team_api($t, GET => "/team/attachments/$w->{id}/download")->{status}, 409, 'the attachment stays pending');
    ok($restart->(), 'the emulator is started again');
    ok($answers->(), 'the store answers');
    $r = complete($A, $w->{id});
    is($r->{status}, 200, 'complete after the store is back') or diag explain body_of($r);
    is($r->{json}{sha256}, sha256_hex($bytes), 'with the sha256 of the bytes uploaded before');
    $get = fetch($A, $w->{id});
    is($get->{content}, $bytes, 'and the file downloads');
}

done_testing();

package Restart;
sub DESTROY { $_[0][0]->() }
