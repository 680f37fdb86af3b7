"""The two compiled modules (see their docstrings); everything else is in pyproject.toml.

ingest._fastwalk reads lxml's parsed trees through lxml's public C API, so it builds
against the headers of the lxml in the build environment; kb._fastrows builds an
article's rows. Both are optional: where they cannot be built (no C compiler), the
install goes on and imports read records and build rows with the Python code.
"""

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = cythonize([Extension("ingest._fastwalk", ["ingest/_fastwalk.pyx"], include_dirs=lxml.get_include()),
                        Extension("kb._fastrows", ["kb/_fastrows.pyx"])],
                       language_level=3)
for extension in extensions:
    extension.optional = True  # cythonize makes new Extensions, which do not keep the flag

setup(ext_modules=extensions)
