"""``python -m cebra_pipe report``: execute a report notebook and render it to HTML.

The notebook (``notebooks/*.ipynb``, a cell tagged ``parameters``) is run with
papermill and the given parameters in the working directory, so it reads the
results by relative path. Before rendering, stderr streams (warnings carry
installation paths) are dropped and any absolute path of the working directory is
replaced by ``.``, so the reports embed no paths of the machine that made them, and
user text in the outputs is made inert (:func:`defuse`): a ``<script>`` in a report
title shows as text.
Pages with interactive (plotly) views get plotly.js inlined once in their head, so
they work offline (:func:`inline_plotly`).
The HTML (code cells hidden) and the executed notebook are written atomically; a
failing cell stops the step with the cell's error, and the failed notebook is kept
at ``--failed-notebook`` for debugging.

A summary page (the cohort overview) must never stand beside per-animal pages it does
not summarise: its provenance records the files it summarises (``--summarises``, with
their hashes), every per-animal report removes it before rendering (``--invalidates``),
and the workflow removes it at the start of a run when :func:`is_stale`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cebra_pipe.pipeline.common import (PipelineError, all_or_nothing, atomic_output, json_arg,
                                        relpath, run, sha256_file, write_provenance)

STEP = "report"
# Output metadata key of HTML that cebra_pipe itself generated with user text already
# escaped (reportlib's plotly views): defuse() keeps its <script>s.
GENERATED_HTML = "cebra_pipe/generated-html"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {STEP}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebook", required=True, help="template notebook (.ipynb)")
    parser.add_argument("--parameters", type=json_arg, default={},
                        help="JSON object injected into the 'parameters' cell")
    parser.add_argument("--out-html", required=True)
    parser.add_argument("--out-notebook", required=True, help="executed notebook to keep")
    parser.add_argument("--failed-notebook", default=None,
                        help="where to keep the notebook if a cell fails")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--show-code", action="store_true", help="keep code cells in the HTML")
    parser.add_argument("--page-title", default=None,
                        help="the HTML page's <title> (default: the notebook's file name)")
    parser.add_argument("--provenance", default=None, help="provenance JSON to write")
    parser.add_argument("--summarises", nargs="*", default=[],
                        help="files this page summarises (recorded with their hashes)")
    parser.add_argument("--invalidates", nargs="*", default=[],
                        help="outputs of a summary of this page, removed before rendering")
    return parser


def is_stale(provenance: str | os.PathLike, summarised: Iterable[str | os.PathLike]) -> bool:
    """Whether a summary page no longer summarises exactly ``summarised`` as they are.

    Stale when its provenance is missing or unreadable, or records another set of files
    or other contents (sha256) than ``summarised`` has now (a missing file counts as
    changed).
    """
    try:
        recorded = json.loads(Path(provenance).read_text())["summarises"]
    except (OSError, ValueError, KeyError, TypeError):
        return True
    try:
        return recorded != _hashes(summarised)
    except FileNotFoundError:
        return True


def _hashes(paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    return {relpath(p): sha256_file(p) for p in paths}


def invalidate(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Remove the files of an out-of-date summary; returns those that existed."""
    removed = []
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            continue
        removed.append(str(path))
    return removed


def scrub(notebook: Any, roots: Sequence[str]) -> Any:
    """Drop stderr outputs and replace absolute ``roots`` by ``.`` in a notebook (in place)."""
    patterns = [re.compile(re.escape(str(root).rstrip("/")) + r"/?") for root in roots if root]

    def clean(text: str) -> str:
        for pattern in patterns:
            text = pattern.sub("./", text)
        return text

    for cell in notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                continue
            if "text" in output:
                output["text"] = clean("".join(output["text"]) if isinstance(
                    output["text"], list) else output["text"])
            for mime in ("text/plain", "text/html", "text/markdown"):
                data = output.get("data", {})
                if mime in data:
                    value = data[mime]
                    data[mime] = clean("".join(value) if isinstance(value, list) else value)
            if output.get("output_type") == "error":
                output["traceback"] = [clean(line) for line in output.get("traceback", [])]
            kept.append(output)
        cell["outputs"] = kept
    metadata = notebook.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if key in metadata:
            metadata[key] = os.path.basename(str(metadata[key]))
    return notebook


