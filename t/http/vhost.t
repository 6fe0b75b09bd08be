#!/usr/bin/perl
# A custom domain: the operator renders its nginx server block with
# scripts/atrium vhost (checked by nginx -t), the tenant adds the host over
# the API, and the portal answers there; removing the vhost stops it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;

my $t = new_tenant();
my $custom = 'portal.' . random_code('agency') . '.example';

my $r = api(GET => '/branding', host => $custom);
is($r->{status}, 404, 'custom domain unknown to nginx: default server');
is($r->{json}{code}, 'tenant_not_found', 'tenant_not_found');

my ($out, $rc) = run_atrium('vhost', $custom);
is($rc, 0, 'vhost rendered, checked and loaded') or diag $out;
$r = api(GET => '/branding', host => $custom);
is($r->{status}, 404, 'served by nginx but not yet a tenant host');
is($r->{json}{code}, 'tenant_not_found', 'the app says tenant_not_found');

$r = team_api($t, POST => '/team/domains', json => { host => $custom });
is($r->{status}, 201, 'tenant adds the custom domain');
$r = api(GET => '/branding', host => $custom);
is($r->{status}, 200, 'portal answers on the custom domain');
is($r->{json}{tenant_code}, $t->{code}, 'as the tenant');
like($r->{headers}{'strict-transport-security'} // '', qr/max-age/, 'with the security headers');
$r = api(GET => '/', host => $custom, base => '');
is($r->{status}, 200, 'portal app served there');

($out, $rc) = run_atrium('vhost', 'bad host!');
isnt($rc, 0, 'an invalid host is refused');
($out, $rc) = run_atrium('vhost', $custom, '--cert', '/nonexistent.pem', '--key', '/nonexistent.key');
isnt($rc, 0, 'a missing certificate is refused');
is(api(GET => '/branding', host => $custom)->{status}, 200, 'and the working vhost is kept');

($out, $rc) = run_atrium('vhost', 'remove', $custom);
is($rc, 0, 'vhost removed') or diag $out;
$r = api(GET => '/branding', host => $custom);
is($r->{status}, 404, 'back to the default server');

done_testing();
