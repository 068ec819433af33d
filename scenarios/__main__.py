"""python -m scenarios {validate|test} FILE..."""
import sys

from scenarios.cli import main

sys.exit(main(sys.argv[1:]))
