"""The analysis part of the CEBRA usage guide, run verbatim with real fitted estimators.

Covers the guide from "Computing the embedding" through "Decoding": embeddings,
``plot_embedding`` (all variants, including the 3-D subplots with
``idx_order=(4,5,6)``), ``plot_loss``, ``plot_temperature``, ``compare_models``,
``consistency_score`` + ``plot_consistency``, the two ``infonce_loss`` calls,
adapting a model, and both decoding examples. Each ``GUIDE_*`` string is copied
character for character from ``shared/spec/cebra-usage-guide.txt`` (checked by
:func:`test_blocks_are_verbatim` when the guide is available); only the import
lines are pointed at ``cebra_pipe``. Blocks run in one namespace prepared by the
guide's own earlier blocks (data, single- and multi-session models), as a reader
would run them in a notebook. Every figure is written to PNG and checked to be a
non-empty, non-flat image.

The last section re-runs the decoders, consistency and plots on real CEBRA
embeddings of data with a known latent (the helper tests use stand-in embeddings
and stand-in models), and checks the numbers, not only that the code runs.
"""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import cebra_pipe as cebra  # noqa: E402

# --------------------------------------------------------------------------------------
# Guide blocks (verbatim)
# --------------------------------------------------------------------------------------

# Prerequisites: the guide's blocks before "Model evaluation" that the analysis uses.
GUIDE_NUMPY = "import numpy as np\n"

GUIDE_IMPORT = '''\
import cebra
from cebra import CEBRA
'''

GUIDE_SINGLE_SESSION_SETUP = '''\
timesteps = 5000
neurons = 50
out_dim = 8

neural_data = np.random.normal(0,1,(timesteps, neurons))
continuous_label = np.random.normal(0,1,(timesteps, 3))
discrete_label = np.random.randint(0,10,(timesteps,))

single_cebra_model = cebra.CEBRA(batch_size=512,
                                 output_dimension=out_dim,
                                 max_iterations=10,
                                 max_adapt_iterations=10)
'''

GUIDE_SINGLE_SESSION_FITS = [
    "single_cebra_model.fit(neural_data)\n",
    "single_cebra_model.fit(neural_data, discrete_label)\n",
    "single_cebra_model.fit(neural_data, continuous_label)\n",
    "single_cebra_model.fit(neural_data, continuous_label, discrete_label)\n",
]

GUIDE_MULTI_SESSION_CONTINUOUS = '''\
timesteps1 = 5000
timesteps2 = 3000
neurons1 = 50
neurons2 = 30
out_dim = 8

neural_session1 = np.random.normal(0,1,(timesteps1, neurons1))
neural_session2 = np.random.normal(0,1,(timesteps2, neurons2))
continuous_label1 = np.random.uniform(0,1,(timesteps1, 3))
continuous_label2 = np.random.uniform(0,1,(timesteps2, 3))

multi_cebra_model = cebra.CEBRA(batch_size=512,
                                output_dimension=out_dim,
                                max_iterations=10,
                                max_adapt_iterations=10)
'''

GUIDE_MULTI_SESSION_CONTINUOUS_FIT = '''\
multi_cebra_model.fit([neural_session1, neural_session2], [continuous_label1, continuous_label2])
'''

GUIDE_MULTI_SESSION_DISCRETE = '''\
timesteps1 = 5000
timesteps2 = 3000
neurons1 = 50
neurons2 = 30
out_dim = 8

neural_session1 = np.random.normal(0,1,(timesteps1, neurons1))
neural_session2 = np.random.normal(0,1,(timesteps2, neurons2))
discrete_label1 = np.random.randint(0,10,(timesteps1, ))
discrete_label2 = np.random.randint(0,10,(timesteps2, ))

multi_cebra_model_discrete = cebra.CEBRA(batch_size=512,
                                output_dimension=out_dim,
                                max_iterations=10,
                                max_adapt_iterations=10)


multi_cebra_model_discrete.fit([neural_session1, neural_session2], [discrete_label1, discrete_label2])
'''

GUIDE_SAVE_LOAD = '''\
import tempfile
from pathlib import Path

# create temporary file to save the model
tmp_file = Path(tempfile.gettempdir(), 'cebra.pt')

cebra_model = cebra.CEBRA(max_iterations=10)
cebra_model.fit(neural_data)

# Save the model
cebra_model.save(tmp_file)

# New session: load and use the model
loaded_cebra_model = cebra.CEBRA.load(tmp_file)
embedding = loaded_cebra_model.transform(neural_data)
'''

