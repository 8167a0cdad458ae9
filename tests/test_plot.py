"""Tests of ``cebra_pipe.plot``: every figure renders to a real PNG."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

import cebra_pipe as cebra  # noqa: E402
from cebra_pipe import plot as cebra_plot  # noqa: E402


class FittedModel:
    """Stand-in for a fitted estimator: only the ``state_dict_`` the plots read."""

    def __init__(self, steps: int = 60, seed: int = 0, tensors: bool = False) -> None:
        rng = np.random.default_rng(seed)
        pos = 1.0 / (1.0 + np.arange(steps)) + 0.01 * rng.normal(size=steps)
        neg = 5.0 + 0.01 * rng.normal(size=steps)
        total = pos + neg
        temperature = np.linspace(1.0, 0.3, steps)
        loss = torch.tensor(total) if tensors else total
        log_total = [torch.tensor(v) for v in total] if tensors else list(total)
        self.state_dict_ = {
            "loss": loss,
            "log": {"pos": list(pos), "neg": list(neg), "total": log_total,
                    "temperature": list(temperature)},
        }


class UnfittedModel:
    """Stand-in for an estimator before ``fit``."""

    def fit(self, *args):
        raise NotImplementedError


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def embedding() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.linspace(0, 4 * np.pi, 300)
    return np.stack([np.cos(t), np.sin(t), t / 10, *rng.normal(size=(3, 300))], axis=1)


def assert_png(ax, path: Path) -> None:
    """Save the axes' figure and check the file is a non-empty, non-flat image."""
    ax.figure.savefig(path)
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 0 and image.size[1] > 0
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1, "image is a single flat colour"


# ---------------------------------------------------------------- colormap

def test_cebra_colormap_registered_and_idempotent():
    cmap = matplotlib.colormaps["cebra"]
    assert cmap.N == 256
    cebra_plot._register_cebra_colormap()
    importlib.reload(cebra_plot)
    assert "cebra" in matplotlib.colormaps


def test_cebra_colormap_is_smooth_and_brightens():
    rgb = matplotlib.colormaps["cebra"](np.linspace(0, 1, 256))[:, :3]
    assert np.max(np.abs(np.diff(rgb, axis=0))) < 0.03  # no jumps between neighbours
    luminance = rgb @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(luminance) > 0)


# ---------------------------------------------------------------- plot_embedding

def test_plot_embedding_default_is_3d(embedding, tmp_path):
    ax = cebra.plot_embedding(embedding)
    assert ax.name == "3d"
    assert ax.get_title() == "Embedding"
    np.testing.assert_allclose(np.asarray(ax.collections[0]._offsets3d[0]), embedding[:, 0])
    assert_png(ax, tmp_path / "embedding.png")


def test_plot_embedding_2d_embedding_switches_to_2d(embedding, tmp_path):
    ax = cebra.plot_embedding(embedding[:, :2], embedding_labels="darkorchid")
    assert ax.name == "rectilinear"
    np.testing.assert_allclose(ax.collections[0].get_offsets(), embedding[:, :2])
    np.testing.assert_allclose(ax.collections[0].get_facecolors()[0, :3],
                               matplotlib.colors.to_rgb("darkorchid"))
    assert_png(ax, tmp_path / "embedding2d.png")


def test_plot_embedding_rgb_tuple_colour(embedding):
    ax = cebra.plot_embedding(embedding, embedding_labels=(0.1, 0.2, 0.3), idx_order=(3, 4))
    np.testing.assert_allclose(ax.collections[0].get_facecolors()[0, :3], (0.1, 0.2, 0.3))
    assert ax.collections[0].get_array() is None  # a plain colour, not colormapped values


def test_plot_embedding_idx_order_2d(embedding, tmp_path):
    ax = cebra.plot_embedding(embedding, idx_order=(0, 1), title="2D Embedding")
    assert ax.name == "rectilinear" and ax.get_title() == "2D Embedding"
    assert_png(ax, tmp_path / "idx2d.png")


