"""``cebra_pipe.pipeline.common.run``: bad input -> one line and exit 2; bugs keep their
traceback (issue 19: a bare TypeError or KeyError is not reported as bad input)."""

from __future__ import annotations

import errno

import pytest

from cebra_pipe.data.load import NonNumericDataError
from cebra_pipe.pipeline.common import (EXIT_BAD_INPUT, EXIT_WRITE_ERROR, PipelineError,
                                        run)


def _raising(error: BaseException):
    def main(argv):
        raise error
    return main


@pytest.mark.parametrize("error", [
    PipelineError("session file 'x.npz' lacks 'neural'"),
    ValueError("file 'x.npy': X has 3 features, but CEBRA is expecting 5"),
    NonNumericDataError("file 'x.csv': column 'a' is not numeric"),  # also a TypeError
    FileNotFoundError(errno.ENOENT, "No such data file", "x.npz"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, error):
    assert run(_raising(error), [], "ingest") == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("cebra_pipe ingest: error: ") and err.count("\n") == 1
    assert "Traceback" not in err and str(error.args[-1])[:10] in err


@pytest.mark.parametrize("error", [TypeError("unsupported operand type(s)"),
                                   KeyError("label_types")])
def test_internal_errors_are_not_masked_as_bad_input(error):
    with pytest.raises(type(error)):
        run(_raising(error), [], "train-single")


def test_unwritable_output_is_exit_3(capsys):
    error = PermissionError(errno.EACCES, "Permission denied", "results/x.npz")
    assert run(_raising(error), [], "split") == EXIT_WRITE_ERROR
    assert "results directory is not writable" in capsys.readouterr().err
