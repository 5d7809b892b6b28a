#!/usr/bin/perl
# Everything a CGI program is given, as JSON (JSON::PP is in Perl's core).
use strict;
use warnings;
use Cwd qw(getcwd);
use JSON::PP;

my $json = JSON::PP->new->canonical;
print "Content-Type: application/json\n\n";
print $json->encode({ env => {%ENV}, argv => [@ARGV], cwd => getcwd() });
