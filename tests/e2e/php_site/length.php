<?php
// Declares Content-Length ?cl= and writes ?n= bytes; with ?pause=1 the first 70000 go out (flushed) before the rest.
declare(strict_types=1);

$cl = (int) ($_GET['cl'] ?? 0);
$n = (int) ($_GET['n'] ?? 0);
header('Content-Type: application/octet-stream');
header("Content-Length: $cl");
if (isset($_GET['pause']) && $n > 70000) {
    echo str_repeat('a', 70000);
    flush();
    usleep(300000);
    $n -= 70000;
}
echo str_repeat('a', $n);
