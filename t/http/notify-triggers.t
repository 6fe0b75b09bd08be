#!/usr/bin/perl
# Who hears of what (issue 6, "Triggers and recipients"), checked on the
# outbox rows the workers write and on the mail that reaches the SMTP
# catcher:
#   client message -> the project's watchers (not other projects' watchers,
#   not the author); client-visible team message -> the member clients that
#   are active (not invited or disabled ones, not watchers); internal
#   message -> watchers only (never a client, never the authoring member);
#   deliverable set to delivered -> member clients (client-visible ones
#   only); approve / request changes -> watchers; milestone set to done ->
#   member clients (client-visible ones only).
# Digests: three messages in the window fold into one message_digest row and
# one mail listing all three, each with its local time in the recipient's
# zone (a client in Asia/Tokyo, a team member in Asia/Kolkata, a client in
# UTC as the control).  Activity mail is branded, multipart, links to the
# project, and carries List-Unsubscribe + List-Unsubscribe-Post (RFC 8058)
# with a signed token for that recipient and topic; invite and password
# reset mail carries neither.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use JSON::PP;
use Encode qw(decode encode);
use MIME::QuotedPrint qw(decode_qp);
use MIME::Base64 qw(decode_base64);
use Time::Local qw(timegm);
use HTTP::Tiny;
use Atrium::Test;
use Atrium::Auth;

binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);

my $tag = lc random_code('trg');
my $maildir = env_of('ATRIUM_MAILDIR');
my $PORT = env_of('ATRIUM_PUBLIC_PORT') || env_of('ATRIUM_HTTPS_PORT');
my $WINDOW = env_of('ATRIUM_DIGEST_WINDOW_S') // 300;
my $display = "Trigger Studio $tag";

my $t = new_tenant(name => $display);
my $r = team_api($t, PATCH => '/team/branding', json => {
    colors   => { primary => '#12ab34' },
    logo_url => "https://cdn.example/$tag/logo.png",
});
is($r->{status}, 200, 'branding set') or diag explain $r->{json};

# ------------------------------------------------------------------ helpers

sub portal_base { return "https://$t->{host}" . ($PORT == 443 ? '' : ":$PORT") }
sub link_of { return portal_base() . "/projects/$_[0]" }

sub member {
    my ($name, %o) = @_;
    my $res = team_api($t, POST => '/team/members', json => { name => $name,
        email => lc($name =~ s/\W+/-/gr) . "-$tag\@agency.example", %o });
    die "member: $res->{status} $res->{content}" unless $res->{status} == 201;
    return $res->{json};
}
sub watch {
    my ($project, $m) = @_;
    my $res = team_api($t, PUT => "/team/projects/$project/watchers/$m->{id}");
    die "watcher: $res->{status} $res->{content}" unless $res->{status} == 204;
}
sub client {
    my ($name, @projects) = @_;
    return onboard($t, name => $name, email => lc($name =~ s/\W+/-/gr) . "-$tag\@client.example",
        project_ids => \@projects);
}
sub ok201 {
    my ($res, $what) = @_;
    die "$what: $res->{status} $res->{content}" unless $res->{status} == 201 || $res->{status} == 200;
    return $res->{json};
}
sub tpost {
    my ($project, $body, %o) = @_;
    my %h = $o{member} ? ('x-team-member' => $o{member}{id}) : ();
    return ok201(team_api($t, POST => "/team/projects/$project/messages", headers => \%h,
        json => { body => $body, ($o{visibility} ? (visibility => $o{visibility}) : ()) }), 'team post');
}
sub cpost {
    my ($c, $project, $body) = @_;
    return ok201(client_api($t, $c->{access}, POST => "/projects/$project/messages", json => { body => $body }),
        'client post');
}
sub deliverable {
    my ($project, $title, %o) = @_;
    return ok201(team_api($t, POST => "/team/projects/$project/deliverables",
        json => { title => $title, due_date => '2027-03-01', %o }), 'deliverable');
}
sub milestone {
    my ($project, $title, %o) = @_;
    return ok201(team_api($t, POST => "/team/projects/$project/milestones", json => { title => $title, %o }),
        'milestone');
}

