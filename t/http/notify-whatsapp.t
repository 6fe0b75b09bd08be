#!/usr/bin/perl
# WhatsApp Cloud API notifications (issue 6, "Channels") against a local
# stand-in (Atrium::WhatsApp) on the stack's ATRIUM_WHATSAPP_BASE that checks
# every request's shape and auth header and answers as scripted:
#   - tenant settings (PATCH /team/branding {whatsapp:{...}}), the token
#     write-only;
#   - a row only for a recipient with an E.164 phone who opted in (channel
#     and topic), only when the tenant has WhatsApp configured;
#   - the request: POST {base}/{version}/{phone_number_id}/messages, Bearer
#     token, JSON template message with the template's body parameters in
#     order, "to" without the +, the recipient's language;
#   - 500 then 200 -> sent once (attempts 2); 429 then 200 -> retried;
#     400 / 401 -> dead at once with "whatsapp <status>: <message>" (cut to
#     200 characters); with fallback_email the same notification goes out by
#     email (dedupe key + ':fallback') and arrives; a template with no
#     WhatsApp name -> dead, saying so, nothing sent;
#   - the notifier's log never holds the access token or message text.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use JSON::PP;
use Atrium::Test;
use Atrium::Auth;
use Atrium::WhatsApp;

my $tag = lc random_code('wa');
my $maildir = env_of('ATRIUM_MAILDIR');
my $WINDOW = env_of('ATRIUM_DIGEST_WINDOW_S') // 300;
my $PORT = env_of('ATRIUM_PUBLIC_PORT') || env_of('ATRIUM_HTTPS_PORT');
my ($T, $F) = (JSON::PP::true, JSON::PP::false);
my $PNID = '10' . substr(sprintf('%012d', $$ * 7919 + time), -12);
my $TOKEN = "EAAG${tag}Secret" . ('z' x 20);
my $VERSION = Atrium::WhatsApp::version();

my $wa = eval { Atrium::WhatsApp->start(token => $TOKEN, phone_number_id => $PNID) };
plan skip_all => "no WhatsApp stand-in: $@" unless $wa;
note 'WhatsApp stand-in at ' . $wa->base;