_SCRIPT = re.compile(r"<\s*script\b.*?(?:<\s*/\s*script\s*>|$)", re.IGNORECASE | re.DOTALL)
_HANDLER = re.compile(r"""\s+on[a-z]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_JS_URL = re.compile(r"javascript\s*:", re.IGNORECASE)


def defuse(notebook: Any) -> Any:
    """Make user text in a notebook's outputs inert before it becomes HTML (in place).

    Markdown outputs (titles, ids, label names, notes formatted into them) get ``&``,
    ``<`` and ``>`` escaped, so raw HTML there shows as text; HTML and SVG outputs
    (pandas tables, which escape their cells already) lose ``<script>`` elements,
    ``on...=`` handlers and ``javascript:`` URLs. The notebooks write no raw HTML, so
    nothing meant as markup is lost, except in outputs whose metadata carries
    :data:`GENERATED_HTML` (interactive plotly views, whose user text is escaped when
    they are made). nbconvert's own ``sanitize_html`` is not used: it also escapes
    headings, paragraphs and table heads.
    """
    import html

    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if output.get("metadata", {}).get(GENERATED_HTML):
                continue
            data = output.get("data", {})
            for mime in list(data):
                text = "".join(data[mime]) if isinstance(data[mime], list) else data[mime]
                if not isinstance(text, str):
                    continue
                if mime == "text/markdown":
                    data[mime] = _JS_URL.sub("javascript&#58;", html.escape(text, quote=False))
                elif mime in ("text/html", "image/svg+xml"):
                    data[mime] = _JS_URL.sub("about:blank#", _HANDLER.sub("", _SCRIPT.sub(
                        "", text)))
    return notebook


def render_html(notebook: Any, show_code: bool = False) -> str:
    """HTML of an executed notebook (nbconvert's lab template, images embedded)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(notebook)
    # Markdown links are rendered after defuse(): '[x](javascript:...)' becomes a live href.
    return re.sub(r"""\b(href|src)(\s*=\s*["']?)\s*javascript\s*:""", r"\1\2about:blank#", body,
                  flags=re.IGNORECASE)


def inline_plotly(html: str) -> str:
    """``html`` with plotly.js inlined in its head when it holds plotly figures.

    Inlined rather than linked to a CDN: reports are read offline and archived. Added
    here, not by each notebook output, so a page carries it once (about 4.6 MB) and the
    executed notebooks stay small.
    """
    if 'class="plotly-graph-div"' not in html:
        return html
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise PipelineError("the report has interactive views but plotly is not installed "
                            "for `python -m cebra_pipe report`; install it with "
                            "`pip install cebra_pipe[interactive]`.") from None
    script = '<script type="text/javascript">' + get_plotlyjs() + "</script>\n"
    head = html.find("</head>")
    if head < 0:
        raise PipelineError("the rendered report has no </head> to put plotly.js in.")
    return html[:head] + script + html[head:]


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    import nbformat
    import papermill

    template = Path(args.notebook)
    if not template.is_file():
        raise FileNotFoundError(2, "No such report notebook", str(template))
    if not isinstance(args.parameters, dict):
        raise PipelineError("--parameters must be a JSON object.")
    try:
        source = nbformat.read(template, as_version=4)
    except Exception as err:  # nbformat raises several unrelated types on bad files
        raise PipelineError(f"report notebook '{template}' is not a valid notebook: "
                            f"{err}") from None
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in source.cells):
        raise PipelineError(f"report notebook '{template}' has no cell tagged 'parameters'.")
    roots = sorted({str(Path.cwd()), str(Path.cwd().resolve()), str(Path.home())},
                   key=len, reverse=True)
    outputs = [args.out_html, args.out_notebook] + ([args.provenance] if args.provenance else [])
    for path in invalidate(args.invalidates):
        print(f"removed '{path}': it summarised the previous version of this page")
    with all_or_nothing(outputs):
        with atomic_output(args.out_notebook) as tmp:
            try:
                papermill.execute_notebook(str(template), str(tmp), parameters=args.parameters,
                                           kernel_name=args.kernel, cwd=os.getcwd(),
                                           progress_bar=False, log_output=False,
                                           execution_timeout=args.timeout,
                                           report_mode=False)
            except papermill.PapermillExecutionError as err:
                if args.failed_notebook:
                    Path(args.failed_notebook).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, args.failed_notebook)
                raise PipelineError(f"report notebook '{template}' failed in cell "
                                    f"{err.exec_count}: {err.ename}: {err.evalue}"
                                    + (f" (executed notebook kept at '{args.failed_notebook}')"
                                       if args.failed_notebook else "")) from None
            executed = defuse(scrub(nbformat.read(tmp, as_version=4), roots))
            executed.metadata["title"] = args.page_title or template.stem
            nbformat.write(executed, tmp)
        html = inline_plotly(render_html(executed, show_code=args.show_code))
        for root in roots:
            html = html.replace(root.rstrip("/") + "/", "./")
        with atomic_output(args.out_html) as tmp:
            tmp.write_text(html, encoding="utf-8")
        if args.provenance:
            write_provenance(args.provenance, STEP, params=args.parameters,
                             inputs=[str(template)],
                             extra={"notebook": template.name,
                                    "summarises": _hashes(args.summarises)})
    print(f"report {template.name} -> {args.out_html} ({len(html) // 1024} KiB)")


def cli(argv: Sequence[str] | None = None) -> int:
    return run(main, argv, STEP)
