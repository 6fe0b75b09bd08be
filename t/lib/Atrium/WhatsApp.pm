package Atrium::WhatsApp;
# A local stand-in for the WhatsApp Cloud API, for the notification tests:
# a forked HTTP/1.1 server (core Perl: IO::Socket::INET) on the port of the
# stack's ATRIUM_WHATSAPP_BASE that answers
#   POST /{version}/{phone_number_id}/messages
# with a programmable sequence of answers, checks each request's shape
# (Authorization: Bearer <token>, Content-Type: application/json, and the
# template message body of the Cloud API) and records every request in a
# file the test reads back.
#
#   my $wa = Atrium::WhatsApp->start(token => $t, phone_number_id => $id);
#   $wa->script('4915112345678', 500, 200);       # per recipient ("to")
#   $wa->script('*', [400, { error => { message => 'bad' } }]);  # anyone
#   ... activity ...
#   my @req = $wa->requests(to => '4915112345678');
#   # each: {n, at, method, path, version, phone_number_id, authorization,
#   #        content_type, body, json, to, template, language, params,
#   #        problems => [...], status}
#   $wa->stop;
#
# An answer is a status (200 -> the Cloud API's success body with a new
# wamid, 4xx/5xx -> its error body), [status, body (ref or string)], or
# {status, body, delay (seconds before answering), headers, close (hang up
# without answering)}.  Recipients without a script (and a script that has
# run out) get 200.  requests() without a filter returns every request.
use strict;
use warnings;
use IO::Socket::INET;
use JSON::PP;
use File::Temp qw(tempdir);
use Fcntl qw(:flock O_RDWR O_CREAT);
use POSIX ();
use Time::HiRes ();
use Atrium::Test qw(env_of);

my $JSON = JSON::PP->new->utf8->canonical;

