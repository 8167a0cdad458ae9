"""``python -m cebra_pipe split``: a deterministic train/valid split of one session.

* ``blocks``: time is cut into ``num_blocks`` contiguous blocks and the last
  ``valid_fraction`` of each block is held out (one block: the last part of the
  session, as in the CEBRA quick start).
* ``trials``: whole trials are held out, every ``round(1 / valid_fraction)``-th trial
  in order of appearance, so that train and valid cover the same behaviour.
* ``auto``: ``trials`` when the session has a trial index with enough trials, else
  ``blocks``.

Output: an ``.npz`` with sorted int64 index arrays ``train`` and ``valid`` and
``meta`` (JSON), plus a provenance JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from cebra_pipe.pipeline.common import (PipelineError, all_or_nothing, canonical_json,
                                        load_session, run, save_npz, write_provenance)

STEP = "split"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {STEP}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--session", required=True, help="session file from the ingest step")
    parser.add_argument("--method", choices=["auto", "blocks", "trials"], default="auto")
    parser.add_argument("--valid-fraction", type=float, default=0.2)
    parser.add_argument("--num-blocks", type=int, default=1)
    parser.add_argument("--min-samples", type=int, default=100,
                        help="fewest time steps allowed in either split")
    parser.add_argument("--config-sha256", default=None)
    parser.add_argument("--out", required=True, help="split file to write (.npz)")
    parser.add_argument("--provenance", required=True)
    return parser


def block_split(num_timesteps: int, valid_fraction: float, num_blocks: int = 1
                ) -> tuple[np.ndarray, np.ndarray]:
    """Hold out the last ``valid_fraction`` of each of ``num_blocks`` contiguous blocks.

    Returns
    -------
    train, valid : sorted int64 indices into ``range(num_timesteps)``
    """
    edges = np.linspace(0, num_timesteps, num_blocks + 1).round().astype(int)
    is_valid = np.zeros(num_timesteps, dtype=bool)
    for begin, end in zip(edges[:-1], edges[1:]):
        held = int(round((end - begin) * valid_fraction))
        if held:
            is_valid[end - held:end] = True
    return np.flatnonzero(~is_valid), np.flatnonzero(is_valid)


def trial_split(trial: np.ndarray, valid_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Hold out every ``k``-th trial (``k = round(1 / valid_fraction)``), by first appearance.

    Parameters
    ----------
    trial : (time,) int trial index per time step
    """
    order = trial[np.sort(np.unique(trial, return_index=True)[1])]
    step = max(2, int(round(1.0 / valid_fraction)))
    held = order[step - 1::step]
    is_valid = np.isin(trial, held)
    return np.flatnonzero(~is_valid), np.flatnonzero(is_valid)


def make_split(num_timesteps: int, trial: np.ndarray | None, method: str, valid_fraction: float,
               num_blocks: int, min_samples: int, where: str = "session"
               ) -> tuple[np.ndarray, np.ndarray, str]:
    """Choose and apply the split method; returns ``(train, valid, method_used)``."""
    if not 0.0 < valid_fraction < 1.0:
        raise PipelineError(f"{where}: split.valid_fraction must lie in (0, 1), got "
                            f"{valid_fraction}.")
    if num_blocks < 1:
        raise PipelineError(f"{where}: split.num_blocks must be >= 1, got {num_blocks}.")
    step = max(2, int(round(1.0 / valid_fraction)))
    enough_trials = trial is not None and len(np.unique(trial)) >= step
    if method == "trials" and not enough_trials:
        found = 0 if trial is None else len(np.unique(trial))
        raise PipelineError(f"{where}: split.method 'trials' needs a trial index with at "
                            f"least {step} trials, found {found} (set split.trial_key or use "
                            "method 'blocks').")
    if method == "trials" or (method == "auto" and enough_trials):
        train, valid = trial_split(trial, valid_fraction)
        used = "trials"
    else:
        train, valid = block_split(num_timesteps, valid_fraction, num_blocks)
        used = "blocks"
    for name, idx in (("train", train), ("valid", valid)):
        if len(idx) < min_samples:
            raise PipelineError(f"{where}: the {name} split has {len(idx)} time steps, fewer "
                                f"than split.min_samples={min_samples} (session length "
                                f"{num_timesteps}, method {used}); use a longer session, "
                                "another valid_fraction, or lower min_samples.")
    return train.astype(np.int64), valid.astype(np.int64), used


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    session = load_session(args.session)
    where = f"session {session.name} ('{args.session}')"
    train, valid, used = make_split(len(session.neural), session.trial, args.method,
                                    args.valid_fraction, args.num_blocks, args.min_samples,
                                    where)
    meta = {"method": used, "requested_method": args.method,
            "valid_fraction": args.valid_fraction, "num_blocks": args.num_blocks,
            "num_train": int(len(train)), "num_valid": int(len(valid))}
    with all_or_nothing([args.out, args.provenance]):
        save_npz(args.out, {"train": train, "valid": valid, "meta": np.array(canonical_json(meta))})
        write_provenance(args.provenance, STEP, params=meta, inputs=[args.session],
                         config_sha256=args.config_sha256)
    print(f"split {session.name}: {len(train)} train / {len(valid)} valid time steps "
          f"({used}) -> {args.out}")


def cli(argv: Sequence[str] | None = None) -> int:
    return run(main, argv, STEP)