def test_plot_embedding_time_with_kwargs(embedding, tmp_path):
    ax = cebra.plot_embedding(embedding, embedding_labels="time", cmap="magma", markersize=5,
                              alpha=0.5, vmin=0, vmax=150)
    collection = ax.collections[0]
    np.testing.assert_array_equal(collection.get_array(), np.arange(len(embedding)))
    assert collection.get_cmap().name == "magma"
    assert collection.norm.vmax == 150
    assert collection.get_alpha() == 0.5
    assert_png(ax, tmp_path / "time.png")


def test_plot_embedding_label_array_cebra_cmap_and_tensor(embedding, tmp_path):
    labels = embedding[:, 2]
    ax = cebra.plot_embedding(torch.from_numpy(embedding), embedding_labels=torch.from_numpy(labels),
                              cmap="cebra", axis="on", figsize=(3, 3), dpi=50)
    assert ax.collections[0].get_cmap().name == "cebra"
    assert tuple(ax.figure.get_size_inches()) == (3, 3)
    assert_png(ax, tmp_path / "labels.png")


def test_guide_embedding_subplots(embedding, tmp_path):
    continuous_label = np.stack([embedding[:, 2], embedding[:, 0]], axis=1)
    embedding = np.concatenate([embedding, embedding[:, ::-1]], axis=1)  # 12 latents

    fig = plt.figure(figsize=(10,5))
    ax1 = fig.add_subplot(121, projection="3d")
    ax2 = fig.add_subplot(122, projection="3d")

    ax1 = cebra.plot_embedding(embedding, embedding_labels=continuous_label[:,0], idx_order=(1,2,3), title="Latents: (1,2,3)", ax=ax1)
    ax2 = cebra.plot_embedding(embedding, embedding_labels=continuous_label[:,0], idx_order=(4,5,6), title="Latents: (4,5,6)", ax=ax2)

    assert ax1.figure is fig and ax2.figure is fig
    assert ax2.get_title() == "Latents: (4,5,6)"
    np.testing.assert_allclose(np.asarray(ax2.collections[0]._offsets3d[0]), embedding[:, 4])
    assert_png(ax1, tmp_path / "subplots.png")


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [("notacolour", ValueError, "neither a matplotlib colour nor 'time'"),
     (np.zeros(10), ValueError, "10 values but the embedding has 300"),
     (np.zeros((300, 2)), ValueError, "must be 1-D"),
     # a column too, as the guide and the reference say (NotImplementedError there)
     (np.zeros((300, 1)), NotImplementedError, r"Invalid embedding_labels: must be 1-D .*"
                                               r"embedding_labels\[:, 0\]"),
     (np.array(["a"] * 300), TypeError, "numeric")])
def test_plot_embedding_bad_labels(embedding, labels, error, match):
    with pytest.raises(error, match=match):
        cebra.plot_embedding(embedding, embedding_labels=labels)


@pytest.mark.parametrize(
    ("idx_order", "error", "match"),
    [((0, 1, 6), ValueError, "out of range"),
     ((0,), ValueError, "2 or 3"),
     ((0, 1, 2, 3), ValueError, "2 or 3"),
     ((0, 1.5), TypeError, "integers")])
def test_plot_embedding_bad_idx_order(embedding, idx_order, error, match):
    with pytest.raises(error, match=match):
        cebra.plot_embedding(embedding, idx_order=idx_order)


def test_plot_embedding_bad_embedding(embedding):
    with pytest.raises(ValueError, match="2-D"):
        cebra.plot_embedding(embedding[:, 0])
    with pytest.raises(ValueError, match="at least 2 dims"):
        cebra.plot_embedding(embedding[:, :1])


def test_plot_embedding_3d_on_2d_axes(embedding):
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="projection='3d'"):
        cebra.plot_embedding(embedding, ax=ax)


# ---------------------------------------------------------------- plot_embedding_interactive

