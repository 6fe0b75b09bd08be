#!/usr/bin/perl
# The HTTP contract every endpoint shares: problem answers for bad input,
# limits, methods, request ids, security headers, redirects, static files.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;

my $t = new_tenant();
my $H = $t->{host};

sub problem_ok {
    my ($r, $status, $code, $name) = @_;
    is($r->{status}, $status, "$name: status $status");
    is($r->{json}{code}, $code, "$name: code $code") or diag $r->{content};
    like($r->{headers}{'content-type'} // '', qr{^application/problem\+json}, "$name: problem+json");
    is($r->{json}{status}, $status, "$name: status in body");
    is($r->{json}{type}, "urn:problem:atrium:$code", "$name: type");
    is($r->{json}{request_id}, $r->{headers}{'x-request-id'}, "$name: request id matches header");
}

sub raw_patch {
    my ($body, %o) = @_;
    return team_api($t, PATCH => '/team/branding', body => $body, type => $o{type} // 'application/json');
}

# malformed JSON bodies -> 400 bad_json
my %bad = (
    'unparsable'        => '{"display_name":',
    'trailing garbage'  => '{"display_name":"x"} xyz',
    'duplicate keys'    => '{"display_name":"x","display_name":"y"}',
    'top-level array'   => '["display_name"]',
    'top-level string'  => '"x"',
    'single quotes'     => "{'display_name':'x'}",
    'invalid UTF-8'     => qq({"display_name":"\xff\xfe"}),
    'deep nesting'      => ('[' x 100000) . (']' x 100000),
    'nesting 33'        => '{"colors":' . ('[' x 32) . (']' x 32) . '}',
    'NaN'               => '{"limits":{"max_upload_bytes":NaN}}',
);
for my $name (sort keys %bad) {
    problem_ok(raw_patch($bad{$name}), 400, 'bad_json', $name);
}
problem_ok(team_api($t, PATCH => '/team/branding'), 400, 'bad_json', 'missing body');

# the worker survives and nothing changed
my $r = api(GET => '/branding', host => $H);
is($r->{status}, 200, 'still serving after bad input');
is($r->{json}{display_name}, $t->{code}, 'nothing changed');

# wrong types, unknown fields, NUL, lone surrogates -> 422 with fields
$r = raw_patch('{"display_name":"a\u0000b","locale":"en\ud800","colors":[],"extra":1}');
problem_ok($r, 422, 'validation_failed', 'invalid fields');
my %err = map { $_->{field} => $_->{code} } @{ $r->{json}{errors} };
is($err{display_name}, 'invalid_string', '\\u0000 refused');
is($err{locale}, 'invalid_string', 'lone surrogate refused');
is($err{colors}, 'type', 'wrong type');
is($err{extra}, 'unknown_field', 'unknown field');
ok($_->{message}, "message for $_->{field}") for @{ $r->{json}{errors} };

# SQL metacharacters are data
$r = team_api($t, PATCH => '/team/branding', json => { display_name => q{'; DROP TABLE tenants; --} });
is($r->{status}, 200, 'metacharacters stored as text');
is($r->{json}{display_name}, q{'; DROP TABLE tenants; --}, 'exactly as sent');

# wrong media type -> 415
problem_ok(raw_patch('{"display_name":"x"}', type => 'text/plain'), 415, 'unsupported_media_type', 'text/plain');
problem_ok(raw_patch('display_name=x', type => 'application/x-www-form-urlencoded'), 415,
    'unsupported_media_type', 'form');
$r = raw_patch('{"display_name":"charset ok"}', type => 'application/json; charset=utf-8');
is($r->{status}, 200, 'application/json with charset=utf-8 accepted');

# too large -> 413 (nginx answers as problem JSON; the worker has the same limit)
my $big = '{"display_name":"' . ('x' x (1024 * 1024)) . '"}';
problem_ok(raw_patch($big), 413, 'payload_too_large', '1 MiB + body');
$r = api(GET => '/branding', host => $H);
is($r->{status}, 200, 'serving after 413');

# methods and paths
$r = team_api($t, DELETE => '/team/branding');
problem_ok($r, 405, 'method_not_allowed', 'DELETE branding');
is($r->{headers}{allow}, 'GET, PATCH', 'Allow header');
$r = api(POST => '/branding', host => $H, json => {});
problem_ok($r, 405, 'method_not_allowed', 'POST public branding');
is($r->{headers}{allow}, 'GET', 'Allow GET');
problem_ok(api(GET => '/no/such/thing', host => $H), 404, 'not_found', 'unknown path');
problem_ok(api(GET => '/branding/', host => $H), 404, 'not_found', 'trailing slash');
problem_ok(api(GET => '/healthz', host => $H, body => '{}', type => 'application/json'), 400, 'bad_json',
    'body where none is taken');
$r = api(HEAD => '/branding', host => $H);
is($r->{status}, 200, 'HEAD answers');
is($r->{content} // '', '', 'HEAD has no body');

# query validation
problem_ok(team_api($t, GET => '/team/domains?limit=0'), 400, 'bad_query', 'limit 0');
problem_ok(team_api($t, GET => '/team/domains?limit=201'), 400, 'bad_query', 'limit 201');
problem_ok(team_api($t, GET => '/team/domains?limit=-1'), 400, 'bad_query', 'negative limit');
problem_ok(team_api($t, GET => '/team/domains?limit=abc'), 400, 'bad_query', 'limit text');
problem_ok(team_api($t, GET => '/team/domains?cursor=%%%'), 400, 'bad_query', 'garbage cursor');
problem_ok(team_api($t, GET => '/team/domains?cursor=Zm9v'), 400, 'bad_query', 'foreign cursor');

# request ids
$r = api(GET => '/branding', host => $H, headers => { 'x-request-id' => 'abc-123.x:y_z' });
is($r->{headers}{'x-request-id'}, 'abc-123.x:y_z', 'valid request id echoed');
$r = api(GET => '/nope', host => $H, headers => { 'x-request-id' => 'trace-404' });
is($r->{json}{request_id}, 'trace-404', 'echoed in problem body');
for my $bad ('has space', 'x' x 129, 'semi;colon', '') {
    $r = api(GET => '/branding', host => $H, headers => { 'x-request-id' => $bad });
    my $got = $r->{headers}{'x-request-id'} // '';
    ok(length $got && $got ne $bad && $got =~ /^[A-Za-z0-9._:-]{1,128}$/, 'invalid request id replaced: ' . substr($bad, 0, 12));
}
$r = raw_patch('x' x 10, type => 'application/json');
ok($r->{headers}{'x-request-id'}, 'request id on errors');
$r = raw_patch($big, type => 'application/json');
ok($r->{headers}{'x-request-id'}, 'request id on nginx errors');

# security headers on every kind of answer
my @answers = (
    ['API 200', api(GET => '/branding', host => $H)],
    ['API 404', api(GET => '/nope', host => $H)],
    ['API 401', api(GET => '/team/branding', host => $H)],
    ['nginx 413', raw_patch($big)],
    ['unknown host', api(GET => '/branding', host => 'nobody.example.net')],
    ['static', api(GET => '/', host => $H, base => '')],
);
for my $a (@answers) {
    my ($name, $res) = @$a;
    like($res->{headers}{'strict-transport-security'} // '', qr/max-age=\d+/, "$name: HSTS");
    is($res->{headers}{'x-content-type-options'}, 'nosniff', "$name: nosniff");
    ok($res->{headers}{'referrer-policy'}, "$name: Referrer-Policy");
    like($res->{headers}{'content-security-policy'} // '', qr/frame-ancestors 'none'/, "$name: frame-ancestors");
    unlike($res->{headers}{server} // '', qr/\d/, "$name: no server version");
}
like($answers[0][1]{headers}{'cache-control'} // '', qr/max-age/, 'public branding is cacheable briefly');
like($answers[2][1]{headers}{'cache-control'} // '', qr/no-store/, 'errors not stored');

# the static portal app with a strict CSP
$r = api(GET => '/', host => $H, base => '');
is($r->{status}, 200, 'portal app served');
like($r->{headers}{'content-type'}, qr{text/html}, 'html');
my $csp = $r->{headers}{'content-security-policy'} // '';
like($csp, qr/default-src 'self'/, 'CSP default-src self');
like($csp, qr/script-src 'self'(;|$)/, 'no inline scripts');
like($csp, qr/object-src 'none'/, 'no plugins');
$r = api(GET => '/projects/some/deep/link', host => $H, base => '');
is($r->{status}, 200, 'client-side routes fall back to the app');

# plain HTTP redirects to HTTPS
$r = api(GET => '/branding', host => $H, scheme => 'http');
is($r->{status}, 301, 'http redirects');
like($r->{headers}{location} // '', qr{^https://\Q$H\E(:\d+)?/api/portal/v1/branding$}, 'to https, same path');

done_testing();
