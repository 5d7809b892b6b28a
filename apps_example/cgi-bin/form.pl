#!/usr/bin/perl
# A form that echoes what was posted to it, HTML-escaped. Core Perl only (CGI.pm left the
# core in 5.22): the urlencoded body is read from stdin, CONTENT_LENGTH bytes of it.
use strict;
use warnings;

my $max_body = 64 * 1024;

sub escape_html {
    my ($text) = @_;
    $text =~ s/&/&amp;/g;
    $text =~ s/</&lt;/g;
    $text =~ s/>/&gt;/g;
    $text =~ s/"/&quot;/g;
    return $text;
}

sub decode_form {
    my ($data) = @_;
    my @fields;
    for my $pair (split /[&;]/, $data) {
        my ($name, $value) = split /=/, $pair, 2;
        for ($name, $value) {
            next unless defined;
            tr/+/ /;
            s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
        }
        push @fields, [$name, $value // ''];
    }
    return @fields;
}

my @fields;
my $method = $ENV{REQUEST_METHOD} // 'GET';
if ($method eq 'POST') {
    my $length = $ENV{CONTENT_LENGTH} // 0;
    if ($length > $max_body) {
        print "Status: 413 Content Too Large\nContent-Type: text/plain\n\nThe form is limited to $max_body bytes.\n";
        exit 0;
    }
    my $body = '';
    while (length($body) < $length) {
        my $read = read(STDIN, $body, $length - length($body), length($body));
        last unless $read;
    }
    @fields = decode_form($body);
}

my $action = escape_html($ENV{SCRIPT_NAME} // '');
print "Content-Type: text/html; charset=utf-8\n\n";
print <<"HTML";
<!doctype html>
<title>Form echo</title>
<h1>Form echo</h1>
<form method="post" action="$action">
  <p><label>Name <input name="name"></label></p>
  <p><label>Message <textarea name="message"></textarea></label></p>
  <p><button>Send</button></p>
</form>
HTML
if (@fields) {
    print "<h2>You sent</h2>\n<dl>\n";
    for my $field (@fields) {
        printf "  <dt>%s</dt><dd>%s</dd>\n", escape_html($field->[0]), escape_html($field->[1]);
    }
    print "</dl>\n";
}
