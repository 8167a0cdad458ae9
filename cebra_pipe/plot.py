"""Plots of embeddings, training curves and consistency scores.

Every matplotlib function returns the ``Axes`` it drew on and forwards extra keyword
arguments to the underlying matplotlib call (``scatter``, ``plot`` or ``imshow``), so
e.g. ``vmin``/``vmax`` or ``linestyle`` work as in matplotlib.

Importing this module registers the ``"cebra"`` colormap with matplotlib.

"model" arguments are fitted estimators exposing ``state_dict_``, a dict with
``"loss"`` (per-step total loss, 1-D) and ``"log"`` (dict with ``"pos"``, ``"neg"``,
``"total"``, ``"temperature"``, each a 1-D per-step sequence).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import matplotlib
import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes

from cebra_pipe.arrays import check_embedding, label_column, to_numpy

__all__ = [
    "CEBRA_COLORMAP",
    "compare_models",
    "plot_consistency",
    "plot_embedding",
    "plot_embedding_interactive",
    "plot_loss",
    "plot_overview",
    "plot_temperature",
    "plot",
    "PlotInputError",
]


class PlotInputError(TypeError, ValueError):
    """An argument of the wrong kind (a TypeError, and the ValueError the reference
    raises for it, so code catching either keeps working)."""

# --------------------------------------------------------------------------------------
# The "cebra" colormap
# --------------------------------------------------------------------------------------

# Deep indigo -> violet -> magenta -> coral -> amber -> pale yellow: hue turns smoothly
# while lightness rises monotonically, so the order of values reads in greyscale too.
_CEBRA_COLORS = ["#1d1147", "#47207e", "#7b2b96", "#b03a8f", "#de5378",
                 "#f5805c", "#f9b153", "#f6e27a"]
CEBRA_COLORMAP = matplotlib.colors.LinearSegmentedColormap.from_list(
    "cebra", _CEBRA_COLORS, N=256)


def _register_cebra_colormap() -> None:
    """Register ``"cebra"`` once; re-imports (e.g. module reloads) must not fail."""
    if "cebra" in matplotlib.colormaps:
        return
    try:
        matplotlib.colormaps.register(CEBRA_COLORMAP, name="cebra")
    except ValueError:
        # Registered concurrently in between: the name is taken, which is what we want.
        pass


_register_cebra_colormap()


def _get_cmap(cmap: str | matplotlib.colors.Colormap) -> matplotlib.colors.Colormap:
    if isinstance(cmap, matplotlib.colors.Colormap):
        return cmap
    try:
        return matplotlib.colormaps[cmap]
    except KeyError:
        raise ValueError(f"cmap {cmap!r} is not a registered matplotlib colormap.") from None


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------

def _new_axes(figsize: tuple[float, float], dpi: int, projection: str | None = None) -> Axes:
    fig = plt.figure(figsize=figsize, dpi=dpi)
    return fig.add_subplot(111, projection=projection)


def _check_idx_order(idx_order: Sequence[int] | None, n_dims: int) -> tuple[int, ...]:
    """Latents to plot: given ones, else the first 3 (or both of a 2-D embedding)."""
    if idx_order is None:
        if n_dims < 2:
            raise ValueError(
                f"embedding must have at least 2 dims to plot, got {n_dims}.")
        return (0, 1, 2) if n_dims >= 3 else (0, 1)
    order = tuple(idx_order)
    if len(order) not in (2, 3):
        raise ValueError(f"idx_order must have 2 or 3 latent indices, got {order}.")
    for index in order:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"idx_order must contain integers, got {order}.")
        if not -n_dims <= index < n_dims:
            raise ValueError(
                f"idx_order {order} is out of range for an embedding with {n_dims} dims.")
    return order


def _resolve_colors(embedding_labels: Any, n_samples: int) -> tuple[Any, bool]:
    """Interpret ``embedding_labels``.

    Returns
    -------
    colors : a single matplotlib colour, or (time,) values to map through a colormap
    mapped : whether ``colors`` are values for a colormap
    """
    if isinstance(embedding_labels, str):
        if embedding_labels == "time":
            return np.arange(n_samples), True
        if matplotlib.colors.is_color_like(embedding_labels):
            return embedding_labels, False
        raise ValueError(
            f"embedding_labels={embedding_labels!r} is neither a matplotlib colour nor "
            "'time'; pass a colour, 'time', or a 1-D array of len(embedding) values.")
    if isinstance(embedding_labels, tuple) and matplotlib.colors.is_color_like(embedding_labels):
        return embedding_labels, False
    return label_column(embedding_labels, "embedding_labels", n_samples), True


def _state_dict(model: Any, function: str) -> dict:
    """Return the fitted model's ``state_dict_`` or raise a clear error."""
    state = getattr(model, "state_dict_", None)
    if state is None:
        # Imported here: importing anything of sklearn loads all of sklearn.utils (scipy.stats,
        # pandas; over a CPU-second), which the pipeline's figure steps never need otherwise.
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(
            f"{function}: this {type(model).__name__} is not fitted yet (no state_dict_); "
            "call fit() before plotting its training curves.")
    if not isinstance(state, dict):
        raise TypeError(f"{function}: model.state_dict_ must be a dict, got {type(state).__name__}.")
    return state


