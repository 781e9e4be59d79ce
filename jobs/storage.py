"""Files: listing the change log, small JSON documents, folders and links, for jobs.versions and the pipeline;
and the Parquet tables' reads and writes (explicit schema in, one file per partition out).

Local paths use `os`; everything else goes through Hadoop's FileSystem API, so the same calls serve file://
and (on EMR, via EMRFS) s3://. Everything that touches storage lives here; the transformations never do.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from typing import List, Optional
from urllib.parse import urlparse

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


FORCE_HADOOP_ENV = "ADVISING_STORAGE"  # "hadoop": local paths too go through Hadoop's FileSystem API


def _hidden_from_spark(name: str) -> bool:
    """Names Spark's file index (InMemoryFileIndex.shouldFilterOutPathName) never lists."""
    return (name.startswith("_") and "=" not in name) or name.startswith(".") or name.endswith("._COPYING_")


# Characters a URI keeps as they are: a location made of them only is its own URI.
_URI_SAFE = re.compile(r"^[A-Za-z0-9/._=:-]*$")


def uri_spellings(spark, location: str) -> List[str]:
    """How Spark's _metadata.file_path spells the file a reader was given as `location` (a FileInfo.uri):
    percent-encoded (Hadoop's Path.toUri: "a b" is a%20b), and a local file as file:/x or file:///x
    depending on the call."""
    uri = location if _URI_SAFE.match(location) else str(spark._jvm.org.apache.hadoop.fs.Path(location).toUri().toString())
    if not uri.startswith("file:"):
        return [uri]
    path = "/" + uri[len("file:"):].lstrip("/")
    return [f"file:{path}", f"file://{path}"]


def after_prefix(text, prefix: str, length: Optional[int] = None):
    """A Column: the part of string column `text` after `prefix` (which it starts with), or only the first `length`
    characters of that part (ASCII ones: a date). Cut on the UTF-8 bytes: a string's substr counts characters
    from its start, twice per call (Spark's substringSQL), and on the paths of every change-log line that was
    2.3 of 4.9 s of a warm read of 1M appointments' log (0.2 s this way)."""
    from pyspark.sql import functions as F

    start = len(prefix.encode("utf-8")) + 1
    return text.cast("binary").substr(F.lit(start), F.lit(length if length is not None else 1 << 30)).cast("string")


def file_path_of_line(spark, root: str, files: List[FileInfo]):
    """A Column: the user-facing path (FileInfo.path) of the file each line of a text read of `files` came from,
    worked out from the line's `_metadata.file_path`. Every file lies below `root`, so its URI is one of the
    root's spellings (uri_spellings) followed by its percent-encoded relative path: the spelling is swapped for
    the root as given and the rest decoded ("+" is a plus sign in a URI path, not a space, so it is kept from
    the decoder). A per-line expression rather than a join with a catalog of the files' URIs: the same paths,
    and the join's broadcast and hashing cost about 1.5 s of a cold 200k parse. A URI below none of the
    spellings (which the listing rules out) fails the query rather than give a line a wrong file."""
    from pyspark.sql import functions as F

    first = files[0]
    # FileInfo: path = root + relative and uri = the root's location + the same relative part.
    root = root.rstrip("/")
    root_location = first.uri[: len(first.uri) - (len(first.path) - len(root))]
    uri = F.col("_metadata.file_path")
    relative = F.raise_error(F.concat(F.lit(f"a line's file is not below {root}: "), uri))
    for spelling in reversed(uri_spellings(spark, root_location)):
        relative = F.when(uri.startswith(spelling), after_prefix(uri, spelling)).otherwise(relative)
    decoded = F.when(relative.contains("%"), F.url_decode(F.replace(relative, F.lit("+"), F.lit("%2B")))).otherwise(relative)
    return F.concat(F.lit(root), decoded)


def _visible(name: str) -> bool:
    """Readers of a table folder skip `_` and `.` names (Spark's and Hadoop's convention)."""
    return not name.startswith(("_", "."))