# a fresh E.164 number per person and run
my $phones = 0;
sub phone { return sprintf('+4915%09d', ($$ * 100 + ++$phones + time % 1000 * 1000000) % 1_000_000_000) }
sub digits { (my $d = $_[0]) =~ s/^\+//; $d }

# ------------------------------------------------------------------ tenant settings

my $t = new_tenant(name => "WhatsApp Studio $tag");
my %templates = (message_digest => 'atrium_messages', deliverable_delivered => 'atrium_delivered',
    deliverable_decision => 'atrium_decision', milestone_completed => 'atrium_milestone');
my $r = team_api($t, PATCH => '/team/branding', json => { whatsapp => { phone_number_id => $PNID,
    access_token => $TOKEN, templates => \%templates, fallback_email => $F } });
is($r->{status}, 200, 'PATCH /team/branding whatsapp settings') or diag explain $r->{json};
my $wb = team_api($t, GET => '/team/branding')->{json}{whatsapp} // {};
is($wb->{phone_number_id}, $PNID, 'phone_number_id read back');
is($wb->{access_token}, undef, 'the access token is write-only');
is_deeply($wb->{templates}, \%templates, 'template names read back');
is_deeply($wb->{fallback_email}, $F, 'fallback_email false');
unlike(team_api($t, GET => '/team/branding')->{content}, qr/\Q$TOKEN\E/, 'the token appears nowhere in GET');

# ------------------------------------------------------------------ helpers

sub must {
    my ($res, $what) = @_;
    die "$what: $res->{status} $res->{content}" unless $res->{status} =~ /^20[014]$/;
    return $res->{json};
}
# an active client of $tenant in @projects; %o: phone, whatsapp, locale, topics
sub client {
    my ($tenant, $name, $projects, %o) = @_;
    my $c = onboard($tenant, name => $name, email => lc($name =~ s/\W+/-/gr) . "-$tag\@client.example", project_ids => $projects);
    my %patch;
    $patch{phone} = $o{phone} if $o{phone};
    $patch{locale} = $o{locale} if $o{locale};
    $patch{notify} = { ($o{whatsapp} ? (whatsapp => $T) : ()), ($o{topics} ? (topics => $o{topics}) : ()) }
        if $o{whatsapp} || $o{topics};
    must(team_api($tenant, PATCH => "/team/clients/$c->{id}", json => \%patch), 'client settings') if %patch;
    return { %$c, %o };
}
sub rows {
    my ($tenant, $where) = @_;
    my $json = sql_in($tenant, "SELECT coalesce(json_agg(json_build_object('id', id, 'channel', channel,"
        . " 'template', template, 'kind', recipient_kind, 'rid', recipient_id, 'address', address,"
        . " 'payload', payload, 'status', status, 'attempts', attempts, 'last_error', last_error,"
        . " 'dedupe_key', dedupe_key, 'project_id', project_id) ORDER BY seq), '[]') FROM outbox"
        . " WHERE tenant_id = '$tenant->{tenant_id}'" . ($where ? " AND $where" : ''));
    return @{ decode_json($json) };
}
sub wa_rows { my ($tenant, $where) = @_; return rows($tenant, "channel = 'whatsapp'" . ($where ? " AND $where" : '')) }
sub who { return [ sort map { $_->{rid} } @_ ] }
sub ids { return [ sort map { $_->{id} } @_ ] }
sub link_of { my ($tenant, $p) = @_; return "https://$tenant->{host}" . ($PORT == 443 ? '' : ":$PORT") . "/projects/$p" }
sub done {
    my ($tenant, $project, $title) = @_;
    my $m = must(team_api($tenant, POST => "/team/projects/$project/milestones", json => { title => $title }), 'milestone');
    must(team_api($tenant, PATCH => "/team/milestones/$m->{id}", json => { status => 'done' }), 'done');
    return $m;
}
sub deliver {
    my ($tenant, $project, $title) = @_;
    my $d = must(team_api($tenant, POST => "/team/projects/$project/deliverables", json => { title => $title, due_date => '2027-06-01' }), 'deliverable');
    must(team_api($tenant, PATCH => "/team/deliverables/$d->{id}", json => { status => 'delivered' }), 'deliver');
    return $d;
}
# waits until no WhatsApp row (and no fallback row) of $tenant is pending;
# once a wait has timed out, later ones are short (a failing run ends soon)
my $late = 0;
sub settle {
    my ($tenant, $secs, $where) = @_;
    my $end = time + ($late ? 5 : $secs // 35);
    while (time <= $end) {
        return 1 unless grep { $_->{status} eq 'pending' } rows($tenant, "(channel = 'whatsapp' OR dedupe_key LIKE '%:fallback')"
            . ($where ? " AND $where" : ''));
        select(undef, undef, undef, 0.25);
    }
    $late = 1;
    return 0;
}
sub mail_count {
    my ($to, $re) = @_;
    my $n = 0;
    for my $f (glob("$maildir/new/*"), glob("$maildir/cur/*")) {
        open(my $fh, '<:raw', $f) or next;
        local $/;
        my $m = <$fh> // '';
        close $fh;
        next unless $m =~ /^X-RcptTo:\s*<?\Q$to\E>?\s*$/mi;
        (my $flat = $m) =~ s/=\r?\n//g;
        $n++ if $flat =~ $re;
    }
    return $n;
}

# ------------------------------------------------------------------ who gets a row

my $P = new_project($t, name => "Launch $tag")->{id};
my %c;
$c{ok} = client($t, 'Wilma Whatsapp', [$P], phone => phone(), whatsapp => 1, locale => 'de');
$c{nophone} = client($t, 'Nora Nophone', [$P], whatsapp => 1);
$c{optout} = client($t, 'Otto Optout', [$P], phone => phone());
$c{topicoff} = client($t, 'Tina Topicoff', [$P], phone => phone(), whatsapp => 1,
    topics => { milestones => { whatsapp => $F } });
$c{e500} = client($t, 'Fritz Flaky', [$P], phone => phone(), whatsapp => 1);
$c{e429} = client($t, 'Rosa Ratelimit', [$P], phone => phone(), whatsapp => 1);
$c{e400} = client($t, 'Bert Badrequest', [$P], phone => phone(), whatsapp => 1);
$c{e401} = client($t, 'Ulla Unauthorized', [$P], phone => phone(), whatsapp => 1);
$c{hangup} = client($t, 'Hugo Hangup', [$P], phone => phone(), whatsapp => 1);
$c{e503} = client($t, 'Vera Unavailable', [$P], phone => phone(), whatsapp => 1);
is_deeply(team_api($t, GET => "/team/clients/$c{ok}{id}")->{json}{notify}{whatsapp}, $T, 'a client opted in to WhatsApp');

my $long = '(#132001) Template name does not exist in the translation ' . ('x' x 300);
$wa->script($c{e500}{phone}, 500, 200);
$wa->script($c{e429}{phone}, [ 429, undef ], 200);
$wa->script($c{e400}{phone}, [ 400, Atrium::WhatsApp::error_body(400, $long) ]);
$wa->script($c{e401}{phone}, 401);
$wa->script($c{hangup}{phone}, { close => 1 }, 200);
$wa->script($c{e503}{phone}, 503, 503, 200);

my $M = done($t, $P, "Kick-off done $tag");
my @wr = wa_rows($t, "template = 'milestone_completed' AND project_id = '$P'");
is_deeply(who(@wr), [ sort map { $c{$_}{id} } qw(ok e500 e429 e400 e401 hangup e503) ],
    'WhatsApp rows: opted in with a phone (not without a phone, not opted out, not with the topic off)');
my ($okrow) = grep { $_->{rid} eq $c{ok}{id} } @wr;
is(($okrow // {})->{address}, $c{ok}{phone}, 'the row is addressed to the E.164 number');
is_deeply([ @{ $okrow // {} }{qw(kind template)} ], [ 'client', 'milestone_completed' ], 'kind and template');
is(($okrow // {})->{payload}{milestone_title}, "Kick-off done $tag", 'the same payload as email');
my @er = rows($t, "channel = 'email' AND template = 'milestone_completed' AND project_id = '$P'");
is(scalar @er, 10, 'and every member client has an email row as well');
my %dk = map { $_->{dedupe_key} => 1 } @wr, @er;
is(scalar keys %dk, 17, 'dedupe keys differ per channel');

# a tenant without WhatsApp: no row, whatever the client wants
my $n = new_tenant(name => "No WhatsApp $tag");
my $PN = new_project($n, name => "Plain $tag")->{id};
my $cp = client($n, 'Pia Plain', [$PN], phone => phone(), whatsapp => 1);
done($n, $PN, "Plain milestone $tag");
is(scalar(rows($n, "template = 'milestone_completed'")), 1, 'a tenant without WhatsApp settings: the email row only');
is_deeply([ wa_rows($n) ], [], 'and no WhatsApp row');

# ------------------------------------------------------------------ delivery

ok(settle($t, 40), 'every WhatsApp row is final');
my %row = map { $_->{rid} => $_ } wa_rows($t, "template = 'milestone_completed'");
my %req = map { $_ => [ $wa->requests(to => $c{$_}{phone}) ] } keys %c;

# the happy path and the request's shape
my @ok = @{ $req{ok} };
is(scalar @ok, 1, 'the stand-in received exactly one request for the client');
my $q = $ok[0] // {};
is_deeply($q->{problems}, [], 'the request has the Cloud API shape') or diag explain $q;
is($q->{path}, "/$VERSION/$PNID/messages", "POST /$VERSION/{phone_number_id}/messages");
is($q->{authorization}, "Bearer $TOKEN", "Authorization: Bearer with the tenant's token");
like($q->{content_type} // '', qr{^application/json}, 'Content-Type: application/json');
is($q->{to}, digits($c{ok}{phone}), '"to": the number without +');
is(($q->{json} // {})->{recipient_type}, 'individual', 'recipient_type individual');
is($q->{template}, 'atrium_milestone', "the tenant's template name for milestone_completed");
is($q->{language}, 'de', "the recipient's language");
is_deeply($q->{params}, [ 'Wilma Whatsapp', "Launch $tag", "Kick-off done $tag", link_of($t, $P) ],
    'body parameters: name, project, milestone, link');
is_deeply([ @{ $row{ $c{ok}{id} } // {} }{qw(status attempts last_error)} ], [ 'sent', 1, undef ], 'the row: sent, one attempt');
is_deeply([ map { $_->{language} } @{ $req{e500} } ], [ 'en', 'en' ], 'a client without a locale of her own: en');

# 500 then 200
is_deeply([ map { $_->{status} } @{ $req{e500} } ], [ 500, 200 ], '500 then 200: two requests');
is_deeply([ @{ $row{ $c{e500}{id} } // {} }{qw(status attempts last_error)} ], [ 'sent', 2, undef ],
    '500 then 200: sent once, attempts 2, no error left');
ok(!(grep { @{ $_->{problems} } } @{ $req{e500} }), 'the retry has the same shape');
is($req{e500}[0]{body}, $req{e500}[1]{body}, 'and the same body');
# 429 then 200
is_deeply([ map { $_->{status} } @{ $req{e429} } ], [ 429, 200 ], '429: retried');
is_deeply([ @{ $row{ $c{e429}{id} } // {} }{qw(status attempts)} ], [ 'sent', 2 ], '429 then 200: sent, attempts 2');
# 400
is(scalar @{ $req{e400} }, 1, '400: one request, no retry');
my $e400 = $row{ $c{e400}{id} } // {};
is_deeply([ @$e400{qw(status attempts)} ], [ 'dead', 1 ], '400: dead at the first attempt');
like($e400->{last_error} // '', qr/^whatsapp 400: \(#132001\) Template name does not exist/, '400: last_error "whatsapp 400: <message>"');
ok(length($e400->{last_error} // '') <= length('whatsapp 400: ') + 200, '400: the message cut to 200 characters')
    or diag length($e400->{last_error} // '');
is_deeply([ rows($t, "dedupe_key LIKE '%:fallback'") ], [], 'fallback off: no email stands in');
# 401
is(scalar @{ $req{e401} }, 1, '401: one request');
is_deeply([ @{ $row{ $c{e401}{id} } // {} }{qw(status attempts)} ], [ 'dead', 1 ], '401: dead (a 4xx other than 429)');
like($row{ $c{e401}{id} }{last_error} // '', qr/^whatsapp 401: Error validating access token/, '401: last_error says so');
# no answer at all, and 503 twice
is_deeply([ map { $_->{status} } @{ $req{hangup} } ], [ 'closed', 200 ], 'a connection closed without an answer: retried');
is_deeply([ @{ $row{ $c{hangup}{id} } // {} }{qw(status attempts last_error)} ], [ 'sent', 2, undef ], 'then sent, attempts 2');
is_deeply([ map { $_->{status} } @{ $req{e503} } ], [ 503, 503, 200 ], '503, 503, 200: retried twice');
is_deeply([ @{ $row{ $c{e503}{id} } // {} }{qw(status attempts)} ], [ 'sent', 3 ], 'then sent, attempts 3');
my @gaps = map { $req{e503}[$_]{at} - $req{e503}[ $_ - 1 ]{at} } 1, 2;
ok($gaps[0] >= 1.5 && $gaps[1] > $gaps[0], sprintf('backoff from about 2 s, growing (%.1f s, then %.1f s)', @gaps));
# nobody else
my %expected_to = map { digits($c{$_}{phone}) => 1 } qw(ok e500 e429 e400 e401 hangup e503);
my @phase1 = $wa->requests;
is(scalar @phase1, 12, 'twelve requests in all (1 + 2 + 2 + 1 + 1 + 2 + 3)');
is_deeply([ grep { !$expected_to{ $_->{to} // '' } } @phase1 ], [],
    'none for the client without a phone, the one opted out, the one with the topic off');
is_deeply([ map { scalar @{ $req{$_} } } qw(optout topicoff) ], [ 0, 0 ], '(their numbers: no request)');
is(scalar(grep { @{ $_->{problems} } } $wa->requests), 0, 'every request had the right shape');

# ------------------------------------------------------------------ fallback to email

$r = team_api($t, PATCH => '/team/branding', json => { whatsapp => { fallback_email => $T } });
is($r->{status}, 200, 'fallback_email on');
is_deeply(team_api($t, GET => '/team/branding')->{json}{whatsapp}{fallback_email}, $T, 'read back');
is(team_api($t, GET => '/team/branding')->{json}{whatsapp}{phone_number_id}, $PNID, 'the other settings stay');
my $P2 = new_project($t, name => "Fallback $tag")->{id};
my $cf = client($t, 'Fabian Fallback', [$P2], phone => phone(), whatsapp => 1);
my $wm = must(team_api($t, POST => '/team/members', json => { name => 'Mia Member', email => "mia-$tag\@agency.example",
    phone => phone(), notify => { email => $T, whatsapp => $T } }), 'member');
must(team_api($t, PUT => "/team/projects/$P2/watchers/$wm->{id}"), 'watcher');
$wa->script($cf->{phone}, [ 400, Atrium::WhatsApp::error_body(400, '(#131026) Message undeliverable') ]);
my $D = deliver($t, $P2, "Fallback file $tag");
ok(settle($t, 30, "project_id = '$P2'"), 'the delivery and its fallback are final');
my ($fw) = wa_rows($t, "project_id = '$P2' AND recipient_id = '$cf->{id}'");
is_deeply([ @{ $fw // {} }{qw(status attempts)} ], [ 'dead', 1 ], '400 with fallback: the WhatsApp row is dead');
like(($fw // {})->{last_error} // '', qr/^whatsapp 400: \(#131026\) Message undeliverable/, 'with its error');
my ($fb) = rows($t, "dedupe_key = '" . (($fw // {})->{dedupe_key} // 'none') . ":fallback'");
ok($fb, 'an email row stands in: dedupe key of the WhatsApp row + :fallback') or diag explain [ rows($t, "project_id = '$P2'") ];
is_deeply([ @{ $fb // {} }{qw(channel template kind rid address project_id)} ],
    [ 'email', 'deliverable_delivered', 'client', $cf->{id}, $cf->{email}, $P2 ], 'same recipient and template, to the email address');
is_deeply(($fb // {})->{payload}{deliverable_id}, $D->{id}, 'same payload');
is(($fb // {})->{status}, 'sent', 'the fallback email was sent');
ok(wait_until(15, sub { mail_count($cf->{email}, qr/Fallback file \Q$tag\E/) >= 2 }),
    'the fallback mail arrived (with the ordinary one: two)');
is(mail_count($cf->{email}, qr/Fallback file \Q$tag\E/), 2, 'exactly two');

# a decision to a watcher over WhatsApp (team member recipient)
$r = client_api($t, $cf->{access}, POST => "/projects/$P2/deliverables/$D->{id}/approve", json => { comment => 'fine' });
is($r->{status}, 200, 'the client approves');
ok(settle($t, 30, "project_id = '$P2'"), 'the decision is final');
my @dq = $wa->requests(to => $wm->{phone});
is(scalar @dq, 1, 'the watcher gets one WhatsApp request');
is(($dq[0] // {})->{template}, 'atrium_decision', 'deliverable_decision template');
is_deeply(($dq[0] // {})->{params}, [ 'Mia Member', "Fallback $tag", "Fallback file $tag", 'approved', 'Fabian Fallback' ],
    'body parameters: name, project, deliverable, decision, by');
my ($dr) = wa_rows($t, "recipient_id = '$wm->{id}'");
is_deeply([ @{ $dr // {} }{qw(kind status)} ], [ 'team', 'sent' ], 'a team row, sent');

# ------------------------------------------------------------------ a digest over WhatsApp

my $P3 = new_project($t, name => "Digest $tag")->{id};
my $cd = client($t, 'Dora Digest', [$P3], phone => phone(), whatsapp => 1);
my $secret_text = "confidential body $tag";
must(team_api($t, POST => "/team/projects/$P3/messages", json => { body => $secret_text }), 'post') for 1 .. 2;
my ($dw) = wa_rows($t, "project_id = '$P3'");
is(scalar(@{ ($dw // {})->{payload}{messages} // [] }), 2, 'two messages fold into one WhatsApp digest row');
if ($WINDOW > 20) {
    sql_in($t, "UPDATE outbox SET send_after = now() WHERE project_id = '$P3' AND status = 'pending'; SELECT pg_notify('atrium_outbox', '')");
} else {
    sleep($WINDOW + 1);
}
ok(settle($t, 30, "project_id = '$P3'"), 'the digest is final');
my @gq = $wa->requests(to => $cd->{phone});
is(scalar @gq, 1, 'one WhatsApp request for the digest');
is(($gq[0] // {})->{template}, 'atrium_messages', 'message_digest template');
is_deeply(($gq[0] // {})->{params}, [ 'Dora Digest', "Digest $tag", '2', link_of($t, $P3) ],
    'body parameters: name, project, number of messages, link');
unlike(($gq[0] // {})->{body} // '', qr/confidential/, 'the message text is not sent to WhatsApp');

# ------------------------------------------------------------------ no template name

my $t2 = new_tenant(name => "Half configured $tag");
must(team_api($t2, PATCH => '/team/branding', json => { whatsapp => { phone_number_id => $PNID, access_token => $TOKEN,
    templates => { message_digest => 'atrium_messages' } } }), 'half configured');
my $P4 = new_project($t2, name => "Unnamed $tag")->{id};
my $cx = client($t2, 'Xavi Unnamed', [$P4], phone => phone(), whatsapp => 1);
done($t2, $P4, "Unnamed milestone $tag");
my $xr;
ok(settle($t2, 20) && (($xr) = wa_rows($t2)), 'a template without a WhatsApp name: final');
is(($xr // {})->{status}, 'dead', 'dead');
like(($xr // {})->{last_error} // '', qr/template/i, 'last_error names the missing template');
like(($xr // {})->{last_error} // '', qr/milestone_completed/, 'which one');
is(scalar($wa->requests(to => $cx->{phone})), 0, 'nothing was sent');

# ------------------------------------------------------------------ logs

my $log = env_of('ATRIUM_LOG_DIR') . '/atrium-notifier.log';
open(my $lf, '<', $log) or die "$log: $!";
my @lines = <$lf>;
close $lf;
my @mine = grep { /"outbox_id":"([^"]+)"/ && $row{ $c{e500}{id} } && $1 eq $row{ $c{e500}{id} }{id} } @lines;
is(scalar @mine, 2, 'the notifier logs both attempts of the 500-then-200 row');
ok(!(grep { /\Q$TOKEN\E/ } @lines), 'the notifier log never holds the access token');
ok(!(grep { /confidential body/ } @lines), 'nor the message text');

$wa->stop;
done_testing();