def _as_curve(values: Any, name: str) -> np.ndarray:
    """Return a per-step curve as a (steps,) float array (accepts lists of tensors)."""
    if isinstance(values, (list, tuple)):
        # Training loops often log one 0-d tensor per step.
        values = [to_numpy(v) for v in values]
    else:
        values = to_numpy(values)
    try:
        curve = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a 1-D sequence of numbers: {error}") from None
    if curve.ndim != 1:
        raise ValueError(f"{name} must be 1-D (steps,), got shape {curve.shape}.")
    return curve


def _loss_curve(model: Any, function: str) -> np.ndarray:
    state = _state_dict(model, function)
    if "loss" not in state:
        raise KeyError(f"{function}: model.state_dict_ has no 'loss' entry.")
    return _as_curve(state["loss"], "state_dict_['loss']")


def _log_curve(model: Any, key: str, function: str) -> np.ndarray:
    state = _state_dict(model, function)
    log = state.get("log")
    if not isinstance(log, dict) or key not in log:
        raise KeyError(f"{function}: model.state_dict_['log'] has no {key!r} entry.")
    return _as_curve(log[key], f"state_dict_['log'][{key!r}]")


def _style_curve_axes(ax: Axes, x_label: bool, y_label: bool, y_text: str) -> None:
    if x_label:
        ax.set_xlabel("Steps")
    if y_label:
        ax.set_ylabel(y_text)
    # Training curves read better without the box.
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def _loss_name(model: Any) -> str:
    criterion = getattr(model, "criterion", None)
    return f"{criterion} loss" if isinstance(criterion, str) else "Loss"


# --------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------

def plot_embedding(
    embedding: npt.ArrayLike,
    embedding_labels: Any = "grey",
    ax: Axes | None = None,
    idx_order: Sequence[int] | None = None,
    markersize: float = 0.05,
    alpha: float = 0.4,
    cmap: str | matplotlib.colors.Colormap = "cool",
    title: str = "Embedding",
    axis: str = "off",
    figsize: tuple[float, float] = (5, 5),
    dpi: int = 100,
    **kwargs: Any,
) -> Axes:
    """Scatter plot of an embedding (3-D by default, 2-D for 2 latents).

    Parameters
    ----------
    embedding : (time, dims) array or tensor
    embedding_labels : a matplotlib colour, ``"time"``, or (time,) values mapped through ``cmap``
    ax : axes to draw on (``projection="3d"`` for a 3-D plot); a new figure if None
    idx_order : 2 or 3 latent indices to plot; default the first 3 (or (0, 1) for 2 dims)
    markersize : marker size (matplotlib ``s``)
    alpha : marker transparency
    cmap : colormap for ``"time"`` or value labels (``"cebra"`` is available)
    title : axes title
    axis : ``"off"`` hides the axes, ``"on"`` shows them
    figsize, dpi : size of a new figure
    **kwargs : forwarded to ``Axes.scatter`` (e.g. ``vmin``, ``vmax``)

    Returns
    -------
    The axes.
    """
    array = check_embedding(embedding)
    order = _check_idx_order(idx_order, array.shape[1])
    colors, mapped = _resolve_colors(embedding_labels, len(array))
    is_3d = len(order) == 3
    if ax is None:
        ax = _new_axes(figsize, dpi, "3d" if is_3d else None)
    elif is_3d and getattr(ax, "name", None) != "3d":
        raise ValueError(
            "plot_embedding: a 3-D plot needs axes created with projection='3d' "
            "(e.g. fig.add_subplot(111, projection='3d')), or pass a 2-index idx_order.")
    coords = [array[:, i] for i in order]
    if mapped:
        kwargs.update(c=colors, cmap=_get_cmap(cmap))
    else:
        # `color=`, not `c=`: an RGB tuple passed as `c` could be read as values to map.
        kwargs["color"] = colors
    ax.scatter(*coords, s=markersize, alpha=alpha, **kwargs)
    ax.set_title(title)
    ax.axis(axis)
    return ax