# "Computing the embedding"
GUIDE_TRANSFORM_SINGLE = '''\
embedding = single_cebra_model.transform(neural_data)
assert(embedding.shape == (timesteps, out_dim))
'''

GUIDE_TRANSFORM_MULTI = '''\
embedding = multi_cebra_model.transform(neural_session1, session_id=0)
assert(embedding.shape == (timesteps1, out_dim))
'''

# "Displaying the embedding"
GUIDE_PLOT_EMBEDDING_DEFAULT = "cebra.plot_embedding(embedding)\n"
GUIDE_PLOT_EMBEDDING_COLOR = 'cebra.plot_embedding(embedding, embedding_labels="darkorchid")\n'
GUIDE_PLOT_EMBEDDING_TIME = ('cebra.plot_embedding(embedding, embedding_labels="time", '
                             'cmap="magma", markersize=5, alpha=0.5)\n')
GUIDE_PLOT_EMBEDDING_LABELS = ("cebra.plot_embedding(embedding, "
                               "embedding_labels=continuous_label[:, 0])\n")
GUIDE_PLOT_EMBEDDING_SUBPLOTS = '''\
import matplotlib.pyplot as plt
fig = plt.figure(figsize=(10,5))
ax1 = fig.add_subplot(121, projection="3d")
ax2 = fig.add_subplot(122, projection="3d")

ax1 = cebra.plot_embedding(embedding, embedding_labels=continuous_label[:,0], idx_order=(1,2,3), title="Latents: (1,2,3)", ax=ax1)
ax2 = cebra.plot_embedding(embedding, embedding_labels=continuous_label[:,0], idx_order=(4,5,6), title="Latents: (4,5,6)", ax=ax2)
'''
# The first line of the subplot example: later blocks (consistency) use its ``plt``.
GUIDE_IMPORT_PYPLOT = "import matplotlib.pyplot as plt\n"
GUIDE_PLOT_EMBEDDING_2D = 'cebra.plot_embedding(embedding, idx_order=(0,1), title="2D Embedding")\n'

# "Displaying the training loss" / "Displaying the temperature"
GUIDE_PLOT_LOSS = "cebra.plot_loss(cebra_model)\n"
GUIDE_PLOT_TEMPERATURE = "cebra.plot_temperature(cebra_model)\n"

# "Comparing models"
GUIDE_COMPARE_MODELS_FITS = '''\
cebra_posdir_model = CEBRA(model_architecture='offset10-model',
                batch_size=512,
                output_dimension=32,
                max_iterations=5,
                time_offsets=10)
cebra_posdir_model.fit(neural_data, continuous_label, discrete_label)

cebra_pos_model = CEBRA(model_architecture='offset10-model',
            batch_size=512,
            output_dimension=32,
            max_iterations=5,
            time_offsets=10)
cebra_pos_model.fit(neural_data, continuous_label)

cebra_dir_model = CEBRA(model_architecture='offset10-model',
            batch_size=512,
            output_dimension=32,
            max_iterations=5,
            time_offsets=10)
cebra_dir_model.fit(neural_data, discrete_label)
'''

GUIDE_COMPARE_MODELS_PLOT = '''\
import cebra

# Labels to be used for the legend of the plot (optional)
labels = ["position+direction", "position", "direction"]

cebra.compare_models([cebra_posdir_model, cebra_pos_model, cebra_dir_model], labels)
'''

# "Consistency across features"
GUIDE_CONSISTENCY_EMBEDDINGS = '''\
n_runs = 3
dataset_ids = ["session1", "session2"]

cebra_model = CEBRA(model_architecture='offset10-model',
                batch_size=512,
                output_dimension=32,
                max_iterations=5,
                time_offsets=10)

embeddings_runs = []
embeddings_datasets, ids, labels = [], [], []
for i in range(n_runs):
    embeddings_runs.append(cebra_model.fit_transform(neural_session1, continuous_label1))

labels.append(continuous_label1[:, 0])
embeddings_datasets.append(embeddings_runs[-1])

embeddings_datasets.append(cebra_model.fit_transform(neural_session2, continuous_label2))
labels.append(continuous_label2[:, 0])

n_datasets = len(dataset_ids)
'''

