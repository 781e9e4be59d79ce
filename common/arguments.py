"""Argument parsing shared by the `advising` CLI and the spark-submit entry (jobs/main.py).

argparse answers a malformed option with its usage block and the error, several lines in all; our
rule is that misuse is one line and exit status 2, so both entry points parse with this class.
"""
import argparse


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line ("PROG: error: ... (see PROG --help)"), exit 2.

    Sub-command parsers inherit the class (add_subparsers defaults to the parent's type).
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