# Every outbox row of the tenant (optionally: a template), oldest first.
sub rows {
    my ($template) = @_;
    my $where = defined $template ? " AND template = '$template'" : '';
    my $json = sql_in($t, "SELECT coalesce(json_agg(json_build_object('id', id, 'channel', channel,"
        . " 'template', template, 'kind', recipient_kind, 'rid', recipient_id, 'address', address,"
        . " 'project_id', project_id, 'payload', payload, 'status', status, 'dedupe_key', dedupe_key,"
        . " 'send_after', send_after, 'last_error', last_error) ORDER BY seq), '[]') FROM outbox"
        . " WHERE tenant_id = '$t->{tenant_id}'$where");
    return @{ decode_json($json) };
}
# "kind:id" of each row (sorted), e.g. of the rows naming a deliverable
sub who { return [ sort map { "$_->{kind}:$_->{rid}" } @_ ] }
sub as { my ($kind, @people) = @_; return map { "$kind:$_->{id}" } @people }
sub team_of { return sort(as('team', @_)) }
sub clients_of { return sort(as('client', @_)) }

# The digest rows holding a message, as "kind:id" (sorted).
sub digest_recipients {
    my ($msg_id) = @_;
    return who(grep { grep { ($_->{message_id} // '') eq $msg_id } @{ $_->{payload}{messages} // [] } }
        rows('message_digest'));
}

# Makes pending digests of a project due now and wakes the notifiers (the
# stack's window is longer than a test; with a short one, just wait it out).
sub make_due {
    my ($project) = @_;
    if ($WINDOW <= 20) {
        sleep($WINDOW + 1);
        return;
    }
    sql_in($t, "UPDATE outbox SET send_after = now() WHERE project_id = '$project'"
        . " AND template = 'message_digest' AND status = 'pending'; SELECT pg_notify('atrium_outbox', '')");
}

# ------------------------------------------------------------------ mail

my %parsed;
sub parse_mail {
    my ($raw) = @_;
    my %m = (raw => $raw);
    my ($head, $body) = split /\r?\n\r?\n/, $raw, 2;
    $head =~ s/\r?\n[ \t]+/ /g;
    for my $line (split /\r?\n/, $head) {
        my ($k, $v) = $line =~ /^([^:]+):\s*(.*)$/ or next;
        $m{h}{ lc $k } //= $v;
        $m{d}{ lc $k } //= eval { decode('MIME-Header', $v) } // $v;
    }
    my ($b) = ($m{h}{'content-type'} // '') =~ /boundary="?([^";]+)"?/;
    if (defined $b) {
        for my $part (split /\r?\n--\Q$b\E(?:--)?[ \t]*\r?\n/, "\r\n" . ($body // '')) {
            my ($ph, $pb) = split /\r?\n\r?\n/, $part, 2;
            next unless defined $pb && $ph =~ m{Content-Type:\s*([\w/+.-]+)}i;
            my $type = lc $1;
            my $text = $ph =~ /quoted-printable/i ? decode_qp($pb) : $ph =~ /base64/i ? decode_base64($pb) : $pb;
            $m{parts}{$type} = eval { decode('UTF-8', $text) } // $text;
        }
    } else {
        $m{parts}{'text/plain'} = eval { decode('UTF-8', ($m{h}{'content-transfer-encoding'} // '') =~ /quoted/i
            ? decode_qp($body // '') : ($body // '')) } // '';
    }
    $m{text} = $m{parts}{'text/plain'} // '';
    $m{html} = $m{parts}{'text/html'} // '';
    ($m{rcpt}) = $head =~ /^X-RcptTo:\s*(\S+?)\s*$/mi;
    $m{rcpt} //= ($head =~ /^To:.*?<?([^\s<>]+\@[^\s<>]+)>?/mi)[0];
    $m{rcpt} = lc($m{rcpt} // '');
    return \%m;
}
# Every mail of this test (recipient tagged), parsed; optionally matching.
sub mails {
    my ($match) = @_;
    my @out;
    for my $f (glob("$maildir/new/*"), glob("$maildir/cur/*")) {
        my $m = $parsed{$f};
        if (!$m) {
            open(my $fh, '<:raw', $f) or next;
            local $/;
            my $raw = <$fh> // '';
            close $fh;
            next unless $raw =~ /\Q$tag\E/;
            $m = $parsed{$f} = parse_mail($raw);
        }
        next unless $m->{rcpt} =~ /\Q$tag\E/;
        next if $match && ($m->{text} . ' ' . ($m->{d}{subject} // '')) !~ $match;
        push @out, $m;
    }
    return @out;
}
# {address => count} of the mails matching
sub mail_counts {
    my ($match) = @_;
    my %n;
    $n{ $_->{rcpt} }++ for mails($match);
    return \%n;
}
sub addr_counts { my %n; $n{ lc $_->{email} }++ for @_; return \%n }

# ------------------------------------------------------------------ people

my $P1 = new_project($t, name => "Alpha $tag")->{id};
my $P2 = new_project($t, name => "Beta $tag")->{id};
my ($w1, $w2, $w3, $w4) = map { member("Watcher $_") } qw(One Two Three Four);
watch($P1, $_) for $w1, $w2;
watch($P2, $w3);
my $a1 = client('Ada Alpha', $P1);
my $a2 = client('Abe Alpha', $P1);
my $ad = client('Dee Disabled', $P1);
is(team_api($t, PATCH => "/team/clients/$ad->{id}", json => { status => 'disabled' })->{status}, 200,
    'a member client disabled');
my $ai = new_client($t, name => 'Ivo Invited', email => "ivo-invited-$tag\@client.example");
is(team_api($t, PUT => "/team/projects/$P1/members/$ai->{id}")->{status}, 204, 'an invited (not active) member client');
my $b1 = client('Bea Beta', $P2);
my @everyone = ($w1, $w2, $w3, $w4, $a1, $a2, $ad, $ai, $b1);

is_deeply([ rows() ], [], 'no outbox row yet');

# ------------------------------------------------------------------ messages

my $cm = cpost($a1, $P1, "client question $tag");
is_deeply(digest_recipients($cm->{id}), [ team_of($w1, $w2) ],
    "client message -> the project's watchers (not another project's, not a non-watcher, no client, not the author)");
my $tm = tpost($P1, "team answer $tag", member => $w1);
is_deeply(digest_recipients($tm->{id}), [ clients_of($a1, $a2) ],
    'client-visible team message -> the active member clients (not invited, disabled, watchers or the author)');
my $im = tpost($P1, "internal note $tag", member => $w1, visibility => 'internal');
is_deeply(digest_recipients($im->{id}), [ team_of($w2) ], 'internal message -> watchers except the authoring member');
my $iu = tpost($P1, "internal unsigned $tag", visibility => 'internal');
is_deeply(digest_recipients($iu->{id}), [ team_of($w1, $w2) ], 'internal message without an author -> every watcher');
my $bm = cpost($b1, $P2, "beta question $tag");
is_deeply(digest_recipients($bm->{id}), [ team_of($w3) ], "the other project's client message -> its own watcher only");

my @dig = grep { $_->{project_id} eq $P1 } rows('message_digest');
is_deeply(who(@dig), [ sort(team_of($w1, $w2), clients_of($a1, $a2)) ], 'P1: one digest row per recipient (folded)');
ok(!(grep { $_->{kind} eq 'client' && encode_json($_->{payload}) =~ /internal/ } rows()),
    'no client row holds anything of an internal message');
ok(!(grep { $_->{channel} ne 'email' } rows()), 'every row is an email row (the tenant has no WhatsApp)');
my ($d_w2) = grep { $_->{rid} eq $w2->{id} } @dig;
is_deeply([ map { $_->{message_id} } @{ $d_w2->{payload}{messages} // [] } ], [ $cm->{id}, $im->{id}, $iu->{id} ],
    'a watcher\'s digest lists its messages in order');
is($d_w2->{payload}{link}, link_of($P1), 'digest payload: the project link') or diag explain $d_w2->{payload};
is($d_w2->{payload}{project_name}, "Alpha $tag", 'digest payload: the project name');
my ($item) = grep { $_->{message_id} eq $cm->{id} } @{ $d_w2->{payload}{messages} // [] };
is_deeply([ @{ $item // {} }{qw(author_name excerpt)} ], [ 'Ada Alpha', "client question $tag" ], 'digest item: author and excerpt');
like($item->{created_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'digest item: created_at RFC 3339 UTC');
is_deeply({ map { $_->{rid} => $_->{address} } @dig },
    { map { $_->{id} => $_->{email} } $w1, $w2, $a1, $a2 }, 'each row to the recipient\'s own address');

# an attachment-only message: a digest line without text, "+N files"
sub upload {
    my ($c, $project, $name) = @_;
    my $bytes = "%PDF-1.4 $name " . ('x' x 200) . "\n";
    my $a = ok201(client_api($t, $c->{access}, POST => "/projects/$project/attachments",
        json => { filename => $name, content_type => 'application/pdf', size => length $bytes }), 'attachment');
    my $put = HTTP::Tiny->new(timeout => 10)->request(PUT => $a->{upload}{url},
        { content => $bytes, headers => { 'content-type' => 'application/pdf' } });
    die "PUT: $put->{status} $put->{content}" unless $put->{status} == 200;
    ok201(client_api($t, $c->{access}, POST => "/attachments/$a->{id}/complete"), 'complete');
    return $a->{id};
}
my $fm = ok201(client_api($t, $a2->{access}, POST => "/projects/$P1/messages",
    json => { attachment_ids => [ upload($a2, $P1, 'plan-a.pdf'), upload($a2, $P1, 'plan-b.pdf') ] }), 'attachment-only post');
is_deeply(digest_recipients($fm->{id}), [ team_of($w1, $w2) ], 'an attachment-only client message -> the watchers');
my ($fitem) = grep { $_->{message_id} eq $fm->{id} } map { @{ $_->{payload}{messages} // [] } }
    grep { ($_->{rid} // '') eq $w2->{id} } rows('message_digest');
is_deeply([ @{ $fitem // {} }{qw(author_name excerpt attachments)} ], [ 'Abe Alpha', undef, 2 ],
    'its digest item: author, no excerpt, 2 attachments');

# ------------------------------------------------------------------ deliverables

sub of_deliverable {
    my ($template, $d, $decision) = @_;
    return grep { ($_->{payload}{deliverable_id} // '') eq $d->{id}
            && (!defined $decision || ($_->{payload}{decision} // '') eq $decision) } rows($template);
}
my $D1 = deliverable($P1, "Visible deliverable $tag");
my $D2 = deliverable($P1, "Hidden deliverable $tag", client_visible => JSON::PP::false);
my $D3 = deliverable($P1, "Second deliverable $tag");
my $DB = deliverable($P2, "Beta deliverable $tag");
is_deeply([ of_deliverable('deliverable_delivered', $D1) ], [], 'a scheduled deliverable notifies nobody');
is(team_api($t, PATCH => "/team/deliverables/$D1->{id}", json => { status => 'in_progress' })->{status}, 200, 'D1 in progress');
is_deeply([ rows('deliverable_delivered') ], [], 'in progress notifies nobody');
for my $d ($D1, $D2, $D3, $DB) {
    my $res = team_api($t, PATCH => "/team/deliverables/$d->{id}", json => { status => 'delivered' });
    is($res->{status}, 200, "$d->{title}: delivered") or diag explain $res->{json};
}
is_deeply(who(of_deliverable('deliverable_delivered', $D1)), [ clients_of($a1, $a2) ],
    'deliverable delivered -> the active member clients');
is_deeply([ of_deliverable('deliverable_delivered', $D2) ], [], 'a hidden deliverable delivered -> nobody');
ok(!(grep { encode_json($_->{payload}) =~ /Hidden deliverable/ } rows()), 'its title is in no row');
is_deeply(who(of_deliverable('deliverable_delivered', $DB)), [ clients_of($b1) ], "the other project's -> its client only");
my ($row) = grep { $_->{rid} eq $a1->{id} } of_deliverable('deliverable_delivered', $D1);
is_deeply({ map { $_ => ($row // {})->{payload}{$_} } qw(project_name link deliverable_id deliverable_title due_date) },
    { project_name => "Alpha $tag", link => link_of($P1), deliverable_id => $D1->{id},
      deliverable_title => "Visible deliverable $tag", due_date => '2027-03-01' }, 'deliverable_delivered payload');
is(($row // {})->{project_id}, $P1, 'the row names the project');
is(team_api($t, PATCH => "/team/deliverables/$D1->{id}", json => { description => 'edited' })->{status}, 200,
    'D1 edited while delivered');
is(scalar(of_deliverable('deliverable_delivered', $D1)), 2, 'an edit that leaves it delivered notifies nobody again');

$r = client_api($t, $a1->{access}, POST => "/projects/$P1/deliverables/$D1->{id}/approve", json => { comment => "Looks great $tag" });
is($r->{status}, 200, 'a client approves D1') or diag explain $r->{json};
is_deeply(who(of_deliverable('deliverable_decision', $D1, 'approved')), [ team_of($w1, $w2) ], 'approved -> the watchers');
($row) = of_deliverable('deliverable_decision', $D1, 'approved');
is_deeply({ map { $_ => ($row // {})->{payload}{$_} } qw(project_name link deliverable_id deliverable_title decision comment by_name) },
    { project_name => "Alpha $tag", link => link_of($P1), deliverable_id => $D1->{id},
      deliverable_title => "Visible deliverable $tag", decision => 'approved', comment => "Looks great $tag",
      by_name => 'Ada Alpha' }, 'deliverable_decision payload');
$r = client_api($t, $a2->{access}, POST => "/projects/$P1/deliverables/$D3->{id}/request-changes",
    json => { comment => "Please change $tag" });
is($r->{status}, 200, 'a client requests changes on D3') or diag explain $r->{json};
is_deeply(who(of_deliverable('deliverable_decision', $D3, 'changes_requested')), [ team_of($w1, $w2) ],
    'changes requested -> the watchers');
is(scalar(of_deliverable('deliverable_decision', $D3)), 2, 'and nothing else about D3');
$r = client_api($t, $b1->{access}, POST => "/projects/$P2/deliverables/$DB->{id}/approve", json => {});
is($r->{status}, 200, 'the other project\'s client approves');
is_deeply(who(of_deliverable('deliverable_decision', $DB)), [ team_of($w3) ], "-> that project's watcher only");
($row) = of_deliverable('deliverable_decision', $DB);
is(($row // {})->{payload}{comment}, undef, 'an approval without a comment: comment null');

# ------------------------------------------------------------------ milestones

sub of_milestone { my ($m) = @_; return grep { ($_->{payload}{milestone_id} // '') eq $m->{id} } rows('milestone_completed') }
my $M1 = milestone($P1, "Visible milestone $tag");
my $M2 = milestone($P1, "Hidden milestone $tag", client_visible => JSON::PP::false);
my $M3 = milestone($P1, "Started milestone $tag");
is(team_api($t, PATCH => "/team/milestones/$M3->{id}", json => { status => 'in_progress' })->{status}, 200, 'M3 in progress');
is_deeply([ of_milestone($M3) ], [], 'a milestone in progress notifies nobody');
for my $m ($M1, $M2) {
    is(team_api($t, PATCH => "/team/milestones/$m->{id}", json => { status => 'done' })->{status}, 200, "$m->{title}: done");
}
is_deeply(who(of_milestone($M1)), [ clients_of($a1, $a2) ], 'milestone done -> the active member clients');
is_deeply([ of_milestone($M2) ], [], 'a hidden milestone done -> nobody');
($row) = grep { $_->{rid} eq $a2->{id} } of_milestone($M1);
is_deeply({ map { $_ => ($row // {})->{payload}{$_} } qw(project_name link milestone_id milestone_title) },
    { project_name => "Alpha $tag", link => link_of($P1), milestone_id => $M1->{id},
      milestone_title => "Visible milestone $tag" }, 'milestone_completed payload');
is(team_api($t, PATCH => "/team/milestones/$M1->{id}", json => { status => 'done', title => "Visible milestone $tag" })->{status},
    200, 'M1 patched while done');
is(scalar(of_milestone($M1)), 2, 'a patch that leaves it done notifies nobody again');

my %dk;
$dk{ $_->{dedupe_key} }++ for rows();
is_deeply([ grep { $dk{$_} > 1 } keys %dk ], [], 'dedupe keys are unique');

# ------------------------------------------------------------------ mail of each trigger

# Waits for the mails matching $re to reach exactly @want (once each), then
# checks nobody else of this test got one.  Stops waiting early once no row
# of the tenant is left to send (a dead row will not bring its mail).
sub due_rows {
    return sql_in($t, "SELECT count(*) FROM outbox WHERE status = 'pending' AND send_after <= now()");
}
# {"template status: last_error" => count} of the rows not sent
sub unsent {
    my %n;
    $n{ "$_->{template} $_->{status}: " . ($_->{last_error} // '') }++ for grep { $_->{status} ne 'sent' } rows();
    return \%n;
}
sub reached {
    my ($re, $name, @want) = @_;
    my $want = addr_counts(@want);
    my ($got, $idle) = ({}, 0);
    wait_until(30, sub {
        $got = mail_counts($re);
        return 1 if keys(%$got) >= keys(%$want);
        $idle = due_rows() == 0 ? $idle + 1 : 0;
        return $idle > 10;
    });
    select(undef, undef, undef, 0.3);
    $got = mail_counts($re);
    is_deeply($got, $want, "$name: one mail to each recipient, none to anybody else")
        or diag explain { got => $got, unsent => unsent() };
}
reached(qr/Visible deliverable \Q$tag\E/, 'D1 delivered, D1 approved', $a1, $a2, $w1, $w2);
reached(qr/Second deliverable \Q$tag\E/, 'D3 delivered, changes requested', $a1, $a2, $w1, $w2);
reached(qr/Beta deliverable \Q$tag\E/, 'DB delivered, approved', $b1, $w3);
reached(qr/Visible milestone \Q$tag\E/, 'M1 done', $a1, $a2);
is_deeply(mail_counts(qr/Hidden (deliverable|milestone) \Q$tag\E/), {}, 'nothing about hidden work reached anybody');

# the headers and parts every activity mail has
my $unsub_re = qr{^<(\Q${\ portal_base()}\E/api/portal/v1/unsubscribe\?token=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+))>$};
sub b64u_dec { my $s = shift; $s =~ tr{-_}{+/}; $s .= '=' x ((4 - length($s) % 4) % 4); return decode_base64($s) }
sub activity_mail {
    my ($m, $name, $who, $kind, $topic) = @_;
    SKIP: {
        ok($m, "$name: mail found") or skip 'no mail', 12;
        like($m->{h}{'content-type'} // '', qr{^multipart/alternative}i, "$name: multipart/alternative");
        ok(length($m->{text}) && length($m->{html}), "$name: text and HTML parts");
        like($m->{text}, qr/\Q${\ link_of($P1)}\E/, "$name: the project link in the text");
        like($m->{html}, qr/href="\Q${\ link_of($P1)}\E"/, "$name: the project link in the HTML");
        like($m->{d}{from} // '', qr/\Q$display\E/, "$name: From names the tenant");
        like($m->{html}, qr/#12ab34/i, "$name: the tenant's colour");
        like($m->{html}, qr{https://cdn\.example/\Q$tag\E/logo\.png}, "$name: the tenant's logo");
        my $lu = $m->{h}{'list-unsubscribe'} // '';
        like($lu, $unsub_re, "$name: List-Unsubscribe <portal/api/portal/v1/unsubscribe?token=...>");
        is($m->{h}{'list-unsubscribe-post'}, 'List-Unsubscribe=One-Click', "$name: List-Unsubscribe-Post (RFC 8058)");
        my ($url, $token) = $lu =~ $unsub_re;
        # the visible link opens the portal's confirmation page with the same
        # token (people click; mail scanners only GET): /unsubscribe?token=
        my $page = $url ? "${\ portal_base()}/unsubscribe?token=$token" : undef;
        ok($page && index($m->{text}, $page) >= 0 && index($m->{html}, $page) >= 0,
            "$name: the portal's unsubscribe page with the same token is a visible link in both parts");
        my @f = split /\|/, b64u_dec((split /\./, $token // '')[0] // '');
        is_deeply([ @f[0 .. 5] ], [ 'v1', $t->{tenant_id}, $kind, $who->{id}, $topic, 'email' ],
            "$name: the token names this tenant, recipient, topic and the email channel");
        my $exp = $f[6] // 0;
        ok($exp > time + 170 * 86400 && $exp < time + 190 * 86400, "$name: the token expires in about 180 days");
    }
}
my ($m_del) = grep { $_->{rcpt} eq lc $a1->{email} } mails(qr/Visible deliverable \Q$tag\E/);
activity_mail($m_del, 'deliverable_delivered mail', $a1, 'client', 'deliverables');
my ($m_dec) = grep { $_->{rcpt} eq lc $w1->{email} } mails(qr/Visible deliverable \Q$tag\E/);
activity_mail($m_dec, 'deliverable_decision mail', $w1, 'team', 'deliverables');
like(($m_dec // {})->{text} // '', qr/Looks great \Q$tag\E/, 'the decision mail quotes the comment');
like(($m_dec // {})->{text} // '', qr/Ada Alpha/, 'and names who decided');
my ($m_ms) = grep { $_->{rcpt} eq lc $a2->{email} } mails(qr/Visible milestone \Q$tag\E/);
activity_mail($m_ms, 'milestone_completed mail', $a2, 'client', 'milestones');

# ------------------------------------------------------------------ digests of P1

make_due($P1);
reached(qr/client question \Q$tag\E/, 'digest of the client message', $w1, $w2);
reached(qr/team answer \Q$tag\E/, 'digest of the team message', $a1, $a2);
reached(qr/internal note \Q$tag\E/, 'digest of the internal message', $w2);
reached(qr/internal unsigned \Q$tag\E/, 'digest of the unsigned internal message', $w1, $w2);
is_deeply(mail_counts(qr/internal/), { lc $w1->{email} => 1, lc $w2->{email} => 1 }, 'no client mail mentions internal notes');
my ($m_dig) = grep { $_->{rcpt} eq lc $w2->{email} } mails(qr/client question \Q$tag\E/);
activity_mail($m_dig, 'message_digest mail', $w2, 'team', 'messages');
like(($m_dig // {})->{text} // '', qr/client question.*internal note.*internal unsigned.*Abe Alpha/s, 'the digest lists its four messages in order');
like(($m_dig // {})->{text} // '', qr/\+2 files/, 'the attachment-only message shows as "+2 files"');
ok(!(grep { $_->{status} ne 'sent' } grep { $_->{project_id} eq $P1 } rows()), 'every P1 row is sent');

# ------------------------------------------------------------------ folding and time zones

my $P3 = new_project($t, name => "Gamma $tag")->{id};
my $wk = member('Kiran Kolkata');
$r = team_api($t, PATCH => "/team/members/$wk->{id}", json => { time_zone => 'Asia/Kolkata' });
is($r->{status}, 200, 'a team member in Asia/Kolkata') or diag explain $r->{json};
is(($r->{json} // {})->{time_zone}, 'Asia/Kolkata', 'team member time_zone written and read back');
watch($P3, $wk);
my $ct = client('Taro Tokyo', $P3);
$r = client_api($t, $ct->{access}, PATCH => '/me', json => { time_zone => 'Asia/Tokyo' });
is($r->{status}, 200, 'a client in Asia/Tokyo (PATCH /me)');
my $cu = client('Uma Utc', $P3);
my (@team3, @client3);
for my $i (1 .. 3) {
    push @team3, tpost($P3, "gamma team $i $tag");
    push @client3, cpost($cu, $P3, "gamma client $i $tag");
}
my @g = grep { $_->{project_id} eq $P3 } rows('message_digest');
is_deeply(who(@g), [ sort(clients_of($ct, $cu), team_of($wk)) ], 'three of each: one digest row per recipient');
my %g = map { $_->{rid} => $_ } @g;
is_deeply([ map { $_->{message_id} } @{ $g{ $ct->{id} }{payload}{messages} // [] } ], [ map { $_->{id} } @team3 ],
    'the Tokyo client\'s row lists the three team messages');
is_deeply([ map { $_->{message_id} } @{ $g{ $wk->{id} }{payload}{messages} // [] } ], [ map { $_->{id} } @client3 ],
    'the watcher\'s row lists the three client messages');
ok(!(grep { $_->{status} ne 'pending' } @g), 'pending while the window is open') if $WINDOW > 20;
my $gap = sql_in($t, "SELECT round(extract(epoch FROM send_after - created_at)) FROM outbox"
    . " WHERE project_id = '$P3' AND recipient_id = '$ct->{id}'");
is($gap, $WINDOW, "send_after = creation + ATRIUM_DIGEST_WINDOW_S ($WINDOW s)");

make_due($P3);
my %mail;
my $idle = 0;
wait_until(30, sub {
    ($mail{ct}) = grep { $_->{rcpt} eq lc $ct->{email} } mails(qr/gamma team 3 \Q$tag\E/);
    ($mail{cu}) = grep { $_->{rcpt} eq lc $cu->{email} } mails(qr/gamma team 3 \Q$tag\E/);
    ($mail{wk}) = grep { $_->{rcpt} eq lc $wk->{email} } mails(qr/gamma client 3 \Q$tag\E/);
    return 1 if $mail{ct} && $mail{cu} && $mail{wk};
    $idle = due_rows() == 0 ? $idle + 1 : 0;
    return $idle > 10;
});
ok($mail{ct} && $mail{cu} && $mail{wk}, 'the three digests arrived')
    or diag explain unsent();
is_deeply(mail_counts(qr/gamma (team|client) \d \Q$tag\E/),
    { map { lc($_->{email}) => 1 } $ct, $cu, $wk }, 'one digest mail each');

# "HH:MM" of an RFC 3339 UTC time shifted by $off minutes, 24-hour or 12-hour
sub hhmm {
    my ($rfc, $off) = @_;
    my ($y, $mo, $d, $h, $mi, $s) = $rfc =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)/ or return qr/(?!)/;
    my @l = gmtime(timegm($s, $mi, $h, $d, $mo - 1, $y) + $off * 60);
    my ($H, $M) = ($l[2], sprintf('%02d', $l[1]));
    my $h12 = $H % 12 || 12;
    return qr/(?<![\d:])(?:${\ sprintf('%02d', $H)}|$H|$h12):$M(?![\d])/;
}
sub times_in {
    my ($m, $row, $off, $name) = @_;
    my $text = ($m // {})->{text} // '';
    my @items = @{ ($row // {})->{payload}{messages} // [] };
    is(scalar @items, 3, "$name: three items");
    for my $i (0 .. $#items) {
        my $it = $items[$i];
        like($text, qr/\Q$it->{excerpt}\E/, "$name: item " . ($i + 1) . ' excerpt');
        like($text, hhmm($it->{created_at}, $off), "$name: item " . ($i + 1) . " at its local time (UTC" . sprintf('%+d', $off) . ' min)');
        unlike($text, hhmm($it->{created_at}, 0), "$name: item " . ($i + 1) . ' not at the UTC time') if $off;
    }
    like($text, qr/\Q$items[0]{author_name}\E/, "$name: the author") if @items;
    like($text, qr/gamma \w+ 1.*gamma \w+ 2.*gamma \w+ 3/s, "$name: in order");
}
times_in($mail{ct}, $g{ $ct->{id} }, 9 * 60, 'Tokyo client digest');
times_in($mail{wk}, $g{ $wk->{id} }, 5 * 60 + 30, 'Kolkata watcher digest');
times_in($mail{cu}, $g{ $cu->{id} }, 0, 'UTC client digest');

# ------------------------------------------------------------------ invite and reset

my $ie = "invitee-$tag\@client.example";
my $ic = new_client($t, name => 'Ina Invitee', email => $ie);
$r = invite($t, $ic->{id}, project_ids => [ $P1 ]);
is($r->{status}, 201, 'an invite by email') or diag explain $r->{json};
my ($m_inv);
ok(wait_until(20, sub { ($m_inv) = grep { $_->{rcpt} eq $ie } mails(qr{/invite#token=}) }), 'the invite arrived');
ok($m_inv && !exists $m_inv->{h}{'list-unsubscribe'}, 'invite mail: no List-Unsubscribe');
ok($m_inv && !exists $m_inv->{h}{'list-unsubscribe-post'}, 'invite mail: no List-Unsubscribe-Post');
$r = auth_api($t, POST => '/auth/password/forgot', json => { email => $a1->{email} });
is($r->{status}, 202, 'a password reset requested');
my ($m_rst);
ok(wait_until(20, sub { ($m_rst) = grep { $_->{rcpt} eq lc $a1->{email} } mails(qr{/reset#token=}) }), 'the reset mail arrived');
ok($m_rst && !exists $m_rst->{h}{'list-unsubscribe'}, 'reset mail: no List-Unsubscribe');
ok($m_rst && !exists $m_rst->{h}{'list-unsubscribe-post'}, 'reset mail: no List-Unsubscribe-Post');
ok(!(grep { $_->{rcpt} eq $ie } mails(qr/unsubscribe/i)), 'nor an unsubscribe link in its text');

done_testing();