GUIDE_CONSISTENCY_SCORE = '''\
# Between-runs
scores_runs, pairs_runs, ids_runs = cebra.sklearn.metrics.consistency_score(embeddings=embeddings_runs,
                                                                            between="runs")
assert scores_runs.shape == (n_runs**2 - n_runs, )
assert pairs_runs.shape == (n_runs**2 - n_runs, 2)
assert ids_runs.shape == (n_runs, )

# Between-datasets, by aligning on the labels
(scores_datasets,
    pairs_datasets,
    ids_datasets) = cebra.sklearn.metrics.consistency_score(embeddings=embeddings_datasets,
                                                                labels=labels,
                                                                dataset_ids=dataset_ids,
                                                                between="datasets")
assert scores_datasets.shape == (n_datasets**2 - n_datasets, )
assert pairs_datasets.shape == (n_datasets**2 - n_datasets, 2)
assert ids_datasets.shape == (n_datasets, )
'''

GUIDE_CONSISTENCY_PLOT = '''\
fig = plt.figure(figsize=(10,4))

ax1 = fig.add_subplot(121)
ax2 = fig.add_subplot(122)

ax1 = cebra.plot_consistency(scores_runs, pairs_runs, ids_runs, vmin=0, vmax=100, ax=ax1, title="Between-runs consistencies")
ax2 = cebra.plot_consistency(scores_datasets, pairs_datasets, ids_runs, vmin=0, vmax=100, ax=ax2, title="Between-subjects consistencies")
'''

# "Embeddings comparison via the InfoNCE loss"
GUIDE_INFONCE = '''\
# single-session
single_score = cebra.sklearn.metrics.infonce_loss(single_cebra_model,
                                                  neural_data,
                                                  continuous_label,
                                                  discrete_label,
                                                  num_batches=5)

# multi-session
multi_score = cebra.sklearn.metrics.infonce_loss(multi_cebra_model,
                                                 neural_session1,
                                                 continuous_label1,
                                                 session_id=0,
                                                 num_batches=5)
'''

# "Adapt the model to new data"
GUIDE_ADAPT = '''\
# Fit your model once ...
single_cebra_model.fit(neural_session1)

# ... do something with it (embedding, visualization, saving) ...

# ... and adapt the model
cebra_model.fit(neural_session2, adapt=True)
'''

# "Decoding"
GUIDE_DECODING_TIME = '''\
from sklearn.model_selection import train_test_split

# 1. Train a CEBRA-Time model on the whole dataset
cebra_model = cebra.CEBRA(max_iterations=10)
cebra_model.fit(neural_data)
embedding = cebra_model.transform(neural_data)

# 2. Split the embedding and label to decode into train/validation sets
(
     train_embedding,
     valid_embedding,
     train_discrete_label,
     valid_discrete_label,
) = train_test_split(embedding,
                     discrete_label,
                     test_size=0.3)

# 3. Train the decoder on the training set
decoder = cebra.KNNDecoder()
decoder.fit(train_embedding, train_discrete_label)

# 4. Get the score on the validation set
score = decoder.score(valid_embedding, valid_discrete_label)

# 5. Get the discrete labels predictions
prediction = decoder.predict(valid_embedding)
'''

GUIDE_DECODING_BEHAVIOR = '''\
from sklearn.model_selection import train_test_split

# 1. Split your neural data and auxiliary variable
(
    train_data,
    valid_data,
    train_discrete_label,
    valid_discrete_label,
) = train_test_split(neural_data,
                     discrete_label,
                     test_size=0.2)

# 2. Train a CEBRA-Behavior model on training data only
cebra_model = cebra.CEBRA(max_iterations=10, batch_size=512)
cebra_model.fit(train_data, train_discrete_label)

# 3. Get embedding for training and validation data
train_embedding = cebra_model.transform(train_data)
valid_embedding = cebra_model.transform(valid_data)

# 4. Train the decoder on training embedding and labels
decoder = cebra.KNNDecoder()
decoder.fit(train_embedding, train_discrete_label)

# 5. Compute the score on validation embedding and labels
score = decoder.score(valid_embedding, valid_discrete_label)
'''

ALL_BLOCKS = {name: value for name, value in dict(globals()).items()
              if name.startswith("GUIDE_")}

# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

