#!/usr/bin/perl
# The local S3-compatible store really verifies SigV4: a presigned PUT/GET
# made with botocore works; a tampered, re-targeted, expired or wrongly keyed
# URL is refused with 403.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use HTTP::Tiny;
use Atrium::Test;

my $endpoint = env_of('ATRIUM_S3_ENDPOINT');
my $bucket = env_of('ATRIUM_S3_BUCKET');
ok($endpoint && $bucket, "store configured: $endpoint/$bucket");

# botocore from Debian (python3-botocore) belongs to /usr/bin/python3
sub presign {
    my (%o) = @_;
    my $py = <<'PY';
import sys, botocore.session
from botocore.config import Config
endpoint, bucket, key, method, expires, ak, sk, region, ctype = sys.argv[1:10]
s = botocore.session.get_session()
c = s.create_client('s3', endpoint_url=endpoint, region_name=region, aws_access_key_id=ak,
    aws_secret_access_key=sk, config=Config(signature_version='s3v4', s3={'addressing_style': 'path'}))
params = {'Bucket': bucket, 'Key': key}
if ctype:
    params['ContentType'] = ctype
print(c.generate_presigned_url('put_object' if method == 'PUT' else 'get_object',
    Params=params, ExpiresIn=int(expires)))
PY
    my @args = ($endpoint, $bucket, $o{key}, $o{method}, $o{expires} // 300,
        $o{ak} // env_of('ATRIUM_S3_ACCESS_KEY_ID'), $o{sk} // env_of('ATRIUM_S3_SECRET_ACCESS_KEY'),
        env_of('ATRIUM_S3_REGION') // 'us-east-1', $o{ctype} // '');
    open(my $fh, '-|', '/usr/bin/python3', '-c', $py, @args) or die "python3: $!";
    my $url = <$fh>;
    close $fh;
    chomp $url if defined $url;
    return $url;
}

my $http = HTTP::Tiny->new(timeout => 10);
my $key = 'tests/' . random_code('s3') . '/file.txt';
my $body = "hello from the store test\n";

my $put = presign(key => $key, method => 'PUT', ctype => 'text/plain');
like($put, qr/X-Amz-Signature=[0-9a-f]{64}/, 'presigned PUT URL');
my $r = $http->request(PUT => $put, { content => $body, headers => { 'content-type' => 'text/plain' } });
is($r->{status}, 200, 'signed PUT accepted') or diag $r->{content};

my $get = presign(key => $key, method => 'GET');
$r = $http->get($get);
is($r->{status}, 200, 'signed GET');
is($r->{content}, $body, 'object content');

# tampering with any signed part is refused
(my $sig_flip = $get) =~ s/(X-Amz-Signature=[0-9a-f]{63})([0-9a-f])/$1 . ($2 eq '0' ? '1' : '0')/e;
(my $retarget = $get) =~ s{/file\.txt\?}{/other.txt?};
(my $longer = $get) =~ s/X-Amz-Expires=\d+/X-Amz-Expires=604800/;
my %bad = ('signature flipped' => $sig_flip, 'other key' => $retarget, 'expiry edited' => $longer);
for my $name (sort keys %bad) {
    $r = $http->get($bad{$name});
    is($r->{status}, 403, "$name: 403");
    like($r->{content}, qr/SignatureDoesNotMatch|AccessDenied|AuthorizationQuery/, "$name: S3 error");
}
$r = $http->get(presign(key => $key, method => 'GET', sk => 'not-the-secret'));
is($r->{status}, 403, 'wrong secret: 403');

# the signed content type binds the upload
$r = $http->request(PUT => $put, { content => $body, headers => { 'content-type' => 'text/html' } });
is($r->{status}, 403, 'PUT with another content type: 403');

my $short = presign(key => $key, method => 'GET', expires => 1);
sleep 2;
$r = $http->get($short);
is($r->{status}, 403, 'expired URL: 403');
like($r->{content}, qr/expired|AccessDenied/i, 'expiry named');

done_testing();
