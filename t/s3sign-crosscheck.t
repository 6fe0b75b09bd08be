#!/usr/bin/perl
# Cross-checks s3_presign() (fcgi-app/s3sign.c) against an independent SigV4
# implementation: botocore's S3SigV4QueryAuth from Debian's python3-botocore
# (installed by scripts/deps), with its clock pinned to each case's time.
#
# Random cases (keys with UTF-8, spaces and reserved characters, path and
# virtual-hosted style, http/https endpoints with and without ports, upper-case
# hosts, regions incl. R2's "auto", signed content-type/content-length,
# response-* query parameters) go through build/test/unit-tools/s3sign-gen
# and through botocore; the URLs must agree on scheme, host, path, every query
# parameter and the signature.
#
# Where botocore's URL differs in form but not in meaning, we normalise it
# before comparing (the signature itself is compared as is):
#   - botocore keeps the endpoint's spelling in the URL (upper-case letters, an
#     explicit default port) and only normalises the signed Host; s3_presign
#     puts the normalised host in the URL too, so that every client sends
#     exactly the Host that was signed.  We compare lower-cased hosts with
#     default ports removed.
#   - botocore puts its operation parameters before the X-Amz-* ones in the
#     URL; s3_presign emits the canonical (sorted) order.  Query parameters
#     are compared as sorted lists, and our order is checked to be canonical.
# Cases avoid two botocore quirks that are not SigV4: it drops a content-type
# of exactly "application/x-www-form-urlencoded; charset=utf-8" from presigned
# requests, and never signs user-agent/expect/x-amzn-trace-id.
#
# S3SIGN_SEED=n reproduces a run; S3SIGN_CASES=n changes the number of cases.
use strict;
use warnings;
use Test::More;
use FindBin;
use File::Temp qw(tempdir);
use List::Util qw(shuffle);

my $root = "$FindBin::Bin/..";
my $gen = $ENV{ATRIUM_S3SIGN_GEN} // "$root/build/test/unit-tools/s3sign-gen";
plan skip_all => "$gen not built (make test-build)" unless -x $gen;
my $python = '/usr/bin/python3';

my $seed = $ENV{S3SIGN_SEED} // (time() ^ ($$ << 8)) % 1_000_000_007;
my $ncases = $ENV{S3SIGN_CASES} // 300;
srand($seed);
note("seed $seed (S3SIGN_SEED=$seed reproduces this run)");

# ---- random cases ----

sub pick { return $_[int(rand(@_))] }
sub chance { return rand() < $_[0] }

sub rand_str {
    my ($chars, $min, $max) = @_;
    my $n = $min + int(rand($max - $min + 1));
    return join('', map { substr($chars, int(rand(length $chars)), 1) } 1 .. $n);
}

my $ALNUM = join('', 'a' .. 'z', 'A' .. 'Z', '0' .. '9');
my $LOWER_DNS = join('', 'a' .. 'z', '0' .. '9');
# UTF-8 byte strings: 2-, 3- and 4-byte characters, and U+00A0 and U+3000
# (spaces to Unicode, not to SigV4)
my @UTF8 = ("\xc3\xa9", "\xc3\x9f", "\xe2\x9c\x93", "\xe6\x97\xa5\xe6\x9c\xac",
    "\xf0\x9f\x98\x80", "\xc2\xa0", "\xe3\x80\x80", "\xd0\x96");
my @RESERVED = split //, q{ !"#$%&'()*+,:;<=>?@[\]^`{|}~-._};

sub key_segment {
    my $seg = '';
    for (1 .. 1 + int(rand(12))) {
        my $r = rand();
        $seg .= $r < 0.55 ? rand_str($ALNUM, 1, 3)
            : $r < 0.85 ? pick(@RESERVED)
            : pick(@UTF8);
    }
    # "." and ".." segments are refused (a browser would resolve them)
    return $seg =~ /^\.\.?$/ ? "x$seg" : $seg;
}