class _LocalFiles:
    """Plain `os` calls on local paths (plain or file://)."""

    def exists(self, path: str) -> bool:
        return os.path.exists(local_path(path))

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(local_path(path))

    def children(self, path: str) -> List[str]:
        folder = local_path(path)
        return sorted(n for n in os.listdir(folder) if not n.startswith(".")) if os.path.isdir(folder) else []

    def data_files(self, root: str) -> List[str]:
        found, top = [], local_path(root)
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if _visible(d)]
            found.extend(os.path.relpath(os.path.join(folder, f), top) for f in files if _visible(f))
        return found

    def list_files(self, root: str) -> List[FileInfo]:
        """os.walk with the names Spark's file index skips left out, so both backends list the same files,
        each with the location a Spark reader takes (file: and the path as it is)."""
        found, top = [], local_path(root)
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not _hidden_from_spark(d))
            for name in sorted(files):
                if not _hidden_from_spark(name):
                    path = os.path.join(folder, name)
                    status = os.stat(path)
                    relative = os.path.relpath(path, top)
                    found.append(FileInfo(f"{root.rstrip('/')}/{relative}", f"file:{path}", status.st_size, status.st_mtime_ns // 1_000_000))
        return found

    def read_text(self, path: str) -> Optional[str]:
        try:
            with open(local_path(path), encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def write_text(self, path: str, text: str) -> None:
        local = local_path(path)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        tmp = f"{local}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, local)

    def copy_tree(self, source: str, target: str) -> int:
        # Version folders are immutable once committed, so a hard link is a safe copy (and free).
        count, top = 0, local_path(source)
        for folder, _, files in os.walk(top):
            into = os.path.join(local_path(target), os.path.relpath(folder, top))
            os.makedirs(into, exist_ok=True)
            for name in files:
                try:
                    os.link(os.path.join(folder, name), os.path.join(into, name))
                except OSError:  # another filesystem, or no hard links there
                    shutil.copy2(os.path.join(folder, name), os.path.join(into, name))
                count += 1
        return count

    def delete(self, path: str) -> None:
        local = local_path(path)
        if os.path.islink(local) or os.path.isfile(local):
            os.unlink(local)
        else:
            shutil.rmtree(local, ignore_errors=True)


class _HadoopFiles:
    """Hadoop's FileSystem API through the SparkSession's JVM: EMRFS for s3:// on a cluster."""

    def __init__(self, spark):
        self._spark = spark

    def _path(self, path: str):
        return self._spark._jvm.org.apache.hadoop.fs.Path(path)

    def fs(self, path: str):
        from py4j.protocol import Py4JJavaError

        try:
            return self._path(path).getFileSystem(self._spark._jsc.hadoopConfiguration())
        except Py4JJavaError as exc:
            if "UnsupportedFileSystemException" in str(exc.java_exception.getClass().getName()):
                scheme = urlparse(path).scheme
                raise UsageError(
                    f"no filesystem connector for {scheme}:// on this Spark classpath ({path}); on EMR, EMRFS serves "
                    f"s3://; locally, copy the data to a local folder (e.g. aws s3 sync) and pass that path"
                ) from None
            raise

    def exists(self, path: str) -> bool:
        return bool(self.fs(path).exists(self._path(path)))

    def is_dir(self, path: str) -> bool:
        fs, p = self.fs(path), self._path(path)
        return bool(fs.exists(p) and fs.getFileStatus(p).isDirectory())

    def children(self, path: str) -> List[str]:
        fs, p = self.fs(path), self._path(path)
        if not fs.exists(p):
            return []
        return sorted(n for n in (s.getPath().getName() for s in fs.listStatus(p)) if not n.startswith("."))

    def data_files(self, root: str) -> List[str]:
        return [info.path[len(root.rstrip("/")) + 1:] for info in self.list_files(root)]

    def list_files(self, root: str) -> List["FileInfo"]:
        """Spark lists them in the JVM (the binaryFile source, whose content column is never read): one round
        trip, where walking Hadoop's iterator from Python costs several per file."""
        from pyspark.sql import functions as F

        fs = self.fs(root)
        # Path.toString, like the listing's paths: the path as it is, not percent-encoded (uri_spellings).
        base = fs.makeQualified(self._path(root)).toString().rstrip("/")
        listing = (
            self._spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .load(root)
            .select("path", "length", F.unix_millis("modificationTime"))
            .collect()
        )
        return [
            FileInfo(root.rstrip("/") + uri[len(base):], uri, size, modified_ms)
            for uri, size, modified_ms in listing
        ]

    def read_text(self, path: str) -> Optional[str]:
        fs, p = self.fs(path), self._path(path)
        if not fs.exists(p):
            return None
        stream = fs.open(p)
        try:
            jvm = self._spark._jvm
            reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
            lines = []
            line = reader.readLine()
            while line is not None:
                lines.append(line)
                line = reader.readLine()
            return "\n".join(lines)
        finally:
            stream.close()

    def write_text(self, path: str, text: str) -> None:
        # On an object store the object appears whole when the stream closes (a PUT is atomic).
        stream = self.fs(path).create(self._path(path), True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def copy_tree(self, source: str, target: str) -> int:
        # FileUtil copies file by file; on EMR, EMRFS turns an S3-to-S3 copy into server-side copies.
        jvm = self._spark._jvm
        src_fs, dst_fs = self.fs(source), self.fs(target)
        count = len(self.data_files(source)) if src_fs.exists(self._path(source)) else 0
        if count:
            jvm.org.apache.hadoop.fs.FileUtil.copy(
                src_fs, self._path(source), dst_fs, self._path(target), False, self._spark._jsc.hadoopConfiguration()
            )
        return count

    def delete(self, path: str) -> None:
        self.fs(path).delete(self._path(path), True)


class _S3Files:
    """boto3 on s3:// where no Spark runs (`advising versions` / `rollback` from a workstation); boto3 honours
    AWS_ENDPOINT_URL, so the tests talk to moto in server mode."""

    def __init__(self):
        import boto3

        self._s3 = boto3.client("s3")

    @staticmethod
    def _split(path: str):
        parsed = urlparse(path)
        return parsed.netloc, parsed.path.lstrip("/")

    def _keys(self, path: str):
        bucket, key = self._split(path)
        prefix = key.rstrip("/") + "/"
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"][len(prefix):]

    def exists(self, path: str) -> bool:
        return self.read_text(path) is not None or self.is_dir(path)

    def is_dir(self, path: str) -> bool:
        return next(iter(self._keys(path)), None) is not None

    def children(self, path: str) -> List[str]:
        return sorted({key.split("/")[0] for key in self._keys(path) if not key.startswith(".")})

    def data_files(self, root: str) -> List[str]:
        return [key for key in self._keys(root) if all(_visible(part) for part in key.split("/"))]

    def read_text(self, path: str) -> Optional[str]:
        bucket, key = self._split(path)
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        except self._s3.exceptions.NoSuchKey:
            return None

    def write_text(self, path: str, text: str) -> None:
        bucket, key = self._split(path)
        self._s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))

    def delete(self, path: str) -> None:
        bucket, key = self._split(path)
        keys = [f"{key}/{k}" for k in self._keys(path)] or [key]
        for start in range(0, len(keys), 1000):
            self._s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})


