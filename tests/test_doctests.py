"""The runnable examples in the public entry points' docstrings (``CEBRA``,
``infonce_loss``, ``consistency_score``, ``fit_seeds``) run and give what they show."""

from __future__ import annotations

import doctest

import pytest

from cebra_pipe.sklearn import consistency, ensemble, estimator, goodness_of_fit

ENTRY_POINTS = [estimator.CEBRA, goodness_of_fit.infonce_loss, consistency.consistency_score,
                ensemble.fit_seeds]


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda entry: entry.__name__)
def test_docstring_examples_run(entry):
    examples = doctest.DocTestFinder(recurse=False).find(entry, entry.__name__,
                                                         globs={})
    assert examples and examples[0].examples, f"{entry.__name__} has no runnable example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in examples:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
