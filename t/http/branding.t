#!/usr/bin/perl
# Branding of two tenants on two hosts; the team view and its writes; no way
# to read or write another tenant's branding.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;

my $a = new_tenant(name => 'Alpha Studio');
my $b = new_tenant(name => 'Beta Agency');

my $r = api(GET => '/branding', host => $a->{host});
is($r->{status}, 200, 'branding of A');
is($r->{json}{tenant_code}, $a->{code}, 'A code');
is($r->{json}{display_name}, 'Alpha Studio', 'A name');
like($r->{json}{colors}{primary}, qr/^#[0-9a-f]{6}$/, 'default colors');
is($r->{json}{locale}, 'en', 'default locale');
ok(!exists $r->{json}{store} && !exists $r->{json}{limits}, 'public branding has no settings');

$r = api(GET => '/branding', host => $b->{host});
is($r->{json}{display_name}, 'Beta Agency', 'B shows its own branding');

# the team view
$r = team_api($a, GET => '/team/branding');
is($r->{status}, 200, 'team branding');
is($r->{json}{limits}{max_upload_bytes}, 52428800, 'default upload limit');
ok((grep { $_ eq 'text/html' } @{ $r->{json}{limits}{blocked_content_types} }), 'html blocked by default');
is($r->{json}{store}{secret_access_key}, undef, 'secret reads back as null');
like($r->{headers}{'cache-control'} // '', qr/no-store/, 'authenticated answer not stored');

# a write changes only what was sent
$r = team_api($a, PATCH => '/team/branding', json => {
    display_name => 'Alpha Studio Ltd',
    colors => { primary => '#AA00FF' },
    support_email => 'help@alpha.example',
    store => { bucket => 'alpha-files', secret_access_key => 's3cr3t-value', path_style => JSON::PP::false },
    whatsapp => { access_token => 'EAAB-token', templates => { invite => 'atrium_invite' } },
    limits => { max_upload_bytes => 1048576, blocked_content_types => ['text/html', 'application/x-sh'] },
});
is($r->{status}, 200, 'patch accepted') or diag explain $r->{json};
is($r->{json}{display_name}, 'Alpha Studio Ltd', 'name changed');
is($r->{json}{colors}{primary}, '#aa00ff', 'color stored lower-case');
is($r->{json}{colors}{accent}, '#0ea5e9', 'other colors untouched');
is($r->{json}{store}{bucket}, 'alpha-files', 'bucket set');
is($r->{json}{store}{secret_access_key}, undef, 'secret write-only');
ok($r->{json}{store}{secret_access_key_set}, 'secret is known to be set');
ok(!$r->{json}{store}{path_style}, 'path style off');
is($r->{json}{whatsapp}{access_token}, undef, 'token write-only');
is($r->{json}{whatsapp}{templates}{invite}, 'atrium_invite', 'template name');
is($r->{json}{limits}{max_upload_bytes}, 1048576, 'limit set');
unlike($r->{content}, qr/s3cr3t-value|EAAB-token/, 'no secret anywhere in the answer');

# null clears an optional field, templates merge
$r = team_api($a, PATCH => '/team/branding', json => {
    support_email => undef, whatsapp => { templates => { invite => undef, message_digest => 'digest_v2' } } });
is($r->{status}, 200, 'second patch');
is($r->{json}{support_email}, undef, 'null clears');
is_deeply($r->{json}{whatsapp}{templates}, { message_digest => 'digest_v2' }, 'templates merge, null removes');
is($r->{json}{display_name}, 'Alpha Studio Ltd', 'unsent fields kept');

$r = api(GET => '/branding', host => $a->{host});
is($r->{json}{display_name}, 'Alpha Studio Ltd', 'public branding follows');
$r = api(GET => '/branding', host => $b->{host});
is($r->{json}{display_name}, 'Beta Agency', 'B untouched');

# validation
$r = team_api($a, PATCH => '/team/branding', json => {
    display_name => '  ', colors => { primary => 'red', bogus => '#000000' },
    logo_url => 'javascript:alert(1)', tenant_code => 'x', limits => { max_upload_bytes => 0 },
    locale => 'english', support_email => 'nope' });
is($r->{status}, 422, 'invalid patch');
is($r->{json}{code}, 'validation_failed', 'validation_failed');
my %err = map { $_->{field} => $_->{code} } @{ $r->{json}{errors} };
is($err{display_name}, 'too_short', 'blank name');
is($err{'colors.primary'}, 'invalid_format', 'bad color');
is($err{'colors.bogus'}, 'unknown_field', 'unknown nested field');
is($err{logo_url}, 'invalid_format', 'script URL refused');
is($err{tenant_code}, 'read_only', 'tenant_code read only');
is($err{'limits.max_upload_bytes'}, 'out_of_range', 'upload limit range');
is($err{locale}, 'invalid_format', 'locale');
is($err{support_email}, 'invalid_format', 'email');
$r = api(GET => '/branding', host => $a->{host});
is($r->{json}{display_name}, 'Alpha Studio Ltd', 'refused patch changed nothing');

# cross-tenant: A's key can never touch B
$r = team_api($a, PATCH => '/team/branding', host => $b->{host}, json => { display_name => 'pwned' });
is($r->{status}, 401, "A's credentials on B's host: 401");
$r = team_api($a, PATCH => '/team/branding', headers => { 'x-client-code' => $b->{code} },
    json => { display_name => 'pwned' });
is($r->{status}, 401, "A's key with B's code: 401");
$r = team_api($a, PATCH => '/team/branding', host => $b->{host}, headers => { 'x-client-code' => $b->{code} },
    json => { display_name => 'pwned' });
is($r->{status}, 401, "A's key with B's code on B's host: 401");
$r = api(GET => '/branding', host => $b->{host});
is($r->{json}{display_name}, 'Beta Agency', 'B still untouched');

# audit trail of the writes
my $n = psql_admin("BEGIN; SELECT set_config('app.tenant_id', '$a->{tenant_id}', true); SELECT count(*) FROM audit_log WHERE action = 'branding.update'; COMMIT;");
like($n, qr/^2$/m, 'two audit rows for two accepted patches');

# unknown hosts
for my $host ('nobody-here.' . env_of('ATRIUM_BASE_DOMAIN'), 'unknown.example.org') {
    $r = api(GET => '/branding', host => $host);
    is($r->{status}, 404, "unknown host $host: 404");
    is($r->{json}{code}, 'tenant_not_found', 'tenant_not_found');
    like($r->{headers}{'content-type'}, qr{^application/problem\+json}, 'problem media type');
    ok($r->{json}{request_id}, 'request id in body');
}
$r = api(GET => '/team/branding', host => 'unknown.example.org');
is($r->{json}{code}, 'tenant_not_found', 'any API path on an unknown host');

done_testing();