def _plotly_colorscale(cmap: str | matplotlib.colors.Colormap, n: int = 11) -> list:
    """Sample a matplotlib colormap into a plotly colorscale (so "cebra" works there too)."""
    colormap = _get_cmap(cmap)
    return [[float(t), matplotlib.colors.to_hex(colormap(t))] for t in np.linspace(0, 1, n)]


def plot_embedding_interactive(
    embedding: npt.ArrayLike,
    embedding_labels: Any = "grey",
    idx_order: Sequence[int] | None = None,
    markersize: float = 1,
    alpha: float = 0.4,
    cmap: str | matplotlib.colors.Colormap = "cool",
    title: str = "Embedding",
    figsize: tuple[float, float] = (5, 5),
    dpi: int = 100,
    **kwargs: Any,
) -> Any:
    """Interactive (plotly) scatter plot of an embedding, 3-D or 2-D like :func:`plot_embedding`.

    Parameters
    ----------
    embedding : (time, dims) array or tensor
    embedding_labels : a matplotlib colour, ``"time"``, or (time,) values mapped through ``cmap``
    idx_order : 2 or 3 latent indices to plot
    markersize : marker size in pixels
    alpha : marker opacity
    cmap : matplotlib colormap name or object, converted to a plotly colorscale
    title : figure title
    figsize, dpi : figure size in inches and pixels per inch
    **kwargs : forwarded to the plotly trace (``Scatter3d`` or ``Scatter``)

    Returns
    -------
    plotly.graph_objects.Figure
    """
    try:
        import plotly.graph_objects as go
    except ImportError as error:
        raise ImportError(
            "plot_embedding_interactive needs plotly; install it with "
            "`pip install cebra_pipe[interactive]`.") from error
    array = check_embedding(embedding)
    order = _check_idx_order(idx_order, array.shape[1])
    colors, mapped = _resolve_colors(embedding_labels, len(array))
    marker: dict[str, Any] = {"size": markersize, "opacity": alpha}
    if mapped:
        marker.update(color=colors, colorscale=_plotly_colorscale(cmap))
    else:
        marker["color"] = matplotlib.colors.to_hex(colors)
    coords = dict(zip("xyz", (array[:, i] for i in order)))
    trace_type = go.Scatter3d if len(order) == 3 else go.Scatter
    trace = trace_type(mode="markers", marker=marker, **coords, **kwargs)
    figure = go.Figure(data=[trace])
    figure.update_layout(title=title, width=int(figsize[0] * dpi),
                         height=int(figsize[1] * dpi), template="plotly_white")
    return figure


# --------------------------------------------------------------------------------------
# Training curves
# --------------------------------------------------------------------------------------

def plot_loss(
    model: Any,
    ax: Axes | None = None,
    label: str | None = None,
    color: Any = "magenta",
    linewidth: float = 1,
    x_label: bool = True,
    y_label: bool = True,
    figsize: tuple[float, float] = (7, 4),
    dpi: int = 100,
    **kwargs: Any,
) -> Axes:
    """Training loss against steps.

    Parameters
    ----------
    model : fitted estimator with ``state_dict_["loss"]`` (steps,)
    ax : axes to draw on; a new figure if None
    label : legend entry (a legend is drawn when given)
    color, linewidth : line style
    x_label, y_label : whether to label the axes
    figsize, dpi : size of a new figure
    **kwargs : forwarded to ``Axes.plot``

    Returns
    -------
    The axes.
    """
    loss = _loss_curve(model, "plot_loss")
    if ax is None:
        ax = _new_axes(figsize, dpi)
    ax.plot(loss, color=color, linewidth=linewidth, label=label, **kwargs)
    _style_curve_axes(ax, x_label, y_label, _loss_name(model))
    if label is not None:
        ax.legend(frameon=False)
    return ax


