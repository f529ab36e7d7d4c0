"""A PEP 517 build backend for the chand package that needs nothing but the
standard library, so that "pip install ./python" works offline (no
setuptools or wheel to download into pip's isolated build environment).

It builds a pure-Python wheel of the flat package chand/ (every .py file),
an editable wheel (a .pth file naming this directory) and an sdist.  The
version is chand/__init__.py's __version__.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

NAME = "chand"
SUMMARY = ("Client of chand-guest's local API: records pushed from the "
           "hypervisor, records published back")
REQUIRES_PYTHON = ">=3.7"
TAG = "py3-none-any"
# Fixed timestamps: the same tree gives the same wheel.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _version():
    with open(os.path.join(HERE, NAME, "__init__.py"), encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M)
    if not m:
        raise RuntimeError("no __version__ in %s/__init__.py" % NAME)
    return m.group(1)


def _dist_info():
    return "%s-%s.dist-info" % (NAME, _version())


def _metadata():
    readme = ""
    path = os.path.join(HERE, "README.md")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            readme = f.read()
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\n"
            "Requires-Python: %s\nDescription-Content-Type: text/markdown\n"
            "\n%s" % (NAME, _version(), SUMMARY, REQUIRES_PYTHON, readme))


def _wheel_file():
    return ("Wheel-Version: 1.0\nGenerator: chand_backend\n"
            "Root-Is-Purelib: true\nTag: %s\n" % TAG)


def _package_files():
    """Returns the package's files, relative to HERE, sorted."""
    names = sorted(n for n in os.listdir(os.path.join(HERE, NAME))
                   if n.endswith(".py"))
    return [NAME + "/" + n for n in names]


def _read(rel):
    with open(os.path.join(HERE, rel), "rb") as f:
        return f.read()


def _write_wheel(directory, files):
    """Writes a wheel holding 'files' (list of (archive name, bytes)) and its
    .dist-info into 'directory'; returns its file name."""
    dist_info = _dist_info()
    files = files + [(dist_info + "/METADATA", _metadata().encode()),
                     (dist_info + "/WHEEL", _wheel_file().encode()),
                     (dist_info + "/top_level.txt", (NAME + "\n").encode())]
    record = []
    for name, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
        record.append("%s,sha256=%s,%d" % (name, digest.rstrip(b"=").decode(),
                                           len(data)))
    record.append(dist_info + "/RECORD,,")
    files.append((dist_info + "/RECORD", ("\n".join(record) + "\n").encode()))

    filename = "%s-%s-%s.whl" % (NAME, _version(), TAG)
    with zipfile.ZipFile(os.path.join(directory, filename), "w",
                         zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return filename


# -- PEP 517 and PEP 660 hooks -------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist_info = os.path.join(metadata_directory, _dist_info())
    os.makedirs(dist_info, exist_ok=True)
    for name, text in (("METADATA", _metadata()), ("WHEEL", _wheel_file()),
                       ("top_level.txt", NAME + "\n")):
        with open(os.path.join(dist_info, name), "w", encoding="utf-8") as f:
            f.write(text)
    return _dist_info()


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    return _write_wheel(wheel_directory,
                        [(rel, _read(rel)) for rel in _package_files()])


def build_editable(wheel_directory, config_settings=None,
                   metadata_directory=None):
    pth = (HERE + "\n").encode()
    return _write_wheel(wheel_directory, [("_%s_editable.pth" % NAME, pth)])


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, _version())
    filename = base + ".tar.gz"
    rels = (["pyproject.toml", "README.md", "backend/chand_backend.py"]
            + _package_files())
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz",
                      format=tarfile.PAX_FORMAT) as tar:
        for rel in rels + ["PKG-INFO"]:
            data = (_metadata().encode() if rel == "PKG-INFO"
                    else _read(rel))
            info = tarfile.TarInfo(base + "/" + rel)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return filename
