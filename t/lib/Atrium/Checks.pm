package Atrium::Checks;
# Assertions shared by the API tests: validation answers, not-found answers,
# and walking a keyset-paginated list.
use strict;
use warnings;
use Exporter 'import';
use Test::More;
use Atrium::Test qw(team_api);

our @EXPORT = qw(invalid is_not_found ids_of walk once_each channels notify_all);

# A 422 validation_failed naming $field with $code (a string, or a regexp),
# with a message.
sub invalid {
    my ($r, $field, $code, $name) = @_;
    my @e = @{ ($r->{json} // {})->{errors} // [] };
    my $hit = grep {
        ($_->{field} // '') eq $field && defined $_->{message}
            && (ref $code ? ($_->{code} // '') =~ $code : ($_->{code} // '') eq $code)
    } @e;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok($r->{status} == 422 && ($r->{json}{code} // '') eq 'validation_failed' && $hit,
        "$name: 422 $field/" . (ref $code ? 'refused' : $code))
        or diag explain { status => $r->{status}, body => $r->{json} // $r->{content} };
}

sub is_not_found {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok($r->{status} == 404 && ($r->{json}{code} // '') eq 'not_found', "$name: 404 not_found")
        or diag explain { status => $r->{status}, body => $r->{json} // $r->{content} };
}

sub ids_of { my ($r, $k) = @_; [map { $_->{ $k // 'id' } } @{ $r->{json}{data} // [] }] }

# Walks a team list with limit=2, calling $between->($page) between the
# first pages (to insert rows); returns every id (or $key) seen, in order.
sub walk {
    my ($t, $path, $key, $between) = @_;
    my (@seen, $cursor);
    my $pages = 0;
    my $sep = $path =~ /\?/ ? '&' : '?';
    do {
        my $r = team_api($t, GET => "$path${sep}limit=2" . (defined $cursor ? "&cursor=$cursor" : ''));
        die "walk $path: $r->{status} $r->{content}" unless $r->{status} == 200;
        die "walk $path: page of " . scalar(@{ $r->{json}{data} }) if @{ $r->{json}{data} } > 2;
        push @seen, @{ ids_of($r, $key) };
        $cursor = $r->{json}{next_cursor};
        $between->($pages) if $between && defined $cursor && $pages < 3;
        $pages++;
    } while (defined $cursor && $pages < 200);
    return \@seen;
}

# Every id of @$want appears in @$seen, and nothing twice.
sub once_each {
    my ($seen, $want, $name) = @_;
    my %n;
    $n{$_}++ for @$seen;
    my @missing = grep { !$n{$_} } @$want;
    my @twice = grep { $n{$_} > 1 } keys %n;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok(!@missing && !@twice, "$name: every original row once, none twice")
        or diag explain { missing => \@missing, twice => \@twice };
}


# The channel switches of a notify object ({email, whatsapp}), without the
# per-topic switches.
sub channels {
    my ($n) = @_;
    return { map { $_ => ($n // {})->{$_} } qw(email whatsapp) };
}

# A whole notify object: the channel switches and every topic on both
# channels (the defaults).
sub notify_all {
    my ($email, $whatsapp) = @_;
    my %on = (email => JSON::PP::true, whatsapp => JSON::PP::true);
    return { email => $email, whatsapp => $whatsapp,
        topics => { map { $_ => {%on} } qw(messages deliverables milestones) } };
}

1;
