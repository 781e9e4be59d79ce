"""`advising sink build`: the stream sink's Lambda deployment package.

Place in the flow: source tree -> this zip -> S3 (CodeBucket/CodeKey of infra/stream-sink.yaml) -> Lambda.
The package holds the handler's modules and the `common` names they use; boto3 comes from the Lambda
Python runtime. Entries are sorted and dated 1980-01-01, so the same source always gives the same bytes
(and the same CodeSha256).
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import List

import common
import functions

# What the handler imports, and nothing else (the backfill and the control plane stay out).
PACKAGE_FILES = (
    "functions/__init__.py",
    "functions/stream_sink/__init__.py",
    "functions/stream_sink/handler.py",
    "functions/stream_sink/records.py",
    "common/__init__.py",
    "common/change_log.py",
)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def build(out: Path) -> List[str]:
    """Write the package to `out` and return its entries."""
    roots = {"functions": Path(functions.__file__).parent, "common": Path(common.__file__).parent}
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        for name in sorted(PACKAGE_FILES):
            top, _, rest = name.partition("/")
            entry = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            entry.external_attr = 0o644 << 16  # readable by the runtime's user
            entry.compress_type = zipfile.ZIP_DEFLATED
            package.writestr(entry, (roots[top] / rest).read_bytes())
    return sorted(PACKAGE_FILES)
