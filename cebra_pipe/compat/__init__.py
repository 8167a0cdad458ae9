"""Interoperability with files and code written for the reference ``cebra`` package.

:mod:`cebra_pipe.compat.cebra_files` reads model files saved by ``cebra`` 0.6.1
(``CEBRA.save``, both backends) without unpickling arbitrary objects, and writes
cebra_pipe models in the form ``cebra.CEBRA.load`` reads. What belongs here: format
translation only (allow-listed readers, exporters); cebra_pipe's own model file is
:mod:`cebra_pipe.sklearn.persistence`.
"""

from cebra_pipe.compat.cebra_files import (DisallowedGlobalError, is_cebra_file,
                                           read_cebra_file, save_for_cebra)

__all__ = ["DisallowedGlobalError", "is_cebra_file", "read_cebra_file", "save_for_cebra"]
