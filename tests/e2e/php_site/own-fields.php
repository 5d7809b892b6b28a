<?php
// Sends Date and Server of its own (the core writes both).
header("Date: Sat, 01 Jan 2000 00:00:00 GMT");
header("Server: my-app/1.0");
header("X-App: yes");
echo "own fields";
