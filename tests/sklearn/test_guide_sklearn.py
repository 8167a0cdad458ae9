"""The scikit-learn API examples of the CEBRA usage guide, run verbatim.

Each ``GUIDE_*`` string is copied character for character from
``shared/spec/cebra-usage-guide.txt``. Only the import lines are rewritten
(``import cebra`` -> ``import cebra_pipe as cebra`` and so on, see
:func:`_adapt_imports`); the rest of every block runs unchanged, in order, in one
namespace, as a reader of the guide would run it in a notebook.

The default run covers every block except the ones that train full-batch on 5000
samples or adapt for the default 500 steps; :func:`test_guide_sklearn_walkthrough`
(marked slow) runs all of them in the guide's order. The ``infonce_loss`` block is in
:func:`test_guide_metric_blocks`; ``goodness_of_fit_score`` is step 7 of the quick
start (:func:`test_guide_quick_start`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt

# --------------------------------------------------------------------------------------
# Guide blocks (verbatim)
# --------------------------------------------------------------------------------------

GUIDE_WORKSPACE = '''\
# Create a .npz file
import numpy as np

X = np.random.normal(0,1,(100,3))
X_new = np.random.normal(0,1,(100,4))
np.savez("neural_data", neural = X, new_neural = X_new)

# Create a .h5 file, containing a pd.DataFrame
import pandas as pd

X_continuous = np.random.normal(0,1,(100,3))
X_discrete = np.random.randint(0,10,(100, ))
df = pd.DataFrame(np.array(X_continuous), columns=["continuous1", "continuous2", "continuous3"])
df["discrete"] = X_discrete
df.to_hdf("auxiliary_behavior_data.h5", key="auxiliary_variables")
'''

GUIDE_IMPORT = '''\
import cebra
from cebra import CEBRA
'''

GUIDE_LOAD = '''\
import cebra

# Load the .npz
neural_data = cebra.load_data(file="neural_data.npz", key="neural")

# ... and similarly load the .h5 file, providing the columns to keep
continuous_label = cebra.load_data(file="auxiliary_behavior_data.h5", key="auxiliary_variables", columns=["continuous1", "continuous2", "continuous3"])
discrete_label = cebra.load_data(file="auxiliary_behavior_data.h5", key="auxiliary_variables", columns=["discrete"]).flatten()
'''

GUIDE_GET_OPTIONS = '''\
import cebra.models
print(cebra.models.get_options('offset*', limit = 4))
'''

GUIDE_CUSTOM_MODEL = '''\
from torch import nn
import cebra.models
import cebra.data
from cebra.models.model import _OffsetModel, ConvolutionalModelMixin

@cebra.models.register("my-model") # --> add that line to register the model!
class MyModel(_OffsetModel, ConvolutionalModelMixin):

    def __init__(self, num_neurons, num_units, num_output, normalize=True):
        super().__init__(
            nn.Conv1d(num_neurons, num_units, 2),
            nn.GELU(),
            nn.Conv1d(num_units, num_units, 40),
            nn.GELU(),
            nn.Conv1d(num_units, num_output, 5),
            num_input=num_neurons,
            num_output=num_output,
            normalize=normalize,
        )

    # ... and you can also redefine the forward method,
    # as you would for a typical pytorch model

    def get_offset(self):
        return cebra.data.Offset(22, 23)

# Access the model
print(cebra.models.get_options('my-model'))
'''

GUIDE_MODEL_DEFINITION = '''\
cebra_model = CEBRA(
    model_architecture = "offset10-model",
    batch_size = 1024,
    learning_rate = 0.001,
    max_iterations = 10,
    time_offsets = 10,
    output_dimension = 8,
    device = "cuda_if_available",
    verbose = False
)

print(cebra_model)
'''

GUIDE_MODEL_DEFINITION_OUTPUT = '''\
CEBRA(batch_size=1024, learning_rate=0.001, max_iterations=10,
      model_architecture='offset10-model', time_offsets=10)
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

GUIDE_PARTIAL_FIT = '''\
cebra_model = cebra.CEBRA(max_iterations=10)

# The model is fitted a first time ...
cebra_model.partial_fit(neural_data)

# ... later on the model can be fitted again
cebra_model.partial_fit(neural_data)
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

GUIDE_TRANSFORM_SINGLE = '''\
embedding = single_cebra_model.transform(neural_data)
assert(embedding.shape == (timesteps, out_dim))
'''

GUIDE_TRANSFORM_MULTI = '''\
embedding = multi_cebra_model.transform(neural_session1, session_id=0)
assert(embedding.shape == (timesteps1, out_dim))
'''

GUIDE_PLOT_EMBEDDING = [
    "cebra.plot_embedding(embedding)\n",
    'cebra.plot_embedding(embedding, embedding_labels="darkorchid")\n',
    ('cebra.plot_embedding(embedding, embedding_labels="time", cmap="magma", markersize=5, '
     'alpha=0.5)\n'),
    "cebra.plot_embedding(embedding, embedding_labels=continuous_label[:, 0])\n",
    '''\
import matplotlib.pyplot as plt
fig = plt.figure(figsize=(10,5))
ax1 = fig.add_subplot(121, projection="3d")
ax2 = fig.add_subplot(122, projection="3d")

ax1 = cebra.plot_embedding(embedding, embedding_labels=continuous_label[:,0], idx_order=(1,2,3), title="Latents: (1,2,3)", ax=ax1)
ax2 = cebra.plot_embedding(embedding, embedding_labels=continuous_label[:,0], idx_order=(4,5,6), title="Latents: (4,5,6)", ax=ax2)
''',
    'cebra.plot_embedding(embedding, idx_order=(0,1), title="2D Embedding")\n',
]

GUIDE_PLOT_LOSS = "cebra.plot_loss(cebra_model)\n"
GUIDE_PLOT_TEMPERATURE = "cebra.plot_temperature(cebra_model)\n"

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

GUIDE_ADAPT = '''\
# Fit your model once ...
single_cebra_model.fit(neural_session1)

# ... do something with it (embedding, visualization, saving) ...

# ... and adapt the model
cebra_model.fit(neural_session2, adapt=True)
'''

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

GUIDE_QUICK_START = '''\
import cebra
from numpy.random import uniform, randint
from sklearn.model_selection import train_test_split
import os
import tempfile
from pathlib import Path

# 1. Define a CEBRA model
cebra_model = cebra.CEBRA(
   model_architecture = "offset10-model",
   batch_size = 512,
   learning_rate = 1e-4,
   temperature_mode='constant',
   temperature = 0.1,
   max_iterations = 10, # TODO(user): to change to ~500-10000 depending on dataset size
   #max_adapt_iterations = 10, # TODO(user): use and to change to ~100-500 if adapting
   time_offsets = 10,
   output_dimension = 8,
   verbose = False
)

# 2. Load example data
neural_data = cebra.load_data(file="neural_data.npz", key="neural")
new_neural_data = cebra.load_data(file="neural_data.npz", key="new_neural")
continuous_label = cebra.load_data(file="auxiliary_behavior_data.h5", key="auxiliary_variables", columns=["continuous1", "continuous2", "continuous3"])
discrete_label = cebra.load_data(file="auxiliary_behavior_data.h5", key="auxiliary_variables", columns=["discrete"]).flatten()


assert neural_data.shape == (100, 3)
assert new_neural_data.shape == (100, 4)
assert discrete_label.shape == (100, )
assert continuous_label.shape == (100, 3)

# 3. Split data and labels into train/validation
from sklearn.model_selection import train_test_split

split_idx = int(0.8 * len(neural_data))
# suggestion: 5%-20% depending on your dataset size; note that this splits the
# into an early and late part, which might not be ideal for your data/experiment!
# As a more involved alternative, consider e.g. a nested time-series split.

train_data = neural_data[:split_idx]
valid_data = neural_data[split_idx:]

train_continuous_label = continuous_label[:split_idx]
valid_continuous_label = continuous_label[split_idx:]

train_discrete_label = discrete_label[:split_idx]
valid_discrete_label = discrete_label[split_idx:]

# 4. Fit the model
# time contrastive learning
cebra_model.fit(train_data)
# discrete behavior contrastive learning
cebra_model.fit(train_data, train_discrete_label)
# continuous behavior contrastive learning
cebra_model.fit(train_data, train_continuous_label)
# mixed behavior contrastive learning
cebra_model.fit(train_data, train_discrete_label, train_continuous_label)


# 5. Save the model
tmp_file = Path(tempfile.gettempdir(), 'cebra.pt')
cebra_model.save(tmp_file)

# 6. Load the model and compute an embedding
cebra_model = cebra.CEBRA.load(tmp_file)
train_embedding = cebra_model.transform(train_data)
valid_embedding = cebra_model.transform(valid_data)

assert train_embedding.shape == (80, 8) # TODO(user): change to split ratio & output dim
assert valid_embedding.shape == (20, 8) # TODO(user): change to split ratio & output dim

# 7. Evaluate the model performance (you can also check the train_data)
goodness_of_fit = cebra.sklearn.metrics.goodness_of_fit_score(cebra_model,
                                                     valid_data,
                                                     valid_discrete_label,
                                                     valid_continuous_label)

# 8. Adapt the model to a new session
cebra_model.fit(new_neural_data, adapt = True)

# 9. Decode discrete labels behavior from the embedding
decoder = cebra.KNNDecoder()
decoder.fit(train_embedding, train_discrete_label)
prediction = decoder.predict(valid_embedding)
assert prediction.shape == (20,)
'''

# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

_IMPORTS = [
    # (pattern on a whole line, replacement)
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
    adapted = "\n".join(lines) + "\n"
    assert "cebra_pipe" not in code
    return adapted


def run_block(code: str, namespace: dict) -> dict:
    """Execute one guide block in ``namespace`` (shared between blocks)."""
    exec(compile(_adapt_imports(code), "<usage-guide>", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models on a shared, busy CPU: one intra-op thread is ~40x faster than
    oversubscribed threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A fresh directory holding the guide's example files, and a namespace.

    ``tempfile.gettempdir()`` (used by the guide's save/load blocks) is pointed into
    the same directory so that tests do not write to the shared /tmp.
    """
    import tempfile

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    np.random.seed(0)
    namespace: dict = {"__name__": "__guide__"}
    run_block(GUIDE_WORKSPACE, namespace)
    yield namespace
    plt.close("all")


