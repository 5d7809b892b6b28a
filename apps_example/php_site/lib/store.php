<?php
// Guestbook storage: SQLite through PDO when pdo_sqlite is loaded, else a JSON file; never inside the site.
declare(strict_types=1);

if (debug_backtrace() === []) { // run as a page rather than included: nothing to see
    http_response_code(404);
    exit;
}

interface GuestbookStore
{
    /** @return list<array{id:int, name:string, message:string, created_at:int}> newest first */
    public function all(): array;

    /** @return array{id:int, name:string, message:string, created_at:int}|null */
    public function find(int $id): ?array;

    /** Stores an entry and returns its id. */
    public function add(string $name, string $message): int;

    public function count(): int;
}

/** The data directory: $GUESTBOOK_DATA, else the system's temporary directory (created if missing). */
function guestbook_data_dir(): string
{
    $dir = getenv('GUESTBOOK_DATA');
    if ($dir === false || $dir === '') {
        $dir = sys_get_temp_dir();
    }
    if (!is_dir($dir) && !@mkdir($dir, 0700, true) && !is_dir($dir)) {
        throw new RuntimeException("cannot create the guestbook data directory $dir");
    }
    return rtrim($dir, '/');
}

function guestbook_store(): GuestbookStore
{
    static $store = null;
    return $store ??= extension_loaded('pdo_sqlite')
        ? new SqliteStore(guestbook_data_dir() . '/guestbook.sqlite')
        : new JsonStore(guestbook_data_dir() . '/guestbook.json');
}

final class SqliteStore implements GuestbookStore
{
    private PDO $db;

    public function __construct(string $file)
    {
        $this->db = new PDO('sqlite:' . $file, null, null, [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
            PDO::ATTR_TIMEOUT => 5, // seconds to wait for another php-cgi child's write lock
        ]);
        $this->db->exec('CREATE TABLE IF NOT EXISTS entries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            message TEXT NOT NULL,
            created_at INTEGER NOT NULL
        )');
    }

    public function all(): array
    {
        return array_map(self::entry(...), $this->db->query('SELECT * FROM entries ORDER BY id DESC')->fetchAll());
    }

    public function find(int $id): ?array
    {
        $query = $this->db->prepare('SELECT * FROM entries WHERE id = ?');
        $query->execute([$id]);
        $row = $query->fetch();
        return $row === false ? null : self::entry($row);
    }

    public function add(string $name, string $message): int
    {
        $this->db->prepare('INSERT INTO entries (name, message, created_at) VALUES (?, ?, ?)')
            ->execute([$name, $message, time()]);
        return (int) $this->db->lastInsertId();
    }

    public function count(): int
    {
        return (int) $this->db->query('SELECT COUNT(*) FROM entries')->fetchColumn();
    }

    private static function entry(array $row): array
    {
        return [
            'id' => (int) $row['id'],
            'name' => (string) $row['name'],
            'message' => (string) $row['message'],
            'created_at' => (int) $row['created_at'],
        ];
    }
}

final class JsonStore implements GuestbookStore
{
    public function __construct(private readonly string $file)
    {
    }

    public function all(): array
    {
        return array_reverse($this->read());
    }

    public function find(int $id): ?array
    {
        foreach ($this->read() as $entry) {
            if ($entry['id'] === $id) {
                return $entry;
            }
        }
        return null;
    }

    public function add(string $name, string $message): int
    {
        return $this->locked(LOCK_EX, function ($handle) use ($name, $message): int {
            $entries = self::decode((string) stream_get_contents($handle));
            $id = $entries === [] ? 1 : $entries[array_key_last($entries)]['id'] + 1;
            $entries[] = ['id' => $id, 'name' => $name, 'message' => $message, 'created_at' => time()];
            ftruncate($handle, 0);
            rewind($handle);
            fwrite($handle, json_encode($entries, JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR));
            fflush($handle);
            return $id;
        });
    }

    public function count(): int
    {
        return count($this->read());
    }

    private function read(): array
    {
        return $this->locked(LOCK_SH, fn ($handle): array => self::decode((string) stream_get_contents($handle)));
    }

    /** Runs $work on the data file (created on first use) under flock($operation). */
    private function locked(int $operation, callable $work): mixed
    {
        $handle = fopen($this->file, 'c+');
        if ($handle === false) {
            throw new RuntimeException("cannot open {$this->file}");
        }
        try {
            flock($handle, $operation);
            return $work($handle);
        } finally {
            flock($handle, LOCK_UN);
            fclose($handle);
        }
    }

    private static function decode(string $json): array
    {
        return $json === '' ? [] : json_decode($json, true, 16, JSON_THROW_ON_ERROR);
    }
}
