"""Errors the pipeline raises for misuse; the CLI and the spark-submit entry turn them into one line."""


class UsageError(Exception):
    """Bad input from the person or scheduler running the job (path, date, time zone, dimension).

    Raised before any output is touched; the message is printed as-is, so it must be one line
    that says what is wrong and how to fix it.
    """
