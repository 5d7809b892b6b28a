#!/bin/sh
# A non-parsed-header script writes its own status line (RFC 3875 §5).
printf 'HTTP/1.1 202 Accepted\r\nContent-Type: text/plain\r\nX-Nph: yes\r\n\r\nnph body\n'
