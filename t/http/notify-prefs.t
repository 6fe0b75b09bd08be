#!/usr/bin/perl
# Notification preferences (issue 6): per channel and per topic (messages,
# deliverables, milestones) for clients (PATCH /me, PATCH /team/clients/{id})
# and team members (PATCH /team/members/{id}); the GET shapes show the whole
# matrix; a switch stops the rows of that topic on that channel and nothing
# else; a switch turned off after a row was written stops it at send time
# (dead, 'unsubscribed').  One-click unsubscribe (RFC 8058): the
# List-Unsubscribe URL of a received mail, POSTed without any login, turns
# that topic off for that recipient; GET shows the state and changes
# nothing; tampered, truncated, expired and other tenants' tokens are 404
# token_invalid; no log ever holds a token.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use JSON::PP;
use Encode qw(decode);
use MIME::QuotedPrint qw(decode_qp);
use MIME::Base64 qw(decode_base64 encode_base64);
use Digest::SHA qw(hmac_sha256);
use Atrium::Test;
use Atrium::Auth;

my $tag = lc random_code('prf');
my $maildir = env_of('ATRIUM_MAILDIR');
my $WINDOW = env_of('ATRIUM_DIGEST_WINDOW_S') // 300;
my ($T, $F) = (JSON::PP::true, JSON::PP::false);

my $t = new_tenant(name => "Prefs Studio $tag");
my $u = new_tenant(name => "Other Studio $tag");

# ------------------------------------------------------------------ helpers

sub member {
    my ($name) = @_;
    my $res = team_api($t, POST => '/team/members', json => { name => $name, email => lc($name =~ s/\W+/-/gr) . "-$tag\@agency.example" });
    die "member: $res->{status} $res->{content}" unless $res->{status} == 201;
    return $res->{json};
}
sub client {
    my ($name, @projects) = @_;
    return onboard($t, name => $name, email => lc($name =~ s/\W+/-/gr) . "-$tag\@client.example", project_ids => \@projects);
}
sub must {
    my ($res, $what) = @_;
    die "$what: $res->{status} $res->{content}" unless $res->{status} == 200 || $res->{status} == 201 || $res->{status} == 204;
    return $res->{json};
}
# the full matrix, with switches off where named ("messages.email" => 0, "email" => 0)
sub matrix {
    my (%off) = @_;
    my %m = (email => $T, whatsapp => $F);
    for my $topic (qw(messages deliverables milestones)) {
        $m{topics}{$topic}{$_} = exists $off{"$topic.$_"} ? ($off{"$topic.$_"} ? $T : $F) : $T for qw(email whatsapp);
    }
    $m{email} = $off{email} ? $T : $F if exists $off{email};
    $m{whatsapp} = $off{whatsapp} ? $T : $F if exists $off{whatsapp};
    return \%m;
}
sub me { my ($c) = @_; return client_api($t, $c->{access}, GET => '/me')->{json} }
sub me_patch { my ($c, $json) = @_; return client_api($t, $c->{access}, PATCH => '/me', json => $json) }

