#!/bin/sh
# The folder's page (the route's default `index`): links to the other scripts.
cat <<HTML
Content-Type: text/html; charset=utf-8

<!doctype html>
<title>CGI scripts</title>
<h1>CGI scripts on ${SERVER_NAME}</h1>
<ul>
  <li><a href="${SCRIPT_NAME%/*}/env.sh/some/path?word1+word2">env.sh</a>: what a script is given (sh)</li>
  <li><a href="${SCRIPT_NAME%/*}/form.pl">form.pl</a>: a form that echoes what you post (Perl)</li>
  <li><a href="${SCRIPT_NAME%/*}/counter.py">counter.py</a>: a visit counter in a file (Python)</li>
</ul>
HTML
