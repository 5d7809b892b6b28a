<?php
// Response headers: two Set-Cookie, X-Custom, a repeated X-Multi, and the status from ?code= (default 200).
declare(strict_types=1);

setcookie('a', '1');
setcookie('b', '2');
header('X-Custom: yes');
header('X-Multi: one');
header('X-Multi: two', false);
http_response_code((int) ($_GET['code'] ?? 200));
header('Content-Type: text/plain');
echo 'ok';
