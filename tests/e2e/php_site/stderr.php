<?php
// Writes to php-cgi's own stderr (not FCGI_STDERR): a line posing as the gateway's, with an escape
// sequence, then ?lines= more lines.
declare(strict_types=1);

$stderr = fopen('php://stderr', 'w');
fwrite($stderr, "2026-01-01 00:00:00,000 [CRITICAL] gateway.server: forged \x1b[31mred\n");
$lines = (int) ($_GET['lines'] ?? 0);
for ($i = 0; $i < $lines; $i++) {
    fwrite($stderr, "flood line $i\n");
}
fclose($stderr);
echo 'written';