def _single_and_multi_session(ns: dict) -> None:
    """The guide's single-session and multi-session training blocks."""
    run_block(GUIDE_IMPORT, ns)
    run_block(GUIDE_SINGLE_SESSION_SETUP, ns)
    for block in GUIDE_SINGLE_SESSION_FITS:
        run_block(block, ns)
    run_block(GUIDE_MULTI_SESSION_CONTINUOUS, ns)
    run_block(GUIDE_MULTI_SESSION_CONTINUOUS_FIT, ns)
    run_block(GUIDE_MULTI_SESSION_DISCRETE, ns)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, _one_torch_thread):
    """The namespace after the guide's workspace, loading, single- and multi-session
    training blocks (run once for the module; each test gets a shallow copy)."""
    import tempfile

    directory = tmp_path_factory.mktemp("guide")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        patch.setattr(tempfile, "tempdir", str(directory))
        np.random.seed(1)
        ns: dict = {"__name__": "__guide__"}
        run_block(GUIDE_WORKSPACE, ns)
        run_block(GUIDE_LOAD, ns)
        _single_and_multi_session(ns)
    return ns


@pytest.fixture
def guide(trained, tmp_path, monkeypatch):
    """A copy of :func:`trained`'s namespace, run from a fresh directory."""
    import tempfile

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    np.random.seed(2)
    yield dict(trained)
    plt.close("all")


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


