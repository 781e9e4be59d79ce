"""Files: listing the change log, small JSON documents, and atomic publishing of table folders.

Goes through Hadoop's FileSystem API, so the same code serves local paths, file:// and (on EMR, via
EMRFS) s3://. Everything that touches storage lives here; the transformations never do.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
from dataclasses import dataclass
from typing import List, Optional
from urllib.parse import unquote, urlparse

from common.errors import UsageError

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def normalize_root(path: str) -> str:
    """A user-given root as a stable string: local paths become absolute, URIs stay as given."""
    path = path.strip()
    if _SCHEME.match(path):
        return path.rstrip("/")
    return os.path.abspath(os.path.expanduser(path))


def local_path(root: str) -> Optional[str]:
    """The plain filesystem path of a local root (plain path or file://), else None."""
    if not _SCHEME.match(root):
        return root
    parsed = urlparse(root)
    return parsed.path if parsed.scheme == "file" else None


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/")] + [p.strip("/") for p in parts])


@dataclass(frozen=True)
class FileInfo:
    path: str  # as the user would write it: the root as given + the relative path
    uri: str  # as Spark reports it in _metadata.file_path
    size: int
    modified_ms: int


class Storage:
    """Hadoop FileSystem access through the SparkSession's JVM."""

    def __init__(self, spark):
        self._spark = spark
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()

    def _path(self, path: str):
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def _fs(self, path: str):
        from py4j.protocol import Py4JJavaError

        try:
            return self._path(path).getFileSystem(self._conf)
        except Py4JJavaError as exc:
            if "UnsupportedFileSystemException" in str(exc.java_exception.getClass().getName()):
                scheme = urlparse(path).scheme
                raise UsageError(
                    f"no filesystem connector for {scheme}:// on this Spark classpath ({path}); on EMR, EMRFS serves "
                    f"s3://; locally, copy the data to a local folder (e.g. aws s3 sync) and pass that path"
                ) from None
            raise

    def exists(self, path: str) -> bool:
        return bool(self._fs(path).exists(self._path(path)))

    def is_dir(self, path: str) -> bool:
        fs = self._fs(path)
        p = self._path(path)
        return bool(fs.exists(p) and fs.getFileStatus(p).isDirectory())

    def list_files(self, root: str) -> List[FileInfo]:
        """Every file below root (recursively, hidden `_`/`.` names skipped), with its user-facing path and URI.

        Spark lists them in the JVM (the binaryFile source, whose content column is never read): one
        round trip, where walking Hadoop's iterator from Python costs several per file.
        """
        from pyspark.sql import functions as F

        fs = self._fs(root)
        base = unquote(fs.makeQualified(self._path(root)).toString().rstrip("/"))
        listing = (
            self._spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .load(root)
            .select("path", "length", F.unix_millis("modificationTime"))
            .collect()
        )
        return [
            FileInfo(root.rstrip("/") + unquote(uri)[len(base):], uri, size, modified_ms)
            for uri, size, modified_ms in listing
        ]

    def read_text(self, path: str) -> Optional[str]:
        fs = self._fs(path)
        p = self._path(path)
        if not fs.exists(p):
            return None
        stream = fs.open(p)
        try:
            reader = self._jvm.java.io.BufferedReader(self._jvm.java.io.InputStreamReader(stream, "UTF-8"))
            lines = []
            line = reader.readLine()
            while line is not None:
                lines.append(line)
                line = reader.readLine()
            return "\n".join(lines)
        finally:
            stream.close()

    def write_text(self, path: str, text: str) -> None:
        """Replace a small document; local files are swapped in atomically (write, then rename)."""
        local = local_path(path)
        if local is not None:
            os.makedirs(os.path.dirname(local), exist_ok=True)
            tmp = f"{local}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, local)
            return
        stream = self._fs(path).create(self._path(path), True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def delete(self, path: str) -> None:
        local = local_path(path)
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)
        else:
            self._fs(path).delete(self._path(path), True)

    def swap_in(self, staged: str, target: str) -> None:
        """Make `staged` the content of `target` as one step a reader cannot see half of.

        Locally: an atomic exchange of the two directories (Linux renameat2), then the old one is removed.
        Elsewhere: delete then rename. On HDFS the rename is atomic; on S3 it is a copy, so readers can see a
        gap during the swap (docs/data-contract.md, "Publishing").
        """
        local_staged, local_target = local_path(staged), local_path(target)
        if local_staged is not None and local_target is not None:
            if os.path.exists(local_target) and _exchange(local_staged, local_target):
                shutil.rmtree(local_staged)
                return
            if os.path.exists(local_target):
                shutil.rmtree(local_target)
            os.rename(local_staged, local_target)
            return
        fs = self._fs(target)
        if fs.exists(self._path(target)):
            fs.delete(self._path(target), True)
        if not fs.rename(self._path(staged), self._path(target)):
            raise RuntimeError(f"could not rename {staged} to {target}")


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0
