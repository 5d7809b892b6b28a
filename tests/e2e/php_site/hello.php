<?php
// The smallest page: "Hello from PHP" (also the benchmark's script).
echo 'Hello from PHP';
