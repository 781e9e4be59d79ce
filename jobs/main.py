"""spark-submit entry point: `spark-submit --py-files jobs.zip jobs/main.py --input ... --output ...`.

Parses the same flags as `advising run` (jobs.config) and runs the same pipeline; misuse ends with
one line on stderr and exit status 2, as on the CLI. Kept tiny on purpose: everything else ships
in the jobs package.
"""
import sys

from jobs.pipeline import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