# The base URL the notifier uses: the stack's setting, else the running
# notifier's own environment, else ours.
sub base_url {
    my $b = eval { env_of('ATRIUM_WHATSAPP_BASE') };
    return $b if $b;
    my $dir = eval { env_of('ATRIUM_STACK_DIR') };
    if ($dir && open(my $pf, '<', "$dir/run/notifier.pid")) {
        my ($pid) = (<$pf> // '') =~ /(\d+)/;
        close $pf;
        if ($pid && open(my $ef, '<', "/proc/$pid/environ")) {
            local $/;
            my %e = map { split /=/, $_, 2 } grep { /=/ } split /\0/, (<$ef> // '');
            close $ef;
            return $e{ATRIUM_WHATSAPP_BASE} if $e{ATRIUM_WHATSAPP_BASE};
        }
    }
    return $ENV{ATRIUM_WHATSAPP_BASE};
}

sub version { return eval { env_of('ATRIUM_WHATSAPP_VERSION') } || 'v21.0' }

# start(token => T, phone_number_id => ID, base => URL): the server is
# listening when this returns; dies when the port is taken.
sub start {
    my ($class, %o) = @_;
    my $base = $o{base} // base_url() // die "ATRIUM_WHATSAPP_BASE is not set in the stack\n";
    my ($host, $port) = $base =~ m{^http://([^/:]+):(\d+)/?$}
        or die "ATRIUM_WHATSAPP_BASE '$base' is not http://HOST:PORT\n";
    my $dir = tempdir('whatsapp-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $self = bless {
        base   => $base,
        host   => $host,
        port   => $port,
        dir    => $dir,
        log    => "$dir/requests.jsonl",
        plan   => "$dir/script.json",
        token  => $o{token},
        pnid   => $o{phone_number_id},
        parent => $$,
    }, $class;
    $self->_write_plan({});
    open(my $lf, '>', $self->{log}) or die "$self->{log}: $!";
    close $lf;
    my $listen;
    for (1 .. 50) {    # a previous stand-in may still be closing
        $listen = IO::Socket::INET->new(Listen => 16, LocalAddr => $host, LocalPort => $port,
            ReuseAddr => 1, Proto => 'tcp');
        last if $listen;
        Time::HiRes::sleep(0.1);
    }
    die "WhatsApp stand-in: cannot listen on $host:$port: $!\n" unless $listen;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        $SIG{TERM} = sub { POSIX::_exit(0) };
        eval { $self->_serve($listen) };
        print STDERR "WhatsApp stand-in: $@" if $@;
        POSIX::_exit(0);
    }
    close $listen;
    $self->{pid} = $pid;
    return $self;
}

sub base { $_[0]{base} }
sub log_file { $_[0]{log} }

# Sets token / phone_number_id the requests are checked against.
sub expect {
    my ($self, %o) = @_;
    $self->_locked(sub {
        my $plan = $self->_read_plan;
        $plan->{expect}{token} = $o{token} if exists $o{token};
        $plan->{expect}{phone_number_id} = $o{phone_number_id} if exists $o{phone_number_id};
        $self->_write_plan($plan);
    });
}

# script(TO, ANSWER...): the next answers for requests to TO (digits, with
# or without +; '*' for any recipient without a script of its own).
sub script {
    my ($self, $to, @answers) = @_;
    $to =~ s/^\+//;
    $self->_locked(sub {
        my $plan = $self->_read_plan;
        $plan->{answers}{$to} = [ map { _answer($_) } @answers ];
        $self->_write_plan($plan);
    });
}

sub _answer {
    my ($a) = @_;
    return { status => $a } unless ref $a;
    return { status => $a->[0], body => $a->[1], delay => $a->[2] } if ref $a eq 'ARRAY';
    return {%$a};
}

# Every recorded request, in order; filters: to => digits (or +digits).
sub requests {
    my ($self, %f) = @_;
    my @r;
    open(my $fh, '<', $self->{log}) or return ();
    flock($fh, LOCK_SH);
    while (my $line = <$fh>) {
        my $r = eval { $JSON->decode($line) } or next;
        push @r, $r;
    }
    close $fh;
    if (defined $f{to}) {
        (my $to = $f{to}) =~ s/^\+//;
        @r = grep { ($_->{to} // '') eq $to } @r;
    }
    return @r;
}

sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    return unless $$ == $self->{parent};
    kill 'TERM', $pid;
    waitpid($pid, 0);
}

sub DESTROY { $_[0]->stop }

# ------------------------------------------------------------ the plan file

sub _read_plan {
    my ($self) = @_;
    open(my $fh, '<', $self->{plan}) or return {};
    flock($fh, LOCK_SH);
    local $/;
    my $txt = <$fh> // '';
    close $fh;
    return eval { $JSON->decode($txt) } // {};
}

sub _write_plan {
    my ($self, $plan) = @_;
    my $tmp = "$self->{plan}.$$";
    open(my $fh, '>', $tmp) or die "$tmp: $!";
    print $fh $JSON->encode($plan);
    close $fh;
    rename $tmp, $self->{plan} or die "rename: $!";
}

sub _locked {
    my ($self, $cb) = @_;
    sysopen(my $lock, "$self->{plan}.lock", O_RDWR | O_CREAT) or die "lock: $!";
    flock($lock, LOCK_EX);
    my @r = $cb->();
    close $lock;
    return wantarray ? @r : $r[0];
}

# Takes the next answer for TO (a recipient whose script ran out gets 200).
sub _next_answer {
    my ($self, $to) = @_;
    return $self->_locked(sub {
        my $plan = $self->_read_plan;
        my $key = defined $to && exists $plan->{answers}{$to} ? $to : '*';
        my $q = $plan->{answers}{$key} // [];
        my $a = @$q ? shift @$q : { status => 200 };
        $self->_write_plan($plan);
        return $a;
    });
}

# ------------------------------------------------------------ the server

sub _serve {
    my ($self, $listen) = @_;
    my $n = 0;
    while (my $c = $listen->accept) {
        $c->autoflush(1);
        # one request per connection, answered with Connection: close
        my $req = _read_request($c);
        if ($req) {
            $self->_handle($c, $req, ++$n);
        }
        close $c;
    }
}

sub _read_request {
    my ($c) = @_;
    my $head = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    my $req = eval {
        alarm 10;
        while ($head !~ /\r?\n\r?\n/) {
            my $got = sysread($c, my $buf, 8192);
            return undef unless $got;
            $head .= $buf;
            return undef if length $head > 65536;
        }
        my ($h, $rest) = split /\r?\n\r?\n/, $head, 2;
        my ($line, @lines) = split /\r?\n/, $h;
        my ($method, $target, $proto) = split / /, $line // '', 3;
        my %hdr;
        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
            $hdr{ lc $k } = exists $hdr{ lc $k } ? "$hdr{lc $k}, $v" : $v;
        }
        if (($hdr{expect} // '') =~ /100-continue/i) {
            syswrite($c, "HTTP/1.1 100 Continue\r\n\r\n");
        }
        my $body = $rest // '';
        if (($hdr{'transfer-encoding'} // '') =~ /chunked/i) {
            my $raw = $body;
            my $out = '';
            while (1) {
                if ($raw =~ /\A([0-9a-fA-F]+)[^\r\n]*\r\n/) {
                    my $len = hex $1;
                    my $hl = length($&);
                    if ($len == 0) { last }
                    if (length($raw) >= $hl + $len + 2) {
                        $out .= substr($raw, $hl, $len);
                        substr($raw, 0, $hl + $len + 2) = '';
                        next;
                    }
                }
                my $got = sysread($c, my $buf, 8192);
                last unless $got;
                $raw .= $buf;
            }
            $body = $out;
        } else {
            my $len = $hdr{'content-length'} // 0;
            while (length($body) < $len) {
                my $got = sysread($c, my $buf, $len - length($body));
                last unless $got;
                $body .= $buf;
            }
        }
        alarm 0;
        return { method => $method, target => $target, proto => $proto, headers => \%hdr, body => $body };
    };
    alarm 0;
    return $req;
}

sub _handle {
    my ($self, $c, $req, $n) = @_;
    my @problems;
    my %rec = (n => $n, at => Time::HiRes::time(), method => $req->{method}, path => $req->{target},
        authorization => $req->{headers}{authorization}, content_type => $req->{headers}{'content-type'},
        body => $req->{body});
    my $json = eval { JSON::PP->new->utf8->decode($req->{body}) };
    $rec{json} = $json;
    my $want_version = version();
    push @problems, "method $req->{method}, not POST" unless ($req->{method} // '') eq 'POST';
    if (($req->{target} // '') =~ m{^/([^/]+)/([^/?]+)/messages$}) {
        @rec{qw(version phone_number_id)} = ($1, $2);
        push @problems, "version $1, not $want_version" unless $1 eq $want_version;
    } else {
        push @problems, "path " . ($req->{target} // '') . " is not /{version}/{phone_number_id}/messages";
    }
    my $expect = $self->_read_plan->{expect} // {};
    my $token = $expect->{token} // $self->{token};
    my $pnid = $expect->{phone_number_id} // $self->{pnid};
    my $auth = $req->{headers}{authorization} // '';
    if ($auth !~ /^Bearer (\S+)$/) {
        push @problems, 'no Authorization: Bearer header';
    } elsif (defined $token && $1 ne $token) {
        push @problems, 'Bearer token is not the tenant\'s access token';
    }
    push @problems, "phone_number_id $rec{phone_number_id}, not $pnid"
        if defined $pnid && defined $rec{phone_number_id} && $rec{phone_number_id} ne $pnid;
    push @problems, 'Content-Type is not application/json'
        unless ($req->{headers}{'content-type'} // '') =~ m{^application/json\s*(;|$)}i;
    if (ref $json ne 'HASH') {
        push @problems, 'body is not a JSON object';
    } else {
        push @problems, 'messaging_product is not "whatsapp"' unless ($json->{messaging_product} // '') eq 'whatsapp';
        push @problems, 'recipient_type is not "individual"'
            if exists $json->{recipient_type} && ($json->{recipient_type} // '') ne 'individual';
        my $to = $json->{to};
        if (!defined $to || ref $to || $to !~ /^[1-9]\d{5,14}$/) {
            push @problems, '"to" is not the number as digits without +';
        }
        $rec{to} = ref $to ? undef : $to;
        push @problems, 'type is not "template"' unless ($json->{type} // '') eq 'template';
        my $tp = $json->{template};
        if (ref $tp ne 'HASH') {
            push @problems, 'no template object';
        } else {
            $rec{template} = $tp->{name};
            push @problems, 'template.name missing' unless defined $tp->{name} && !ref $tp->{name} && length $tp->{name};
            $rec{language} = ref $tp->{language} eq 'HASH' ? $tp->{language}{code} : undef;
            push @problems, 'template.language.code missing'
                unless defined $rec{language} && !ref $rec{language} && length $rec{language};
            my $comp = $tp->{components};
            if (ref $comp ne 'ARRAY' || ref $comp->[0] ne 'HASH') {
                push @problems, 'template.components is not a list of objects';
            } else {
                push @problems, 'components[0].type is not "body"' unless ($comp->[0]{type} // '') eq 'body';
                my $params = $comp->[0]{parameters};
                if (ref $params ne 'ARRAY' || !@$params) {
                    push @problems, 'components[0].parameters is not a non-empty list';
                } else {
                    for my $i (0 .. $#$params) {
                        my $p = $params->[$i];
                        if (ref $p ne 'HASH' || ($p->{type} // '') ne 'text' || !defined $p->{text} || ref $p->{text}) {
                            push @problems, "parameter $i is not {type:text, text:string}";
                        } elsif ($p->{text} eq '') {
                            push @problems, "parameter $i has an empty text";
                        }
                    }
                    $rec{params} = [ map { ref $_ eq 'HASH' ? $_->{text} : undef } @$params ];
                }
            }
        }
    }
    $rec{problems} = \@problems;
    my $ans = $self->_next_answer($rec{to});
    my $status = $ans->{status} // 200;
    $rec{status} = $ans->{close} ? 'closed' : $status;
    # recorded before the answer: when the notifier records the outcome the
    # request is already on file
    $self->_record(\%rec);
    Time::HiRes::sleep($ans->{delay}) if $ans->{delay};
    return if $ans->{close};    # hang up without an answer
    my $body = $ans->{body};
    if (!defined $body) {
        $body = $status >= 200 && $status < 300
            ? { messaging_product => 'whatsapp',
                contacts => [ { input => $rec{to} // '', wa_id => $rec{to} // '' } ],
                messages => [ { id => sprintf('wamid.HBgL%s%06d', $$, $n) } ] }
            : error_body($status);
    }
    $body = $JSON->encode($body) if ref $body;
    my %h = (%{ $ans->{headers} // {} });
    my $reason = { 200 => 'OK', 400 => 'Bad Request', 401 => 'Unauthorized', 404 => 'Not Found',
        429 => 'Too Many Requests', 500 => 'Internal Server Error', 503 => 'Service Unavailable' }->{$status} // 'Status';
    my $out = "HTTP/1.1 $status $reason\r\nContent-Type: application/json\r\nContent-Length: "
        . length($body) . "\r\nConnection: close\r\n";
    $out .= "$_: $h{$_}\r\n" for sort keys %h;
    syswrite($c, "$out\r\n$body");
}

sub _record {
    my ($self, $rec) = @_;
    open(my $fh, '>>', $self->{log}) or die "$self->{log}: $!";
    flock($fh, LOCK_EX);
    print $fh $JSON->encode($rec), "\n";
    close $fh;
}

# The Cloud API's error body for a status (Graph API shape).
sub error_body {
    my ($status, $message, $code) = @_;
    my %m = (
        400 => [ '(#132001) Template name does not exist in the translation', 132001 ],
        401 => [ 'Error validating access token: Session has expired', 190 ],
        404 => [ 'Unsupported post request. Object does not exist', 100 ],
        429 => [ '(#130429) Rate limit hit', 130429 ],
        500 => [ 'An unknown error has occurred.', 1 ],
        503 => [ 'Service temporarily unavailable', 2 ],
    );
    my $d = $m{$status} // [ "error $status", $status ];
    return { error => { message => $message // $d->[0], type => 'OAuthException',
        code => $code // $d->[1], fbtrace_id => 'AbCdEf' . $status } };
}

1;