def plot_temperature(
    model: Any,
    ax: Axes | None = None,
    color: Any = "dodgerblue",
    linewidth: float = 1,
    x_label: bool = True,
    y_label: bool = True,
    figsize: tuple[float, float] = (7, 4),
    dpi: int = 100,
    **kwargs: Any,
) -> Axes:
    """Temperature against steps (constant unless the model learned it).

    Parameters
    ----------
    model : fitted estimator with ``state_dict_["log"]["temperature"]`` (steps,)
    ax : axes to draw on; a new figure if None
    color, linewidth : line style
    x_label, y_label : whether to label the axes
    figsize, dpi : size of a new figure
    **kwargs : forwarded to ``Axes.plot``

    Returns
    -------
    The axes.
    """
    temperature = _log_curve(model, "temperature", "plot_temperature")
    if ax is None:
        ax = _new_axes(figsize, dpi)
    ax.plot(temperature, color=color, linewidth=linewidth, **kwargs)
    _style_curve_axes(ax, x_label, y_label, "Temperature")
    return ax


def compare_models(
    models: Sequence[Any],
    labels: Sequence[str] | None = None,
    cmap: str | matplotlib.colors.Colormap = "cebra",
    color: Any = None,
    ax: Axes | None = None,
    linewidth: float = 1,
    x_label: bool = True,
    y_label: bool = True,
    figsize: tuple[float, float] = (7, 4),
    dpi: int = 100,
    **kwargs: Any,
) -> Axes:
    """Training losses of several models on one axes.

    Parameters
    ----------
    models : fitted estimators, each with ``state_dict_["loss"]``
    labels : one legend entry per model (a legend is drawn when given)
    cmap : colormap sampled evenly to colour the traces
    color : one colour for all traces; overrides ``cmap``
    ax : axes to draw on; a new figure if None
    linewidth : line width
    x_label, y_label : whether to label the axes
    figsize, dpi : size of a new figure
    **kwargs : forwarded to ``Axes.plot``

    Returns
    -------
    The axes.
    """
    if hasattr(models, "state_dict_") or isinstance(models, (str, bytes)):
        raise PlotInputError("compare_models: Invalid models: pass a list of fitted models, "
                             "got a single one (compare_models([model]) draws one).")
    try:
        models = list(models)
    except TypeError:
        raise PlotInputError(
            f"compare_models: Invalid models: pass a list of fitted models, got "
            f"{type(models).__name__}.") from None
    if not models:
        raise ValueError("compare_models: models is empty.")
    for i, model in enumerate(models):
        # a model, fitted (state_dict_) or not (fit); whether it is fitted is checked next
        if not (hasattr(model, "state_dict_") or hasattr(model, "fit")):
            raise PlotInputError(f"compare_models: Invalid models: models[{i}] is a "
                                 f"{type(model).__name__}, not a CEBRA model.")
    labels = _check_model_labels(labels, len(models))
    curves = [_loss_curve(model, f"compare_models (models[{i}])")
              for i, model in enumerate(models)]
    if color is not None:
        colors = [color] * len(models)
    else:
        colors = list(_get_cmap(cmap)(np.linspace(0, 1, len(models))))
    if ax is None:
        ax = _new_axes(figsize, dpi)
    for i, curve in enumerate(curves):
        label = None if labels is None else labels[i]
        ax.plot(curve, color=colors[i], linewidth=linewidth, label=label, **kwargs)
    _style_curve_axes(ax, x_label, y_label, _loss_name(models[0]))
    if labels is not None:
        ax.legend(frameon=False)
    return ax


# --------------------------------------------------------------------------------------
# Consistency
# --------------------------------------------------------------------------------------

def _hashable(value: Any) -> Any:
    """Numpy scalars -> Python scalars, so ids from arrays and lists compare equal."""
    return value.item() if isinstance(value, np.generic) else value