def test_adapt_imports_only_touches_imports():
    assert _adapt_imports("import cebra\n") == "import cebra_pipe as cebra\n"
    assert _adapt_imports("import cebra.models\n") == "import cebra_pipe as cebra\n"
    assert _adapt_imports("from cebra import CEBRA\n") == "from cebra_pipe import CEBRA\n"
    assert (_adapt_imports("from cebra.models.model import _OffsetModel\n")
            == "from cebra_pipe.models.model import _OffsetModel\n")
    assert _adapt_imports("x = cebra.CEBRA()\n") == "x = cebra.CEBRA()\n"


_SPEC = Path(os.environ.get("CEBRA_USAGE_GUIDE", "/work/shared/spec/cebra-usage-guide.txt"))


@pytest.mark.skipif(not _SPEC.is_file(), reason=f"usage guide not found at {_SPEC}")
def test_guide_blocks_are_verbatim():
    """Every block above is a character-for-character excerpt of the guide."""
    spec = _SPEC.read_text(encoding="utf-8")
    blocks = {name: value for name, value in globals().items() if name.startswith("GUIDE_")}
    assert len(blocks) > 20
    for name, value in blocks.items():
        for block in value if isinstance(value, list) else [value]:
            assert block.strip() in spec, f"{name} is not verbatim from the guide"


