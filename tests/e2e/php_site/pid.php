<?php
// The process id of the php-cgi child serving this request (tests kill it mid-request).
header('Content-Type: text/plain');
echo getmypid();
