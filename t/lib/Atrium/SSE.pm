package Atrium::SSE;
# A small Server-Sent Events client for the real-time tests (t/http/events.t),
# in core Perl plus IO::Socket::SSL.  It connects to 127.0.0.1 on the stack's
# HTTPS port with SNI and Host set to the tenant's host, sends one GET with
# Accept: text/event-stream (and Last-Event-ID when asked), and then reads the
# stream without blocking, so a test can hold several subscriptions at once:
#
#   my $s = Atrium::SSE->subscribe(host => $t->{host}, path => "/events?project_id=$p",
#       headers => { authorization => "Bearer $tok" }, last_event_id => $id);
#   $s->status, $s->header('content-type'), $s->json   (a refused subscription)
#   $s->is_stream                 200 text/event-stream
#   $s->wait_events(3, 5)         waits up to 5 s for 3 events in all; the list
#   $s->events                    every event so far: {id, event, data, json, t}
#   $s->ended                     the server ended the stream (last chunk or EOF)
#   Atrium::SSE::pump_all(secs, @subs)   reads all of them for secs seconds
#
# An event is {id, event, data (text), json (decoded data or undef), t (arrival
# time)}; comment lines (": hi", ":410: 410 Gone") are kept in ->comments.
#
# Also a minimal WebSocket client for the same URL:
#   my $w = Atrium::SSE->websocket(host => ..., path => ..., headers => {...});
#   $w->status (101), $w->accept_ok, $w->read_frame(5) -> {opcode, payload},
#   $w->send_text($text)
use strict;
use warnings;
use IO::Socket::SSL qw(SSL_VERIFY_NONE $SSL_ERROR);
use IO::Select;
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Time::HiRes qw(time);
use JSON::PP;
use Digest::SHA qw(sha1);
use MIME::Base64 qw(encode_base64);
use Atrium::Test qw(env_of);

my $API_BASE = '/api/portal/v1';

sub _connect {
    my ($host, $timeout) = @_;
    my $port = env_of('ATRIUM_HTTPS_PORT');
    my $sock = IO::Socket::SSL->new(
        PeerAddr        => '127.0.0.1',
        PeerPort        => $port,
        SSL_hostname    => $host,              # SNI: the tenant's host
        SSL_verify_mode => SSL_VERIFY_NONE,    # the stack's certificate is self-signed
        Timeout         => $timeout,
    ) or die "SSE: connect to 127.0.0.1:$port ($host): $! $SSL_ERROR\n";
    return ($sock, $port);
}