class Storage:
    """File access for the pipeline and its versions, one interface over three backends: `os` for local
    paths; Hadoop's FileSystem API (through the SparkSession's JVM) for everything else when Spark runs,
    which is what EMRFS serves for s3:// on a cluster; boto3 for s3:// when no Spark runs.

    `ADVISING_STORAGE=hadoop` sends local paths through Hadoop too, so the suite runs the EMR code path
    (listing, writing, the commit and the cleanup) on local `file:` paths.
    """

    def __init__(self, spark=None, environ=None):
        self._spark = spark
        self.hadoop_only = (os.environ if environ is None else environ).get(FORCE_HADOOP_ENV, "") == "hadoop"
        self._local = _LocalFiles()
        self._hadoop = _HadoopFiles(spark) if spark is not None else None
        self._s3: Optional[_S3Files] = None

    def _files(self, path: str):
        if not self.hadoop_only and local_path(path) is not None:
            return self._local
        if self._hadoop is not None:
            return self._hadoop
        if urlparse(path).scheme == "s3":
            self._s3 = self._s3 or _S3Files()
            return self._s3
        raise UsageError(f"{path}: this command reads such paths through Spark; run it where Spark can reach them")

    def exists(self, path: str) -> bool:
        return self._files(path).exists(path)

    def is_dir(self, path: str) -> bool:
        return self._files(path).is_dir(path)

    def children(self, path: str) -> List[str]:
        """Names directly under a folder (hidden `.` names skipped), sorted; empty when it does not exist."""
        return self._files(path).children(path)

    def data_files(self, root: str) -> List[str]:
        """Paths relative to root of the files a reader of the table folder sees (no `_`/`.` names), sorted."""
        return sorted(self._files(root).data_files(root))

    def list_files(self, root: str) -> List[FileInfo]:
        """Every file below root (recursively, hidden `_`/`.` names skipped), with its user-facing path and URI.
        Local roots are walked with `os` (a Spark listing job costs seconds, most of a small run's plan)."""
        if self.hadoop_only or local_path(root) is None:
            return _HadoopFiles(self._spark).list_files(root)
        return self._local.list_files(root)

    def read_text(self, path: str) -> Optional[str]:
        return self._files(path).read_text(path)

    def write_text(self, path: str, text: str) -> None:
        """Replace a small document as one step a reader cannot see half of: locally write then rename; on an
        object store a PUT is atomic by itself."""
        self._files(path).write_text(path, text)

    def copy_tree(self, source: str, target: str) -> int:
        """Copy the folder `source` (every file below it) to `target`; returns how many data files it holds.
        Used to carry a table partition unchanged from the current version into a new one."""
        return self._files(source).copy_tree(source, target)

    def delete(self, path: str) -> None:
        self._files(path).delete(path)

    def link(self, path: str, target: str) -> bool:
        """Point the symlink `path` at `target` (relative to its folder) in one atomic step; a real folder in the
        way (an output written before versions existed) is moved aside first. False off local disk (object
        stores have no links): readers there go through the version pointer instead."""
        local = local_path(path)
        if local is None:
            return False
        if os.path.islink(local) and os.readlink(local) == target:
            return True
        if os.path.isdir(local) and not os.path.islink(local):
            aside = f"{local}.before-versions-{os.getpid()}"
            os.rename(local, aside)
            shutil.rmtree(aside)
        tmp = f"{local}.link-{os.getpid()}"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, local)
        return True


def read_table(spark, path: str, schema):
    return spark.read.schema(schema).parquet(path)


def write_table(df, path: str, partition_column: str, mode: str = "overwrite") -> int:
    """Writes a table (or, with mode="append", more partitions of it), one file per partition; returns the
    rows written, observed by the write itself."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    # Unnamed: a named observation takes the metrics of the first query the session finishes with that name,
    # and a nightly run writes tables from several threads at once (jobs.incremental).
    rows = Observation()
    df = df.observe(rows, F.count(F.lit(1)).alias("rows"))
    df.repartition(partition_column).write.mode(mode).partitionBy(partition_column).parquet(path)
    return rows.get["rows"]


def write_empty_table(spark, path: str, schema) -> None:
    """An empty table is one empty Parquet file with every column, so readers still see the schema."""
    spark.createDataFrame([], schema).coalesce(1).write.mode("overwrite").parquet(path)
