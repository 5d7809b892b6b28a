"""Everything a CGI program is given, as JSON: environment, argv, working directory."""

import json
import os
import sys

body = json.dumps({"env": dict(os.environ), "argv": sys.argv[1:], "cwd": os.getcwd()}, sort_keys=True)
sys.stdout.write("Content-Type: application/json\r\n\r\n" + body)