def _check_model_labels(labels: Any, num_models: int) -> list | None:
    """One legend entry (str or number) per model, or None."""
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)):
        raise PlotInputError(f"compare_models: Invalid labels: pass a list of {num_models} "
                             f"labels (one per model), got the string {labels!r}.")
    labels = list(labels)
    if len(labels) != num_models:
        raise ValueError(f"compare_models: Invalid labels: {len(labels)} labels for "
                         f"{num_models} models.")
    for i, label in enumerate(labels):
        if not isinstance(label, (str, int, float, np.number)):
            raise PlotInputError(f"compare_models: Invalid labels: labels[{i}] must be a str "
                                 f"or a number, got {type(label).__name__}.")
    return labels


def _consistency_matrix(scores: np.ndarray, pairs: np.ndarray, datasets: np.ndarray
                        ) -> tuple[np.ndarray, list]:
    """Place pairwise scores in a (n, n) matrix, rows = source, columns = target.

    Returns
    -------
    matrix : (n, n) with NaN on the diagonal and for missing pairs
    names : the n ids labelling rows and columns
    """
    names = [_hashable(d) for d in datasets]
    pair_ids = [(_hashable(a), _hashable(b)) for a, b in pairs]
    known = set(names)
    if not all(a in known and b in known for a, b in pair_ids):
        # The pairs name other ids than `datasets`: draw the ids the pairs refer to
        # rather than fail, and say so.
        seen = dict.fromkeys(i for pair in pair_ids for i in pair)
        warnings.warn(
            f"plot_consistency: pairs refer to ids {list(seen)} that are not all in "
            f"datasets {names}; labelling the matrix with the ids from pairs.", stacklevel=3)
        names = list(seen)
    position = {name: k for k, name in enumerate(names)}
    matrix = np.full((len(names), len(names)), np.nan)
    for (a, b), score in zip(pair_ids, scores):
        if a == b:
            raise ValueError(f"plot_consistency: pair ({a!r}, {b!r}) compares an id with itself.")
        matrix[position[a], position[b]] = score
    return matrix, names


def plot_consistency(
    scores: npt.ArrayLike,
    pairs: npt.ArrayLike | None = None,
    datasets: npt.ArrayLike | None = None,
    ax: Axes | None = None,
    cmap: str | matplotlib.colors.Colormap = "binary",
    text_color: Any = "white",
    colorbar_label: str | None = "Consistency score (%)",
    title: str | None = None,
    figsize: tuple[float, float] = (5, 5),
    dpi: int = 100,
    **kwargs: Any,
) -> Axes:
    """Heat map of pairwise consistency scores, in percent.

    Parameters
    ----------
    scores : (n_pairs,) scores; if all are <= 1 they are read as fractions and x100
    pairs : (n_pairs, 2) ``(source id, target id)`` of each score (required)
    datasets : (n,) ids labelling the rows (source) and columns (target) (required)
    ax : axes to draw on; a new figure if None
    cmap : colormap of the heat map
    text_color : colour of the cell annotations; ``"auto"`` picks black or white per cell,
        whichever contrasts more with the cell's colour (relative luminance)
    colorbar_label : colorbar label; no colorbar if None
    title : axes title
    figsize, dpi : size of a new figure
    **kwargs : forwarded to ``Axes.imshow`` (e.g. ``vmin=0, vmax=100``)

    Returns
    -------
    The axes.
    """
    # Keyword defaults only to say what is missing: a matrix without its pairs and
    # datasets cannot be labelled.
    missing = [name for name, value in (("pairs", pairs), ("datasets", datasets))
               if value is None]
    if missing:
        raise ValueError(f"Missing datasets or pairs (missing here: {' and '.join(missing)}): "
                         "pass the three values consistency_score returns, "
                         "plot_consistency(scores, pairs, datasets).")
    values = to_numpy(scores).astype(float)
    pair_array = to_numpy(pairs)
    ids = to_numpy(datasets)
    if values.ndim != 1:
        raise ValueError(f"Invalid scores dimensions: scores must be 1-D (n_pairs,), got "
                         f"shape {values.shape}.")
    if pair_array.ndim != 2 or pair_array.shape[1] != 2 or len(pair_array) != len(values):
        raise ValueError(
            f"Shape of the scores, datasets and pairs do not match: pairs must have shape "
            f"({len(values)}, 2) to match scores, got {pair_array.shape}.")
    if ids.ndim != 1 or len(ids) < 2:
        raise ValueError(f"datasets must list at least 2 ids, got shape {ids.shape}.")
    if values.size and np.nanmax(values) <= 1.0:
        values = values * 100.0
    matrix, names = _consistency_matrix(values, pair_array, ids)
    if ax is None:
        ax = _new_axes(figsize, dpi)
    image = ax.imshow(matrix, cmap=_get_cmap(cmap), **kwargs)
    for (row, col), value in np.ndenumerate(matrix):
        if np.isfinite(value):
            color = (_contrasting_text(image.cmap(image.norm(value)))
                     if isinstance(text_color, str) and text_color == "auto" else text_color)
            ax.text(col, row, f"{value:.1f}", ha="center", va="center", color=color)
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, [str(n) for n in names])
    ax.set_yticks(ticks, [str(n) for n in names])
    ax.set_xlabel("Target")
    ax.set_ylabel("Source")
    if colorbar_label is not None:
        ax.figure.colorbar(image, ax=ax, label=colorbar_label, fraction=0.046, pad=0.04)
    if title is not None:
        ax.set_title(title, wrap=True)  # wrapped to the figure's width
    return ax