def test_plot_embedding_interactive_3d(embedding, tmp_path):
    import plotly.graph_objects as go

    figure = cebra.plot_embedding_interactive(embedding, embedding_labels="time",
                                              cmap="cebra", hovertext="t")
    assert isinstance(figure, go.Figure)
    trace = figure.data[0]
    assert trace.type == "scatter3d"
    np.testing.assert_allclose(trace.x, embedding[:, 0])
    np.testing.assert_array_equal(trace.marker.color, np.arange(len(embedding)))
    assert trace.hovertext == "t"
    assert figure.layout.width == 500
    path = tmp_path / "interactive.html"
    figure.write_html(path)
    assert "scatter3d" in path.read_text()


def test_plot_embedding_interactive_2d_colour(embedding):
    figure = cebra.plot_embedding_interactive(embedding, embedding_labels="red",
                                              idx_order=(2, 0))
    trace = figure.data[0]
    assert trace.type == "scatter"
    np.testing.assert_allclose(trace.y, embedding[:, 0])
    assert trace.marker.color == "#ff0000"


def test_plot_embedding_interactive_bad_labels(embedding):
    with pytest.raises(ValueError, match="10 values"):
        cebra.plot_embedding_interactive(embedding, embedding_labels=np.zeros(10))


def test_plot_embedding_interactive_without_plotly(embedding, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(ImportError, match=r"pip install cebra_pipe\[interactive\]"):
        cebra.plot_embedding_interactive(embedding)


# ---------------------------------------------------------------- training curves

def test_plot_loss(tmp_path):
    model = FittedModel(tensors=True)
    ax = cebra.plot_loss(model, label="model", linestyle="--")
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_ydata(), model.state_dict_["loss"].numpy())
    assert line.get_color() == "magenta" and line.get_linestyle() == "--"
    assert ax.get_xlabel() == "Steps" and ax.get_ylabel() == "Loss"
    assert ax.get_legend() is not None
    assert_png(ax, tmp_path / "loss.png")


def test_plot_loss_on_given_axes_without_labels(tmp_path):
    _, ax = plt.subplots()
    out = cebra.plot_loss(FittedModel(), ax=ax, x_label=False, y_label=False, color="k")
    assert out is ax
    assert ax.get_xlabel() == "" and ax.get_legend() is None
    assert_png(ax, tmp_path / "loss_ax.png")


def test_plot_temperature(tmp_path):
    model = FittedModel()
    ax = cebra.plot_temperature(model, alpha=0.7)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), model.state_dict_["log"]["temperature"])
    assert ax.lines[0].get_alpha() == 0.7
    assert ax.get_ylabel() == "Temperature"
    assert_png(ax, tmp_path / "temperature.png")


def test_compare_models(tmp_path):
    models = [FittedModel(seed=i, steps=40 + 10 * i) for i in range(3)]
    labels = ["position+direction", "position", "direction"]
    ax = cebra.compare_models(models, labels)
    assert [len(line.get_ydata()) for line in ax.lines] == [40, 50, 60]
    colours = [matplotlib.colors.to_hex(line.get_color()) for line in ax.lines]
    assert len(set(colours)) == 3
    assert colours[0] == matplotlib.colors.to_hex(matplotlib.colormaps["cebra"](0.0))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels
    assert_png(ax, tmp_path / "compare.png")


def test_compare_models_single_colour_overrides_cmap(tmp_path):
    ax = cebra.compare_models([FittedModel(), FittedModel(seed=1)], color="teal",
                              cmap="viridis", linewidth=3)
    assert {matplotlib.colors.to_hex(line.get_color()) for line in ax.lines} == {
        matplotlib.colors.to_hex("teal")}
    assert ax.lines[0].get_linewidth() == 3
    assert ax.get_legend() is None
    assert_png(ax, tmp_path / "compare_teal.png")


@pytest.mark.parametrize("function", [cebra.plot_loss, cebra.plot_temperature])
def test_curves_need_fitted_model(function):
    with pytest.raises(NotFittedError, match="not fitted"):
        function(UnfittedModel())


def test_curves_missing_entries():
    model = FittedModel()
    del model.state_dict_["log"]["temperature"]
    with pytest.raises(KeyError, match="temperature"):
        cebra.plot_temperature(model)
    del model.state_dict_["loss"]
    with pytest.raises(KeyError, match="'loss'"):
        cebra.plot_loss(model)


