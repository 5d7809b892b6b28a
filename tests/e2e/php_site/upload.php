<?php
// Each uploaded file in $_FILES as JSON: name, size, error and the sha256 of what php stored (multipart: no php://input).
declare(strict_types=1);

$describe = fn (string $name, int $size, int $error, string $tmp): array => [
    'name' => $name,
    'size' => $size,
    'error' => $error,
    'sha256' => $error === UPLOAD_ERR_OK ? hash_file('sha256', $tmp) : null,
];
$out = [];
foreach ($_FILES as $field => $file) {
    $out[$field] = is_array($file['name']) // name="field[]": one entry per file
        ? array_map($describe, $file['name'], $file['size'], $file['error'], $file['tmp_name'])
        : $describe($file['name'], $file['size'], $file['error'], $file['tmp_name']);
}
header('Content-Type: application/json');
echo json_encode(['files' => $out, 'post' => $_POST], JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
