#!/usr/bin/perl
# Idempotency-Key on every team create: a repeat replays the first answer
# (status, Location, body, Idempotent-Replayed: true) without a second row; a
# different body is a conflict; the scope is API key + concrete path; refused
# requests do not burn a key; bad keys are bad headers; two concurrent
# creates with one key end with exactly one row.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Atrium::Test;

my $BASE = '/api/portal/v1';
my $NOBODY = '00000000-0000-4000-8000-000000000000';
my $a = new_tenant();

sub count_of {
    my ($path) = @_;
    my $r = team_api($a, GET => $path . ($path =~ /\?/ ? '&' : '?') . 'limit=200');
    die "count $path: $r->{status}" unless $r->{status} == 200;
    return scalar @{ $r->{json}{data} };
}
sub key { return { 'Idempotency-Key' => $_[0] } }

my $p = team_api($a, POST => '/team/projects', json => { name => 'Keyed work' })->{json}{id};
my $p2 = team_api($a, POST => '/team/projects', json => { name => 'Other keyed work' })->{json}{id};
my $ms = team_api($a, POST => "/team/projects/$p/milestones", json => { title => 'Keyed milestone' })->{json}{id};

# every create, each with its own list to count rows in
my @creates = (
    ['/team/members',                { name => 'Idem member', email => 'idem@a.example' },       '/team/members'],
    ['/team/clients',                { name => 'Idem client', email => 'idem@client.example' },  '/team/clients'],
    ['/team/projects',               { name => 'Idem project', description => 'once' },          '/team/projects'],
    ["/team/projects/$p/milestones", { title => 'Idem milestone', position => 3 },               "/team/projects/$p/milestones"],
    ["/team/projects/$p/tasks",      { title => 'Idem task', milestone_id => $ms },              "/team/projects/$p/tasks"],
    ["/team/projects/$p/deliverables", { title => 'Idem deliverable', due_date => '2026-09-09' }, "/team/projects/$p/deliverables"],
);
my $n = 0;
for my $c (@creates) {
    my ($path, $body, $list) = @$c;
    my $k = 'create-' . ++$n . '-' . random_code('k');
    my $before = count_of($list);
    my $first = team_api($a, POST => $path, json => $body, headers => key($k));
    is($first->{status}, 201, "$path: first create");
    ok(!$first->{headers}{'idempotent-replayed'}, 'first answer is not a replay');
    like($first->{headers}{location} // '', qr{^\Q$BASE\E/team/\w+/[0-9a-f-]{36}$}, 'Location');
    my $again = team_api($a, POST => $path, json => $body, headers => key($k));
    is($again->{status}, 201, "$path: repeat answers 201");
    is($again->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed: true');
    is($again->{headers}{location}, $first->{headers}{location}, 'same Location');
    is($again->{content}, $first->{content}, 'same body, byte for byte');
    like($again->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
    is(count_of($list), $before + 1, 'one row, not two');
    my %other = (%$body, (exists $body->{name} ? (name => 'Different') : (title => 'Different')));
    my $conflict = team_api($a, POST => $path, json => \%other, headers => key($k));
    is($conflict->{status}, 409, "$path: same key, different body: 409");
    is($conflict->{json}{code}, 'idempotency_conflict', 'idempotency_conflict');
    ok(!$conflict->{headers}{location}, 'no Location on the conflict');
    is(count_of($list), $before + 1, 'still one row');
}

# the replay is of the first answer, even after the resource changed
my $k = 'changed-' . random_code('k');
my $first = team_api($a, POST => '/team/projects', json => { name => 'Before' }, headers => key($k));
my $id = $first->{json}{id};
team_api($a, PATCH => "/team/projects/$id", json => { name => 'After' });
my $again = team_api($a, POST => '/team/projects', json => { name => 'Before' }, headers => key($k));
is($again->{status}, 201, 'replay after a patch');
is($again->{json}{name}, 'Before', 'replays the first answer');
is(team_api($a, GET => "/team/projects/$id")->{json}{name}, 'After', 'the resource is not rewritten');

# the same JSON with other bytes is another request
$k = 'bytes-' . random_code('k');
is(team_api($a, POST => '/team/projects', body => '{"name":"Bytes"}', type => 'application/json', headers => key($k))->{status}, 201, 'compact body');
my $spaced = team_api($a, POST => '/team/projects', body => '{ "name": "Bytes" }', type => 'application/json', headers => key($k));
is($spaced->{status}, 409, 'the same JSON spelled differently: a different request');

# scope: the concrete path
$k = 'paths-' . random_code('k');
my $t1 = team_api($a, POST => "/team/projects/$p/tasks", json => { title => 'Scoped' }, headers => key($k));
my $t2 = team_api($a, POST => "/team/projects/$p2/tasks", json => { title => 'Scoped' }, headers => key($k));
is($t1->{status}, 201, 'key used under one project');
is($t2->{status}, 201, 'same key under another project creates');
ok(!$t2->{headers}{'idempotent-replayed'}, 'not a replay');
isnt($t2->{json}{id}, $t1->{json}{id}, 'a second task');
is($t2->{json}{project_id}, $p2, 'in the other project');
my $m = team_api($a, POST => '/team/members', json => { name => 'Scoped', email => 'scoped@a.example' }, headers => key($k));
is($m->{status}, 201, 'same key on another collection creates');

# scope: the API key
my $k2 = new_api_key($a, 'second');
$k = 'keys-' . random_code('k');
my $before = count_of('/team/projects');
my $with1 = team_api($a, POST => '/team/projects', json => { name => 'Two keys' }, headers => key($k));
my $with2 = team_api($a, POST => '/team/projects', json => { name => 'Two keys' },
    headers => { %{ key($k) }, 'x-api-key' => $k2->{api_key} });
is($with1->{status}, 201, 'first API key');
is($with2->{status}, 201, 'second API key, same Idempotency-Key');
ok(!$with2->{headers}{'idempotent-replayed'}, 'not a replay of the other key');
isnt($with2->{json}{id}, $with1->{json}{id}, 'its own row');
is(count_of('/team/projects'), $before + 2, 'two rows');
$again = team_api($a, POST => '/team/projects', json => { name => 'Two keys' }, headers => { %{ key($k) }, 'x-api-key' => $k2->{api_key} });
is($again->{json}{id}, $with2->{json}{id}, "each API key replays its own answer");

# refused requests do not burn the key
$k = 'refused-' . random_code('k');
my $bad = team_api($a, POST => '/team/projects', json => { name => '' }, headers => key($k));
is($bad->{status}, 422, '422 with a key');
$bad = team_api($a, POST => '/team/projects', json => { name => '' }, headers => key($k));
is($bad->{status}, 422, 'the same 422 again, not a replay');
ok(!$bad->{headers}{'idempotent-replayed'}, 'refusals are not replayed');
my $good = team_api($a, POST => '/team/projects', json => { name => 'Fixed' }, headers => key($k));
is($good->{status}, 201, 'the key then creates');
ok(!$good->{headers}{'idempotent-replayed'}, 'as a first answer');
$again = team_api($a, POST => '/team/projects', json => { name => 'Fixed' }, headers => key($k));
is($again->{headers}{'idempotent-replayed'}, 'true', 'and replays from then on');
$k = 'dup-' . random_code('k');
my $dup = team_api($a, POST => '/team/clients', json => { name => 'Dup', email => 'IDEM@client.example' }, headers => key($k));
is($dup->{status}, 409, 'a conflicting client with a key');
is($dup->{json}{code}, 'conflict', 'conflict');
$dup = team_api($a, POST => '/team/clients', json => { name => 'Dup', email => 'free@client.example' }, headers => key($k));
is($dup->{status}, 201, 'the key is still free');
$k = 'missing-' . random_code('k');
is(team_api($a, POST => "/team/projects/$NOBODY/tasks", json => { title => 'x' }, headers => key($k))->{status}, 404, '404 with a key');
is(team_api($a, POST => "/team/projects/$NOBODY/tasks", json => { title => 'x' }, headers => key($k))->{status}, 404, 'and 404 again');

# key syntax
$before = count_of('/team/projects');
for my $case (['129 characters', 'k' x 129], ['1000 characters', 'k' x 1000], ['empty', '']) {
    my ($name, $value) = @$case;
    my $r = team_api($a, POST => '/team/projects', json => { name => "Bad key $name" }, headers => key($value));
    is($r->{status}, 400, "Idempotency-Key $name: 400");
    is($r->{json}{code}, 'bad_header', 'bad_header');
}
is(count_of('/team/projects'), $before, 'no row from a refused key');
my $long = join '', map { chr(33 + $_ % 94) } 1 .. 128;
my $r = team_api($a, POST => '/team/projects', json => { name => 'Longest key' }, headers => key($long));
is($r->{status}, 201, '128 printable characters are a key');
$r = team_api($a, POST => '/team/projects', json => { name => 'Longest key' }, headers => key($long));
is($r->{headers}{'idempotent-replayed'}, 'true', 'and replay');
$r = team_api($a, POST => '/team/projects', json => { name => 'One char' }, headers => key('x'));
is($r->{status}, 201, 'a one-character key');

# ---------------------------------------------------------------- concurrency

# Two processes send the same create with the same key at the same moment:
# one creates, the other either replays it or hears 409
# idempotency_in_progress; never two rows.
my $rounds = 6;
for my $round (1 .. $rounds) {
    my $name = "Race $round " . random_code('r');
    my $key = "race-$round-" . random_code('k');
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    my @kids;
    for my $child (1 .. 2) {
        pipe(my $res_r, my $res_w) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $go_w;
            close $res_r;
            team_api($a, GET => '/team/branding');    # connection ready before the start
            my $ready = <$go_r>;                      # the start signal (EOF)
            my $x = team_api($a, POST => '/team/projects', json => { name => $name }, headers => key($key));
            print $res_w join("\t", $x->{status}, $x->{json}{code} // '', $x->{json}{id} // '',
                $x->{headers}{'idempotent-replayed'} // ''), "\n";
            close $res_w;
            require POSIX;
            POSIX::_exit(0);
        }
        close $res_w;
        push @kids, [$pid, $res_r];
    }
    close $go_r;
    select(undef, undef, undef, 0.2);    # both children connected and waiting
    close $go_w;                         # go
    my @answers;
    for my $kid (@kids) {
        my ($pid, $fh) = @$kid;
        my $line = <$fh> // '';
        chomp $line;
        waitpid($pid, 0);
        push @answers, [split /\t/, $line, -1];
    }
    my @created = grep { $_->[0] eq '201' } @answers;
    note "round $round: " . join(", ", map { "$_->[0] $_->[1]" . ($_->[3] ? " (replayed)" : "") } @answers);
    my @busy = grep { $_->[0] eq '409' && $_->[1] eq 'idempotency_in_progress' } @answers;
    is(@created + @busy, 2, "round $round: each answer is 201 or 409 idempotency_in_progress")
        or diag explain \@answers;
    ok(@created >= 1, "round $round: at least one 201");
    my %ids = map { $_->[2] => 1 } @created;
    is(scalar keys %ids, 1, "round $round: every 201 names the same project");
    ok(1 >= grep({ $_->[3] ne 'true' } @created), "round $round: at most one first answer, the other a replay");
    my $found = team_api($a, GET => '/team/projects?limit=200&q=' . join('%20', split / /, $name));
    is(scalar @{ $found->{json}{data} }, 1, "round $round: exactly one row");
    $r = team_api($a, POST => '/team/projects', json => { name => $name }, headers => key($key));
    is($r->{headers}{'idempotent-replayed'}, 'true', "round $round: a later repeat replays");
    is($r->{json}{id}, (keys %ids)[0], "round $round: the same project");
}

done_testing();
