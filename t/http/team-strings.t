#!/usr/bin/perl
# Strings on the team surface: stored and returned exactly as sent (SQL
# metacharacters, quotes, emoji, combining characters, surrounding spaces, a
# 10,000-character description); lengths count code points (200 multibyte
# characters are a name, 201 are not); invalid UTF-8 is bad JSON; \u0000 and
# lone surrogates are invalid strings; a text made only of whitespace is no
# name.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Encode qw(encode_utf8);
use Digest::MD5 qw(md5_hex);
use Atrium::Test;
use Atrium::Checks;

binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);

my $a = new_tenant();

sub raw { my ($method, $path, $bytes) = @_; team_api($a, $method => $path, body => $bytes, type => 'application/json') }
sub uri_escape_utf8 { my $s = encode_utf8($_[0]); $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge; $s }
sub sql_in {
    my ($sql) = @_;
    my $out = psql_admin("BEGIN; SELECT set_config('app.tenant_id', '$a->{tenant_id}', true); $sql; COMMIT;");
    my @lines = split /\n/, $out;
    return $lines[-1] // '';
}

my $p = team_api($a, POST => '/team/projects', json => { name => 'Strings' })->{json}{id};

# ---------------------------------------------------------------- stored exactly as sent

my @names = (
    q{O'Brien "The Hammer"; DROP TABLE projects; --},
    q{'; SELECT pg_sleep(0); --},
    q{Robert'); DELETE FROM tasks WHERE ('1'='1},
    q{100% _done_ \\ back\slash \\\\ double},
    q{$$dollar$$ $tag$quoted$tag$ `backtick` \N \x41 E'\\n'},
    q{"double" 'single' ‘curly’ “curly” «guillemets»},
    "rocket \x{1F680} and family \x{1F468}\x{200D}\x{1F469}\x{200D}\x{1F467} flag \x{1F1E7}\x{1F1F7}",
    "Cafe\x{301} / Caf\x{E9} / \x{212B} / A\x{30A}",
    "  padded both ends  ",
    "line\nbreak\tand tab",
    "zero\x{200B}width and \x{FEFF}BOM and RTL \x{202E}txet",
    "中文名字 العربية עברית हिन्दी",
    "<script>alert(1)</script> &amp; {{7*7}} \${jndi:x}",
);
my %made;
for my $name (@names) {
    my $r = team_api($a, POST => '/team/projects', json => { name => $name, description => "desc: $name" });
    is($r->{status}, 201, 'create ' . substr($name, 0, 30)) or diag $r->{content};
    is($r->{json}{name}, $name, 'answer has the exact name');
    my $g = team_api($a, GET => "/team/projects/$r->{json}{id}");
    is($g->{json}{name}, $name, 'GET has the exact name');
    is($g->{json}{description}, "desc: $name", 'and the exact description');
    $made{$name} = $r->{json}{id};
}
my $by_name = sql_in("SELECT count(*) FROM projects WHERE name = 'O''Brien \"The Hammer\"; DROP TABLE projects; --'");
is($by_name, '1', 'stored as one literal value');
is(sql_in("SELECT count(*) FROM projects"), scalar(@names) + 1, 'nothing else happened to the table');
isnt($made{"Cafe\x{301} / Caf\x{E9} / \x{212B} / A\x{30A}"}, undef, 'combining and precomposed kept apart');
is(sql_in("SELECT encode(convert_to(name, 'UTF8'), 'hex') FROM projects WHERE id = '" . $made{"Cafe\x{301} / Caf\x{E9} / \x{212B} / A\x{30A}"} . "'"),
    unpack('H*', encode_utf8("Cafe\x{301} / Caf\x{E9} / \x{212B} / A\x{30A}")), 'no Unicode normalization in storage');

# the same strings through every other resource
my $ms = team_api($a, POST => "/team/projects/$p/milestones", json => { title => $names[0], description => $names[4] })->{json};
is($ms->{title}, $names[0], 'milestone title');
is($ms->{description}, $names[4], 'milestone description');
my $task = team_api($a, POST => "/team/projects/$p/tasks", json => { title => $names[6] })->{json};
is($task->{title}, $names[6], 'task title with emoji');
my $dl = team_api($a, POST => "/team/projects/$p/deliverables", json => { title => $names[7], description => $names[5], due_date => '2026-01-01' })->{json};
is($dl->{title}, $names[7], 'deliverable title with combining characters');
is($dl->{description}, $names[5], 'deliverable description with quotes');
my $cl = team_api($a, POST => '/team/clients', json => { name => $names[2], company => $names[3], email => "o'brien+tag\@example.com" })->{json};
is($cl->{name}, $names[2], 'client name');
is($cl->{company}, $names[3], 'client company');
is($cl->{email}, "o'brien+tag\@example.com", 'an email with a quote');
my $mem = team_api($a, POST => '/team/members', json => { name => $names[11], email => 'intl@example.com' })->{json};
is($mem->{name}, $names[11], 'member name in several scripts');
my $patched = team_api($a, PATCH => "/team/tasks/$task->{id}", json => { title => $names[1] });
is($patched->{json}{title}, $names[1], 'patched title with SQL');

# searching with metacharacters finds literal text only
my %qcase = (
    "'"       => [grep { /'/ } @names],
    '%'       => [grep { /%/ } @names],
    '_'       => [grep { /_/ } @names],
    '\\'      => [grep { /\\/ } @names],
    '--'      => [grep { /--/ } @names],
    "\x{1F680}" => [grep { /\x{1F680}/ } @names],
    "Caf\x{E9}" => [grep { /Caf\x{E9}/ } @names],
    "e\x{301}"  => [grep { /e\x{301}/ } @names],
    "' OR '1'='1" => [],
    '$$'      => [grep { /\$\$/ } @names],
);
for my $q (sort keys %qcase) {
    my $r = team_api($a, GET => '/team/projects?limit=200&q=' . uri_escape_utf8($q));
    is($r->{status}, 200, "q=$q: 200");
    is_deeply([sort @{ ids_of($r) }], [sort map { $made{$_} } @{ $qcase{$q} }], "q=$q matches the literal text only");
}
for my $q ("' OR '1'='1", '%', "\\") {
    my $r = team_api($a, GET => '/team/clients?q=' . uri_escape_utf8($q));
    is($r->{status}, 200, "clients q=$q: 200");
}
my $r = team_api($a, GET => '/team/clients?q=' . uri_escape_utf8("o'brien+"));
is_deeply(ids_of($r), [$cl->{id}], 'client search with a quote in the email');
for my $bad ("active' OR '1'='1", 'active;--', "active\x{1F680}") {
    $r = team_api($a, GET => '/team/projects?status=' . uri_escape_utf8($bad));
    is($r->{status}, 400, "status=$bad: 400 bad_query");
}
for my $q ('%FF', '%C0%AF', 'ok%ED%A0%80', '%00', 'a%01b', '%E2%82') {
    $r = team_api($a, GET => "/team/projects?q=$q");
    is($r->{status}, 400, "q=$q (not UTF-8 text): 400");
    is($r->{json}{code}, 'bad_query', 'bad_query');
}
for my $path ("/team/projects/'%20OR%201=1%20--", '/team/projects/%27', "/team/projects/$p'", '/team/tasks/..%2F..%2Fetc%2Fpasswd') {
    $r = team_api($a, GET => $path);
    is($r->{status}, 404, "GET $path: 404");
}

# ---------------------------------------------------------------- long text

my $unit = "Ünïcødé \x{1F680} \"q\" 'q' \\ \n\t/ <b> % _ ; -- ";
my $ten_k = substr($unit x (10000 / length($unit) + 1), 0, 10000);
is(length $ten_k, 10000, 'a 10,000-character description');
$r = team_api($a, PATCH => "/team/projects/$p", json => { description => $ten_k });
is($r->{status}, 200, 'stored');
ok($r->{json}{description} eq $ten_k, 'answer returns it exactly');
$r = team_api($a, GET => "/team/projects/$p");
ok($r->{json}{description} eq $ten_k, 'GET returns it exactly');
is(sql_in("SELECT md5(description) || ' ' || char_length(description) FROM projects WHERE id = '$p'"),
    md5_hex(encode_utf8($ten_k)) . ' 10000', 'the database holds the same bytes');
$r = team_api($a, POST => "/team/projects/$p/milestones", json => { title => 'Long', description => $ten_k });
ok($r->{status} == 201 && $r->{json}{description} eq $ten_k, 'milestone description byte-exact');
$r = team_api($a, POST => "/team/projects/$p/deliverables", json => { title => 'Long', description => $ten_k, due_date => '2026-01-01' });
ok($r->{status} == 201 && $r->{json}{description} eq $ten_k, 'deliverable description byte-exact');
$r = team_api($a, PATCH => "/team/projects/$p", json => { description => "\x{1F680}" x 20000 });
is($r->{status}, 200, '20,000 four-byte characters are a description');
invalid(team_api($a, PATCH => "/team/projects/$p", json => { description => "\x{1F680}" x 20001 }), 'description', 'too_long',
    '20,001 four-byte characters');

# ---------------------------------------------------------------- lengths count code points

my %two_hundred = (
    'four-byte emoji'      => "\x{1F680}" x 200,
    'three-byte euro'      => "€" x 200,
    'two-byte e-acute'     => "é" x 200,
    'combining sequences'  => "e\x{301}" x 100,
    'CJK'                  => "字" x 200,
    'mixed'                => ("a\x{1F680}é€" x 50),
);
for my $case (sort keys %two_hundred) {
    my $s = $two_hundred{$case};
    is(length $s, 200, "$case: 200 code points");
    $r = team_api($a, POST => '/team/projects', json => { name => $s });
    is($r->{status}, 201, "$case: 200 code points accepted as a name");
    is($r->{json}{name}, $s, 'stored exactly');
    invalid(team_api($a, POST => '/team/projects', json => { name => $s . 'x' }), 'name', 'too_long', "$case: 201 code points");
}
my $rocket200 = "\x{1F680}" x 200;
for my $c (["/team/projects/$p/milestones", 'title', {}], ["/team/projects/$p/tasks", 'title', {}],
    ["/team/projects/$p/deliverables", 'title', { due_date => '2026-01-01' }],
    ['/team/members', 'name', { email => 'len@example.com' }], ['/team/clients', 'name', { email => 'len@example.com' }]) {
    my ($path, $field, $extra) = @$c;
    $r = team_api($a, POST => $path, json => { %$extra, $field => $rocket200 });
    is($r->{status}, 201, "$path: 200 emoji $field") or diag $r->{content};
    is($r->{json}{$field}, $rocket200, 'exactly');
    invalid(team_api($a, POST => $path, json => { %$extra, $field => "$rocket200\x{1F680}" }), $field, 'too_long', "$path: 201 emoji");
}
# JSON escapes count as the characters they stand for
$r = raw(POST => '/team/projects', '{"name":"' . ('\ud83d\ude80' x 200) . '"}');
is($r->{status}, 201, '200 escaped surrogate pairs are 200 characters');
is($r->{json}{name}, $rocket200, 'decoded to the emoji');
$r = raw(POST => '/team/projects', '{"name":"' . ('\u00e9' x 201) . '"}');
invalid($r, 'name', 'too_long', '201 escaped characters');
$r = raw(POST => '/team/projects', '{"name":"Caf\u00e9 \/ \"x\" \\\\ \u20ac"}');
is($r->{json}{name}, "Caf\x{E9} / \"x\" \\ €", 'escapes decode to the characters');

# ---------------------------------------------------------------- whitespace

invalid(team_api($a, POST => '/team/projects', json => { name => " \t\r\n " }), 'name', 'too_short', 'ASCII whitespace only');
invalid(team_api($a, POST => "/team/projects/$p/tasks", json => { title => "   " }), 'title', 'too_short', 'spaces only (task)');
invalid(team_api($a, POST => '/team/projects', json => { name => "\x{00A0}\x{2003}\x{3000}" }), 'name', 'too_short',
    'Unicode whitespace only (no-break, em and ideographic spaces)');
$r = team_api($a, POST => '/team/projects', json => { name => " \x{3000}x\x{3000} " });
is($r->{status}, 201, 'whitespace around a character is a name');
is($r->{json}{name}, " \x{3000}x\x{3000} ", 'kept untrimmed');

# ---------------------------------------------------------------- refused strings

my $before = scalar @{ team_api($a, GET => '/team/projects?limit=200')->{json}{data} };
my %bad_utf8 = (
    'lone 0xFF'            => "\xff",
    'truncated sequence'   => "\xc3",
    'overlong slash'       => "\xc0\xaf",
    'overlong NUL'         => "\xc0\x80",
    'encoded surrogate'    => "\xed\xa0\x80",
    'above U+10FFFF'       => "\xf4\x90\x80\x80",
    'latin-1 e-acute'      => "caf\xe9",
    'continuation alone'   => "\x80abc",
);
for my $case (sort keys %bad_utf8) {
    $r = raw(POST => '/team/projects', qq({"name":"ok $bad_utf8{$case} ok"}));
    is($r->{status}, 400, "invalid UTF-8 ($case) in a value: 400");
    is($r->{json}{code}, 'bad_json', 'bad_json');
}
$r = raw(POST => '/team/projects', qq({"na\xffme":"x"}));
is($r->{json}{code}, 'bad_json', 'invalid UTF-8 in a key: bad_json');
$r = raw(POST => '/team/projects', qq({"name":"x"} \xff));
is($r->{json}{code}, 'bad_json', 'invalid UTF-8 after the value: bad_json');
$r = raw(PATCH => "/team/projects/$p", qq({"description":"\xfe\xff"}));
is($r->{json}{code}, 'bad_json', 'invalid UTF-8 in a patch: bad_json');
$r = raw(POST => '/team/projects', qq({"name":"tab\x01raw"}));
is($r->{json}{code}, 'bad_json', 'a raw control character in a string: bad_json');
$r = raw(POST => '/team/projects', "\xef\xbb\xbf" . '{"name":"bom"}');
is($r->{status}, 400, 'a byte order mark before the JSON: 400');

my %bad_escape = (
    'NUL escape'              => '"a\u0000b"',
    'NUL only'                => '"\u0000"',
    'lone high surrogate'     => '"a\ud800b"',
    'lone low surrogate'      => '"a\udc00b"',
    'high at the end'         => '"abc\ud83d"',
    'two highs'               => '"\ud83d\ud83d"',
    'low then high'           => '"\ude80\ud83d"',
    'high then letter escape' => '"\ud800\u0041"',
);
for my $case (sort keys %bad_escape) {
    invalid(raw(POST => '/team/projects', qq({"name":$bad_escape{$case}})), 'name', 'invalid_string', "$case in a name");
}
invalid(raw(PATCH => "/team/projects/$p", '{"description":"x\u0000y"}'), 'description', 'invalid_string', 'NUL in a description');
invalid(raw(POST => "/team/projects/$p/tasks", '{"title":"\udfff"}'), 'title', 'invalid_string', 'lone surrogate in a task title');
invalid(raw(POST => '/team/clients', '{"name":"x","email":"a\u0000@example.com"}'), 'email', 'invalid_string', 'NUL in an email');
invalid(raw(POST => '/team/members', '{"name":"x\ud800","email":"m@example.com"}'), 'name', 'invalid_string', 'surrogate in a member name');
is(scalar @{ team_api($a, GET => '/team/projects?limit=200')->{json}{data} }, $before, 'no refused string was stored');
isnt(team_api($a, GET => "/team/projects/$p")->{json}{description}, undef, 'the description survived the refused patches');

# ---------------------------------------------------------------- media type

$r = team_api($a, POST => '/team/projects', body => encode_utf8('{"name":"charset é"}'), type => 'application/json; charset=utf-8');
is($r->{status}, 201, 'charset=utf-8 is fine');
is($r->{json}{name}, 'charset é', 'and decoded as UTF-8');
$r = team_api($a, POST => '/team/projects', body => "{\"name\":\"caf\xe9\"}", type => 'application/json; charset=iso-8859-1');
is($r->{status}, 415, 'another charset: 415');
is($r->{json}{code}, 'unsupported_media_type', 'unsupported_media_type');

done_testing();
