<?php
// Writes "ran" to the file ?f= names: lets a test see whether a request ever ran.
declare(strict_types=1);

file_put_contents((string) ($_GET['f'] ?? ''), 'ran');
header('Content-Type: text/plain');
echo 'touched';
