package Atrium::Auth;
# Helpers for the client-identity tests (t/http/auth-*.t): the client surface
# with a Bearer token, an invite-and-accept shortcut, the refresh cookie,
# JWT forging (ES256 with the stack's own key through openssl, HS256, none),
# ECDSA signature checks against a JWK, and reading the SMTP catcher's mail.
#
# Requests to /auth/* pass nginx's per-IP limit_req: auth_api() waits and
# retries when nginx answers 429 rate_limited, so the tests hold under a
# strict ATRIUM_AUTH_RATE (the application's own 429 account_locked is never
# retried).  raw_api() is the same without that.
use strict;
use warnings;
use Exporter 'import';
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use MIME::QuotedPrint qw(decode_qp);
use Digest::SHA qw(sha256_hex hmac_sha256);
use IPC::Open3 qw(open3);
use Symbol qw(gensym);
use File::Temp qw(tempfile);
use HTTP::Tiny;
use POSIX ();
use Test::More ();
use Atrium::Test;

our @EXPORT = qw(
  auth_api raw_api client_api bearer strong_password random_email warm_race
  new_client new_project invite invite_token accept_invite onboard login
  refresh_of set_cookie_of cookie_attrs cookie_header
  is_problem header_values no_store
  b64u b64u_decode jwt_parts jwt_input es256_sign es256_token hs256_token none_token
  der_to_raw raw_to_der es256_verify jwk_to_pem new_ec_key ec_public_xy
  sql_in outbox_rows mail_for mail_text forked_requests access_ttl jwt_issuer
);

my $JSON = JSON::PP->new->utf8->canonical;

# ------------------------------------------------------------------ HTTP

sub _host { my ($t) = @_; ref $t ? $t->{host} : $t }

# api() on a tenant (or a host name) without the retry.
sub raw_api {
    my ($t, $method, $path, %o) = @_;
    return api($method, $path, host => _host($t), %o);
}