sub rand_key {
    my @segs = map { key_segment() } 1 .. 1 + int(rand(5));
    my $key = join('/', @segs);
    $key = "/$key" if chance(0.05);         # leading slash: an empty first segment
    $key =~ s{/}{//} if chance(0.05);       # an empty inner segment
    $key .= '/' if chance(0.05);            # a "directory" key
    return $key;
}

sub rand_endpoint {
    my ($path_style) = @_;
    my $https = chance(0.6);
    my $scheme = $https ? 'https' : 'http';
    my @hosts = ('s3.amazonaws.com', 's3.eu-central-1.amazonaws.com',
        rand_str($LOWER_DNS, 8, 32) . '.r2.cloudflarestorage.com', 'localhost',
        '127.0.0.1', 'S3.Example.COM', 'store-1.internal', 'minio_1');
    push @hosts, '[::1]', '[2001:DB8::5]' if $path_style;
    my $host = pick(@hosts);
    my $r = rand();
    my $port = $r < 0.4 ? ''
        : $r < 0.55 ? ($https ? ':443' : ':80')    # the default, spelt out
        : $r < 0.65 ? ($https ? ':80' : ':443')    # the other default: not ours
        : ':' . (1 + int(rand(65535)));
    return "$scheme://$host$port";
}

sub rand_bucket {
    my ($path_style) = @_;
    my $inner = $path_style ? "$LOWER_DNS-.ABCXYZ_" : "$LOWER_DNS-.";
    return rand_str($LOWER_DNS, 1, 1) . rand_str($inner, 1, 30) . rand_str($LOWER_DNS, 1, 1);
}

sub rand_value {
    my $v = '';
    for (1 .. 1 + int(rand(20))) {
        my $r = rand();
        $v .= $r < 0.6 ? rand_str($ALNUM, 1, 4) : $r < 0.9 ? pick(@RESERVED) : pick(@UTF8);
    }
    return $v;
}

sub rand_case {
    my $path_style = chance(0.5) ? 1 : 0;
    my %c = (
        method => pick(qw(GET GET PUT PUT HEAD DELETE)),
        endpoint => rand_endpoint($path_style),
        region => pick('us-east-1', 'eu-west-3', 'auto', rand_str("$LOWER_DNS-", 1, 20)),
        bucket => rand_bucket($path_style),
        path_style => $path_style,
        akid => rand_str(join('', 'A' .. 'Z', '0' .. '9'), 16, 20),
        secret => rand_str("$ALNUM+/", 40, 40),
        key => rand_key(),
        now => 946684800 + int(rand(4102444800 - 946684800)),
        expires => pick(1, 60, 3600, 86400, 604800, 1 + int(rand(604800))),
        extra => [],
    );
    if (chance(0.5)) {
        my $ct = pick('application/pdf', 'image/png', 'text/plain; charset=utf-8',
            "  text/html ;\t charset=UTF-8  ", 'application/octet-stream',
            "multipart/mixed;   boundary=\"a  b\"", '');
        push @{$c{extra}}, ['h', 'content-type', $ct];
    }
    push @{$c{extra}}, ['h', 'content-length', int(rand(5_000_000_000))] if chance(0.4);
    push @{$c{extra}}, ['h', 'x-amz-meta-tenant', rand_str($ALNUM, 1, 12)] if chance(0.1);
    if (chance(0.4)) {
        push @{$c{extra}}, ['q', 'response-content-disposition',
            "attachment; filename=\"" . rand_value() . "\"; filename*=UTF-8''x%20y"];
    }
    push @{$c{extra}}, ['q', 'response-content-type', pick('application/pdf', rand_value())]
        if chance(0.3);
    push @{$c{extra}}, ['q', 'response-cache-control', 'no-store'] if chance(0.1);
    # the order the caller passes must not matter
    @{$c{extra}} = shuffle(@{$c{extra}});
    return \%c;
}

sub encode_case {
    my ($c) = @_;
    my @f = (@$c{qw(method endpoint region bucket path_style akid secret key now expires)},
        map { @$_ } @{$c->{extra}});
    return join("\t", map { s/([^A-Za-z0-9])/sprintf('%%%02X', ord $1)/ger } @f) . "\n";
}

# AWS's published example first: both sides must reproduce it.
my @cases = ({
    method => 'GET', endpoint => 'https://s3.amazonaws.com', region => 'us-east-1',
    bucket => 'examplebucket', path_style => 0, akid => 'AKIAIOSFODNN7EXAMPLE',
    secret => 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', key => 'test.txt',
    now => 1369353600, expires => 86400, extra => [],
});
push @cases, rand_case() for 1 .. $ncases;

# ---- run both implementations ----

my $dir = tempdir(CLEANUP => 1);
my $in = "$dir/cases.tsv";
open(my $fh, '>', $in) or die "$in: $!";
print $fh encode_case($_) for @cases;
close($fh) or die "$in: $!";
my $py = "$dir/botocore_presign.py";
open($fh, '>', $py) or die "$py: $!";
print $fh do { local $/; <DATA> };
close($fh) or die "$py: $!";

# Runs cmd with stdin from a file; returns (exit status, stdout lines).
sub run_with_input {
    my ($file, @cmd) = @_;
    my $pid = open(my $out, '-|') // die "fork: $!";
    if ($pid == 0) {
        open(STDIN, '<', $file) or die "$file: $!";
        exec(@cmd) or die "exec $cmd[0]: $!";
    }
    my @lines = map { s/\n\z//r } <$out>;
    close($out);
    return ($?, @lines);
}

# botocore comes with scripts/deps (python3-botocore): without it, fail
if (!ok(-x $python, "$python exists (Debian's python3, for python3-botocore)")) {
    done_testing();
    exit;
}
# -I: no PYTHONPATH, no user site-packages: Debian's botocore, not another
my ($py_status, $version, @want) = run_with_input($in, $python, '-I', $py);
if (!is($py_status, 0, 'botocore reference ran')) {
    diag('is python3-botocore installed? (scripts/deps)');
    done_testing();
    exit;
}
note("reference: $version");
my ($gen_status, @got) = run_with_input($in, $gen);
is($gen_status, 0, 's3sign-gen ran');
is(scalar @got, scalar @cases, 's3sign-gen answered every case');
is(scalar @want, scalar @cases, 'botocore answered every case');

# ---- compare ----

my %DEFAULT_PORT = (http => 80, https => 443);

# URL -> {scheme, host, path, query => [[name, value]...], sig}
sub parse_url {
    my ($url) = @_;
    return undef unless defined $url
        && $url =~ m{^(https?)://(\[[^\]]+\]|[^/:?]+)(?::(\d+))?(/[^?#]*)\?([^#]*)$};
    my ($scheme, $host, $port, $path, $query) = ($1, lc $2, $3, $4, $5);
    $host .= ":$port" if defined $port && $port != $DEFAULT_PORT{$scheme};
    my @q = map { [split /=/, $_, 2] } split /&/, $query;
    my @sig = grep { $_->[0] eq 'X-Amz-Signature' } @q;
    return {
        scheme => $scheme, host => $host, path => $path, sig => @sig == 1 ? $sig[0][1] : undef,
        query => [grep { $_->[0] ne 'X-Amz-Signature' } @q],
        sig_last => @q && $q[-1][0] eq 'X-Amz-Signature',
    };
}

sub canonical_sort {
    return sort { $a->[0] cmp $b->[0] || $a->[1] cmp $b->[1] } @_;
}

# A case on one line, bytes outside printable ASCII as \xNN.
sub describe {
    my ($c) = @_;
    my @parts = ((map { "$_=$c->{$_}" } qw(method endpoint region bucket path_style key now expires)),
        (map { "$_->[0]:$_->[1]=$_->[2]" } @{$c->{extra}}));
    return join(' ', map { s/([^\x21-\x7e])/sprintf('\\x%02x', ord $1)/ger } @parts);
}

my $failed = 0;
for my $i (0 .. $#cases) {
    my ($g, $w) = (parse_url($got[$i]), parse_url($want[$i]));
    my @why;
    if (!$g) {
        push @why, 'ours is not a presigned URL';
    } elsif (!$w) {
        push @why, "botocore's is not a presigned URL";
    } else {
        push @why, 'signature differs' unless defined $g->{sig} && defined $w->{sig}
            && $g->{sig} =~ /^[0-9a-f]{64}$/ && $g->{sig} eq $w->{sig};
        for my $part (qw(scheme host path)) {
            push @why, "$part differs" unless $g->{$part} eq $w->{$part};
        }
        my $gq = join('&', map { "$_->[0]=$_->[1]" } @{$g->{query}});
        my $canon = join('&', map { "$_->[0]=$_->[1]" } canonical_sort(@{$g->{query}}));
        my $wq = join('&', map { "$_->[0]=$_->[1]" } canonical_sort(@{$w->{query}}));
        push @why, 'query parameters differ' unless $canon eq $wq;
        push @why, 'our query is not in canonical order' unless $gq eq $canon;
        push @why, 'X-Amz-Signature is not our last parameter' unless $g->{sig_last};
    }
    my $name = $i == 0 ? "case 0: AWS's published example" : "case $i";
    # details for the first few failures only: one bug fails most cases
    if (!ok(!@why, $name) && ++$failed <= 5) {
        diag(join('; ', @why));
        diag('case: ' . describe($cases[$i]));
        diag('ours:     ' . ($got[$i] // '(none)'));
        diag('botocore: ' . ($want[$i] // '(none)'));
    }
}
is($got[0] =~ s/.*X-Amz-Signature=//r,
    'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
    "AWS's published signature, verbatim");
diag("seed was $seed: S3SIGN_SEED=$seed prove $0") if $failed;
done_testing();

__DATA__
# botocore reference for t/s3sign-crosscheck.t: one case per input line (the
# format of t/unit/s3sign-gen.c), one presigned URL per output line after a
# first line naming the botocore in use.  The URL is built the way botocore's
# S3 client builds it: key path-encoded with safe='/~', bucket in the host
# (virtual-hosted) or as the first path segment (path style); the signer runs
# with its clock pinned to the case's time.
import datetime
import sys
import types
import urllib.parse

import botocore
import botocore.auth
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode


class FixedClock(datetime.datetime):
    fixed = None

    @classmethod
    def utcnow(cls):
        return cls.fixed

    @classmethod
    def now(cls, tz=None):
        return cls.fixed.replace(tzinfo=tz) if tz is not None else cls.fixed


# botocore 1.29 (Debian 12) calls datetime.datetime.utcnow() in auth.py;
# later versions call compat.get_current_datetime() from auth.py.
clock = types.SimpleNamespace(**{k: getattr(datetime, k) for k in dir(datetime) if not k.startswith('__')})
clock.datetime = FixedClock
botocore.auth.datetime = clock
if hasattr(botocore.auth, 'get_current_datetime'):
    botocore.auth.get_current_datetime = lambda remove_tzinfo=True: FixedClock.fixed

print(f'botocore {botocore.__version__} from {botocore.__file__}', flush=True)
for line in sys.stdin:
    f = [urllib.parse.unquote_to_bytes(x).decode('utf-8') for x in line.rstrip('\n').split('\t')]
    method, endpoint, region, bucket, path_style, akid, secret, key, now, expires = f[:10]
    headers, params = {}, {}
    for i in range(10, len(f), 3):
        (headers if f[i] == 'h' else params)[f[i + 1]] = f[i + 2]
    parts = urllib.parse.urlsplit(endpoint)
    path = percent_encode(key, safe='/~')
    if path_style == '1':
        url = f'{parts.scheme}://{parts.netloc}/{percent_encode(bucket)}/{path}'
    else:
        url = f'{parts.scheme}://{bucket}.{parts.netloc}/{path}'
    when = datetime.datetime.fromtimestamp(int(now), datetime.timezone.utc).replace(tzinfo=None)
    FixedClock.fixed = FixedClock(*when.timetuple()[:6])
    req = AWSRequest(method=method, url=url, headers=headers, params=params)
    S3SigV4QueryAuth(Credentials(akid, secret), 's3', region, expires=int(expires)).add_auth(req)
    stamp = when.strftime('%Y%m%dT%H%M%SZ')
    if f'X-Amz-Date={stamp}' not in req.url:
        sys.exit(f'the pinned clock did not take: {req.url}')
    print(req.url)