def test_guide_workspace_and_data_loading(workspace):
    ns = run_block(GUIDE_LOAD, workspace)
    run_block(GUIDE_IMPORT, ns)
    assert ns["neural_data"].shape == (100, 3)
    np.testing.assert_allclose(ns["neural_data"], ns["X"])
    assert ns["continuous_label"].shape == (100, 3)
    assert ns["discrete_label"].shape == (100,)
    assert np.issubdtype(ns["discrete_label"].dtype, np.integer)
    np.testing.assert_array_equal(ns["discrete_label"], ns["X_discrete"])
    # The loaded arrays are directly usable as CEBRA inputs.
    model = ns["CEBRA"](max_iterations=2, batch_size=32, device="cpu")
    model.fit(ns["neural_data"], ns["continuous_label"], ns["discrete_label"])
    assert model.transform(ns["neural_data"]).shape == (100, 8)


def test_guide_model_definition_print(workspace, capsys):
    ns = run_block(GUIDE_IMPORT, workspace)
    capsys.readouterr()
    run_block(GUIDE_MODEL_DEFINITION, ns)
    assert capsys.readouterr().out == GUIDE_MODEL_DEFINITION_OUTPUT


def test_guide_get_options_and_custom_model(workspace, capsys):
    ns = run_block(GUIDE_IMPORT, workspace)
    capsys.readouterr()
    run_block(GUIDE_GET_OPTIONS, ns)
    listed = eval(capsys.readouterr().out)  # a printed list of names
    assert len(listed) == 4 and all(name.startswith("offset") for name in listed)
    import cebra_pipe.models

    if not cebra_pipe.models.is_registered("my-model"):
        run_block(GUIDE_CUSTOM_MODEL, ns)
        assert capsys.readouterr().out == "['my-model']\n"
    # model_architecture='my-model' trains and embeds with the custom receptive field.
    model = ns["CEBRA"](model_architecture="my-model", max_iterations=2, batch_size=16,
                        device="cpu", random_state=0)
    data = np.random.default_rng(0).normal(size=(120, 5))
    assert model.fit_transform(data).shape == (120, 8)
    assert (model.offset_.left, model.offset_.right) == (22, 23)


def test_guide_single_and_multi_session_training(guide):
    ns = guide
    assert ns["single_cebra_model"].label_kind_ == "mixed"  # the last single-session fit
    assert ns["single_cebra_model"].n_features_in_ == 50
    assert ns["multi_cebra_model"].num_sessions_ == 2
    assert ns["multi_cebra_model"].n_features_in_ == [50, 30]
    assert ns["multi_cebra_model"].label_kind_ == "continuous"
    assert ns["multi_cebra_model_discrete"].label_kind_ == "discrete"
    run_block(GUIDE_TRANSFORM_SINGLE, ns)
    run_block(GUIDE_TRANSFORM_MULTI, ns)
    # Each single-session mode of the guide, once more, one fit per block.
    for block, kind in zip(GUIDE_SINGLE_SESSION_FITS, ["time", "discrete", "continuous",
                                                       "mixed"]):
        run_block(block, ns)
        assert ns["single_cebra_model"].label_kind_ == kind
        run_block(GUIDE_TRANSFORM_SINGLE, ns)


def test_guide_embedding_plots(guide):
    ns = guide
    run_block(GUIDE_TRANSFORM_MULTI, ns)
    for block in GUIDE_PLOT_EMBEDDING:
        run_block(block, ns)
    assert ns["ax2"].get_title() == "Latents: (4,5,6)"