_IMPORTS = [
    (re.compile(r"^(\s*)import cebra\.\w+(\.\w+)*\s*$"), r"\1import cebra_pipe as cebra"),
    (re.compile(r"^(\s*)import cebra\s*$"), r"\1import cebra_pipe as cebra"),
    (re.compile(r"^(\s*)from cebra(\.[\w.]+)? import "), r"\1from cebra_pipe\2 import "),
]


def _adapt_imports(code: str) -> str:
    """Point the guide's ``cebra`` imports at ``cebra_pipe``; nothing else changes."""
    lines = []
    for line in code.splitlines():
        for pattern, replacement in _IMPORTS:
            if pattern.match(line):
                line = pattern.sub(replacement, line)
                break
        lines.append(line)
    return "\n".join(lines) + "\n"


def run_block(code: str, namespace: dict) -> dict:
    """Execute one guide block in ``namespace`` (shared between blocks)."""
    exec(compile(_adapt_imports(code), "<usage-guide>", "exec"), namespace)
    return namespace


def assert_png(figure, path: Path) -> np.ndarray:
    """Write ``figure`` to ``path`` and check it is a non-empty, non-flat PNG image.

    Returns the (height, width, 3) pixels.
    """
    figure.savefig(path)
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 0 and image.size[1] > 0
        pixels = np.asarray(image.convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 1, f"{path.name} is a single flat colour"
    assert pixels.std() > 1.0, f"{path.name} is almost flat"
    drawn = np.any(pixels < 250, axis=-1).mean()  # not white background
    assert drawn > 0.001, f"{path.name} has almost nothing drawn ({drawn:.2%})"
    return pixels


def _spec_path() -> Path | None:
    root = Path(__file__).resolve().parents[1]
    for candidate in (root / "shared" / "spec" / "cebra-usage-guide.txt",
                      root.parent / "shared" / "spec" / "cebra-usage-guide.txt"):
        if candidate.is_file():
            return candidate
    return None


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def prepared() -> dict:
    """Namespace after the guide's data and training blocks (before "Model evaluation"),
    run verbatim. The save/load block (whose full-batch ``cebra_model`` the loss plots
    use) runs in the tests that need it."""
    np.random.seed(0)
    torch.manual_seed(0)
    ns: dict = {"__name__": "__guide__"}
    run_block(GUIDE_NUMPY, ns)
    run_block(GUIDE_IMPORT, ns)
    run_block(GUIDE_SINGLE_SESSION_SETUP, ns)
    for block in GUIDE_SINGLE_SESSION_FITS:
        run_block(block, ns)
    run_block(GUIDE_MULTI_SESSION_CONTINUOUS, ns)
    run_block(GUIDE_MULTI_SESSION_CONTINUOUS_FIT, ns)
    run_block(GUIDE_MULTI_SESSION_DISCRETE, ns)
    return ns


@pytest.fixture
def guide(prepared) -> dict:
    """A copy of the prepared namespace with copies of its models, so blocks that
    refit or adapt a model do not leak into other tests."""
    ns = dict(prepared)
    for name in ("single_cebra_model", "multi_cebra_model", "multi_cebra_model_discrete"):
        ns[name] = copy.deepcopy(prepared[name])
    return ns


@pytest.fixture
def embedded(guide) -> dict:
    """After the "Computing the embedding" blocks."""
    run_block(GUIDE_TRANSFORM_SINGLE, guide)
    run_block(GUIDE_TRANSFORM_MULTI, guide)
    return guide


# --------------------------------------------------------------------------------------
# The guide, verbatim
# --------------------------------------------------------------------------------------

def test_blocks_are_verbatim():
    path = _spec_path()
    if path is None:
        pytest.skip("the usage guide (shared/spec/cebra-usage-guide.txt) is not available")
    text = path.read_text(encoding="utf-8", errors="replace")
    for name, block in ALL_BLOCKS.items():
        blocks = block if isinstance(block, list) else [block]
        for code in blocks:
            assert code.rstrip("\n") in text, f"{name} is not verbatim from the guide"


def test_computing_the_embedding(guide):
    run_block(GUIDE_TRANSFORM_SINGLE, guide)
    single = guide["embedding"]
    assert single.shape == (5000, 8) and np.all(np.isfinite(single))
    run_block(GUIDE_TRANSFORM_MULTI, guide)
    multi = guide["embedding"]
    assert multi.shape == (5000, 8) and np.all(np.isfinite(multi))
    # Default models embed on the unit sphere (cosine distance).
    np.testing.assert_allclose(np.linalg.norm(multi, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(single, multi)


@pytest.mark.parametrize("block, is_3d", [
    (GUIDE_PLOT_EMBEDDING_DEFAULT, True),
    (GUIDE_PLOT_EMBEDDING_COLOR, True),
    (GUIDE_PLOT_EMBEDDING_TIME, True),
    (GUIDE_PLOT_EMBEDDING_LABELS, True),
    (GUIDE_PLOT_EMBEDDING_2D, False),
], ids=["default", "color", "time", "labels", "2d"])
def test_plot_embedding_blocks(embedded, tmp_path, block, is_3d):
    plt.close("all")
    run_block(block, embedded)
    ax = plt.gca()  # the block is an expression statement: fetch the axes it drew
    assert (ax.name == "3d") == is_3d
    points = ax.collections[0]
    assert len(points.get_offsets()) == 5000
    assert_png(ax.figure, tmp_path / "embedding.png")


def test_plot_embedding_subplots_block(embedded, tmp_path):
    """idx_order=(4,5,6) needs >= 7 latents: the guide's models have out_dim = 8."""
    run_block(GUIDE_PLOT_EMBEDDING_SUBPLOTS, embedded)
    ax1, ax2, fig = embedded["ax1"], embedded["ax2"], embedded["fig"]
    assert ax1.name == ax2.name == "3d"
    assert ax1.figure is fig and ax2.figure is fig
    assert ax1.get_title() == "Latents: (1,2,3)" and ax2.get_title() == "Latents: (4,5,6)"
    embedding = embedded["embedding"]
    # The right panel shows latents 4, 5, 6 of the embedding.
    xs, _, zs = ax2.collections[0]._offsets3d
    np.testing.assert_allclose(np.asarray(xs), embedding[:, 4], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(zs), embedding[:, 6], rtol=1e-6)
    assert_png(fig, tmp_path / "subplots.png")


@pytest.mark.slow  # the save/load block trains with batch_size=None (full batch)
def test_plot_loss_and_temperature_blocks(guide, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the block saves
    run_block(GUIDE_SAVE_LOAD, guide)
    model = guide["cebra_model"]
    plt.close("all")
    run_block(GUIDE_PLOT_LOSS, guide)
    ax = plt.gca()
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), model.state_dict_["loss"].numpy())
    assert len(line.get_ydata()) == 10  # max_iterations=10
    assert_png(ax.figure, tmp_path / "loss.png")

    plt.close("all")
    run_block(GUIDE_PLOT_TEMPERATURE, guide)
    ax = plt.gca()
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), 1.0)  # constant temperature (default)
    assert_png(ax.figure, tmp_path / "temperature.png")