sub _request {
    my ($self, $sock, $port, %o) = @_;
    my $path = (exists $o{base} ? $o{base} : $API_BASE) . $o{path};
    my %h = (host => "$o{host}:$port", 'user-agent' => 'atrium-tests-sse', %{ $o{headers} // {} });
    delete $h{$_} for grep { !defined $h{$_} } keys %h;
    my $req = "GET $path HTTP/1.1\r\n" . join('', map { "$_: $h{$_}\r\n" } sort keys %h) . "\r\n";
    $sock->blocking(1);
    print {$sock} $req or die "SSE: write: $!";
}

# Reads the response head (blocking, with a deadline); leftover bytes stay
# in $self->{raw}.
sub _read_head {
    my ($self, $timeout) = @_;
    my $end = time + $timeout;
    my $raw = '';
    while ($raw !~ /\r\n\r\n/) {
        my $left = $end - time;
        die "SSE: no response head within ${timeout}s\n" if $left <= 0;
        if (!$self->{sock}->pending) {
            my $sel = IO::Select->new($self->{sock});
            next unless $sel->can_read($left);
        }
        my $n = sysread($self->{sock}, my $b, 16384);
        if (!defined $n) {
            next if $!{EINTR} || $!{EAGAIN};
            die "SSE: read: $!\n";
        }
        die "SSE: connection closed before the response head (" . length($raw) . " bytes)\n" if $n == 0;
        $raw .= $b;
    }
    my ($head, $rest) = split /\r\n\r\n/, $raw, 2;
    my ($status_line, @lines) = split /\r\n/, $head;
    my ($status) = $status_line =~ m{^HTTP/1\.[01] (\d{3})} or die "SSE: bad status line: $status_line\n";
    my %hdr;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        push @{ $hdr{ lc $k } }, $v;
    }
    $self->{status} = $status;
    $self->{headers} = \%hdr;
    $self->{raw} = $rest // '';
    $self->{chunked} = ($self->header('transfer-encoding') // '') =~ /chunked/i ? 1 : 0;
}

# subscribe(host => H, path => P, headers => {...}, last_event_id => ID,
#           timeout => secs (default 10), base => '/api/portal/v1')
sub subscribe {
    my ($class, %o) = @_;
    my $timeout = $o{timeout} // 10;
    my ($sock, $port) = _connect($o{host}, $timeout);
    my $self = bless {
        host => $o{host}, path => $o{path}, sock => $sock, body => '', text => '', events => [],
        comments => [], ended => 0, eof => 0, cur => {}, chunk_left => undef,
    }, $class;
    my %h = (accept => 'text/event-stream', 'cache-control' => 'no-cache', %{ $o{headers} // {} });
    $h{'last-event-id'} = $o{last_event_id} if defined $o{last_event_id};
    $self->_request($sock, $port, %o, headers => \%h);
    $self->_read_head($timeout);
    if ($self->is_stream) {
        $sock->blocking(0);
        $self->_absorb('');
    } else {
        $self->_read_body($timeout);
    }
    return $self;
}

sub status { $_[0]{status} }
sub headers { $_[0]{headers} }

sub header {
    my ($self, $name) = @_;
    my $v = $self->{headers}{ lc $name } or return undef;
    return wantarray ? @$v : $v->[-1];
}

sub is_stream {
    my ($self) = @_;
    return $self->{status} == 200 && ($self->header('content-type') // '') =~ m{^text/event-stream};
}

# the decoded JSON body of a refused (non-stream) answer
sub json { $_[0]{json} }
sub content { $_[0]{body} }

# A non-stream answer: Content-Length or chunked, or up to EOF.
sub _read_body {
    my ($self, $timeout) = @_;
    my $end = time + $timeout;
    my $len = $self->header('content-length');
    $self->{sock}->blocking(0);
    while (1) {
        $self->_absorb('');
        last if $self->{eof} || $self->{ended};
        last if !$self->{chunked} && defined $len && length($self->{body}) >= $len;
        last if time > $end;
        $self->_fill($end - time);
    }
    my $ct = $self->header('content-type') // '';
    $self->{json} = eval { decode_json($self->{body}) } if $ct =~ m{json} && length $self->{body};
    $self->close;
}

# waits for readability (up to $secs) and reads what is there
sub _fill {
    my ($self, $secs) = @_;
    return 0 if $self->{eof} || !$self->{sock};
    unless ($self->{sock}->pending) {
        my $sel = IO::Select->new($self->{sock});
        return 0 unless $sel->can_read($secs > 0 ? $secs : 0);
    }
    return $self->_drain;
}

# every byte available now, without blocking; returns how many
sub _drain {
    my ($self) = @_;
    my $total = 0;
    my $sock = $self->{sock} or return 0;
    while (1) {
        my $n = sysread($sock, my $b, 65536);
        if (defined $n && $n > 0) {
            $total += $n;
            $self->{raw} .= $b;
            next;
        }
        if (defined $n) {    # 0: EOF
            $self->{eof} = 1;
            last;
        }
        last if $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR}
            || $SSL_ERROR == IO::Socket::SSL::SSL_WANT_READ()
            || $SSL_ERROR == IO::Socket::SSL::SSL_WANT_WRITE();
        $self->{eof} = 1;    # reset or TLS failure: the stream is over
        last;
    }
    $self->_absorb('');
    return $total;
}

# raw bytes -> body (de-chunked) -> SSE lines
sub _absorb {
    my ($self) = @_;
    if (!$self->{chunked}) {
        $self->{body} .= $self->{raw};
        $self->{text} .= $self->{raw} if $self->is_stream;
        $self->{raw} = '';
    } else {
        while (length $self->{raw}) {
            if (!defined $self->{chunk_left}) {
                last unless $self->{raw} =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//;
                $self->{chunk_left} = hex $1;
                if ($self->{chunk_left} == 0) {    # the last chunk: the answer is complete
                    $self->{ended} = 1;
                    $self->{raw} = '';
                    last;
                }
            }
            my $take = substr($self->{raw}, 0, $self->{chunk_left}, '');
            $self->{body} .= $take;
            $self->{text} .= $take if $self->is_stream;
            $self->{chunk_left} -= length $take;
            if ($self->{chunk_left} == 0) {
                last if length($self->{raw}) < 2;
                $self->{raw} =~ s/^\r\n// or die "SSE: bad chunk framing\n";
                $self->{chunk_left} = undef;
            }
        }
    }
    $self->{ended} = 1 if $self->{eof};
    $self->_parse if $self->is_stream;
}

# the SSE line protocol (lines end in \n, \r\n or \r; a blank line
# dispatches the event being built)
sub _parse {
    my ($self) = @_;
    while ($self->{text} =~ s/^([^\r\n]*)(\r\n|\n|\r(?=[^\n]))//) {
        my $line = $1;
        my $cur = $self->{cur};
        if ($line eq '') {
            if (exists $cur->{data}) {
                my %e = (id => $cur->{id} // $self->{last_id}, event => $cur->{event} // 'message',
                    data => $cur->{data}, t => time);
                $e{json} = eval { decode_json($e{data}) };
                push @{ $self->{events} }, \%e;
            }
            $self->{last_id} = $cur->{id} if defined $cur->{id};
            $self->{cur} = {};
            next;
        }
        if ($line =~ /^:/) {
            push @{ $self->{comments} }, $line;
            next;
        }
        my ($field, $value) = $line =~ /^([^:]*)(?::\s?(.*))?$/;
        $value //= '';
        if ($field eq 'data') {
            $cur->{data} = defined $cur->{data} ? "$cur->{data}\n$value" : $value;
        } elsif ($field eq 'id') {
            $cur->{id} = $value unless $value =~ /\0/;
        } elsif ($field eq 'event') {
            $cur->{event} = $value;
        }
    }
}

# every event received so far (a copy of the list)
sub events { [ @{ $_[0]{events} } ] }
sub comments { [ @{ $_[0]{comments} } ] }
sub ended { $_[0]{ended} }
sub last_id { my $e = $_[0]{events}[-1]; $e ? $e->{id} : undef }

# reads what is available now
sub pump { my ($self) = @_; $self->_drain if $self->{sock} && !$self->{eof}; return $self }

# waits up to $secs until $cond->($self) is true; returns its last value
sub wait_until {
    my ($self, $secs, $cond) = @_;
    my $end = time + $secs;
    while (1) {
        $self->pump;
        my $v = $cond->($self);
        return $v if $v;
        return $v if $self->{eof} || time >= $end;
        # readable without a whole TLS record yet: wait a little, do not spin
        $self->_fill($end - time) or select(undef, undef, undef, 0.01);
    }
}

# waits until $n events in all have arrived (or $secs pass); returns the list
sub wait_events {
    my ($self, $n, $secs) = @_;
    $self->wait_until($secs, sub { @{ $_[0]{events} } >= $n });
    return $self->events;
}

# waits until the server ends the stream; true when it did
sub wait_end {
    my ($self, $secs) = @_;
    return $self->wait_until($secs, sub { $_[0]{ended} });
}

sub close {
    my ($self) = @_;
    if (my $s = delete $self->{sock}) {
        $s->close(SSL_fast_shutdown => 1);
    }
    $self->{closed} = 1;
}

sub DESTROY { my ($self) = @_; local $@; eval { $self->close } }

# Reads every subscription for $secs seconds (all events that arrive).
sub pump_all {
    my ($secs, @subs) = @_;
    my $end = time + $secs;
    while (1) {
        my @open = grep { $_->{sock} && !$_->{eof} } @subs;
        $_->pump for @open;
        my $left = $end - time;
        last if $left <= 0 || !@open;
        next if grep { $_->{sock}->pending } @open;
        IO::Select->new(map { $_->{sock} } @open)->can_read($left);
        # a socket can be readable with no whole TLS record yet: do not spin
        select(undef, undef, undef, 0.01);
    }
}

# Waits (up to $secs) until $cond->() is true while reading every
# subscription; returns the condition's value.
sub wait_all {
    my ($secs, $cond, @subs) = @_;
    my $end = time + $secs;
    while (1) {
        my @open = grep { $_->{sock} && !$_->{eof} } @subs;
        $_->pump for @open;
        my $v = $cond->();
        return $v if $v;
        my $left = $end - time;
        return $v if $left <= 0;
        if (!@open) { select(undef, undef, undef, $left < 0.05 ? $left : 0.05); next }
        next if grep { $_->{sock}->pending } @open;
        IO::Select->new(map { $_->{sock} } @open)->can_read($left < 0.25 ? $left : 0.25);
        # a socket can be readable with no whole TLS record yet: do not spin
        select(undef, undef, undef, 0.01);
    }
}

# ------------------------------------------------------------------ WebSocket

# websocket(host, path, headers, timeout): the opening handshake; a refused
# handshake reads the answer's body like subscribe() does.
sub websocket {
    my ($class, %o) = @_;
    my $timeout = $o{timeout} // 10;
    my ($sock, $port) = _connect($o{host}, $timeout);
    my $key = encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    my $self = bless { host => $o{host}, sock => $sock, body => '', text => '', events => [], comments => [],
        ended => 0, eof => 0, cur => {}, ws_key => $key, frames => [] }, $class;
    my %h = (upgrade => 'websocket', connection => 'Upgrade', 'sec-websocket-key' => $key,
        'sec-websocket-version' => 13, %{ $o{headers} // {} });
    $self->_request($sock, $port, %o, headers => \%h);
    $self->_read_head($timeout);
    if ($self->{status} == 101) {
        $self->{chunked} = 0;
        $sock->blocking(0);
    } else {
        $self->_read_body($timeout);
    }
    return $self;
}

sub accept_ok {
    my ($self) = @_;
    my $want = encode_base64(sha1($self->{ws_key} . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'), '');
    return ($self->header('sec-websocket-accept') // '') eq $want;
}

# the next data frame from the server: {opcode, payload}; pings and pongs
# are skipped; undef after $secs
sub read_frame {
    my ($self, $secs) = @_;
    my $end = time + $secs;
    while (1) {
        while (length($self->{raw}) >= 2) {
            my ($b0, $b1) = unpack('CC', $self->{raw});
            my $len = $b1 & 0x7f;
            my $off = 2;
            if ($len == 126) {
                last if length($self->{raw}) < 4;
                $len = unpack('n', substr($self->{raw}, 2, 2));
                $off = 4;
            } elsif ($len == 127) {
                last if length($self->{raw}) < 10;
                my ($hi, $lo) = unpack('NN', substr($self->{raw}, 2, 8));
                $len = $hi * 4294967296 + $lo;
                $off = 10;
            }
            my $mask = '';
            if ($b1 & 0x80) { $mask = substr($self->{raw}, $off, 4); $off += 4 }
            last if length($self->{raw}) < $off + $len;
            my $payload = substr($self->{raw}, $off, $len);
            substr($self->{raw}, 0, $off + $len, '');
            if (length $mask) {
                my @m = unpack('C4', $mask);
                my $i = 0;
                $payload = join '', map { chr(ord($_) ^ $m[ $i++ % 4 ]) } split //, $payload;
            }
            my $op = $b0 & 0x0f;
            next if $op == 9 || $op == 10;    # ping, pong
            return { opcode => $op, payload => $payload, fin => ($b0 & 0x80) ? 1 : 0 };
        }
        return undef if $self->{eof} || time >= $end;
        $self->_fill_ws($end - time);
    }
}

# sends one masked text frame (a client's frames are masked)
sub send_text {
    my ($self, $text) = @_;
    my $len = length $text;
    my $head = pack('C', 0x81) . ($len < 126 ? pack('C', 0x80 | $len) : pack('Cn', 0x80 | 126, $len));
    my @m = map { int rand 256 } 1 .. 4;
    my $i = 0;
    my $masked = join '', map { chr(ord($_) ^ $m[ $i++ % 4 ]) } split //, $text;
    my $sock = $self->{sock} or return 0;
    $sock->blocking(1);
    my $ok = print {$sock} $head . pack('C4', @m) . $masked;
    $sock->blocking(0);
    return $ok;
}

sub _fill_ws {
    my ($self, $secs) = @_;
    my $sock = $self->{sock} or return;
    unless ($sock->pending) {
        return unless IO::Select->new($sock)->can_read($secs > 0 ? $secs : 0);
    }
    while (1) {
        my $n = sysread($sock, my $b, 65536);
        if (defined $n && $n > 0) { $self->{raw} .= $b; next }
        if (defined $n) { $self->{eof} = 1; last }
        last if $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR}
            || $SSL_ERROR == IO::Socket::SSL::SSL_WANT_READ();
        $self->{eof} = 1;
        last;
    }
}

1;