# api() on a tenant (or host), retrying nginx's rate_limited answers.
sub auth_api {
    my ($t, $method, $path, %o) = @_;
    my $r;
    for my $try (1 .. 60) {
        $r = api($method, $path, host => _host($t), %o);
        last unless $r->{status} == 429 && (($r->{json} // {})->{code} // '') eq 'rate_limited';
        select(undef, undef, undef, 0.25 * ($try < 8 ? $try : 8));
    }
    return $r;
}

sub bearer { return { authorization => "Bearer $_[0]" } }

# The client surface with an access token.
sub client_api {
    my ($t, $token, $method, $path, %o) = @_;
    my %h = (defined $token ? %{ bearer($token) } : (), %{ $o{headers} // {} });
    delete $h{$_} for grep { !defined $h{$_} } keys %h;
    return auth_api($t, $method, $path, %o, headers => \%h);
}

my $n = 0;
sub strong_password { return sprintf('Atrium-%s-%d-%s', 'orchid', ++$n, substr(sha256_hex(rand() . $$ . time), 0, 12)) }
sub random_email { my ($tag) = @_; return lc(random_code($tag // 'c')) . '@client.example' }

sub new_client {
    my ($t, %o) = @_;
    my %body = (email => $o{email} // random_email(), name => $o{name} // 'Client ' . random_code('n'));
    $body{company} = $o{company} if exists $o{company};
    my $r = team_api($t, POST => '/team/clients', json => \%body);
    die "client create: $r->{status} $r->{content}" unless $r->{status} == 201;
    return $r->{json};
}

sub new_project {
    my ($t, %o) = @_;
    my $r = team_api($t, POST => '/team/projects', json => { name => $o{name} // 'Project ' . random_code('p') });
    die "project create: $r->{status} $r->{content}" unless $r->{status} == 201;
    return $r->{json};
}

# POST /team/clients/{id}/invite; returns the response.
sub invite {
    my ($t, $client_id, %body) = @_;
    return team_api($t, POST => "/team/clients/$client_id/invite", json => \%body);
}

# The token in an invite or reset link (#token=...).
sub invite_token {
    my ($url) = @_;
    return ($url // '') =~ /#token=([A-Za-z0-9_-]+)$/ ? $1 : undef;
}

sub accept_invite {
    my ($t, $token, $password, %o) = @_;
    my %body = (token => $token, password => $password);
    $body{name} = $o{name} if defined $o{name};
    return auth_api($t, POST => '/auth/invite/accept', json => \%body, headers => $o{headers} // {});
}

sub login {
    my ($t, $email, $password, %o) = @_;
    return auth_api($t, POST => '/auth/login', json => { email => $email, password => $password },
        headers => $o{headers} // {});
}

# A client who has accepted a link invite: {id, email, name, password,
# access, refresh, user, res}.  %o: email, name, password, project_ids.
sub onboard {
    my ($t, %o) = @_;
    my $c = new_client($t, %o);
    my $r = invite($t, $c->{id}, delivery => 'link', ($o{project_ids} ? (project_ids => $o{project_ids}) : ()));
    die "invite: $r->{status} $r->{content}" unless $r->{status} == 201;
    my $pw = $o{password} // strong_password();
    my $acc = accept_invite($t, invite_token($r->{json}{invite_url}), $pw);
    die "accept: $acc->{status} $acc->{content}" unless $acc->{status} == 200;
    return { %$c, password => $pw, access => $acc->{json}{access_token}, refresh => refresh_of($acc),
        user => $acc->{json}{user}, res => $acc };
}

# ------------------------------------------------------------------ cookies and headers

sub header_values {
    my ($r, $name) = @_;
    my $v = $r->{headers}{ lc $name };
    return () unless defined $v;
    return ref $v ? @$v : ($v);
}

# The Set-Cookie header that names atrium_refresh (or undef).
sub set_cookie_of {
    my ($r) = @_;
    my ($c) = grep { /^\s*atrium_refresh=/ } header_values($r, 'set-cookie');
    return $c;
}

sub refresh_of {
    my ($r) = @_;
    my $c = set_cookie_of($r) // return undef;
    return $c =~ /^\s*atrium_refresh=([^;]*)/ ? $1 : undef;
}

# {name => value} of a Set-Cookie's attributes, names lower-cased; flags as 1.
sub cookie_attrs {
    my ($c) = @_;
    my %a;
    my (undef, @parts) = split /;\s*/, $c // '';
    for (@parts) {
        my ($k, $v) = split /=/, $_, 2;
        $a{ lc $k } = defined $v ? $v : 1;
    }
    return \%a;
}

sub cookie_header { return { cookie => "atrium_refresh=$_[0]" } }

# every Cache-Control value of the answer says no-store
sub no_store {
    my ($r) = @_;
    my @v = header_values($r, 'cache-control');
    return @v && !grep { !/\bno-store\b/ } @v;
}

# A problem answer with this status and code.
sub is_problem {
    my ($r, $status, $code, $name) = @_;
    my $ct = $r->{headers}{'content-type'} // '';
    Test::More::ok($r->{status} == $status && $ct =~ m{^application/problem\+json}
            && (($r->{json} // {})->{code} // '') eq $code, "$name: $status $code")
        or Test::More::diag(Test::More::explain({ status => $r->{status}, body => $r->{json} // $r->{content} }));
}

# ------------------------------------------------------------------ JWT

sub b64u {
    my $s = encode_base64($_[0], '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

sub b64u_decode {
    my $s = shift;
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_base64($s);
}

# (header, claims, signature segment) of a token
sub jwt_parts {
    my ($tok) = @_;
    my ($h, $p, $s) = split /\./, $tok, 3;
    return (decode_json(b64u_decode($h)), decode_json(b64u_decode($p)), $s);
}

# "header.claims" of two hashes (or of ready JSON strings)
sub jwt_input {
    my ($hdr, $claims) = @_;
    my $h = ref $hdr ? $JSON->encode($hdr) : $hdr;
    my $c = ref $claims ? $JSON->encode($claims) : $claims;
    return b64u($h) . '.' . b64u($c);
}

sub access_ttl { return env_of('ATRIUM_ACCESS_TTL') // 900 }
sub jwt_issuer { return env_of('ATRIUM_JWT_ISSUER') || 'atrium' }

# runs a command with $in on stdin; returns (stdout, exit code)
sub _run {
    my ($in, @cmd) = @_;
    my $err = gensym;
    my $pid = open3(my $w, my $r, $err, @cmd);
    binmode $w;
    binmode $r;
    print $w $in if defined $in;
    close $w;
    local $/;
    my $out = <$r> // '';
    my $e = <$err> // '';
    waitpid($pid, 0);
    my $rc = $? >> 8;
    return ($out, $rc, $e);
}

# DER ECDSA-Sig-Value -> JWS r||s (64 bytes)
sub der_to_raw {
    my ($der) = @_;
    my @b = unpack('C*', $der);
    my $i = 0;
    die 'not a DER sequence' unless $b[$i++] == 0x30;
    my $len = $b[$i++];
    $i += $len & 0x7f if $len & 0x80;
    my @ints;
    for (1 .. 2) {
        die 'not a DER integer' unless $b[$i++] == 0x02;
        my $l = $b[$i++];
        my $v = pack('C*', @b[$i .. $i + $l - 1]);
        $i += $l;
        $v =~ s/^\x00+//;
        die 'integer too long' if length $v > 32;
        push @ints, ("\x00" x (32 - length $v)) . $v;
    }
    return join '', @ints;
}

# JWS r||s -> DER
sub raw_to_der {
    my ($raw) = @_;
    my @ints;
    for my $half (0, 1) {
        my $v = substr($raw, 32 * $half, 32);    # a copy: substr() would alias $raw
        $v =~ s/^\x00+//;
        $v = "\x00" if $v eq '';
        $v = "\x00$v" if ord($v) & 0x80;
        push @ints, "\x02" . chr(length $v) . $v;
    }
    my $body = join '', @ints;
    return "\x30" . chr(length $body) . $body;
}

# ES256 signature (base64url r||s) of $input with a PEM private key file
sub es256_sign {
    my ($input, $keyfile) = @_;
    $keyfile //= env_of('ATRIUM_JWT_PRIVATE_KEY_FILE');
    my ($der, $rc, $err) = _run($input, 'openssl', 'dgst', '-sha256', '-sign', $keyfile);
    die "openssl dgst -sign failed ($rc): $err" if $rc != 0 || $der eq '';
    return b64u(der_to_raw($der));
}

# a complete ES256 token of these header and claims (hashes or JSON strings)
sub es256_token {
    my ($hdr, $claims, $keyfile) = @_;
    my $input = jwt_input($hdr, $claims);
    return "$input." . es256_sign($input, $keyfile);
}

sub hs256_token {
    my ($hdr, $claims, $secret) = @_;
    my $input = jwt_input($hdr, $claims);
    return "$input." . b64u(hmac_sha256($input, $secret));
}

sub none_token {
    my ($hdr, $claims, $sig) = @_;
    return jwt_input($hdr, $claims) . '.' . ($sig // '');
}

# SubjectPublicKeyInfo PEM of a P-256 point given as base64url x and y
sub jwk_to_pem {
    my ($x, $y) = @_;
    my $spki = pack('H*', '3059301306072a8648ce3d020106082a8648ce3d030107034200')
        . "\x04" . b64u_decode($x) . b64u_decode($y);
    return "-----BEGIN PUBLIC KEY-----\n" . encode_base64($spki) . "-----END PUBLIC KEY-----\n";
}

# does $sig (base64url r||s) verify $input under the PEM public key?
sub es256_verify {
    my ($input, $sig, $pem) = @_;
    my ($pf, $pfile) = tempfile(UNLINK => 1);
    print $pf $pem;
    close $pf;
    my ($sf, $sfile) = tempfile(UNLINK => 1);
    binmode $sf;
    print $sf raw_to_der(b64u_decode($sig));
    close $sf;
    my ($out, $rc) = _run($input, 'openssl', 'dgst', '-sha256', '-verify', $pfile, '-signature', $sfile);
    unlink $pfile, $sfile;
    return $rc == 0 && $out =~ /Verified OK/;
}

# a new P-256 private key file (an attacker's key)
sub new_ec_key {
    my ($fh, $file) = tempfile(UNLINK => 1, SUFFIX => '.pem');
    close $fh;
    my ($out, $rc, $err) = _run(undef, 'openssl', 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', $file);
    die "openssl ecparam: $err" if $rc;
    return $file;
}

# (x, y) base64url of a private key file's public point
sub ec_public_xy {
    my ($keyfile) = @_;
    my ($der, $rc, $err) = _run(undef, 'openssl', 'ec', '-in', $keyfile, '-pubout', '-outform', 'DER');
    die "openssl ec: $err" if $rc;
    my $point = substr($der, -64);
    return (b64u(substr($point, 0, 32)), b64u(substr($point, 32, 32)));
}

# ------------------------------------------------------------------ database

# SQL as the owner inside the tenant's scope (forced RLS); last output line.
sub sql_in {
    my ($t, $sql) = @_;
    my $out = psql_admin("BEGIN; SELECT set_config('app.tenant_id', '$t->{tenant_id}', true); $sql; COMMIT;");
    my @lines = split /\n/, $out;
    return $lines[-1] // '';
}

# outbox rows of a tenant for a template and recipient:
# [{id, address, status, payload, dedupe_key, recipient_id}]
sub outbox_rows {
    my ($t, $template, $recipient_id) = @_;
    my $json = sql_in($t, "SELECT coalesce(json_agg(json_build_object('id', id, 'address', address,"
        . " 'status', status, 'payload', payload, 'dedupe_key', dedupe_key, 'recipient_id', recipient_id,"
        . " 'recipient_kind', recipient_kind, 'channel', channel) ORDER BY seq), '[]') FROM outbox"
        . " WHERE tenant_id = '$t->{tenant_id}' AND template = '$template'"
        . " AND recipient_id = '$recipient_id'");
    return decode_json($json);
}

# ------------------------------------------------------------------ mail

# The raw text of the oldest message in the catcher's Maildir addressed to
# $address, waiting up to $secs; undef when none came.  %o: skip => {file
# => 1} (messages already used; the one returned is added), match => qr//
# (the decoded text must match).
sub mail_for {
    my ($address, $secs, %o) = @_;
    my $dir = env_of('ATRIUM_MAILDIR') // return undef;
    my $skip = $o{skip} // {};
    my $found;
    wait_until($secs // 10, sub {
        my @files = map { $_->[0] } sort { $a->[1] <=> $b->[1] || $a->[0] cmp $b->[0] }
            map { [ $_, (stat $_)[9] // 0 ] } grep { !$skip->{$_} } glob("$dir/new/* $dir/cur/*");
        for my $f (@files) {
            open(my $m, '<:raw', $f) or next;
            local $/;
            my $text = <$m> // '';
            close $m;
            my ($head) = split /\r?\n\r?\n/, $text, 2;
            $head =~ s/\r?\n[ \t]+/ /g;
            next unless $head =~ /^(?:To|X-RcptTo|Delivered-To|X-Original-To):.*\Q$address\E/mi;
            next if $o{match} && (mail_text($text) // '') !~ $o{match};
            $skip->{$f} = 1;
            $found = $text;
            return 1;
        }
        return 0;
    });
    return $found;
}

# The decoded text/plain part of a message (the whole body when it is not
# multipart).
sub mail_text {
    my ($msg) = @_;
    my ($head, $body) = split /\r?\n\r?\n/, $msg, 2;
    $head =~ s/\r?\n[ \t]+/ /g;
    $body //= '';
    my ($ct) = $head =~ /^Content-Type:\s*(.*)$/mi;
    $ct //= 'text/plain';
    if ($ct =~ m{^multipart/}i && $ct =~ /boundary="?([^";]+)"?/i) {
        my $b = $1;
        my @parts = split /\r?\n--\Q$b\E(?:--)?[ \t]*\r?\n?/, "\n$body";
        my ($alt);
        for my $p (@parts) {
            next unless $p =~ /\S/;
            my $t = mail_text($p);
            my ($ph) = split /\r?\n\r?\n/, $p, 2;
            return $t if defined $t && ($ph // '') =~ m{^Content-Type:\s*(text/plain|multipart/)}mi && $t =~ /\S/;
            $alt //= $t;
        }
        return $alt;
    }
    my ($cte) = $head =~ /^Content-Transfer-Encoding:\s*(\S+)/mi;
    $cte = lc($cte // '');
    return decode_qp($body) if $cte eq 'quoted-printable';
    return decode_base64($body) if $cte eq 'base64';
    return $body;
}

# ------------------------------------------------------------------ concurrency

# Sends the requests [[host, METHOD, PATH, JSON, HEADERS], ...] from separate
# processes, each on its own connection, released together; returns the
# [status, decoded body, [Set-Cookie values]] of each, in order.
sub forked_requests {
    my (@reqs) = @_;
    pipe(my $gate_r, my $gate_w) or die "pipe: $!";
    my @kids;
    for my $i (0 .. $#reqs) {
        my ($host, $method, $path, $json, $headers) = @{ $reqs[$i] };
        pipe(my $res_r, my $res_w) or die "pipe: $!";
        my $pid = fork() // die "fork: $!";
        if ($pid == 0) {
            close $gate_w;
            close $res_r;
            my $http = HTTP::Tiny->new(verify_SSL => 0, timeout => 20, keep_alive => 0, agent => 'atrium-tests');
            my $port = env_of('ATRIUM_HTTPS_PORT');
            my $url = "https://$host:$port/api/portal/v1$path";
            my %req = (peer => '127.0.0.1', headers => { %{ $headers // {} } });
            if (defined $json) {
                $req{content} = $JSON->encode($json);
                $req{headers}{'content-type'} = 'application/json';
            }
            my $res;
            sysread($gate_r, my $go, 1);    # returns at EOF: the parent closed the gate
            for (1 .. 40) {
                $res = $http->request($method, $url, \%req);
                last unless $res->{status} == 429 && ($res->{content} // '') =~ /rate_limited/;
                select(undef, undef, undef, 0.25);
            }
            my $sc = $res->{headers}{'set-cookie'};
            print $res_w $JSON->encode([ $res->{status}, $res->{content} // '', ref $sc ? $sc : [ $sc // () ] ]);
            close $res_w;
            POSIX::_exit(0);    # no destructors: the parent's connections stay intact
        }
        close $res_w;
        push @kids, [ $pid, $res_r ];
    }
    close $gate_r;
    select(undef, undef, undef, 0.3);    # every child is at the gate
    close $gate_w;
    my @out;
    for my $k (@kids) {
        my $fh = $k->[1];
        local $/;
        my $txt = <$fh> // '';
        waitpid($k->[0], 0);
        my $pair = eval { decode_json($txt) } // [ 0, '' ];
        my $json = eval { decode_json($pair->[1]) };
        push @out, [ $pair->[0], $json, $pair->[2] ];
    }
    return @out;
}

# forked_requests() with the connections opened beforehand: each process
# connects (TLS and all) and sends a warm-up request, then all of them wait
# at one gate and send their request on the open connection the moment it
# opens, so that the requests really overlap in the workers.  Takes
# [host, METHOD, PATH, JSON, HEADERS] each; returns [status, decoded body,
# headers] each, in order.
sub warm_race {
    my (@reqs) = @_;
    my $port = env_of('ATRIUM_HTTPS_PORT');
    pipe(my $gate_r, my $gate_w) or die "pipe: $!";
    my @kids;
    for my $req (@reqs) {
        my ($host, $method, $path, $json, $headers) = @$req;
        pipe(my $res_r, my $res_w) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $gate_w;
            close $res_r;
            my $http = HTTP::Tiny->new(verify_SSL => 0, timeout => 30, keep_alive => 1, agent => 'atrium-tests');
            my %h = %{ $headers // {} };
            $http->request(GET => "https://$host:$port/api/portal/v1/healthz", { peer => '127.0.0.1' });
            my %req = (peer => '127.0.0.1', headers => \%h);
            if (defined $json) {
                $req{content} = encode_json($json);
                $h{'content-type'} = 'application/json';
            }
            sysread($gate_r, my $go, 1);    # EOF: the parent closed the gate
            my $res = $http->request($method, "https://$host:$port/api/portal/v1$path", \%req);
            print $res_w encode_json([ $res->{status}, $res->{content} // '', $res->{headers} ]);
            close $res_w;
            POSIX::_exit(0);
        }
        close $res_w;
        push @kids, [ $pid, $res_r ];
    }
    close $gate_r;
    select(undef, undef, undef, 0.3);    # every process connected and at the gate
    close $gate_w;
    my @out;
    for my $k (@kids) {
        my $fh = $k->[1];
        local $/;
        my $txt = <$fh> // '';
        waitpid($k->[0], 0);
        my $triple = eval { decode_json($txt) } // [ 0, '', {} ];
        push @out, [ $triple->[0], eval { decode_json($triple->[1]) }, $triple->[2] ];
    }
    return @out;
}

1;
