<?php
// Streams ?mb= MiB (default 10) of deterministic bytes (a 64-byte pattern repeated) in 64 KiB pieces, flushing each.
declare(strict_types=1);

$mib = max(0, (int) ($_GET['mb'] ?? 10));
$piece = str_repeat('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/', 1024); // 64 KiB
header('Content-Type: application/octet-stream');
for ($i = 0; $i < $mib * 16; $i++) {
    echo $piece;
    flush();
}
