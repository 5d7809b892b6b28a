<?php
// Guestbook admin page: who is logged in (REMOTE_USER, set by the server's Digest auth) and how many entries exist.
declare(strict_types=1);

require dirname(__DIR__) . '/lib/store.php';

$user = $_SERVER['REMOTE_USER'] ?? 'nobody';
$count = guestbook_store()->count();
$e = fn (mixed $value): string => htmlspecialchars((string) $value, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
header('Content-Type: text/html; charset=utf-8');
?>
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Admin · Guestbook</title>
<link rel="stylesheet" href="../style.css"></head>
<body><header><a href="../">Guestbook</a><nav><a href="../about">About</a></nav></header>
<main><h1>Admin</h1>
<dl><dt>Logged in as</dt><dd><?= $e($user) ?></dd><dt>Entries</dt><dd><?= $e($count) ?></dd></dl>
</main></body></html>