def test_guide_compare_models_and_consistency(guide):
    ns = guide
    run_block(GUIDE_COMPARE_MODELS_FITS, ns)
    run_block(GUIDE_COMPARE_MODELS_PLOT, ns)
    run_block(GUIDE_CONSISTENCY_EMBEDDINGS, ns)
    run_block(GUIDE_CONSISTENCY_SCORE, ns)
    ns["plt"] = plt  # imported by the guide's earlier plotting block
    run_block(GUIDE_CONSISTENCY_PLOT, ns)
    assert all(e.shape == (5000, 32) for e in ns["embeddings_runs"])
    assert ns["embeddings_datasets"][1].shape == (3000, 32)


def test_guide_decoding_with_cebra_behavior(guide):
    ns = guide
    run_block(GUIDE_DECODING_BEHAVIOR, ns)
    assert ns["train_embedding"].shape == (4000, 8)
    assert ns["valid_embedding"].shape == (1000, 8)
    assert 0 <= ns["score"] <= 1


def test_guide_metric_blocks(guide):
    """The blocks calling ``cebra.sklearn.metrics.infonce_loss`` (the quick start's
    ``goodness_of_fit_score`` runs in :func:`test_guide_quick_start`)."""
    ns = guide
    run_block(GUIDE_INFONCE, ns)
    assert np.isfinite(ns["single_score"]) and np.isfinite(ns["multi_score"])
    assert 0 < ns["single_score"] < 10 and 0 < ns["multi_score"] < 10


def test_guide_quick_start(workspace):
    """The "Quick Start: Scikit-learn API example", verbatim. It fits 80 samples with
    batch_size=512, which warns (and trains)."""
    with pytest.warns(UserWarning, match="batch_size=512 is larger than the data"):
        ns = run_block(GUIDE_QUICK_START, workspace)
    assert np.isfinite(ns["goodness_of_fit"])
    assert ns["cebra_model"].n_features_in_ == 4  # adapted to new_neural_data
    assert ns["cebra_model"].transform(ns["new_neural_data"]).shape == (100, 8)
    assert len(ns["cebra_model"].state_dict_["loss"]) == 500  # default max_adapt_iterations


@pytest.mark.slow
def test_guide_sklearn_walkthrough(workspace, capsys):
    """Every sklearn-API block of the guide, in the guide's order, in one namespace.

    The partial-training, saving/loading, adapting and CEBRA-Time decoding blocks train
    full-batch on 5000 samples or adapt for the default 500 steps: this is the slow part.
    """
    ns = run_block(GUIDE_LOAD, workspace)
    run_block(GUIDE_IMPORT, ns)
    run_block(GUIDE_MODEL_DEFINITION, ns)
    assert capsys.readouterr().out == GUIDE_MODEL_DEFINITION_OUTPUT

    _single_and_multi_session(ns)

    run_block(GUIDE_PARTIAL_FIT, ns)
    assert len(ns["cebra_model"].state_dict_["loss"]) == 20  # two calls of 10 steps

    run_block(GUIDE_SAVE_LOAD, ns)
    np.testing.assert_array_equal(ns["embedding"],
                                  ns["cebra_model"].transform(ns["neural_data"]))

    run_block(GUIDE_TRANSFORM_SINGLE, ns)
    run_block(GUIDE_TRANSFORM_MULTI, ns)

    for block in GUIDE_PLOT_EMBEDDING:
        run_block(block, ns)
    run_block(GUIDE_PLOT_LOSS, ns)
    run_block(GUIDE_PLOT_TEMPERATURE, ns)
    plt.close("all")

    run_block(GUIDE_COMPARE_MODELS_FITS, ns)
    run_block(GUIDE_COMPARE_MODELS_PLOT, ns)
    plt.close("all")

    run_block(GUIDE_CONSISTENCY_EMBEDDINGS, ns)
    run_block(GUIDE_CONSISTENCY_SCORE, ns)
    run_block(GUIDE_CONSISTENCY_PLOT, ns)
    plt.close("all")

    run_block(GUIDE_INFONCE, ns)

    adapted = ns["cebra_model"]
    run_block(GUIDE_ADAPT, ns)
    assert adapted.n_features_in_ == 30
    assert adapted.transform(ns["neural_session2"]).shape == (3000, 32)

    run_block(GUIDE_DECODING_TIME, ns)
    assert ns["prediction"].shape == (1500,)
    run_block(GUIDE_DECODING_BEHAVIOR, ns)
    assert 0 <= ns["score"] <= 1
