package Atrium::Test;
# Shared helpers for the black-box HTTP tests: the running stack's settings,
# fresh tenants per test, and a small HTTPS client that reaches any tenant
# host on 127.0.0.1 (HTTP::Tiny's peer option) with SNI and Host intact.
use strict;
use warnings;
use Exporter 'import';
use HTTP::Tiny;
use JSON::PP;
use File::Basename qw(dirname);
use Cwd qw(abs_path);

our @EXPORT = qw(env_of new_tenant api team_api json_of repo_root stack run_atrium
  random_code new_api_key psql_admin wait_until);

my $JSON = JSON::PP->new->utf8->canonical;
my %ENVF;

sub repo_root { abs_path(dirname(__FILE__) . '/../../..') }

# Settings of the running stack: DIR/atrium.env, read through bash so that
# its quoting means exactly what it means to the scripts.
sub env_of {
    my ($key) = @_;
    unless (%ENVF) {
        my $dir = $ENV{ATRIUM_STACK_DIR} // repo_root() . '/var';
        my $file = "$dir/atrium.env";
        die "no running stack: $file missing (run make test)\n" unless -r $file;
        my $out = `bash -c 'set -a; . "\$1"; env -0' _ "$file"`;
        for my $kv (split /\0/, $out) {
            my ($k, $v) = split /=/, $kv, 2;
            $ENVF{$k} = $v if $k =~ /^(ATRIUM_|PG)/;
        }
    }
    return $ENVF{$key};
}

sub stack { my @a = @_; system(repo_root() . '/scripts/stack', @a) == 0 }

sub run_atrium {
    my @args = @_;
    local $ENV{ATRIUM_STACK_DIR} = env_of('ATRIUM_STACK_DIR');
    my $cmd = join ' ', map { quotemeta } (repo_root() . '/scripts/atrium', @args);
    my $out = `$cmd 2>&1`;
    return wantarray ? ($out, $? >> 8) : $out;
}

my $seq = 0;
sub random_code {
    my ($prefix) = @_;
    $prefix //= 't';
    return sprintf('%s%d%d%04x', $prefix, $$, ++$seq, int(rand(65536)));
}

# A new tenant with its own host under the base domain and a first API key.
sub new_tenant {
    my (%o) = @_;
    my $code = $o{code} // random_code($o{prefix});
    my $host = $o{host} // "$code." . env_of('ATRIUM_BASE_DOMAIN');
    my @name = defined $o{name} ? ('--name', $o{name}) : ();
    my ($out, $rc) = run_atrium('tenant', 'create', $code, '--host', $host, @name, '--json');
    die "tenant create failed ($rc): $out" if $rc != 0;
    my ($line) = grep { /^\{/ } split /\n/, $out;
    my $t = decode_json($line);
    $t->{host} //= $host;
    return $t;
}

sub new_api_key {
    my ($t, $name) = @_;
    my ($out, $rc) = run_atrium('apikey', 'create', $t->{code}, '--name', $name // 'extra', '--json');
    die "apikey create failed: $out" if $rc;
    my ($line) = grep { /^\{/ } split /\n/, $out;
    return decode_json($line);
}

# HTTP::Tiny writes a request's head and body in two writes: without
# TCP_NODELAY every request with a body waits out a delayed ACK (~40 ms).
use Socket qw(IPPROTO_TCP TCP_NODELAY);
if (my $connect = HTTP::Tiny::Handle->can('connect')) {
    no warnings 'redefine';
    *HTTP::Tiny::Handle::connect = sub {
        my $h = $connect->(@_);
        setsockopt($h->{fh}, IPPROTO_TCP, TCP_NODELAY, 1) if $h && $h->{fh};
        return $h;
    };
}

my $http = HTTP::Tiny->new(
    verify_SSL => 0,
    timeout    => 20,
    max_redirect => 0,
    agent      => 'atrium-tests',
);

# api(METHOD, PATH, host => H, headers => {...}, json => REF | body => STR,
#     type => CONTENT_TYPE, port => P, scheme => 'http', base => '')
# Returns HTTP::Tiny's response plus {json} when the answer is JSON.
sub api {
    my ($method, $path, %o) = @_;
    my $scheme = $o{scheme} // 'https';
    my $port = $o{port} // ($scheme eq 'https' ? env_of('ATRIUM_HTTPS_PORT') : env_of('ATRIUM_HTTP_PORT'));
    my $base = exists $o{base} ? $o{base} : '/api/portal/v1';
    my $host = $o{host} // die 'api: host required';
    my %h = %{ $o{headers} // {} };
    # every tenant host lives on this machine: connect to loopback while the
    # URL (and so SNI and Host) keeps the tenant's name
    my %req = (headers => \%h, peer => '127.0.0.1');
    if (exists $o{json}) {
        $req{content} = $JSON->encode($o{json});
        $h{'content-type'} //= 'application/json';
    } elsif (defined $o{body}) {
        $req{content} = $o{body};
        $h{'content-type'} = $o{type} if defined $o{type};
    }
    my $res = $http->request($method, "$scheme://$host:$port$base$path", \%req);
    my $ct = $res->{headers}{'content-type'} // '';
    if ($ct =~ m{^application/(problem\+)?json} && length($res->{content} // '')) {
        $res->{json} = eval { decode_json($res->{content}) };
    }
    return $res;
}

# api() with a tenant's console credentials (or overrides in %o).
sub team_api {
    my ($t, $method, $path, %o) = @_;
    my %h = (
        'x-api-key'     => $t->{api_key},
        'x-client-code' => $t->{code},
        %{ $o{headers} // {} },
    );
    delete $h{$_} for grep { !defined $h{$_} } keys %h;
    return api($method, $path, host => $o{host} // $t->{host}, %o, headers => \%h);
}

sub json_of { $_[0]{json} }

# Runs SQL as the owner role; returns trimmed stdout.
sub psql_admin {
    my ($sql, @vars) = @_;
    local $ENV{PGPASSFILE} = env_of('PGPASSFILE') // '';
    my $dsn = env_of('ATRIUM_DB_ADMIN_DSN');
    open(my $fh, '-|', 'psql', $dsn, '-XAtq', '-v', 'ON_ERROR_STOP=1', @vars, '-c', $sql)
        or die "psql: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    $out =~ s/\s+\z//;
    return $out;
}

# Polls $cb every 100 ms until it returns true or $secs pass.
sub wait_until {
    my ($secs, $cb) = @_;
    my $end = time + $secs;
    while (time <= $end) {
        return 1 if $cb->();
        select(undef, undef, undef, 0.1);
    }
    return 0;
}

1;