def _contrasting_text(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on ``rgba`` (WCAG relative luminance)."""
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast ratios (L1 + 0.05) / (L2 + 0.05) against white (L=1) and black (L=0).
    return "black" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "white"


def plot_overview(
    model: Any,
    X: npt.ArrayLike,
    loss_kwargs: dict | None = None,
    temperature_kwargs: dict | None = None,
    embedding_kwargs: dict | None = None,
    figsize: tuple[float, float] = (15, 4),
    dpi: int = 100,
) -> tuple[matplotlib.figure.Figure, tuple[Axes, Axes, Axes]]:
    """Loss, temperature and the embedding of ``X`` of a fitted model, side by side.

    Parameters
    ----------
    model : fitted estimator
    X : (time, neurons) data to embed (coloured by time unless ``embedding_kwargs``
        gives ``embedding_labels``)
    loss_kwargs, temperature_kwargs, embedding_kwargs : forwarded to :func:`plot_loss`,
        :func:`plot_temperature` and :func:`plot_embedding`
    figsize, dpi : size of the figure

    Returns
    -------
    The figure and its three axes (loss, temperature, embedding).
    """
    _state_dict(model, "plot_overview")  # a clear error for an unfitted model
    embedding = check_embedding(model.transform(X))
    fig = plt.figure(figsize=figsize, dpi=dpi)
    loss_ax = plot_loss(model, ax=fig.add_subplot(1, 3, 1), **(loss_kwargs or {}))
    temperature_ax = plot_temperature(model, ax=fig.add_subplot(1, 3, 2),
                                      **(temperature_kwargs or {}))
    embedding_kwargs = {"embedding_labels": "time", **(embedding_kwargs or {})}
    dims = len(embedding_kwargs.get("idx_order") or range(min(embedding.shape[1], 3)))
    ax = fig.add_subplot(1, 3, 3, projection="3d" if dims == 3 else None)
    plot_embedding(embedding, ax=ax, **embedding_kwargs)
    return fig, (loss_ax, temperature_ax, ax)


_SINGLE_PLOTS = {"loss": plot_loss, "temperature": plot_temperature}


def plot(model: Any, which: str = "loss", X: npt.ArrayLike | None = None,
         ax: Axes | None = None, **kwargs: Any) -> Axes:
    """One plot of a fitted model by name: ``"loss"``, ``"temperature"`` or
    ``"embedding"`` (of ``X``, needed then).

    Parameters
    ----------
    model : fitted estimator
    which : the plot
    X : (time, neurons) data to embed for ``which="embedding"``
    ax : axes to draw on; a new figure if None
    **kwargs : forwarded to the plot function
    """
    if which == "embedding":
        if X is None:
            raise ValueError("plot(which='embedding') needs X, the data to embed.")
        _state_dict(model, "plot")
        return plot_embedding(model.transform(X), ax=ax, **kwargs)
    if which not in _SINGLE_PLOTS:
        raise ValueError(f"plot: which must be 'loss', 'temperature' or 'embedding', "
                         f"got {which!r}.")
    return _SINGLE_PLOTS[which](model, ax=ax, **kwargs)