sub rows {
    my ($template, $project) = @_;
    my $json = sql_in($t, "SELECT coalesce(json_agg(json_build_object('id', id, 'kind', recipient_kind,"
        . " 'rid', recipient_id, 'channel', channel, 'status', status, 'last_error', last_error,"
        . " 'payload', payload) ORDER BY seq), '[]') FROM outbox WHERE template = '$template'"
        . (defined $project ? " AND project_id = '$project'" : ''));
    return @{ decode_json($json) };
}
# the recipients ("kind:id", sorted) of the rows of a template whose payload
# has $key = $value
sub rcpt {
    my ($template, $key, $value) = @_;
    return [ sort map { "$_->{kind}:$_->{rid}" } grep { ($_->{payload}{$key} // '') eq $value } rows($template) ];
}
sub digest_rcpt {
    my ($msg_id) = @_;
    return [ sort map { "$_->{kind}:$_->{rid}" }
        grep { grep { ($_->{message_id} // '') eq $msg_id } @{ $_->{payload}{messages} // [] } } rows('message_digest') ];
}
sub cl { return map { "client:$_->{id}" } @_ }
sub tm { return map { "team:$_->{id}" } @_ }

my $n = 0;
sub deliver {
    my ($project, $title) = @_;
    my $d = must(team_api($t, POST => "/team/projects/$project/deliverables", json => { title => $title, due_date => '2027-05-01' }), 'deliverable');
    must(team_api($t, PATCH => "/team/deliverables/$d->{id}", json => { status => 'delivered' }), 'deliver');
    return $d;
}
sub complete {
    my ($project, $title) = @_;
    my $m = must(team_api($t, POST => "/team/projects/$project/milestones", json => { title => $title }), 'milestone');
    must(team_api($t, PATCH => "/team/milestones/$m->{id}", json => { status => 'done' }), 'done');
    return $m;
}
sub tpost {
    my ($project, $body) = @_;
    return must(team_api($t, POST => "/team/projects/$project/messages", json => { body => $body }), 'team post');
}
sub cpost {
    my ($c, $project, $body) = @_;
    return must(client_api($t, $c->{access}, POST => "/projects/$project/messages", json => { body => $body }), 'client post');
}
sub make_due {
    my ($project) = @_;
    if ($WINDOW <= 20) { sleep($WINDOW + 1); return }
    sql_in($t, "UPDATE outbox SET send_after = now() WHERE project_id = '$project'"
        . " AND template = 'message_digest' AND status = 'pending'; SELECT pg_notify('atrium_outbox', '')");
}

# mail: every message to an address of this test, decoded
my %parsed;
sub mails {
    my ($to, $match) = @_;
    my @out;
    for my $f (glob("$maildir/new/*"), glob("$maildir/cur/*")) {
        my $m = $parsed{$f};
        if (!$m) {
            open(my $fh, '<:raw', $f) or next;
            local $/;
            my $raw = <$fh> // '';
            close $fh;
            next unless $raw =~ /\Q$tag\E/;
            my ($head, $body) = split /\r?\n\r?\n/, $raw, 2;
            $head =~ s/\r?\n[ \t]+/ /g;
            my %h;
            for (split /\r?\n/, $head) { my ($k, $v) = /^([^:]+):\s*(.*)$/ or next; $h{ lc $k } //= $v }
            my $text = '';
            my ($b) = ($h{'content-type'} // '') =~ /boundary="?([^";]+)"?/;
            for my $part (defined $b ? split(/\r?\n--\Q$b\E(?:--)?[ \t]*\r?\n/, "\r\n$body") : ("Content-Type: text/plain\n\n$body")) {
                my ($ph, $pb) = split /\r?\n\r?\n/, $part, 2;
                next unless defined $pb && $ph =~ m{Content-Type:\s*text/plain}i;
                $text = $ph =~ /quoted-printable/i ? decode_qp($pb) : $pb;
            }
            $m = $parsed{$f} = { h => \%h, text => (eval { decode('UTF-8', $text) } // $text), rcpt => lc(($h{'x-rcptto'} // '') =~ s/[<>\s]//gr) };
        }
        next unless $m->{rcpt} eq lc $to;
        next if $match && $m->{text} !~ $match;
        push @out, $m;
    }
    return @out;
}
sub wait_mail {
    my ($to, $match, $secs) = @_;
    my $m;
    wait_until($secs // 25, sub { ($m) = mails($to, $match) });
    return $m;
}

# ------------------------------------------------------------------ people

my $P = new_project($t, name => "Prefs project $tag")->{id};
my $w1 = member('Wanda One');
my $w2 = member('Walt Two');
must(team_api($t, PUT => "/team/projects/$P/watchers/$_->{id}"), 'watch') for $w1, $w2;
my $c = client('Cora Subject', $P);
my $c2 = client('Carl Control', $P);

# ------------------------------------------------------------------ shapes

is_deeply(me($c)->{notify}, matrix(), 'GET /me: notify has both channels and every topic on both (defaults)');
my $tc = team_api($t, GET => "/team/clients/$c->{id}")->{json};
is_deeply($tc->{notify}, matrix(), 'GET /team/clients/{id}: the same matrix');
my $tw = team_api($t, GET => "/team/members/$w1->{id}")->{json};
is_deeply($tw->{notify}, matrix(), 'GET /team/members/{id}: the same matrix');
is($tw->{time_zone}, 'UTC', 'team member time_zone defaults to UTC');
my ($li) = grep { $_->{id} eq $w1->{id} } @{ team_api($t, GET => '/team/members?limit=200')->{json}{data} // [] };
is_deeply(($li // {})->{notify}, matrix(), 'the member list item too');
my ($lc) = grep { $_->{id} eq $c->{id} } @{ team_api($t, GET => '/team/clients?limit=200')->{json}{data} // [] };
is_deeply(($lc // {})->{notify}, matrix(), 'the client list item too');

# ------------------------------------------------------------------ PATCH /me

my $r = me_patch($c, { notify => { topics => { messages => { email => $F } } } });
is($r->{status}, 200, 'PATCH /me notify.topics.messages.email false') or diag explain $r->{json};
is_deeply(($r->{json} // {})->{notify}, matrix('messages.email' => 0), 'the answer: that one switch off');
is_deeply(me($c)->{notify}, matrix('messages.email' => 0), 'GET /me: that one switch off, the rest as before');
is_deeply(team_api($t, GET => "/team/clients/$c->{id}")->{json}{notify}, matrix('messages.email' => 0), 'the team sees it');

# refused patches change nothing
sub refused {
    my ($res, $re, $name) = @_;
    my @e = @{ ($res->{json} // {})->{errors} // [] };
    ok($res->{status} == 422 && ($res->{json}{code} // '') eq 'validation_failed' && (grep { ($_->{field} // '') =~ $re } @e),
        "$name: 422 naming the field") or diag explain { status => $res->{status}, body => $res->{json} // $res->{content} };
}
refused(me_patch($c, { notify => { topics => { gossip => { email => $F } } } }), qr/gossip/, 'an unknown topic');
refused(me_patch($c, { notify => { topics => { messages => { sms => $F } } } }), qr/sms/, 'an unknown channel');
refused(me_patch($c, { notify => { topics => { messages => { email => 'no' } } } }), qr/email|messages/, 'a switch that is not a boolean');
refused(me_patch($c, { notify => { topics => { messages => { email => undef } } } }), qr/email|messages/, 'a switch that is null');
refused(me_patch($c, { notify => { topics => [] } }), qr/topics/, 'topics not an object');
refused(me_patch($c, { notify => { topics => { messages => 'off' } } }), qr/messages/, 'a topic not an object');
is_deeply(me($c)->{notify}, matrix('messages.email' => 0), 'after the refused patches: unchanged');

# ------------------------------------------------------------------ effects

my $m1 = tpost($P, "team news $tag");
is_deeply(digest_rcpt($m1->{id}), [ sort(cl($c2)) ], 'messages.email off: no digest row for her, her neighbour gets one');
my $d1 = deliver($P, "First file $tag");
is_deeply(rcpt('deliverable_delivered', deliverable_id => $d1->{id}), [ sort(cl($c, $c2)) ], 'deliverables still reach her');
my $k1 = complete($P, "First step $tag");
is_deeply(rcpt('milestone_completed', milestone_id => $k1->{id}), [ sort(cl($c, $c2)) ], 'milestones still reach her');

$r = team_api($t, PATCH => "/team/clients/$c->{id}", json => { notify => { topics => { milestones => { email => $F } } } });
is($r->{status}, 200, 'the team turns her milestones email off (PATCH /team/clients/{id})') or diag explain $r->{json};
is_deeply(($r->{json} // {})->{notify}, matrix('messages.email' => 0, 'milestones.email' => 0), 'merged: the earlier switch stays off');
is_deeply(me($c)->{notify}, matrix('messages.email' => 0, 'milestones.email' => 0), 'GET /me shows it');
my $k2 = complete($P, "Second step $tag");
is_deeply(rcpt('milestone_completed', milestone_id => $k2->{id}), [ cl($c2) ], 'milestones: no row for her now');

$r = me_patch($c, { notify => { topics => { deliverables => { whatsapp => $F }, messages => { email => $T } } } });
is($r->{status}, 200, 'PATCH /me: deliverables.whatsapp off, messages.email back on');
is_deeply(me($c)->{notify}, matrix('deliverables.whatsapp' => 0, 'milestones.email' => 0), 'the matrix');
my $d2 = deliver($P, "Second file $tag");
is_deeply(rcpt('deliverable_delivered', deliverable_id => $d2->{id}), [ sort(cl($c, $c2)) ],
    'a WhatsApp switch leaves the email rows alone');
my $m2 = tpost($P, "more news $tag");
is_deeply(digest_rcpt($m2->{id}), [ sort(cl($c, $c2)) ], 'messages back on: a digest row for her again');

$r = me_patch($c, { notify => { email => $F } });
is($r->{status}, 200, 'PATCH /me: the email channel off');
is_deeply(me($c)->{notify}, matrix(email => 0, 'deliverables.whatsapp' => 0, 'milestones.email' => 0),
    'the channel switch is off, the topics are as they were');
my $d3 = deliver($P, "Third file $tag");
is_deeply(rcpt('deliverable_delivered', deliverable_id => $d3->{id}), [ cl($c2) ], 'email off: no email row of any topic');
must(me_patch($c, { notify => { email => $T } }), 'email back on');

# team members
$r = team_api($t, PATCH => "/team/members/$w1->{id}", json => { notify => { topics => { deliverables => { email => $F } } } });
is($r->{status}, 200, 'PATCH /team/members/{id} notify.topics.deliverables.email false') or diag explain $r->{json};
is_deeply(($r->{json} // {})->{notify}, matrix('deliverables.email' => 0), 'the answer: that one switch off');
is_deeply(team_api($t, GET => "/team/members/$w1->{id}")->{json}{notify}, matrix('deliverables.email' => 0), 'GET shows it');
$r = client_api($t, $c2->{access}, POST => "/projects/$P/deliverables/$d1->{id}/approve", json => { comment => "ok $tag" });
is($r->{status}, 200, 'a client approves');
is_deeply(rcpt('deliverable_decision', deliverable_id => $d1->{id}), [ tm($w2) ], 'decision: not to the member who turned deliverables off');
my $m3 = cpost($c2, $P, "client asks $tag");
is_deeply(digest_rcpt($m3->{id}), [ sort(tm($w1, $w2)) ], 'messages still reach that member');
$r = team_api($t, PATCH => "/team/members/$w1->{id}", json => { time_zone => 'Europe/Berlin' });
is(($r->{json} // {})->{time_zone}, 'Europe/Berlin', 'team member time_zone written');
refused(team_api($t, PATCH => "/team/members/$w1->{id}", json => { time_zone => 'Mars/Olympus_Mons' }), qr/time_zone/,
    'team member time_zone: an unknown zone');
refused(team_api($t, PATCH => "/team/members/$w1->{id}", json => { notify => { topics => { milestones => { pager => $T } } } }),
    qr/pager/, 'team member: an unknown channel');

# ------------------------------------------------------------------ switched off after the row was written

SKIP: {
    my ($pending) = grep { $_->{rid} eq $c2->{id} && $_->{status} eq 'pending' } rows('message_digest', $P);
    ok($pending, 'Carl has a pending digest') or skip 'no pending digest', 3;
    must(team_api($t, PATCH => "/team/clients/$c2->{id}", json => { notify => { topics => { messages => { email => $F } } } }),
        'messages off for Carl');
    make_due($P);
    my $row;
    ok(wait_until(25, sub { ($row) = grep { $_->{id} eq $pending->{id} } rows('message_digest'); $row && $row->{status} ne 'pending' }),
        'the notifier took the row');
    is_deeply([ @{ $row // {} }{qw(status last_error)} ], [ 'dead', 'unsubscribed' ],
        'switched off since it was written: dead, last_error unsubscribed');
    select(undef, undef, undef, 0.5);
    is(scalar(mails($c2->{email}, qr/team news \Q$tag\E/)), 0, 'and no mail');
    must(team_api($t, PATCH => "/team/clients/$c2->{id}", json => { notify => { topics => { messages => { email => $T } } } }),
        'messages on again for Carl');
}

# ------------------------------------------------------------------ one-click unsubscribe

my $c3 = client('Cleo Clicker', $P);
my $d4 = deliver($P, "Fourth file $tag");
$r = client_api($t, $c3->{access}, POST => "/projects/$P/deliverables/$d4->{id}/approve", json => {});
is($r->{status}, 200, 'a client approves (a decision mail for the watcher)');
my $mail = wait_mail($c3->{email}, qr/Fourth file \Q$tag\E/);
my $wmail = wait_mail($w2->{email}, qr/Fourth file \Q$tag\E/, 5);
my $PORT = env_of('ATRIUM_PUBLIC_PORT') || env_of('ATRIUM_HTTPS_PORT');
my $base = "https://$t->{host}" . ($PORT == 443 ? '' : ":$PORT");
my $lu_re = qr{^<\Q$base\E(/api/portal/v1/unsubscribe\?token=([A-Za-z0-9_.-]+))>$};
my ($path, $token) = (($mail // {})->{h}{'list-unsubscribe'} // '') =~ $lu_re;
my ($wpath, $wtoken) = (($wmail // {})->{h}{'list-unsubscribe'} // '') =~ $lu_re;

# the unsubscribe endpoint without any credential
sub unsub {
    my ($method, $tok, %o) = @_;
    my $p = defined $tok ? '/api/portal/v1/unsubscribe?token=' . $tok : '/api/portal/v1/unsubscribe';
    return api($method, $p, host => $o{host} // $t->{host}, base => '',
        ($method eq 'POST' && !$o{empty} ? (body => 'List-Unsubscribe=One-Click', type => 'application/x-www-form-urlencoded') : ()));
}
sub token_invalid {
    my ($res, $name) = @_;
    ok($res->{status} == 404 && (($res->{json} // {})->{code} // '') eq 'token_invalid', "$name: 404 token_invalid")
        or diag explain { status => $res->{status}, body => $res->{json} // $res->{content} };
}

SKIP: {
    ok($token, 'the client\'s mail has a List-Unsubscribe URL on the tenant\'s host')
        or diag explain(($mail // {})->{h}), skip 'no unsubscribe URL', 40;

    # GET: the state, nothing changed (mail scanners prefetch)
    $r = unsub(GET => $token);
    is($r->{status}, 200, 'GET the URL without login: 200') or diag explain $r->{json};
    is_deeply($r->{json}, { topic => 'deliverables', channel => 'email', recipient_kind => 'client', unsubscribed => $F },
        'GET: topic, channel, recipient kind, unsubscribed false');
    unsub(GET => $token);
    is_deeply(me($c3)->{notify}, matrix(), 'GET twice: nothing changed');

    # tokens that are not this one
    my ($text, $sig) = split /\./, $token, 2;
    my $flip = sub { my ($s, $i) = @_; my $ch = substr($s, $i, 1); substr($s, $i, 1) = $ch eq 'A' ? 'B' : 'A'; $s };
    token_invalid(unsub(POST => $text . '.' . $flip->($sig, length($sig) - 2)), 'a tampered signature');
    token_invalid(unsub(POST => $flip->($text, 5) . ".$sig"), 'a tampered text');
    token_invalid(unsub(POST => substr($token, 0, length($token) - 4)), 'a truncated token');
    token_invalid(unsub(POST => $text), 'the text without its signature');
    token_invalid(unsub(POST => "$token" . 'AAAA'), 'a token with bytes appended');
    token_invalid(unsub(POST => ''), 'an empty token');
    token_invalid(unsub(POST => undef), 'no token');
    token_invalid(unsub(GET => substr($token, 0, length($token) - 4)), 'GET of a truncated token');
    token_invalid(unsub(POST => 'x' x 600), 'a 600-character token');
    token_invalid(unsub(POST => $token, host => $u->{host}), "another tenant's host");
    token_invalid(unsub(GET => $token, host => $u->{host}), "GET on another tenant's host");
    is_deeply(me($c3)->{notify}, matrix(), 'none of them changed anything');

    # forged with the stack's own key: proves the format, then an expired one
    SKIP: {
        my $kf = env_of('ATRIUM_UNSUBSCRIBE_KEY_FILE');
        my $key;
        if ($kf && open(my $kh, '<:raw', $kf)) { local $/; $key = <$kh>; close $kh; $key =~ s/^\s+|\s+$//g }
        skip 'the unsubscribe key is not readable here', 6 unless $key;
        my $b64u = sub { my $s = encode_base64($_[0], ''); $s =~ tr{+/}{-_}; $s =~ s/=+$//; $s };
        my $forge = sub { my ($txt, $k) = @_; return $b64u->($txt) . '.' . $b64u->(hmac_sha256($txt, $k // $key)) };
        my $c4 = client('Fay Forged', $P);
        my $valid = $forge->("v1|$t->{tenant_id}|client|$c4->{id}|milestones|email|" . (time + 3600));
        token_invalid(unsub(POST => $forge->("v1|$t->{tenant_id}|client|$c4->{id}|milestones|email|" . (time - 60))),
            'a correctly signed token that expired a minute ago');
        token_invalid(unsub(POST => $forge->("v1|$t->{tenant_id}|client|$c4->{id}|milestones|email|" . (time + 3600), 'k' x 40)),
            'a token signed with another key');
        token_invalid(unsub(POST => $forge->("v1|$u->{tenant_id}|client|$c4->{id}|milestones|email|" . (time + 3600))),
            "a correctly signed token naming another tenant, on this tenant's host");
        token_invalid(unsub(POST => $forge->("v1|$t->{tenant_id}|client|$c4->{id}|gossip|email|" . (time + 3600))),
            'a correctly signed token naming no topic');
        is_deeply(team_api($t, GET => "/team/clients/$c4->{id}")->{json}{notify}, matrix(), 'her preferences untouched');
        $r = unsub(POST => $valid);
        ok($r->{status} == 200 && team_api($t, GET => "/team/clients/$c4->{id}")->{json}{notify}{topics}{milestones}{email} eq $F,
            'while the same token, unexpired, works (the forging is right)') or diag explain $r->{json};
    }

    # the one-click POST
    $r = unsub(POST => $token);
    is($r->{status}, 200, 'POST List-Unsubscribe=One-Click without login: 200') or diag explain $r->{json};
    is_deeply({ map { $_ => ($r->{json} // {})->{$_} } qw(topic channel unsubscribed) },
        { topic => 'deliverables', channel => 'email', unsubscribed => $T }, 'the answer: topic, channel, unsubscribed true');
    is_deeply(me($c3)->{notify}, matrix('deliverables.email' => 0), 'GET /me: deliverables email off, nothing else');
    is_deeply(unsub(GET => $token)->{json}{unsubscribed}, $T, 'GET now says unsubscribed');
    is(unsub(POST => $token)->{status}, 200, 'POST again: 200');
    is(unsub(POST => $token, empty => 1)->{status}, 200, 'POST with an empty body: 200');
    is_deeply(me($c3)->{notify}, matrix('deliverables.email' => 0), 'still just that switch');
    my $d5 = deliver($P, "Fifth file $tag");
    my $later = rcpt('deliverable_delivered', deliverable_id => $d5->{id});
    ok(!(grep { $_ eq "client:$c3->{id}" } @$later) && (grep { $_ eq "client:$c2->{id}" } @$later),
        'later deliverables: no row for the unsubscribed client (her neighbour has one)') or diag explain $later;
    my $k3 = complete($P, "Third step $tag");
    ok((grep { $_ eq "client:$c3->{id}" } @{ rcpt('milestone_completed', milestone_id => $k3->{id}) }),
        'other topics still reach her');

    # a team member's link
    SKIP: {
        ok($wtoken, "the watcher's decision mail has a List-Unsubscribe URL") or skip 'no watcher mail', 3;
        is_deeply(unsub(GET => $wtoken)->{json}, { topic => 'deliverables', channel => 'email', recipient_kind => 'team',
            unsubscribed => $F }, "GET of the watcher's link: recipient kind team");
        is(unsub(POST => $wtoken)->{status}, 200, "POST of the watcher's link: 200");
        is_deeply(team_api($t, GET => "/team/members/$w2->{id}")->{json}{notify}, matrix('deliverables.email' => 0),
            'the member\'s deliverables email is off');
    }

    # no log holds a token
    my $dir = env_of('ATRIUM_STACK_DIR');
    my $access = "$dir/nginx/access.log";
    my @logs = grep { -f $_ } ($access, glob("$dir/nginx/*.log"), glob(env_of('ATRIUM_LOG_DIR') . '/*.log'));
    my %seen;
    @logs = grep { !$seen{$_}++ } @logs;
    my ($hits, $leaks) = (0, []);
    for my $f (@logs) {
        open(my $fh, '<', $f) or next;
        while (my $line = <$fh>) {
            $hits++ if $f eq $access && $line =~ m{/api/portal/v1/unsubscribe};
            push @$leaks, $f if index($line, $sig) >= 0 || index($line, $text) >= 0
                || ($wtoken && index($line, (split /\./, $wtoken)[1]) >= 0);
        }
        close $fh;
    }
    ok($hits >= 10, "the access log has the unsubscribe requests ($hits)");
    is_deeply([ sort keys %{{ map { $_ => 1 } @$leaks }} ], [], 'no log (access, error, worker, notifier) holds a token');
}

done_testing();