def test_curves_reject_2d_loss():
    model = FittedModel()
    model.state_dict_["loss"] = np.zeros((5, 2))
    with pytest.raises(ValueError, match="1-D"):
        cebra.plot_loss(model)


def test_compare_models_bad_input():
    with pytest.raises(NotFittedError, match=r"models\[1\]"):
        cebra.compare_models([FittedModel(), UnfittedModel()])
    with pytest.raises(ValueError, match="Invalid labels: 2 labels for 3 models"):
        cebra.compare_models([FittedModel()] * 3, ["a", "b"])
    # Not models, or labels that are not one str/number per model: TypeErrors, and the
    # ValueErrors (with the words) the reference raises.
    for models, labels, match in [
            (FittedModel(), None, "Invalid models: pass a list of fitted models, got a single"),
            ("test", None, "Invalid models: pass a list"),
            ([FittedModel(), "test"], None, r"Invalid models: models\[1\] is a str"),
            ([FittedModel()] * 2, "ab", "Invalid labels: pass a list of 2 labels"),
            ([FittedModel()] * 2, ["a", ["b"]], r"Invalid labels: labels\[1\] must be a str")]:
        with pytest.raises(TypeError, match=match) as error:
            cebra.compare_models(models, labels)
        assert isinstance(error.value, ValueError)
    with pytest.raises(ValueError, match="empty"):
        cebra.compare_models([])
    with pytest.raises(ValueError, match="not a registered matplotlib colormap"):
        cebra.compare_models([FittedModel()], cmap="no-such-cmap")


# ---------------------------------------------------------------- plot_consistency

def test_plot_consistency_matrix_in_percent(tmp_path):
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    pairs = np.array([(i, j) for i in range(3) for j in range(3) if i != j])
    ax = cebra.plot_consistency(scores, pairs, np.arange(3), title="Runs", vmin=0, vmax=100)
    image = ax.images[0]
    matrix = np.ma.filled(image.get_array(), np.nan)
    expected = np.array([[np.nan, 90, 80], [70, np.nan, 60], [50, 40, np.nan]])
    np.testing.assert_allclose(matrix, expected)
    assert image.norm.vmin == 0 and image.norm.vmax == 100
    assert image.get_cmap().name == "binary"
    annotations = sorted(t.get_text() for t in ax.texts)
    assert annotations == sorted(f"{v:.1f}" for v in scores * 100)
    assert all(t.get_color() == "white" for t in ax.texts)
    assert ax.get_title() == "Runs"
    assert ax.figure.axes[-1].get_ylabel() == "Consistency score (%)"
    assert_png(ax, tmp_path / "consistency.png")


def test_plot_consistency_auto_text_contrasts_with_each_cell():
    ax = cebra.plot_consistency([5.0, 95.0], [["s1", "s2"], ["s2", "s1"]], ["s1", "s2"],
                                cmap="viridis", vmin=0, vmax=100, text_color="auto")
    colors = {t.get_text(): t.get_color() for t in ax.texts}
    assert colors == {"5.0": "white", "95.0": "black"}  # dark purple / light yellow cells


def test_plot_consistency_string_ids_and_percent_input(tmp_path):
    ax = cebra.plot_consistency([95.0, 85.0], [["s1", "s2"], ["s2", "s1"]], ["s1", "s2"],
                                cmap="viridis", text_color="black", colorbar_label=None)
    matrix = np.ma.filled(ax.images[0].get_array(), np.nan)
    np.testing.assert_allclose(matrix, [[np.nan, 95], [85, np.nan]])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["s1", "s2"]
    assert len(ax.figure.axes) == 1  # no colorbar
    assert_png(ax, tmp_path / "consistency_ids.png")


