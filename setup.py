"""The one compiled module, ingest._fastwalk (see its docstring); everything else is in pyproject.toml.

It reads lxml's parsed trees through lxml's public C API, so it builds against the
headers of the lxml in the build environment. It is optional: where it cannot be built
(no C compiler), the install goes on and imports read records with the Python walk.
"""

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = cythonize([Extension("ingest._fastwalk", ["ingest/_fastwalk.pyx"], include_dirs=lxml.get_include())],
                       language_level=3)
for extension in extensions:
    extension.optional = True  # cythonize makes new Extensions, which do not keep the flag

setup(ext_modules=extensions)