def test_compare_models_blocks(guide, tmp_path):
    run_block(GUIDE_COMPARE_MODELS_FITS, guide)
    plt.close("all")
    run_block(GUIDE_COMPARE_MODELS_PLOT, guide)
    ax = plt.gca()
    lines = ax.get_lines()
    assert len(lines) == 3
    for line, name in zip(lines, ["cebra_posdir_model", "cebra_pos_model", "cebra_dir_model"]):
        np.testing.assert_allclose(line.get_ydata(), guide[name].state_dict_["loss"].numpy())
        assert len(line.get_ydata()) == 5
    assert len({tuple(line.get_color()) for line in lines}) == 3  # cmap="cebra" colours
    assert [t.get_text() for t in ax.get_legend().get_texts()] == guide["labels"]
    assert_png(ax.figure, tmp_path / "compare.png")


def test_consistency_blocks(guide, tmp_path):
    run_block(GUIDE_CONSISTENCY_EMBEDDINGS, guide)
    assert [e.shape for e in guide["embeddings_runs"]] == [(5000, 32)] * 3
    run_block(GUIDE_CONSISTENCY_SCORE, guide)
    for name in ("scores_runs", "scores_datasets"):
        scores = guide[name]
        assert np.all(np.isfinite(scores)) and np.all(scores <= 1.0)
    np.testing.assert_array_equal(guide["ids_datasets"], ["session1", "session2"])
    # The guide labels the second panel with ids_runs although its pairs name the
    # sessions: the plot uses the ids of the pairs instead and warns.
    run_block(GUIDE_IMPORT_PYPLOT, guide)  # `plt` as imported earlier in the guide
    with pytest.warns(UserWarning, match="not all in datasets"):
        run_block(GUIDE_CONSISTENCY_PLOT, guide)
    ax1, ax2 = guide["ax1"], guide["ax2"]
    assert ax1.get_title() == "Between-runs consistencies"
    assert [t.get_text() for t in ax2.get_yticklabels()] == ["session1", "session2"]
    matrix = np.ma.filled(ax1.images[0].get_array(), np.nan)
    assert matrix.shape == (3, 3) and np.all(np.isnan(np.diag(matrix)))
    # Scores are drawn in percent.
    off_diagonal = matrix[~np.eye(3, dtype=bool)]
    assert np.nanmax(np.abs(off_diagonal)) > 1.0 or np.allclose(guide["scores_runs"], 0)
    assert_png(guide["fig"], tmp_path / "consistency.png")