def test_guide_consistency_plot_block(tmp_path):
    """The guide's consistency example end to end, with synthetic embeddings for the fits."""
    rng = np.random.default_rng(1)
    label = rng.uniform(size=800)
    latent = np.stack([np.cos(np.pi * label), np.sin(np.pi * label), label], axis=1)
    embeddings_runs = [latent + 0.05 * rng.normal(size=latent.shape) for _ in range(3)]
    label2 = rng.uniform(size=700)
    latent2 = np.stack([np.cos(np.pi * label2), np.sin(np.pi * label2), label2], axis=1)
    embeddings_datasets = [embeddings_runs[-1], latent2]
    labels = [label, label2]
    dataset_ids = ["session1", "session2"]

    scores_runs, pairs_runs, ids_runs = cebra.sklearn.metrics.consistency_score(
        embeddings=embeddings_runs, between="runs")
    scores_datasets, pairs_datasets, ids_datasets = cebra.sklearn.metrics.consistency_score(
        embeddings=embeddings_datasets, labels=labels, dataset_ids=dataset_ids,
        between="datasets", num_discretization_bins=20)

    fig = plt.figure(figsize=(10,4))

    ax1 = fig.add_subplot(121)
    ax2 = fig.add_subplot(122)

    ax1 = cebra.plot_consistency(scores_runs, pairs_runs, ids_runs, vmin=0, vmax=100, ax=ax1, title="Between-runs consistencies")
    # The guide passes ids_runs here although the pairs name the sessions: the plot
    # falls back to the ids in the pairs and warns.
    with pytest.warns(UserWarning, match="not all in datasets"):
        ax2 = cebra.plot_consistency(scores_datasets, pairs_datasets, ids_runs, vmin=0, vmax=100, ax=ax2, title="Between-subjects consistencies")

    assert np.ma.filled(ax1.images[0].get_array(), np.nan).shape == (3, 3)
    assert [t.get_text() for t in ax2.get_yticklabels()] == ["session1", "session2"]
    assert_png(ax1, tmp_path / "guide_consistency.png")


def test_plot_consistency_bad_input():
    pairs = np.array([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="Shape of the scores, datasets and pairs do not "
                                         r"match: pairs must have shape \(3, 2\)"):
        cebra.plot_consistency([0.5, 0.5, 0.5], pairs, [0, 1])
    for kwargs, missing in [({}, "pairs and datasets"), ({"pairs": pairs}, "datasets"),
                            ({"datasets": [0, 1]}, "pairs")]:
        with pytest.raises(ValueError, match=f"Missing datasets or pairs .missing here: "
                                             f"{missing}.: pass the three values"):
            cebra.plot_consistency([0.5, 0.5], **kwargs)
    with pytest.raises(ValueError, match="Invalid scores dimensions: scores must be 1-D"):
        cebra.plot_consistency(np.ones((2, 1)), pairs, [0, 1])
    with pytest.raises(ValueError, match="at least 2 ids"):
        cebra.plot_consistency([0.5, 0.5], pairs, [0])
    with pytest.raises(ValueError, match="with itself"):
        cebra.plot_consistency([0.5, 0.5], [[0, 0], [1, 0]], [0, 1])


# ---------------------------------------------------------------- overview / plot(which=)
def test_plot_overview_has_loss_temperature_and_embedding_panels(tmp_path):
    neural = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    model = cebra.CEBRA(max_iterations=5, batch_size=16, output_dimension=3, device="cpu",
                        random_state=0).fit(neural)
    fig, axes = cebra.plot_overview(model, neural)
    assert list(axes) == fig.get_axes() and len(axes) == 3
    assert len(axes[0].get_lines()[0].get_ydata()) == 5  # one loss point per step
    assert axes[2].name == "3d"
    assert_png(axes[0], tmp_path / "overview.png")


def test_plot_by_name_and_its_errors(embedding):
    model = FittedModel()
    assert len(cebra_plot.plot(model, which="temperature").get_lines()) == 1
    with pytest.raises(ValueError, match="which must be 'loss', 'temperature' or"):
        cebra_plot.plot(model, which="accuracy")
    with pytest.raises(ValueError, match="needs X"):
        cebra_plot.plot(model, which="embedding")
    with pytest.raises(NotFittedError, match="plot_overview"):
        cebra.plot_overview(UnfittedModel(), embedding)
