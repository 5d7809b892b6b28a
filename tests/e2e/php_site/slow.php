<?php
// Sleeps ?s= seconds (default 5, fractions allowed) before printing "done".
declare(strict_types=1);

usleep((int) (max(0.0, (float) ($_GET['s'] ?? 5)) * 1_000_000));
header('Content-Type: text/plain');
echo 'done';