def test_infonce_blocks(guide):
    run_block(GUIDE_INFONCE, guide)
    single_score, multi_score = guide["single_score"], guide["multi_score"]
    # Random data and 10 training steps: both losses sit near chance, log(512).
    assert abs(single_score - np.log(512)) < 0.5
    assert abs(multi_score - np.log(512)) < 0.5
    # Deterministic (seeded) evaluation.
    assert cebra.sklearn.metrics.infonce_loss(
        guide["multi_cebra_model"], guide["neural_session1"], guide["continuous_label1"],
        session_id=0, num_batches=5) == multi_score


@pytest.mark.slow
def test_adapt_block(guide):
    """The adapt example follows the consistency example (its ``cebra_model``, with the
    default max_adapt_iterations=500)."""
    run_block(GUIDE_CONSISTENCY_EMBEDDINGS, guide)
    model = guide["cebra_model"]
    run_block(GUIDE_ADAPT, guide)
    assert guide["single_cebra_model"].n_features_in_ == 50
    assert guide["single_cebra_model"].label_kind_ == "time"
    assert model.n_features_in_ == 30
    assert len(model.state_dict_["loss"]) == 500
    assert model.transform(guide["neural_session2"]).shape == (3000, 32)


@pytest.mark.slow  # CEBRA-Time with batch_size=None (full batch)
def test_decoding_time_block(guide):
    run_block(GUIDE_DECODING_TIME, guide)
    assert guide["embedding"].shape == (5000, 8)
    prediction = guide["prediction"]
    assert prediction.shape == (1500,)
    assert np.issubdtype(prediction.dtype, np.integer)
    assert set(np.unique(prediction)) <= set(range(10))
    assert 0.0 <= guide["score"] <= 1.0
    assert guide["score"] == pytest.approx(np.mean(prediction == guide["valid_discrete_label"]))


def test_decoding_behavior_block(guide):
    run_block(GUIDE_DECODING_BEHAVIOR, guide)
    assert guide["train_embedding"].shape == (4000, 8)
    assert guide["valid_embedding"].shape == (1000, 8)
    assert 0.0 <= guide["score"] <= 1.0


# --------------------------------------------------------------------------------------
# Real embeddings of a known latent
# --------------------------------------------------------------------------------------

