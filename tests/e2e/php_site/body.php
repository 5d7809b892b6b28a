<?php
// The raw request body (php://input) as JSON: length, sha256 and the request's Content-Type.
declare(strict_types=1);

$context = hash_init('sha256');
$length = 0;
$input = fopen('php://input', 'rb');
while (!feof($input) && ($chunk = fread($input, 65536)) !== false && $chunk !== '') {
    $length += strlen($chunk);
    hash_update($context, $chunk);
}
header('Content-Type: application/json');
echo json_encode([
    'length' => $length,
    'sha256' => hash_final($context),
    'content_type' => $_SERVER['CONTENT_TYPE'] ?? null,
], JSON_UNESCAPED_SLASHES);
