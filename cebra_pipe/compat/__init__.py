"""Interoperability with files and code written for the reference ``cebra`` package.

:mod:`cebra_pipe.compat.cebra_files` reads model files saved by ``cebra`` 0.6.1
(``CEBRA.save``, both backends) without unpickling arbitrary objects, and writes
cebra_pipe models in the form ``cebra.CEBRA.load`` reads.
"""

from cebra_pipe.compat.cebra_files import (DisallowedGlobalError, is_cebra_file,
                                           read_cebra_file, save_for_cebra)

__all__ = ["DisallowedGlobalError", "is_cebra_file", "read_cebra_file", "save_for_cebra"]
