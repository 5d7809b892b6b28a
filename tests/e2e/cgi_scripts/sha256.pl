#!/usr/bin/perl
# Reads CONTENT_LENGTH bytes of the body and answers with their length and SHA-256.
use strict;
use warnings;
use Digest::SHA;

binmode STDIN;
my $want = $ENV{CONTENT_LENGTH} // 0;
my $sha = Digest::SHA->new(256);
my $got = 0;
while ($got < $want) {
    my $read = read(STDIN, my $buffer, 65536);
    last unless $read;
    $sha->add($buffer);
    $got += $read;
}
print "Content-Type: application/json\n\n";
printf '{"content_length": "%s", "length": %d, "sha256": "%s"}', $want, $got, $sha->hexdigest;