def _track(n: int, neurons: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy place cells on a linear track run back and forth.

    Returns neural ``(n, neurons)`` and position ``(n,)`` in [0, 1].
    """
    rng = np.random.default_rng(seed)
    position = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / 400)
    centers = rng.uniform(0, 1, neurons)
    rates = np.exp(-(position[:, None] - centers) ** 2 / (2 * 0.08 ** 2))
    neural = rates + 0.2 * rng.normal(size=rates.shape)
    return neural.astype(np.float32), position.astype(np.float32)


def _model(**kwargs) -> cebra.CEBRA:
    params = dict(batch_size=256, max_iterations=60, output_dimension=3, learning_rate=3e-3,
                  device="cpu", random_state=0)
    params.update(kwargs)
    return cebra.CEBRA(**params)


@pytest.fixture(scope="module")
def track() -> dict:
    neural, position = _track(2500, 30, seed=0)
    split = 2000
    # Unsupervised (CEBRA-Time) on the training part only: the decoder is tested on
    # data the encoder never saw.
    time_model = _model(time_offsets=10).fit(neural[:split])
    return {"neural": neural, "position": position, "split": split, "time_model": time_model,
            "train": time_model.transform(neural[:split]),
            "valid": time_model.transform(neural[split:])}


def test_knn_decodes_position_from_cebra_time_embedding(track):
    position, split = track["position"], track["split"]
    y_train, y_valid = position[:split], position[split:]
    decoder = cebra.KNNDecoder(n_neighbors=10).fit(track["train"], y_train)
    score = decoder.score(track["valid"], y_valid)
    shuffled = np.random.default_rng(1).permutation(y_train)
    chance = cebra.KNNDecoder(n_neighbors=10).fit(track["train"], shuffled).score(
        track["valid"], y_valid)
    assert score > 0.8
    assert score > chance + 0.6
    error = np.abs(decoder.predict(track["valid"]) - y_valid)
    assert np.median(error) < 0.1  # in track lengths


def test_knn_classifies_track_segment_from_cebra_time_embedding(track):
    position, split = track["position"], track["split"]
    segment = np.minimum((position * 4).astype(int), 3)  # 4 classes, chance ~ 0.25
    decoder = cebra.KNNDecoder(n_neighbors=10).fit(track["train"], segment[:split])
    assert decoder.is_classifier_
    accuracy = decoder.score(track["valid"], segment[split:])
    assert accuracy > 0.25 + 0.4


def test_l1_decoder_on_cebra_embedding(track):
    position, split = track["position"], track["split"]
    decoder = cebra.L1LinearRegressor(alpha=1e-3).fit(track["train"], position[:split])
    score = decoder.score(track["valid"], position[split:])
    chance = cebra.L1LinearRegressor(alpha=1e-3).fit(
        track["train"], np.random.default_rng(2).permutation(position[:split])).score(
            track["valid"], position[split:])
    assert score > chance + 0.3


def test_consistency_of_real_runs_and_plot(track, tmp_path):
    neural, position = track["neural"], track["position"]
    runs = [track["time_model"].transform(neural),
            _model(time_offsets=10, random_state=1).fit(neural[:track["split"]]).transform(neural)]
    scores, pairs, ids = cebra.sklearn.metrics.consistency_score(runs, between="runs")
    assert np.all(scores > 0.7)
    unrelated = np.random.default_rng(3).normal(size=runs[0].shape)
    low, _, _ = cebra.sklearn.metrics.consistency_score([runs[0], unrelated], between="runs")
    assert np.all(low < 0.1)
    # Aligned on position, a second recording of the same track is consistent too.
    neural2, position2 = _track(2000, 25, seed=5)
    other = _model(time_offsets=10, random_state=2).fit(neural2).transform(neural2)
    between, _, dataset_ids = cebra.sklearn.metrics.consistency_score(
        [runs[0], other], between="datasets", labels=[position, position2],
        dataset_ids=["rat1", "rat2"], num_discretization_bins=20)
    assert np.all(between > 0.7)

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4))
    cebra.plot_consistency(scores, pairs, ids, vmin=0, vmax=100, ax=left)
    cebra.plot_consistency(between, [["rat1", "rat2"], ["rat2", "rat1"]], dataset_ids,
                           vmin=0, vmax=100, ax=right)
    assert_png(fig, tmp_path / "consistency.png")


def test_plots_of_real_models(track, tmp_path):
    neural, position, split = track["neural"], track["position"], track["split"]
    ax = cebra.plot_embedding(track["valid"], embedding_labels=position[split:], cmap="cebra")
    assert_png(ax.figure, tmp_path / "embedding.png")

    learned = _model(temperature_mode="auto", temperature=1.0, min_temperature=0.1,
                     max_iterations=30, learning_rate=1e-2).fit(neural[:split], position[:split])
    ax = cebra.plot_temperature(learned)
    temperature = ax.get_lines()[0].get_ydata()
    assert len(temperature) == 30 and np.ptp(temperature) > 0  # learned: it moves
    assert np.all(temperature >= 0.1 - 1e-6)
    assert_png(ax.figure, tmp_path / "temperature.png")

    ax = cebra.plot_loss(track["time_model"], label="time")
    loss = ax.get_lines()[0].get_ydata()
    assert loss[-10:].mean() < loss[:10].mean()  # trained on a real latent: it learns
    assert_png(ax.figure, tmp_path / "loss.png")

    ax = cebra.compare_models([track["time_model"], learned], ["time", "behaviour"])
    assert [len(line.get_ydata()) for line in ax.get_lines()] == [60, 30]
    assert_png(ax.figure, tmp_path / "compare.png")
