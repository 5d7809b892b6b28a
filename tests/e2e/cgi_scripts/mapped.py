"""Not executable: it runs because the route maps .py to an interpreter."""

import sys

sys.stdout.write("Content-Type: text/plain\n\nmapped ran\n")
